"""The peers (BlackJAX's and Pyro's samplers) against ours: same contract, same stationary laws.

Statistical tolerances follow tests/test_samplers.py: final states of many independent chains are
i.i.d. draws, so for a law with covariance S the standard error of a mean entry is
sqrt(S_ii / n) and of a covariance entry sqrt((S_ii S_jj + S_ij²) / n); every check allows
Z = 4.5 standard errors, and the trajectories are seeded, so a pass or a failure is reproducible.
Where a peer's discretisation has a known bias, the expected law is the exact stationary law of
its linear chain on the Gaussian (a discrete Lyapunov equation), derived in the test.

Most chains start at exact draws from the target, so the statistical tests measure whether a
kernel *keeps* the law (invariance) or moves it to where the analysis says it goes; a few slow
tests (``-m slow``) start far away and earn convergence.
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
from samplers import PotentialError
from samplers.peers import PEERS, is_peer
from tasks.toy import correlated_gaussian, mildly_correlated_gaussian, standard_gaussian

Z = 4.5
PEER_NAMES = [entry.name for entry in PEERS]
BLACKJAX = [n for n in PEER_NAMES if n.startswith("blackjax.")]
PYRO = [n for n in PEER_NAMES if n.startswith("pyro.")]
POSTERIORS = [n for n in PEER_NAMES if n.startswith("posteriors.")]
LIGHT_TASK = "add_mod31_mlp"  # the light CPU grokking task with the embedding MLP


def make(name, **changes):
    """Peer ``name`` at its toy example (``samplers.peers.EXAMPLES``), with ``changes``."""
    return samplers.make(name, **{**samplers.example(name).hparams, **changes})


def exact_draws(mean, cov, n, seed):
    """n i.i.d. draws of N(mean, cov) as float32 (C, D): the chains start in the law."""
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(np.asarray(mean), np.asarray(cov), size=n)
    return torch.from_numpy(x).to(torch.float32)


def check_moments(x, mean, cov, bias=0.0, what=""):
    """Sample mean and covariance of ``x`` (n, D) against ``(mean, cov)`` within Z standard
    errors (plus a known ``bias`` allowance on the covariance)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    var = np.diag(cov)
    se_mean = np.sqrt(var / n)
    se_cov = np.sqrt((np.outer(var, var) + cov**2) / n)
    assert np.all(np.abs(x.mean(0) - mean) < Z * se_mean), (what, x.mean(0), mean)
    sample_cov = np.cov(x.T)
    assert np.all(np.abs(sample_cov - cov) < Z * se_cov + bias), (what, sample_cov, cov)
    return sample_cov, se_cov


# -- the registry --------------------------------------------------------------------------------


def test_peers_are_registered_with_a_prefix_and_marked():
    assert set(PEER_NAMES) == {
        "blackjax.sgld",
        "blackjax.sghmc",
        "blackjax.hmc",
        "blackjax.nuts",
        "pyro.hmc",
        "pyro.nuts",
        "posteriors.sgld",
        "posteriors.sghmc",
    }
    assert set(samplers.names("blackjax.*")) == set(BLACKJAX)
    assert set(samplers.names("posteriors.*")) == set(POSTERIORS)
    for name in PEER_NAMES:
        entry = samplers.lookup(name)
        assert is_peer(entry) and entry.peer == name.split(".")[0]
        sampler = samplers.make(name)
        assert is_peer(sampler) and sampler.name == name and sampler.peer == entry.peer
        assert sampler.metropolis == entry.metropolis and dict(sampler.params) == dict(entry.params)
    for name in ("sgld", "sghmc", "hmc"):
        assert not is_peer(samplers.lookup(name))
    assert (
        samplers.lookup("pyro.nuts").metropolis and not samplers.lookup("blackjax.sgld").metropolis
    )


