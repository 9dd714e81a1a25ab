"""The posteriors peers (``posteriors.sgld``, ``posteriors.sghmc``) against ours.

The mapping of samplers/peers/posteriors_backend.py is checked three ways:

* exactly, step by step: the wrapper's trajectory equals the documented update written out by
  hand (with posteriors' own noise, recovered from the seed the wrapper draws), at tau > 0 and
  with per-chain hyperparameters; at tau = 0 SGLD equals ours bit for bit, and SGHMC equals the
  explicit (position-first) recurrence, which is not ours;
* in law, on the Gaussian targets ``gaussian_corr`` and ``gaussian_illcond``: each chain's exact
  stationary covariance is the solution of a discrete Lyapunov equation (the chains are linear);
  the chains start in that law, and after many steps the sample moments of many i.i.d. chains
  must sit within Z standard errors of it (as in tests/test_peers.py: for a law with covariance
  S, the SE of a mean entry is sqrt(S_ii / n), of a covariance entry sqrt((S_ii S_jj + S_ij²) /
  n)). Ours and theirs are compared with each other the same way;
* the contract: the global generator is left alone, a non-finite chain is contained, the cost
  is one gradient a step, and ``import samplers`` does not import posteriors.

A slow version (``-m slow``) starts far from the target with ten times the chains.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch

import samplers
import tasks
from samplers.base import value_and_grad

Z = 4.5
CHAINS = 4000
LIGHT_TASK = "add_mod31_mlp"
# SGLD: (h, steps); SGHMC: (h, friction, steps). On gaussian_illcond (curvatures 1 and 100) the
# SGHMC setting is stable for both orderings (h·100 = 0.6 < friction) and far enough from the
# continuum that the orderings' stationary laws differ by many standard errors.
SGLD_SETTINGS = {"gaussian_corr": (1e-2, 1000), "gaussian_illcond": (2e-3, 1000)}
SGHMC_SETTINGS = {"gaussian_corr": (1e-2, 0.5, 1000), "gaussian_illcond": (6e-3, 0.9, 1000)}
# Linear chains with the same random numbers at two temperatures are one experiment rescaled:
# each temperature gets its own seeds, so the two checks are independent.
SEEDS = {1.0: 0, 0.1: 1}


def run(sampler, theta, potential, steps, seed=0, state=None):
    state = sampler.init(theta) if state is None else state
    generator = torch.Generator().manual_seed(seed)
    infos = []
    for _ in range(steps):
        state, info = sampler.step(state, potential, None, generator)
        infos.append(info)
    return state, infos


# -- the exact laws of the linear chains on U = ½(x - mu)ᵀA(x - mu) ----------------------------


def sgld_law(a, h, tau):
    """S = (I - hA) S (I - hA)ᵀ + 2hτI: ours and posteriors' (the same chain)."""
    eye = np.eye(len(a))
    return scipy.linalg.solve_discrete_lyapunov(eye - h * a, 2 * h * tau * eye)


def ours_sghmc_law(a, h, alpha, tau):
    """The joint law of (x, v) under ours: v' = (1-α)v - hA x + ξ, x' = x + v'."""
    eye = np.eye(len(a))
    m = np.block([[eye - h * a, (1 - alpha) * eye], [-h * a, (1 - alpha) * eye]])
    q = np.kron(2 * alpha * h * tau * np.ones((2, 2)), eye)
    return scipy.linalg.solve_discrete_lyapunov(m, q)


def posteriors_sghmc_law(a, h, alpha, tau):
    """The joint law of (x, v) under posteriors (explicit): x' = x + v, v' = (1-α)v - hA x + ξ."""
    d = len(a)
    eye = np.eye(d)
    m = np.block([[eye, eye], [-h * a, (1 - alpha) * eye]])
    assert max(abs(np.linalg.eigvals(m))) < 1, "unstable for the explicit ordering"
    q = np.zeros((2 * d, 2 * d))
    q[d:, d:] = 2 * alpha * h * tau * eye
    return scipy.linalg.solve_discrete_lyapunov(m, q)


def draws(mean, cov, n, seed):
    x = np.random.default_rng(seed).multivariate_normal(np.asarray(mean), np.asarray(cov), size=n)
    return torch.from_numpy(x).to(torch.float32)


