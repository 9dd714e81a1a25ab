"""The sampler contract over the whole registry, and known answers that prove the math.

Statistical tolerances come from the Monte Carlo standard error: the statistics use the final
states of many independent chains, which are i.i.d. draws, so for a Gaussian law with covariance
S the standard error of a mean entry is sqrt(S_ii / n) and of a covariance entry
sqrt((S_ii S_jj + S_ij²) / n). Every check allows Z standard errors (Z = 4.5: with ~60 checks
the chance of a false alarm across the file is below 1e-3); the trajectories are seeded, so a
pass or a failure is reproducible.

The stationary-law tests come twice. The default run starts every chain at an exact draw from
tau·Sigma and takes a few hundred steps; the law after those steps is computed exactly (for the
linear chains, by iterating C <- M C Mᵀ + Q), so the same standard errors apply with the same
number of chains, in a few seconds. The full versions (``-m slow``) start every chain far away
and run thousands of steps, so convergence has to be earned.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import samplers
from samplers import HyperparameterError, PotentialError, UnknownSamplerError
from samplers.metric import FREEZE_AFTER
from samplers.peers import FIXED_GRAD_EVALS, PeerUnavailableError
from tasks.toy import standard_gaussian

Z = 4.5
# The contract of every registered sampler (ours and the peers) is tests/test_contract.py.
OURS = [n for n in samplers.names() if not getattr(samplers.lookup(n), "peer", None)]


def make(name):
    """Sampler ``name`` at its toy example (declared on its class)."""
    return samplers.make(name, **samplers.example(name).hparams)


# -- the contract, for every registered sampler --------------------------------------------------


@pytest.mark.parametrize("name", OURS)
def test_non_finite_energy_is_flagged_and_contained(name, target, run_sampler):
    """Chain 0's potential and gradient are NaN: it is marked diverged and stands still; chain 1
    moves on exactly as it would alone."""
    base = target.potential()

    def poisoned(theta, batch):
        # theta[:, 0]·(NaN, 0): a NaN value and gradient for chain 0 only (a torch.where on the
        # output would leak 0·NaN = NaN into every chain's gradient through autograd)
        mask = torch.tensor([math.nan, 0.0], dtype=theta.dtype)
        return base(theta, batch) + theta[:, 0] * mask

    theta = target.init(4, 2)
    state, infos = run_sampler(make(name), theta, poisoned, steps=3)
    clean, _ = run_sampler(make(name), theta, base, steps=3)
    assert all(bool(info.diverged[0]) for info in infos)
    assert not any(bool(info.diverged[1]) for info in infos)
    assert torch.equal(state.theta[0], theta[0])
    assert torch.isfinite(state.theta).all()
    if name != "hmc":  # HMC's chains share the accept draw's stream but not its outcome
        torch.testing.assert_close(state.theta[1], clean.theta[1])
    assert not torch.equal(state.theta[1], theta[1])


# -- the cost of a step, declared in advance ---------------------------------------------------


@pytest.mark.slow  # imports jax, blackjax, pyro: seconds each
@pytest.mark.parametrize("name", [n for n in samplers.names() if n not in OURS])
def test_peer_classes_declare_the_cost_of_their_registry_entries(name):
    """The loaded peer class answers as its lazy registry entry does (which imports nothing)."""
    entry = samplers.lookup(name)
    try:
        cls = entry.load()
    except PeerUnavailableError as err:
        pytest.skip(str(err))
    if name in FIXED_GRAD_EVALS:
        assert cls.grad_evals_per_step({}) == entry.grad_evals_per_step({}) == 1
    else:
        for declares in (entry, cls):
            with pytest.raises(ValueError, match="the equal-budget protocol cannot fix"):
                declares.grad_evals_per_step({})


def test_hmc_cost_per_step_is_its_number_of_leapfrog_steps():
    hmc = samplers.lookup("hmc")
    default = hmc.params["num_leapfrog"].default
    assert hmc.grad_evals_per_step({}) == hmc.grad_evals_per_step({"step_size": 0.1}) == default
    assert hmc.grad_evals_per_step({"num_leapfrog": 7, "adapt_steps": 100}) == 7
    with pytest.raises(HyperparameterError, match="num_leapfrog must be a number"):
        hmc.grad_evals_per_step({"num_leapfrog": [4, 16]})  # one L for every chain
    with pytest.raises(HyperparameterError, match="single number"):
        hmc.grad_evals_per_step({"num_leapfrog": torch.tensor([4, 16])})


# -- bad input ---------------------------------------------------------------------------------


def test_unknown_name_suggests_the_nearest():
    with pytest.raises(UnknownSamplerError, match="did you mean 'sgd' or 'sgld'"):
        samplers.make("sgdl")


@pytest.mark.parametrize(
    "name, hparams, message",
    [
        ("sgld", {"step_size": -1e-3}, "step_size must be > 0"),
        ("sgld", {"temperature": -1.0}, "temperature must be >= 0"),
        ("sgld", {"lr": 1e-3}, r"unknown hyperparameter\(s\) \['lr'\]"),
        ("sgd", {"temperature": 1.0}, "unknown hyperparameter"),
        ("sgd", {"momentum": 1.0}, "momentum must be < 1"),
        ("hmc", {"temperature": 0.0}, "temperature must be > 0"),
        ("hmc", {"num_leapfrog": 2.5}, "num_leapfrog must be an integer"),
        ("hmc", {"num_leapfrog": torch.tensor([1, 2])}, "single number"),
        ("adamw", {"betas": (0.9, 1.0)}, r"betas\[1\] must be < 1"),
        ("adamw", {"betas": 0.9}, "must be a pair"),
        ("sghmc", {"friction": 0.0}, "friction must be > 0"),
        ("sgld", {"step_size": torch.tensor([1e-3, -1.0])}, "step_size must be > 0"),
        ("sgld", {"step_size": math.nan}, "must be finite"),
        ("sgld", {"step_size": "big"}, "must be a number"),
    ],
)
def test_bad_hyperparameters_say_which_and_why(name, hparams, message):
    with pytest.raises(HyperparameterError, match=message):
        samplers.make(name, **hparams)


@pytest.mark.parametrize("name", OURS)
def test_potential_of_wrong_shape_is_refused(name, target):
    sampler = make(name)
    state = sampler.init(target.init(0, 3))
    summed = lambda theta, batch: target.potential()(theta, batch).sum()  # noqa: E731
    with pytest.raises(PotentialError, match=r"one value per chain, shape \(3,\)"):
        sampler.step(state, summed, None, torch.Generator())


def test_per_chain_hyperparameter_of_wrong_length(target):
    sampler = samplers.make("sgld", step_size=torch.tensor([1e-3, 2e-3, 3e-3]))
    with pytest.raises(HyperparameterError, match="3 values but theta has 2 chains"):
        sampler.step(sampler.init(target.init(0, 2)), target.potential(), None, torch.Generator())


# -- reductions between samplers -------------------------------------------------------------


def test_sgld_at_zero_temperature_is_sgd_bit_for_bit(target, run_sampler):
    theta = target.init(5, 4)
    sgld, _ = run_sampler(
        samplers.make("sgld", step_size=3e-3, temperature=0.0),
        theta,
        target.potential(),
        steps=50,
        seed=1,
    )
    sgd, _ = run_sampler(
        samplers.make("sgd", step_size=3e-3, momentum=0.0),
        theta,
        target.potential(),
        steps=50,
        seed=2,
    )
    assert torch.equal(sgld.theta, sgd.theta)


def test_sghmc_at_zero_temperature_is_sgd_with_momentum(target, run_sampler):
    theta = target.init(6, 4, dtype=torch.float64)
    sghmc, _ = run_sampler(
        samplers.make("sghmc", step_size=3e-3, friction=0.2, temperature=0.0),
        theta,
        target.potential(),
        steps=100,
        seed=1,
    )
    sgd, _ = run_sampler(
        samplers.make("sgd", step_size=3e-3, momentum=0.8),
        theta,
        target.potential(),
        steps=100,
        seed=2,
    )
    torch.testing.assert_close(sghmc.theta, sgd.theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sghmc.velocity, -3e-3 * sgd.velocity, rtol=1e-10, atol=1e-14)


def test_adamw_matches_torch_optim_adamw(target, run_sampler):
    theta = target.init(7, 3, dtype=torch.float64)
    hparams = dict(step_size=5e-2, weight_decay=0.3, betas=(0.9, 0.98), eps=1e-8)
    ours, _ = run_sampler(samplers.make("adamw", **hparams), theta, target.potential(), steps=40)

    leaf = theta.clone().requires_grad_(True)
    opt = torch.optim.AdamW([leaf], lr=5e-2, weight_decay=0.3, betas=(0.9, 0.98), eps=1e-8)
    for _ in range(40):
        opt.zero_grad()
        target.potential()(leaf, None).sum().backward()
        opt.step()
    torch.testing.assert_close(ours.theta, leaf.detach(), rtol=1e-12, atol=1e-12)


def test_adamw_grokfast_filter_amplifies_the_slow_gradient(target, run_sampler):
    """With a constant gradient the EMA converges to it, so the effective gradient is (1+λ)g."""
    theta = target.init(8, 2, dtype=torch.float64)
    constant = lambda th, batch: (th * torch.tensor([1.0, -2.0], dtype=th.dtype)).sum(1)  # noqa: E731
    plain = samplers.make("adamw", weight_decay=0.0, grokfast_lamb=0.0)
    fast = samplers.make("adamw", weight_decay=0.0, grokfast_lamb=2.0, grokfast_alpha=0.5)
    a, _ = run_sampler(plain, theta, constant, steps=1)
    b, _ = run_sampler(fast, theta, constant, steps=1)
    # Adam normalises a constant gradient away at step 1, so the first steps agree ...
    torch.testing.assert_close(a.theta, b.theta)
    # ... while the filter state holds (1 - a)·g, as the EMA of Lee et al. prescribes.
    assert b.grokfast is not None
    torch.testing.assert_close(b.grokfast[0], 0.5 * torch.tensor([1.0, -2.0], dtype=torch.float64))


@pytest.mark.parametrize(
    "name, hparams, steps",
    [
        ("sgd", dict(step_size=1e-2, momentum=0.9), 3000),
        ("sgd", dict(step_size=1e-2, momentum=0.0), 6000),
        ("adamw", dict(step_size=1e-2, weight_decay=0.0), 3000),
    ],
)
def test_optimizers_reach_the_mode_of_a_quadratic(name, hparams, steps, target, run_sampler):
    theta = target.init(9, 4, dtype=torch.float64)
    state, _ = run_sampler(samplers.make(name, **hparams), theta, target.potential(), steps=steps)
    tol = 1e-6 if name == "sgd" else 2e-2  # Adam hovers within ~lr of the mode
    torch.testing.assert_close(state.theta, target.mean.expand_as(theta), rtol=0, atol=tol)


# -- HMC specifics ------------------------------------------------------------------------------


def test_hmc_counts_leapfrog_gradients_and_caches_the_last(target, run_sampler):
    """L + 1 gradients on the first step (init has no potential), then L: the gradient at the
    end of a transition starts the next one, through adaptation and rejections alike."""
    for adapt_steps in (0, 3):
        _, infos = run_sampler(
            samplers.make("hmc", num_leapfrog=7, step_size=0.15, adapt_steps=adapt_steps),
            target.init(0, 8),
            target.potential(),
            steps=6,
        )
        assert [info.grad_evals for info in infos] == [8, 7, 7, 7, 7, 7]
        accept = torch.stack([info.accept_prob for info in infos])
        assert (accept < 0.5).any() and (accept > 0.5).any()  # both branches were taken


def reference_hmc(theta, potential, steps, seed, step_size, num_leapfrog, temperature):
    """HMC as it was written before the cache: every transition recomputes U and ∇U at its
    start (float64 theta, so its energies are float64 as the sampler's are)."""
    generator = torch.Generator().manual_seed(seed)
    path = []
    for _ in range(steps):
        momentum = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
        u0, grad = samplers.value_and_grad(potential, theta, None)
        h0 = u0 / temperature + 0.5 * (momentum * momentum).sum(dim=1)
        x, p = theta, momentum - 0.5 * step_size * grad / temperature
        for i in range(num_leapfrog):
            x = x + step_size * p
            u1, grad = samplers.value_and_grad(potential, x, None)
            p = p - (step_size if i < num_leapfrog - 1 else 0.5 * step_size) * grad / temperature
        h1 = u1 / temperature + 0.5 * (p * p).sum(dim=1)
        accept_prob = torch.exp(torch.clamp(h0 - h1, max=0.0))
        uniform = torch.rand(theta.shape[0], generator=generator, dtype=theta.dtype)
        theta = torch.where((uniform < accept_prob).unsqueeze(1), x, theta)
        path.append((theta, accept_prob, u0))
    return path


def test_hmc_with_the_cache_follows_the_recomputing_trajectory(target):
    theta = target.init(3, 6, dtype=torch.float64)
    hparams = dict(step_size=0.13, num_leapfrog=5, temperature=0.5)
    expected = reference_hmc(theta, target.potential(), steps=12, seed=7, **hparams)
    sampler, potential = samplers.make("hmc", **hparams), target.potential()  # one object: cached
    state, generator = sampler.init(theta), torch.Generator().manual_seed(7)
    for theta_ref, accept_ref, u0_ref in expected:
        state, info = sampler.step(state, potential, None, generator)
        assert torch.equal(state.theta, theta_ref)  # bitwise: the same arithmetic, cached
        assert torch.equal(info.accept_prob, accept_ref) and torch.equal(info.potential, u0_ref)
    accepts = torch.stack([a for _, a, _ in expected])
    assert ((accepts > 0.05) & (accepts < 0.95)).any()  # the test sees real rejections


def test_hmc_recomputes_when_the_potential_or_batch_changes(target):
    """The cache belongs to one potential object and one batch object: a new potential (another
    prior here), a new batch, or a theta changed from outside mean recomputing."""
    sampler = samplers.make("hmc", num_leapfrog=4, step_size=0.05)
    theta = target.init(2, 3, dtype=torch.float64)
    plain, tilted = target.potential(), target.potential(prior_precision=2.0)
    state, generator = sampler.init(theta), torch.Generator().manual_seed(0)
    state, info = sampler.step(state, plain, None, generator)
    assert info.grad_evals == 5
    before = state.theta
    state, info = sampler.step(state, plain, None, generator)
    assert info.grad_evals == 4
    torch.testing.assert_close(info.potential, plain(before, None), rtol=1e-14, atol=0)
    before = state.theta
    state, info = sampler.step(state, tilted, None, generator)  # a new potential: recomputed
    assert info.grad_evals == 5
    torch.testing.assert_close(info.potential, tilted(before, None), rtol=1e-14, atol=0)
    state, info = sampler.step(state, tilted, "another batch", generator)
    assert info.grad_evals == 5
    moved = dataclasses.replace(state, theta=state.theta + 0.1)  # theta changed from outside
    state, info = sampler.step(moved, tilted, "another batch", generator)
    assert info.grad_evals == 5
    torch.testing.assert_close(info.potential, tilted(moved.theta, None), rtol=1e-14, atol=0)
    same = dataclasses.replace(state, theta=state.theta.clone())  # same values: still valid
    _, info = sampler.step(same, tilted, "another batch", generator)
    assert info.grad_evals == 4


def test_hmc_accepts_almost_surely_with_a_tiny_step(target, run_sampler):
    _, infos = run_sampler(
        samplers.make("hmc", num_leapfrog=5, step_size=1e-4),
        target.init(0, 50, dtype=torch.float64),
        target.potential(),
        steps=5,
    )
    accept = torch.stack([i.accept_prob for i in infos])
    assert accept.min() > 0.999


class OffsetQuadratic:
    """U = 0.03 + ½‖theta‖²: a mean loss of ~0.03 around a quadratic mode, computed in theta's
    dtype (a float32 theta gives a float32 value, as a network's loss would)."""

    def __call__(self, theta, batch=None):
        return 0.03 + 0.5 * (theta * theta).sum(dim=1)


def test_hmc_metropolis_test_uses_float64_energies(run_sampler):
    """At tau = 1e-10 a float32 U ≈ 0.03 is resolved to 1.9e-9 (19 nats) and H = U/tau ≈ 3e8 to
    32 nats, so float32 energies give acceptance probabilities in {1, e^-32} and reject a quarter
    of these proposals outright. Their true energy error is small (eps·sqrt(1/tau) = 0.2): in
    float64 every acceptance is near 1, whether theta is float32 or float64."""
    tau, potential = 1e-10, OffsetQuadratic()
    draws = math.sqrt(tau) * torch.randn(100, 100, generator=torch.Generator().manual_seed(0))
    hparams = dict(step_size=2e-6, num_leapfrog=5, temperature=tau)
    means = []
    for dtype in (torch.float32, torch.float64):
        _, infos = run_sampler(
            samplers.make("hmc", **hparams), draws.to(dtype), potential, steps=20
        )
        accept = torch.stack([info.accept_prob for info in infos]).double()
        assert accept.min() > 0.5, float(accept.min())  # float32 energies: 1.3e-14 (= e^-32)
        means.append(float(accept.mean()))
    assert means[0] > 0.9 and abs(means[0] - means[1]) < 0.02, means  # float32 energies: 0.74


def test_hmc_rejects_a_huge_step_and_stays_put(target, run_sampler):
    theta = target.init(0, 20, dtype=torch.float64)
    state, infos = run_sampler(
        samplers.make("hmc", num_leapfrog=5, step_size=50.0), theta, target.potential(), steps=3
    )
    assert torch.equal(state.theta, theta)
    assert all((i.accept_prob < 1e-12).all() for i in infos)
    assert all(i.diverged.all() for i in infos)  # ΔH is astronomically > 1000


def test_hmc_dual_averaging_reaches_the_target_acceptance(run_sampler):
    """Dual averaging (Hoffman & Gelman 2014, Alg. 5) drives each chain's acceptance during
    warm-up to the target; on a Gaussian whose acceptance varies smoothly with the step, the
    frozen step keeps it there. It is per chain: half the chains run at tau = 0.01, where the
    same acceptance needs a step sqrt(0.01) = 0.1 times as large."""
    target = standard_gaussian(10)
    tau = torch.tensor([1.0] * 100 + [0.01] * 100, dtype=torch.float64)
    sampler = samplers.make(
        "hmc", step_size=1.0, num_leapfrog=8, temperature=tau, adapt_steps=300, target_accept=0.7
    )
    theta = target.init(0, 200, dtype=torch.float64) * tau.sqrt().unsqueeze(1)
    state, infos = run_sampler(sampler, theta, target.potential(), steps=500)
    assert [i.grad_evals for i in infos[:3]] == [9, 8, 8]  # the same count during warm-up
    accept = torch.stack([i.accept_prob for i in infos])  # (steps, chains)
    for group in (slice(0, 100), slice(100, 200)):
        # 100 chains: the sd of a mean acceptance over 150+ steps is about 0.01
        assert abs(float(accept[150:300, group].mean()) - 0.7) < 0.05
        # the averaged iterate (a mean of log steps) lands a little above the target: 0.73-0.75
        assert 0.65 < float(accept[300:, group].mean()) < 0.78
    ratio = state.step_size[100:].log().mean() - state.step_size[:100].log().mean()
    assert abs(float(ratio) - math.log(0.1)) < 0.15, float(ratio.exp())
    assert torch.equal(state.step_size, torch.exp(state.log_step_bar))  # frozen after warm-up
    frozen = state.step_size.clone()
    state, _ = sampler.step(state, target.potential(), None, torch.Generator().manual_seed(1))
    assert torch.equal(state.step_size, frozen)


# -- Riemannian Langevin specifics --------------------------------------------------------------


def test_riemannian_langevin_started_at_the_mode_stays_finite(target, run_sampler):
    """At the mode ∇U = 0 exactly: the metric has no scale to learn from yet, so the first step
    must be an ordinary SGLD step (P = 1), not a jump of sqrt(2·h·tau/eps)."""
    theta = target.mean.expand(100, 2).to(torch.float32).clone()
    sampler = samplers.make("riemannian_langevin", step_size=1e-3, temperature=1.0)
    state, infos = run_sampler(sampler, theta, target.potential(), steps=1)
    assert torch.isfinite(state.theta).all() and not infos[0].diverged.any()
    assert not state.started.any()  # no gradient seen yet: the metric is still the identity
    # the first move has the scale sqrt(2·h·tau) of SGLD: 6 sd covers all 200 coordinates
    assert float((state.theta - theta).abs().max()) < 6 * math.sqrt(2e-3)
    state, infos = run_sampler(sampler, theta, target.potential(), steps=2000)
    assert torch.isfinite(state.theta).all() and state.started.all()
    assert not torch.stack([i.diverged for i in infos]).any()
    spread = (state.theta.double() - target.mean).norm(dim=1).median()
    assert float(spread) < 3.0  # back at the scale of the target (sd ≤ 1), not blown up


class Linear:
    """U = gᵀtheta: the same gradient ``g`` everywhere."""

    def __init__(self, *g):
        self.g = torch.tensor(g, dtype=torch.float64)

    def __call__(self, theta, batch=None):
        return theta @ self.g.to(theta.dtype)


@pytest.mark.parametrize("eps", [1e-4, 1e-12])
def test_riemannian_langevin_metric_has_the_gradient_scale_from_the_first_step(eps, run_sampler):
    """Gradients of 1e-7 (a memorised network): P = 1/(eps + sqrt(V)) is at their scale at the
    very first step, V_1 = alpha·mean(g²) + (1 - alpha)·g², not the identity for hundreds of
    steps; the coordinate whose gradient is zero gets the chain's mean scale, not 1/eps."""
    alpha, g = 0.99, (1e-7, 0.0)
    sampler = samplers.make("riemannian_langevin", temperature=0.0, eps=eps, freeze_after=1)
    theta = torch.zeros(3, 2, dtype=torch.float64)
    state, _ = run_sampler(sampler, theta, Linear(*g), steps=1)
    mean_square = (1e-7**2 + 0.0) / 2
    v = torch.tensor(
        [alpha * mean_square + (1 - alpha) * 1e-7**2, alpha * mean_square], dtype=torch.float64
    )
    expected = 1.0 / (eps + v.sqrt())
    torch.testing.assert_close(state.precond, expected.expand(3, 2), rtol=1e-12, atol=0)
    assert float(state.precond[0, 0]) > 0.5 / (eps + 1e-7)  # V_0 = 1 gave P ≈ 1 here
    # at tau = 0 the step is -h·P·g exactly: about -h when eps << 1e-7
    step = state.theta - theta
    torch.testing.assert_close(step[:, 0], -1e-3 * 1e-7 * expected[0].expand(3), rtol=1e-12, atol=0)
    assert torch.equal(step[:, 1], torch.zeros(3, dtype=torch.float64))


def test_riemannian_langevin_freezes_its_metric(target, run_sampler):
    sampler = samplers.make("riemannian_langevin", step_size=1e-3, temperature=1.0, freeze_after=5)
    state, _ = run_sampler(sampler, target.init(0, 3), target.potential(), steps=5)
    frozen = state.precond.clone()
    state, _ = run_sampler(sampler, target.init(0, 3), target.potential(), steps=20)
    torch.testing.assert_close(state.precond, frozen)


def test_riemannian_langevin_freezes_by_default_because_adapting_is_biased(target, run_sampler):
    """Adapting for ever (Γ dropped) biases the law: at alpha = 0.9, h = 1e-2, tau = 1 the
    covariance drifts to 44% above tau·Sigma (29% within the 500 steps here), far beyond the
    computed O(h) bias of the same metric frozen (0.1%). So by
    default the metric freezes after its warm-up (``FREEZE_AFTER`` steps), and the chain then
    samples exactly the law of its frozen metric (the stationary tests below, with defaults)."""
    default = samplers.make("riemannian_langevin", step_size=1e-2, temperature=1.0)
    state, _ = run_sampler(default, target.init(0, 2), target.potential(), steps=FREEZE_AFTER - 1)
    assert state.precond is None
    state, _ = run_sampler(default, target.init(0, 2), target.potential(), steps=FREEZE_AFTER)
    assert state.precond is not None  # the old default (None) adapted for ever

    tau, chains, steps = 1.0, 2000, 500
    sampler = samplers.make(
        "riemannian_langevin", step_size=1e-2, temperature=tau, alpha=0.9, freeze_after=None
    )
    theta = exact_draws(target, tau, chains, seed=3)
    state, _ = run_sampler(sampler, theta, target.potential(), steps=steps, seed=4)
    # the law this chain would have with its current metric frozen, O(h) bias included
    precond = 1.0 / (sampler.eps + state.square_avg.sqrt())
    m, q = linear_chain("riemannian_langevin", sampler, target, tau, precond)
    frozen = propagate(m, q, initial_cov(target, tau, m.shape[-1]), steps).mean(axis=0)
    cov = target.moments(tau)[1].numpy()
    sample_cov = np.cov(state.theta.numpy().T)
    se = cov_se(frozen, chains)
    excess = (np.diag(sample_cov) - np.diag(frozen)) / np.diag(se)
    assert np.all(excess > Z), excess  # measured: +9.1 and +9.4 standard errors
    assert np.all(np.diag(sample_cov) / np.diag(cov) > 1.15)


# -- stationary moments on an ill-conditioned Gaussian (known answers) ---------------------------

# Step sizes: the Langevin samplers use a small step, where their law is biased by a known O(h)
# amount; HMC uses a step whose acceptance is near 0.6 and must still be exact. Riemannian
# Langevin runs with its defaults (alpha, eps, and the metric frozen after FREEZE_AFTER steps).
# name -> (hyperparameters, steps of the slow test from (3, 3), steps of the fast test)
STATIONARY = {
    "sgld": (dict(step_size=2e-3), 4000, 300),
    "sghmc": (dict(step_size=2e-3, friction=0.1), 4000, 300),
    "riemannian_langevin": (dict(step_size=1e-2), 4000, 300),  # + FREEZE_AFTER warm-up (fast)
    "hmc": (dict(step_size=0.17, num_leapfrog=10), 250, 60),  # step scaled by sqrt(tau) below
}
# Final states of independent chains are i.i.d. draws: CHAINS of them give the standard errors.
# Chains are cheap on a 2-D target, steps are not, so the fast tests keep every chain (and the
# power of the full tests) and cut the steps: their chains start at exact draws from tau·Sigma,
# and the law after k steps of a linear chain is computed exactly, not assumed stationary.
CHAINS = 4000


def exact_draws(target, tau, chains, seed):
    """``(chains, 2)`` float64 draws from N(mean, tau·Sigma)."""
    mean, cov = target.moments(tau)
    z = torch.randn(chains, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return mean + z @ torch.linalg.cholesky(cov).T


def linear_chain(name, sampler, target, tau, precond=None):
    """The update on U = ½ (x - mu)ᵀA(x - mu) as a linear chain z' = M z + noise(Q), z = x - mu
    (SGHMC: z = (x - mu, v)): ``(M, Q)`` as ``(n, d, d)`` stacks, one per chain for Riemannian
    Langevin (each chain has its own diagonal metric ``precond``, ``(C, 2)``), else n = 1."""
    a = target.precision.numpy()
    eye = np.eye(2)
    h = sampler.step_size
    if name == "sgld":
        m, q = eye - h * a, 2 * h * tau * eye
    elif name == "sghmc":
        al = sampler.friction
        m = np.block([[eye - h * a, (1 - al) * eye], [-h * a, (1 - al) * eye]])
        q = np.kron(2 * al * h * tau * np.ones((2, 2)), eye)  # x and v get the same noise
    elif name == "riemannian_langevin":
        p = precond.double().numpy()[:, :, None]  # diag(P) as row scales
        return eye - h * p * a, 2 * h * tau * p * eye
    else:
        raise ValueError(f"{name} is not a linear chain")
    return m[None], q[None]


def propagate(m, q, c0, steps):
    """The covariance after ``steps`` updates from ``c0``: C <- M C Mᵀ + Q (per chain)."""
    c = np.broadcast_to(c0, m.shape)
    mt = np.swapaxes(m, -1, -2)
    for _ in range(steps):
        c = m @ c @ mt + q
    return c[:, :2, :2]


def stationary(m, q):
    """The stationary covariance S = M S Mᵀ + Q of the discretised chain (a discrete Lyapunov
    equation, solved per chain): the gap between S and tau·Sigma is the integrator's O(h) bias."""
    d = m.shape[-1]
    kron = np.einsum("nij,nkl->nikjl", m, m).reshape(-1, d * d, d * d)
    vec = np.linalg.solve(np.eye(d * d) - kron, q.reshape(-1, d * d, 1))
    return vec.reshape(-1, d, d)[:, :2, :2]


def initial_cov(target, tau, d):
    """Exact draws from tau·Sigma (and, for SGHMC, a velocity of 0)."""
    c0 = np.zeros((d, d))
    c0[:2, :2] = target.moments(tau)[1].numpy()
    return c0


def cov_se(cov, n):
    """Standard error of each entry of a sample covariance of n Gaussian draws."""
    var = np.diag(cov)
    return np.sqrt((np.outer(var, var) + cov**2) / n)


def make_stationary(name, tau):
    hparams = dict(STATIONARY[name][0], temperature=tau)
    if name == "hmc":
        hparams["step_size"] = hparams["step_size"] * math.sqrt(tau)
    return samplers.make(name, **hparams)


def run_fast(name, tau, target):
    """The fast run: CHAINS chains from exact draws, the fast number of steps; returns the final
    state, the infos, and the exact covariance after those steps (tau·Sigma for HMC, which leaves
    it invariant) and at stationarity. Cached: the spread test reads the same runs."""
    key = (name, tau)
    if key not in _FAST_RUNS:
        sampler, steps = make_stationary(name, tau), STATIONARY[name][2]
        # seeds of their own per temperature: with shared ones a linear chain's run at tau = 0.1
        # would be the run at tau = 1 scaled by sqrt(0.1), and tell nothing new
        seed = 100 + round(10 * tau)
        potential, generator = target.potential(), torch.Generator().manual_seed(seed)
        state = sampler.init(exact_draws(target, tau, CHAINS, seed=seed + 100))
        if name == "riemannian_langevin":
            # the default warm-up adapts the metric, which then freezes; fresh exact draws after
            # it make the law of the frozen chain known exactly, whatever the warm-up did
            for _ in range(FREEZE_AFTER):
                state, _ = sampler.step(state, potential, None, generator)
            assert state.precond is not None, "the default metric freezes after its warm-up"
            fresh = exact_draws(target, tau, CHAINS, seed=seed + 200)
            state = dataclasses.replace(state, theta=fresh)
        infos = []
        for _ in range(steps):
            state, info = sampler.step(state, potential, None, generator)
            infos.append(info)
        cov = target.moments(tau)[1].numpy()
        if name == "hmc":
            expected = exact = cov
        else:
            m, q = linear_chain(name, sampler, target, tau, getattr(state, "precond", None))
            expected = propagate(m, q, initial_cov(target, tau, m.shape[-1]), steps).mean(axis=0)
            exact = stationary(m, q).mean(axis=0)  # a mixture over chains: the mean covariance
        _FAST_RUNS[key] = (state, infos, expected, exact)
    return _FAST_RUNS[key]


_FAST_RUNS: dict = {}


def check_moments(name, tau, target, x, expected, exact, infos):
    """Mean and covariance of the final states ``x`` against the law ``expected`` they were
    drawn from (Z standard errors), and against tau·Sigma, allowing the computed gap."""
    mean, cov = (v.numpy() for v in target.moments(tau))
    n = x.shape[0]
    assert np.all(np.abs(x.mean(0) - mean) < Z * np.sqrt(np.diag(expected) / n))
    sample_cov = np.cov(x.T)
    se = cov_se(expected, n)
    assert np.all(np.abs(sample_cov - expected) < Z * se), "vs the discretised chain's law"
    gap = np.abs(expected - cov)  # the integrator's known O(h) bias so far (0 for HMC)
    assert np.all(np.abs(sample_cov - cov) < Z * se + gap), "vs tau·Sigma"
    if name == "hmc":
        accept = float(torch.stack([i.accept_prob for i in infos[len(infos) // 5 :]]).mean())
        assert 0.45 < accept < 0.75, accept
    else:
        bias = np.abs(exact - cov)  # at stationarity
        assert np.all(bias < 0.15 * np.abs(cov).max()), "the step is small enough to be sampling"


@pytest.mark.parametrize("tau", [1.0, 0.1])
@pytest.mark.parametrize("name", sorted(STATIONARY))
def test_moments_match_tau_sigma(name, tau, target):
    """Fast: from exact draws of tau·Sigma, the law after the fast number of steps (computed
    exactly for the linear chains, tau·Sigma itself for HMC) is what the chains hold."""
    state, infos, expected, exact = run_fast(name, tau, target)
    check_moments(name, tau, target, state.theta.numpy(), expected, exact, infos)


@pytest.mark.slow
@pytest.mark.parametrize("tau", [1.0, 0.1])
@pytest.mark.parametrize("name", sorted(STATIONARY))
def test_stationary_moments_match_tau_sigma(name, tau, target, run_sampler):
    """Slow: every chain starts far from the mass, at (3, 3): convergence has to be earned."""
    sampler = make_stationary(name, tau)
    theta = torch.full((CHAINS, 2), 3.0, dtype=torch.float64)
    state, infos = run_sampler(
        sampler, theta, target.potential(), steps=STATIONARY[name][1], seed=100
    )
    if name == "hmc":
        exact = target.moments(tau)[1].numpy()
    else:
        m, q = linear_chain(name, sampler, target, tau, getattr(state, "precond", None))
        exact = stationary(m, q).mean(axis=0)
    check_moments(name, tau, target, state.theta.numpy(), exact, exact, infos)


def long_axis_sd(theta):
    return float((theta @ torch.tensor([1.0, 1.0], dtype=torch.float64)).std() / math.sqrt(2))


def expected_long_axis_sd(cov):
    u = np.array([1.0, 1.0]) / math.sqrt(2)
    return math.sqrt(u @ cov @ u)


def check_spread(sds, expected_sds, n):
    """sd at tau = 0.1 over sd at tau = 1 against its computed value (sqrt(0.1) for an exact
    sampler): the sd of a sample sd is sd/sqrt(2n), the ratio's relative error adds the two in
    quadrature."""
    ratio, expected = sds[1] / sds[0], expected_sds[1] / expected_sds[0]
    se = expected * math.sqrt(2 / (2 * n))
    assert abs(ratio - expected) < Z * se, (ratio, expected)
    assert abs(expected - math.sqrt(0.1)) < 0.03 * math.sqrt(0.1)  # the O(h) part is small


@pytest.mark.parametrize("name", sorted(STATIONARY))
def test_spread_scales_as_sqrt_temperature_fast(name, target):
    """Fast: sd along the long axis at tau = 0.1 over tau = 1, from the fast runs."""
    runs = [run_fast(name, tau, target) for tau in (1.0, 0.1)]
    sds = [long_axis_sd(state.theta) for state, *_ in runs]
    check_spread(sds, [expected_long_axis_sd(expected) for _, _, expected, _ in runs], CHAINS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STATIONARY))
def test_spread_scales_as_sqrt_temperature(name, target, run_sampler):
    """sd at tau = 0.1 over sd at tau = 1 is sqrt(0.1) (up to the computed O(h) bias), along the
    long axis of the Gaussian, from (3, 3)."""
    sds, expected = [], []
    for tau in (1.0, 0.1):
        sampler = make_stationary(name, tau)
        theta = torch.full((CHAINS, 2), 3.0, dtype=torch.float64)
        state, _ = run_sampler(
            sampler, theta, target.potential(), steps=STATIONARY[name][1], seed=5
        )
        sds.append(long_axis_sd(state.theta))
        if name == "hmc":
            cov = target.moments(tau)[1].numpy()
        else:
            m, q = linear_chain(name, sampler, target, tau, getattr(state, "precond", None))
            cov = stationary(m, q).mean(axis=0)
        expected.append(expected_long_axis_sd(cov))
    check_spread(sds, expected, CHAINS)