def test_importing_samplers_imports_neither_jax_nor_pyro():
    code = (
        "import sys, samplers; names = samplers.names(); "
        "assert 'blackjax.sgld' in names and 'pyro.nuts' in names; "
        "assert 'posteriors.sghmc' in names; "
        "samplers.lookup('blackjax.hmc').params; "
        "print(sorted(m for m in ('jax', 'blackjax', 'pyro', 'posteriors') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bench_list_marks_the_peers(capsys):
    from bench.__main__ import main

    assert main(["list", "gaussian_*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.strip().startswith("blackjax.sghmc"))
    assert "peer:blackjax" in row and "does not temper" in row
    assert any(line.strip().startswith("pyro.nuts") and "peer:pyro" in line for line in lines)
    ours = next(line for line in lines if line.strip().startswith("sgld "))
    assert "peer" not in ours


def test_peer_hyperparameters_are_validated_like_ours():
    with pytest.raises(samplers.HyperparameterError, match="step_size must be > 0"):
        samplers.make("blackjax.sgld", step_size=-1.0)
    with pytest.raises(samplers.HyperparameterError, match="unknown hyperparameter"):
        samplers.make("pyro.nuts", num_leapfrog=3)
    with pytest.raises(samplers.HyperparameterError, match="temperature must be > 0"):
        samplers.make("blackjax.hmc", temperature=0.0)


# -- the contract, for every peer ----------------------------------------------------------------


@pytest.mark.parametrize("name", BLACKJAX)
def test_blackjax_refuses_a_potential_without_a_jax_port(name, target):
    sampler = make(name)
    state = sampler.init(target.init(0, 2))
    plain = lambda theta, batch: target.potential()(theta, batch)  # noqa: E731
    with pytest.raises(PotentialError, match="JAX port"):
        sampler.step(state, plain, None, torch.Generator())


@pytest.mark.parametrize("name", PYRO)
def test_pyro_refuses_a_potential_of_the_wrong_shape(name, target):
    sampler = make(name)
    state = sampler.init(target.init(0, 3))
    summed = lambda theta, batch: target.potential()(theta, batch).sum()  # noqa: E731
    with pytest.raises(PotentialError, match="one value per chain"):
        sampler.step(state, summed, None, torch.Generator())


class NaNAtRow:
    """The Gaussian potential, but NaN (value and gradient) at one given point: Pyro evaluates
    one chain's row at a time, so the poison is keyed on the row's value, not its index."""

    def __init__(self, base, bad):
        self.base, self.bad = base, bad.clone()

    def __call__(self, theta, batch):
        value = self.base(theta, batch)
        if (theta.detach() == self.bad).all(dim=1).any():  # a branch, not torch.where: the
            return value * math.nan  # latter leaks 0·NaN = NaN into the other rows' gradients
        return value


@pytest.mark.parametrize("name", PYRO)
def test_pyro_contains_a_non_finite_chain_and_leaves_the_global_rng_alone(
    name, target, run_sampler
):
    """Chain 0 starts where U is NaN: it is flagged and stands still; chain 1 moves on exactly as
    in a clean run; torch's global generator, which Pyro draws from, is left as it was."""
    base = target.potential()
    theta = target.init(4, 2)
    rng_before = torch.get_rng_state()
    state, infos = run_sampler(make(name), theta, NaNAtRow(base, theta[0]), steps=3)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(bool(info.diverged[0]) and not bool(info.diverged[1]) for info in infos)
    assert torch.equal(state.theta[0], theta[0])
    assert not torch.equal(state.theta[1], theta[1]) and torch.isfinite(state.theta).all()
    clean, _ = run_sampler(make(name), theta, base, steps=3)
    torch.testing.assert_close(state.theta[1], clean.theta[1])


@pytest.mark.parametrize("name", ["blackjax.sgld", "blackjax.hmc"])
def test_blackjax_contains_a_non_finite_chain(name, light_task, run_sampler):
    """Chain 0's prior precision is so large (1e38) that its U overflows to inf in float32 (a
    NaN precision is refused by the task): it is flagged and stands still while chain 1 moves
    exactly as it does in a clean run."""
    theta = light_task.init(0, 2)
    hparams = dict(step_size=1e-3, temperature=1e-3)
    if name == "blackjax.hmc":
        hparams = dict(step_size=1e-3, num_leapfrog=3, temperature=1e-2)
    poisoned = light_task.potential(prior_precision=torch.tensor([1e38, 0.1]))
    clean = light_task.potential(prior_precision=torch.tensor([0.1, 0.1]))
    state, infos = run_sampler(samplers.make(name, **hparams), theta, poisoned, steps=3)
    reference, _ = run_sampler(samplers.make(name, **hparams), theta, clean, steps=3)
    assert all(bool(i.diverged[0]) and not bool(i.diverged[1]) for i in infos)
    assert torch.equal(state.theta[0], theta[0])
    assert not torch.equal(state.theta[1], theta[1])
    torch.testing.assert_close(state.theta[1], reference.theta[1])


# -- the JAX port of the potentials --------------------------------------------------------------


@pytest.mark.parametrize(
    "task_name, overrides",
    [
        (LIGHT_TASK, {}),
        ("add_mod31_quadratic", {}),
        pytest.param(
            "sub_mod31_transformer",
            dict(d_model=32, n_heads=4, d_mlp=64),
            marks=pytest.mark.slow,  # XLA takes ~10 s to compile it on two cores
        ),
        ("add_mod31_mlp", dict(loss="mse", width=64)),
    ],
)
def test_jax_port_gives_the_same_full_batch_gradient(task_name, overrides):
    """U and ∇U of the JAX port equal the torch potential's at the task's initial weights, on the
    full training batch, to float32 precision (a few ulps of the largest entry)."""
    import jax

    from samplers.base import value_and_grad
    from samplers.peers.jax_tasks import port, to_jax

    task = tasks.make(task_name, **overrides)
    theta = task.init(0, 2)
    potential = task.potential(prior_precision=torch.tensor([0.0, 0.3]))
    u, g = value_and_grad(potential, theta, None)

    jp = port(potential)
    value_and_gradient = jax.vmap(jax.value_and_grad(jp.value), in_axes=(0, None, 0))
    uj, gj = value_and_gradient(to_jax(theta), jp.data(None), jp.prior_precision(2))
    uj, gj = torch.from_dlpack(uj), torch.from_dlpack(gj)

    ulp = torch.finfo(torch.float32).eps
    for c in range(2):
        assert abs(float(u[c] - uj[c])) <= 8 * ulp * abs(float(u[c])), (c, u, uj)
        scale = float(g[c].abs().max())
        assert float((g[c] - gj[c]).abs().max()) <= 16 * ulp * scale, c
    # and the data are the task's: the same training pairs, in the same order
    x, y = jp.data(None)
    assert torch.equal(torch.from_dlpack(x).long(), task.train[0])
    assert torch.equal(torch.from_dlpack(y).long(), task.train[1])


def test_blackjax_sgld_at_zero_temperature_is_our_sgld_on_the_light_task(light_task, run_sampler):
    """tau = 0 removes the noise: the drift mapping (log p = -U, eps = h) alone must reproduce
    our trajectory on the grokking task, to float32 rounding."""
    theta = light_task.init(0, 2)
    potential = light_task.potential(prior_precision=1e-3)
    ours, _ = run_sampler(
        samplers.make("sgld", step_size=0.5, temperature=0.0), theta, potential, 20
    )
    peer, infos = run_sampler(
        samplers.make("blackjax.sgld", step_size=0.5, temperature=0.0), theta, potential, 20
    )
    torch.testing.assert_close(peer.theta, ours.theta, rtol=1e-4, atol=1e-5)
    assert float(infos[-1].potential.max()) < float(infos[0].potential.min())  # it descended


# -- stationary laws on Gaussians ----------------------------------------------------------------

CHAINS = 4000


def sgld_stationary_cov(precision, h, tau):
    """S = (I - hA) S (I - hA)ᵀ + 2hτI: the exact law of the SGLD chain on U = ½xᵀAx (the same
    for ours and BlackJAX's, which are the same chain)."""
    eye = np.eye(precision.shape[0])
    return scipy.linalg.solve_discrete_lyapunov(eye - h * precision, 2 * h * tau * eye)


@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_sgld_ours_and_blackjax_share_the_stationary_law(tau, target, one_thread, run_sampler):
    h = 2e-3
    mean, cov = (m.numpy() for m in target.moments(tau))
    exact = sgld_stationary_cov(target.precision.numpy(), h, tau)
    theta = exact_draws(mean, exact, CHAINS, seed=1)
    covs = {}
    for name in ("sgld", "blackjax.sgld"):
        state, _ = run_sampler(
            samplers.make(name, step_size=h, temperature=tau), theta, target.potential(), 1000, 7
        )
        covs[name], se = check_moments(state.theta, mean, exact, what=name)
        check_moments(state.theta, mean, cov, bias=np.abs(exact - cov), what=f"{name} vs tau·Sigma")
    assert np.all(np.abs(covs["sgld"] - covs["blackjax.sgld"]) < Z * math.sqrt(2) * se)


def sghmc_stationary_cov(precision, h, alpha, tau):
    """Our SGHMC (momentum first, then position) on U = ½xᵀAx: z = (x, v)."""
    d = precision.shape[0]
    eye = np.eye(d)
    m = np.block([[eye - h * precision, (1 - alpha) * eye], [-h * precision, (1 - alpha) * eye]])
    q = np.kron(2 * alpha * h * tau * np.ones((2, 2)), eye)
    return scipy.linalg.solve_discrete_lyapunov(m, q)[:d, :d]


def blackjax_sghmc_stationary_cov(precision, h, alpha, tau, k):
    """The exact law of BlackJAX's SGHMC call on U = ½xᵀAx, in our parameters.

    With eps = sqrt(h) and a = alpha/eps, an inner step maps z = (x, r) to M z + B ξ with
    M = [[I, eps·I], [-eps·A, (1 - a·eps)·I]] (the position moves with the old momentum, the
    momentum sees the gradient at the old position) and B = [0; sqrt(2·a·eps·tau)·I]. A call
    draws r ~ N(0, I) and runs K inner steps: x' = F x + G r + w, with F and G the blocks of
    M^K and w ~ N(0, Q_xx), Q = Σ_j M^j B Bᵀ M^jᵀ. So S = F S Fᵀ + G Gᵀ + Q_xx. At tau = 1 the
    redraw has the chain's own kinetic temperature and S ≈ Sigma; at tau < 1 the G Gᵀ term,
    temperature 1, heats the chain: S is far above tau·Sigma.
    """
    d = precision.shape[0]
    eye = np.eye(d)
    eps = math.sqrt(h)
    a = alpha / eps
    m = np.block([[eye, eps * eye], [-eps * precision, (1 - a * eps) * eye]])
    b = np.vstack([np.zeros((d, d)), math.sqrt(2 * a * eps * tau) * eye])
    q = np.zeros((2 * d, 2 * d))
    power = np.eye(2 * d)
    for _ in range(k):
        q += power @ b @ b.T @ power.T
        power = m @ power
    f, g = power[:d, :d], power[:d, d:]
    assert max(abs(np.linalg.eigvals(f))) < 1, "this setting is unstable for BlackJAX's ordering"
    return scipy.linalg.solve_discrete_lyapunov(f, g @ g.T + q[:d, :d])


@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_blackjax_sghmc_does_not_temper_while_ours_does(tau, one_thread, run_sampler):
    """On a Gaussian both chains go exactly where the analysis says. At tau = 1 both sample
    Sigma (up to their O(h) biases); at tau = 0.1 ours samples tau·Sigma while BlackJAX's,
    whose momentum is redrawn at temperature 1 every call, sits at the predicted law, tens of
    standard errors above tau·Sigma."""
    target = mildly_correlated_gaussian()
    h, alpha, k = 1e-2, 0.1, 10
    a = target.precision.numpy()
    mean, cov = (m.numpy() for m in target.moments(tau))

    ours_law = sghmc_stationary_cov(a, h, alpha, tau)
    theta = exact_draws(mean, ours_law, CHAINS, seed=2)
    ours, _ = run_sampler(
        samplers.make("sghmc", step_size=h, friction=alpha, temperature=tau),
        theta,
        target.potential(),
        steps=1500,
        seed=3,
    )
    check_moments(ours.theta, mean, ours_law, what="ours vs its law")
    check_moments(ours.theta, mean, cov, bias=np.abs(ours_law - cov), what="ours vs tau·Sigma")

    peer_law = blackjax_sghmc_stationary_cov(a, h, alpha, tau, k)
    peer, infos = run_sampler(
        samplers.make(
            "blackjax.sghmc", step_size=h, friction=alpha, temperature=tau, num_integration_steps=k
        ),
        theta,
        target.potential(),
        steps=150,  # × K = 1500 gradient steps, as ours
        seed=3,
    )
    assert infos[0].grad_evals == k
    sample_cov, se = check_moments(peer.theta, mean, peer_law, what="blackjax vs its law")
    if tau == 1.0:
        check_moments(peer.theta, mean, cov, bias=np.abs(peer_law - cov), what="blackjax, tau=1")
    else:
        assert np.all(peer_law > 4 * cov), "the analysis: the redraw heats the chain"
        assert np.all(np.diag(sample_cov - cov) > 10 * np.diag(se)), "and so it does"


def test_blackjax_sghmc_ordering_is_unstable_where_ours_is_not(target, one_thread, run_sampler):
    """alpha < h·lambda_max: the explicit ordering (move with the old momentum) blows up on the
    ill-conditioned Gaussian; ours, momentum first, samples it."""
    h, alpha = 1e-2, 0.1  # lambda_max = 100, so h·lambda_max = 1 > alpha
    theta = target.init(0, 20)
    peer, infos = run_sampler(
        samplers.make("blackjax.sghmc", step_size=h, friction=alpha, temperature=1.0),
        theta,
        target.potential(),
        steps=100,
    )
    assert any(bool(i.diverged.all()) for i in infos)
    ours, infos = run_sampler(
        samplers.make("sghmc", step_size=h, friction=alpha, temperature=1.0),
        theta,
        target.potential(),
        steps=1000,
    )
    assert not any(bool(i.diverged.any()) for i in infos)
    assert float(ours.theta.double().sub(target.mean).norm(dim=1).max()) < 10


@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_hmc_ours_and_peers_keep_tau_sigma(tau, target, one_thread, run_sampler):
    """Metropolis-corrected samplers are exact: started in N(mu, tau·Sigma), every one of them
    stays there (BlackJAX's HMC and NUTS with many chains, Pyro's with fewer: one kernel per
    chain in Python)."""
    mean, cov = (m.numpy() for m in target.moments(tau))
    eps = 0.17 * math.sqrt(tau)
    runs = {
        "hmc": (dict(step_size=eps, num_leapfrog=10, temperature=tau), CHAINS, 30),
        "blackjax.hmc": (dict(step_size=eps, num_leapfrog=10, temperature=tau), CHAINS, 30),
        "blackjax.nuts": (dict(step_size=eps, temperature=tau, max_num_doublings=6), 1000, 10),
        "pyro.hmc": (dict(step_size=eps, num_leapfrog=10, temperature=tau), 60, 4),
        "pyro.nuts": (dict(step_size=eps, temperature=tau, max_tree_depth=6), 40, 3),
    }
    for name, (hparams, chains, steps) in runs.items():
        theta = exact_draws(mean, cov, chains, seed=3)
        state, infos = run_sampler(
            samplers.make(name, **hparams), theta, target.potential(), steps, 9
        )
        check_moments(state.theta, mean, cov, what=name)
        accept = float(torch.stack([i.accept_prob for i in infos]).mean())
        assert 0.3 < accept <= 1.0, (name, accept)
        # the chains moved: a kernel that rejects everything would also keep the law
        moved = (state.theta != theta).any(dim=1).float().mean()
        assert float(moved) > 0.5, name


def test_blackjax_window_adaptation_driven_stepwise_equals_its_run():
    """The wrapper advances BlackJAX's Stan window adaptation one transition per step; with the
    same keys it ends at the step size and mass matrix of ``blackjax.window_adaptation.run``."""
    import blackjax
    import jax
    import jax.numpy as jnp

    from samplers.peers.blackjax_backend import (
        _schedule,
        hmc_family_functions,
        window_adaptation_fns,
    )

    target = correlated_gaussian(condition=10.0)
    potential = target.potential()
    n, eps0, steps = 150, 0.5, 5
    jp, fns = hmc_family_functions(potential, "hmc", (steps,), 0.8)
    data, lam, tau = jp.data(None), jnp.float32(0.0), jnp.float32(1.0)
    position = jnp.asarray([2.0, -1.0], jnp.float32)
    key = jax.random.key(42)

    warmup = blackjax.window_adaptation(
        blackjax.hmc,
        fns["logdensity"](data, lam, tau),
        initial_step_size=eps0,
        target_acceptance_rate=0.8,
        num_integration_steps=steps,
    )
    (last, parameters), _ = warmup.run(key, position, num_steps=n)

    adapt_init, _, adapt_final = window_adaptation_fns(0.8)
    state = fns["init_one"](position, data, lam, tau)
    adaptation = adapt_init(position, eps0)
    transition = jax.jit(fns["adapt_transition"])
    for subkey, stage in zip(jax.random.split(key, n), _schedule(n), strict=True):
        state, _, adaptation = transition(subkey, state, adaptation, stage, data, lam, tau)
    step_size, imm = adapt_final(adaptation)
    np.testing.assert_allclose(float(step_size), float(parameters["step_size"]), rtol=1e-5)
    np.testing.assert_allclose(imm, parameters["inverse_mass_matrix"], rtol=1e-5)
    np.testing.assert_allclose(state.position, last.position, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["blackjax.hmc", "pyro.hmc"])
def test_window_adaptation_rescues_a_step_far_too_large(name, one_thread, run_sampler):
    """With a leapfrog step of 3 on a standard Gaussian (unstable: > 2) almost nothing is
    accepted; after the library's warm-up the acceptance sits near its target 0.8."""
    target = standard_gaussian(2)
    chains, adapt, after = 3, 150, 40  # the shapes of the contract tests: compiled already
    theta = target.init(0, chains)
    rates = []
    for adapt_steps in (0, adapt):
        sampler = samplers.make(name, step_size=3.0, num_leapfrog=5, adapt_steps=adapt_steps)
        _, infos = run_sampler(sampler, theta, target.potential(), adapt + after)
        rates.append(float(torch.stack([i.accept_prob for i in infos[adapt:]]).mean()))
    assert rates[0] < 0.1 and 0.6 < rates[1] <= 1.0, rates


# -- through the runner and the CLI --------------------------------------------------------------


def test_peers_run_through_the_runner(light_task):
    from bench.run import run as bench_run
    from bench.spec import RunSpec

    hparams = dict(step_size=[0.5, 0.25], temperature=1e-6)
    spec = RunSpec("blackjax.sgld", hparams, seeds=2, budget=4, eval_every=2)
    result = bench_run(light_task, spec, device="cpu", progress=False)
    assert result.spec.sampler == "blackjax.sgld" and result.steps_run == 4
    assert [c.hparams["step_size"] for c in result.chains] == [0.5, 0.25]
    assert all(not c.diverged for c in result.chains)
    gaussian = tasks.make("gaussian_iso")
    result = bench_run(
        gaussian, RunSpec("pyro.nuts", seeds=2, budget=3), device="cpu", progress=False
    )
    assert result.steps_run == 3 and result.grad_evals_per_step >= 1


def test_cli_runs_a_peer(capsys):
    from bench.__main__ import main

    code = main(
        ["run", "--task", "gaussian_iso", "--sampler", "blackjax.hmc", "--budget", "3", "--json"]
    )
    assert code == 0
    assert '"sampler": "blackjax.hmc"' in capsys.readouterr().out


def test_speed_times_every_implementation_side_by_side():
    from bench.speed import format_table, measure

    timings = measure("gaussian_iso", "hmc", chains=2, steps=2, rounds=2)
    names = [t.implementation for t in timings]
    assert names == ["ours", "blackjax", "blackjax-scan", "pyro", "pyro-mcmc"]
    for t in timings:
        assert t.seconds_per_step > 0 and t.grad_evals_per_step >= 1 and len(t.seconds) == 2
    assert {t.grad_evals_per_step for t in timings if t.implementation != "ours"} == {10}
    table = format_table(timings, "gaussian_iso", "hmc")
    assert "x ours" in table and "blackjax-scan" in table


# -- slow: convergence from far away --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blackjax.nuts", "pyro.nuts", "pyro.hmc"])
def test_peers_converge_to_tau_sigma_from_far_away(name, target, one_thread, run_sampler):
    tau = 0.1
    mean, cov = (m.numpy() for m in target.moments(tau))
    chains = 1000 if name.startswith("blackjax") else 100
    hparams = dict(step_size=0.1, temperature=tau, adapt_steps=100)
    if name == "pyro.hmc":
        hparams["num_leapfrog"] = 10
    theta = torch.full((chains, 2), 3.0)
    state, _ = run_sampler(samplers.make(name, **hparams), theta, target.potential(), 250, seed=1)
    check_moments(state.theta, mean, cov, what=name)