def z_scores(x, mean, cov):
    """(sample - law) / SE for every mean entry and covariance entry of ``x`` (n, D)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    var = np.diag(cov)
    z_mean = (x.mean(0) - mean) / np.sqrt(var / n)
    z_cov = (np.cov(x.T) - cov) / np.sqrt((np.outer(var, var) + cov**2) / n)
    return z_mean, z_cov


def z_difference(x, y, cov_x, cov_y, expected=0.0):
    """(cov(x) - cov(y) - expected) in standard errors of the difference of two independent
    sample covariances."""
    n = len(x)
    se = np.sqrt(
        (np.outer(np.diag(cov_x), np.diag(cov_x)) + cov_x**2) / n
        + (np.outer(np.diag(cov_y), np.diag(cov_y)) + cov_y**2) / n
    )
    diff = np.cov(np.asarray(x, np.float64).T) - np.cov(np.asarray(y, np.float64).T)
    return (diff - expected) / se


def assert_within(z, what):
    z = np.abs(np.concatenate([np.ravel(a) for a in z]))
    assert np.all(z < Z), (what, z.max())


def principal_axes(target):
    """Rotate samples onto the target's eigenvectors, where the stiff direction's variance
    (the one the discretisations bias) is a coordinate of its own."""
    _, vectors = np.linalg.eigh(target.cov.numpy())
    return vectors


# -- the registry and the contract ---------------------------------------------------------------


def test_registered_lazily_under_the_prefix_and_marked():
    for name in ("posteriors.sgld", "posteriors.sghmc"):
        entry = samplers.lookup(name)
        assert entry.peer == "posteriors" and not entry.metropolis and entry.samples
        assert entry.grad_evals_per_step({}) == 1
        sampler = samplers.make(name)
        assert sampler.peer == "posteriors" and sampler.name == name
        assert type(sampler).grad_evals_per_step({}) == 1
        assert dict(sampler.params) == dict(entry.params)
    code = (
        "import sys, samplers; samplers.lookup('posteriors.sghmc').params; "
        "print(sorted(m for m in ('posteriors', 'tensordict', 'torchopt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_hyperparameters_are_validated_like_ours():
    with pytest.raises(samplers.HyperparameterError, match="friction must be <= 1"):
        samplers.make("posteriors.sghmc", friction=1.5)
    with pytest.raises(samplers.HyperparameterError, match="temperature must be >= 0"):
        samplers.make("posteriors.sgld", temperature=-1.0)


@pytest.mark.parametrize("name", ["posteriors.sgld", "posteriors.sghmc"])
def test_the_global_generator_is_left_alone_and_the_seed_reproduces(name):
    target = tasks.make("gaussian_corr")
    theta = target.init(0, 3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, _ = run(samplers.make(name, temperature=1.0), theta, target.potential(), 5, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)  # another global state: the trajectory does not depend on it
    b, _ = run(samplers.make(name, temperature=1.0), theta, target.potential(), 5, seed=7)
    assert torch.equal(a.theta, b.theta)


class NaNInRowZero:
    """The potential, with chain 0's value and gradient NaN and every other chain's untouched
    (``+ theta[:, 0]·(NaN, 0, ...)`` adds exactly 0 to the others)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, theta, batch):
        poison = torch.zeros(theta.shape[0], dtype=theta.dtype)
        poison[0] = math.nan
        return self.base(theta, batch) + theta[:, 0] * poison


@pytest.mark.parametrize("name", ["posteriors.sgld", "posteriors.sghmc"])
def test_a_non_finite_chain_is_contained(name, light_task):
    """Chain 0's U and gradient are NaN: it is flagged and stands still while chain 1 moves
    exactly as in a clean run (the summed log posterior does not leak one chain's NaN into
    another's gradient)."""
    theta = light_task.init(0, 2)
    clean = light_task.potential(prior_precision=0.1)
    hparams = dict(step_size=1e-2, temperature=1e-4)
    state, infos = run(samplers.make(name, **hparams), theta, NaNInRowZero(clean), 3)
    reference, _ = run(samplers.make(name, **hparams), theta, clean, 3)
    assert all(bool(i.diverged[0]) and not bool(i.diverged[1]) for i in infos)
    assert torch.equal(state.theta[0], theta[0])
    assert torch.isfinite(state.theta).all()
    assert torch.equal(state.theta[1], reference.theta[1])
    if name == "posteriors.sghmc":
        assert torch.isfinite(state.velocity).all() and not state.velocity[0].any()


# -- the mapping, step by step -------------------------------------------------------------------


def replay(theta, velocity, potential, generator, steps, update):
    """Our reading of posteriors' update, written out: each step draws the seed the wrapper
    draws, and posteriors' ``randn_like`` from the global generator seeded with it."""
    u0 = None
    for _ in range(steps):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        xi = torch.randn(theta.shape, generator=torch.Generator().manual_seed(seed))
        u, g = value_and_grad(potential, theta, None)
        u0 = u if u0 is None else u0
        theta, velocity = update(theta, velocity, g, xi)
    return theta, velocity, u0


def test_sgld_is_our_update_term_by_term(light_task):
    """θ <- θ - h∇U + sqrt(2hτ)ξ with per-chain h and τ, on the light grokking task."""
    theta = light_task.init(0, 2)
    potential = light_task.potential(prior_precision=1e-3)
    h, tau = torch.tensor([0.5, 0.25]), torch.tensor([1e-4, 1e-3])
    sampler = samplers.make("posteriors.sgld", step_size=h, temperature=tau)
    state, infos = run(sampler, theta, potential, 5, seed=3)
    hc, tc = h.reshape(-1, 1), tau.reshape(-1, 1)
    expected, _, u0 = replay(
        theta,
        None,
        potential,
        torch.Generator().manual_seed(3),
        5,
        lambda x, v, g, xi: (x - hc * g + (2 * hc * tc).sqrt() * xi, v),
    )
    torch.testing.assert_close(state.theta, expected)
    torch.testing.assert_close(infos[0].potential, u0)
    assert not torch.equal(state.theta, theta)


def test_sghmc_is_the_explicit_recurrence_in_our_parameters(light_task):
    """x <- x + v; v <- (1-α)v - h∇U(x_old) + sqrt(2αhτ)ξ, with posteriors' momentum equal to
    our velocity (lr = h, sigma = sqrt(h))."""
    theta = light_task.init(1, 2)
    potential = light_task.potential(prior_precision=1e-3)
    h, alpha, tau = torch.tensor([0.3, 0.1]), torch.tensor([0.1, 0.3]), 1e-4
    sampler = samplers.make("posteriors.sghmc", step_size=h, friction=alpha, temperature=tau)
    state, _ = run(sampler, theta, potential, 6, seed=5)
    hc, ac = h.reshape(-1, 1), alpha.reshape(-1, 1)

    def explicit(x, v, g, xi):
        return x + v, (1 - ac) * v - hc * g + (2 * ac * hc * tau).sqrt() * xi

    x, v, _ = replay(
        theta, torch.zeros_like(theta), potential, torch.Generator().manual_seed(5), 6, explicit
    )
    torch.testing.assert_close(state.theta, x)
    torch.testing.assert_close(state.velocity, v)


def test_sgld_at_zero_temperature_is_ours_bit_for_bit(light_task):
    theta = light_task.init(0, 2)
    potential = light_task.potential(prior_precision=1e-3)
    ours, _ = run(samplers.make("sgld", step_size=0.5, temperature=0.0), theta, potential, 20)
    peer, infos = run(
        samplers.make("posteriors.sgld", step_size=0.5, temperature=0.0), theta, potential, 20
    )
    assert torch.equal(peer.theta, ours.theta)
    assert float(infos[-1].potential.max()) < float(infos[0].potential.min())  # it descended


def test_sghmc_at_zero_temperature_is_momentum_with_a_stale_gradient_not_ours(light_task):
    """At τ = 0 posteriors' SGHMC is x_{t+1} = x_t + v_t, v_{t+1} = (1-α)v_t - h∇U(x_t): its
    first step does not move, and from then on each move uses the gradient one step late; ours
    (SGD with momentum 1 - α) moves at once. Both descend."""
    theta = light_task.init(0, 2)
    potential = light_task.potential(prior_precision=1e-3)
    hp = dict(step_size=0.3, friction=0.2, temperature=0.0)
    first, _ = run(samplers.make("posteriors.sghmc", **hp), theta, potential, 1)
    assert torch.equal(first.theta, theta)
    peer, infos = run(samplers.make("posteriors.sghmc", **hp), theta, potential, 20)
    ours, _ = run(samplers.make("sghmc", **hp), theta, potential, 20)
    x, v = theta, torch.zeros_like(theta)
    for _ in range(20):
        _, g = value_and_grad(potential, x, None)
        x, v = x + v, 0.8 * v - 0.3 * g
    torch.testing.assert_close(peer.theta, x)
    assert (peer.theta - ours.theta).abs().max() > 1e-3
    assert float(infos[-1].potential.max()) < float(infos[0].potential.min())


def test_sghmc_explicit_ordering_is_unstable_where_ours_is_not(one_thread):
    """friction 0.1 < h·λ_max = 1 on gaussian_illcond: posteriors' chains blow up (and are
    flagged), ours sample the target."""
    target = tasks.make("gaussian_illcond")
    theta = target.init(0, 20)
    hp = dict(step_size=1e-2, friction=0.1, temperature=1.0)
    _, infos = run(samplers.make("posteriors.sghmc", **hp), theta, target.potential(), 300)
    assert bool(infos[-1].diverged.all())
    ours, infos = run(samplers.make("sghmc", **hp), theta, target.potential(), 300)
    assert not any(bool(i.diverged.any()) for i in infos)
    assert float(ours.theta.double().sub(target.mean).norm(dim=1).max()) < 10


# -- stationary laws on the Gaussian targets -----------------------------------------------------


def sgld_cross_check(task_name, tau, chains, steps_scale=1, far=False, seed=0):
    """Final states of ours and posteriors' SGLD and the z-scores against the exact law."""
    target = tasks.make(task_name)
    h, steps = SGLD_SETTINGS[task_name]
    mean, _ = (m.numpy() for m in target.moments(tau))
    law = sgld_law(target.precision.numpy(), h, tau)
    out = {}
    for i, name in enumerate(("sgld", "posteriors.sgld")):
        if far:
            theta = torch.from_numpy(mean + 3.0).float().expand(chains, -1).contiguous()
        else:
            theta = draws(mean, law, chains, seed=10 * seed + i)
        sampler = samplers.make(name, step_size=h, temperature=tau)
        state, _ = run(sampler, theta, target.potential(), steps * steps_scale, seed=seed + i)
        out[name] = state.theta
    return out, mean, law


@pytest.mark.parametrize("tau", [1.0, 0.1])
@pytest.mark.parametrize("task_name", ["gaussian_corr", "gaussian_illcond"])
def test_sgld_ours_and_posteriors_share_the_exact_stationary_law(task_name, tau, one_thread):
    """The same chain: both at the exact law (also in the target's principal axes, where the
    stiff direction's O(h) bias is a coordinate of its own), and at each other."""
    out, mean, law = sgld_cross_check(task_name, tau, CHAINS, seed=SEEDS[tau])
    rot = principal_axes(tasks.make(task_name))
    for name, x in out.items():
        assert_within(z_scores(x, mean, law), name)
        axes = (np.asarray(x, np.float64) - mean) @ rot
        assert_within(z_scores(axes, 0.0, rot.T @ law @ rot), f"{name} (axes)")
    assert_within([z_difference(out["sgld"], out["posteriors.sgld"], law, law)], "ours - theirs")


def sghmc_cross_check(task_name, tau, chains, steps_scale=1, far=False, seed=0):
    """Final (x, v) of ours and posteriors' SGHMC, and each one's exact joint law."""
    target = tasks.make(task_name)
    h, alpha, steps = SGHMC_SETTINGS[task_name]
    a = target.precision.numpy()
    mean, _ = (m.numpy() for m in target.moments(tau))
    d = len(mean)
    laws = {
        "sghmc": ours_sghmc_law(a, h, alpha, tau),
        "posteriors.sghmc": posteriors_sghmc_law(a, h, alpha, tau),
    }
    out = {}
    for i, (name, law) in enumerate(laws.items()):
        sampler = samplers.make(name, step_size=h, friction=alpha, temperature=tau)
        if far:
            theta = torch.from_numpy(mean + 3.0).float().expand(chains, -1).contiguous()
            state = sampler.init(theta)
        else:  # start in the joint stationary law of (x, v)
            z = draws(np.concatenate([mean, np.zeros(d)]), law, chains, seed=10 * seed + i)
            state = type(sampler.init(z[:, :d]))(theta=z[:, :d].contiguous(), velocity=z[:, d:])
        state, _ = run(
            sampler, state.theta, target.potential(), steps * steps_scale, seed + i, state
        )
        out[name] = state.theta
    return out, mean, {k: v[:d, :d] for k, v in laws.items()}, target


@pytest.mark.parametrize("tau", [1.0, 0.1])
@pytest.mark.parametrize("task_name", ["gaussian_corr", "gaussian_illcond"])
def test_sghmc_ours_and_posteriors_each_keep_their_exact_law(task_name, tau, one_thread):
    """Both chains sit at their own exact stationary law (different: the orderings differ), and
    the difference between their sample covariances is the predicted one, in the target's
    principal axes. On gaussian_illcond the stiff axis tells the orderings apart by many SEs."""
    out, mean, laws, target = sghmc_cross_check(task_name, tau, CHAINS, seed=SEEDS[tau])
    rot = principal_axes(target)
    rotated = {}
    for name, x in out.items():
        assert_within(z_scores(x, mean, laws[name]), name)
        rotated[name] = (np.asarray(x, np.float64) - mean) @ rot
        assert_within(z_scores(rotated[name], 0.0, rot.T @ laws[name] @ rot), f"{name} (axes)")
    ours, peer = (rot.T @ laws[k] @ rot for k in ("sghmc", "posteriors.sghmc"))
    z = z_difference(rotated["sghmc"], rotated["posteriors.sghmc"], ours, peer, ours - peer)
    assert_within([z], "ours - theirs vs the predicted difference")
    if task_name == "gaussian_illcond":
        stiff = z_difference(rotated["posteriors.sghmc"], rotated["sghmc"], peer, ours)[0, 0]
        assert stiff > 10, stiff  # the explicit ordering's stiff-axis variance, far above ours


# -- slow: ten times the chains, from far away ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("tau", [1.0, 0.1])
@pytest.mark.parametrize("task_name", ["gaussian_corr", "gaussian_illcond"])
def test_slow_both_converge_to_the_exact_laws_from_far_away(task_name, tau, one_thread):
    seed = 2 + SEEDS[tau]
    out, mean, law = sgld_cross_check(task_name, tau, 10 * CHAINS, 5, far=True, seed=seed)
    for name, x in out.items():
        assert_within(z_scores(x, mean, law), name)
    out, mean, laws, _ = sghmc_cross_check(task_name, tau, 10 * CHAINS, 5, far=True, seed=seed)
    for name, x in out.items():
        assert_within(z_scores(x, mean, laws[name]), name)


# -- bench speed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["sgld", "sghmc"])
def test_speed_times_posteriors_beside_ours(sampler):
    from bench.speed import IMPLEMENTATIONS, format_table, measure

    assert {"posteriors", "posteriors-loop"} <= set(IMPLEMENTATIONS)
    timings = measure(
        "gaussian_iso",
        sampler,
        chains=2,
        steps=2,
        rounds=2,
        implementations=("ours", "posteriors", "posteriors-loop"),
    )
    assert [t.implementation for t in timings] == ["ours", "posteriors", "posteriors-loop"]
    for t in timings:
        assert t.seconds_per_step > 0 and t.grad_evals_per_step == 1 and len(t.seconds) == 2
    assert "posteriors-loop" in format_table(timings, "gaussian_iso", sampler)


def test_speed_skips_posteriors_where_it_has_no_such_sampler():
    from bench.speed import measure

    timings = measure(
        "gaussian_iso", "hmc", chains=1, steps=1, rounds=1, implementations=("ours", "posteriors")
    )
    assert [t.implementation for t in timings] == ["ours"]
