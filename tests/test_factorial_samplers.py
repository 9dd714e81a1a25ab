"""The samplers of the factorial (geometry × dynamics × noise): the frozen RMSprop metric's step,
preconditioned SGHMC, and HMC with a mass matrix adapted in its warm-up.

Statistical tolerances come from the Monte Carlo standard error of the final states of many
independent chains (i.i.d. draws): Z = 4.5 standard errors, as in tests/test_samplers.py. For the
linear chains the law after k steps is computed exactly (C <- M C Mᵀ + Q), so the fast tests
start from exact draws and need no burn-in.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import samplers
from samplers import metric as rmsprop
from samplers.preconditioned_sghmc import PreconditionedSGHMC
from samplers.riemannian_langevin import RiemannianLangevin
from tasks.toy import GaussianTarget, correlated_gaussian

Z = 4.5
CHAINS = 4000


@pytest.fixture(autouse=True)
def one_thread():
    """Thousands of steps on tiny tensors: torch's second intra-op thread only adds
    synchronisation on a shared two-core machine (35x slower measured here); same numbers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(sampler, theta, potential, steps, seed=0, state=None):
    state = sampler.init(theta) if state is None else state
    generator = torch.Generator().manual_seed(seed)
    infos = []
    for _ in range(steps):
        state, info = sampler.step(state, potential, None, generator)
        infos.append(info)
    return state, infos


def diagonal_quadratic(dim=8):
    """U = ½ Σ a_i theta_i² with curvatures a from 1 to 100 (a Gaussian of variances 1/a)."""
    a = torch.logspace(0, 2, dim, dtype=torch.float64)
    return a, GaussianTarget(name="diagonal", mean=torch.zeros(dim), cov=torch.diag(1.0 / a))


# -- the frozen metric's step (samplers.metric) --------------------------------------------------


@pytest.mark.parametrize("cls", [RiemannianLangevin, PreconditionedSGHMC])
def test_adapted_metric_sits_at_the_edge_of_stability_and_the_frozen_one_below(cls):
    """The mechanism on a toy: RMSprop on a quadratic at tau = 0 drives P up while the gradient
    shrinks until h·P_i·a_i reaches the stability limit, where the oscillation it starts feeds V
    and holds P there (the adaptive edge of stability). Frozen unchecked, the metric is at or
    past the limit and the chains diverge; frozen by the default rule, h·max(P·a) is half the
    limit and every chain converges to the mode."""
    a, target = diagonal_quadratic()
    hparams = dict(step_size=0.1, temperature=0.0, alpha=0.9, eps=1e-8, freeze_after=200)
    if cls is PreconditionedSGHMC:
        hparams["friction"] = 0.5
    limit = 2.0 if cls is RiemannianLangevin else 2.0 * (2.0 - 0.5)
    theta = 3.0 * target.init(0, 16, dtype=torch.float64)
    unchecked, _ = run(cls(**hparams, freeze_margin=None), theta, target.potential(), 2200)
    state, infos = run(cls(**hparams), theta, target.potential(), 2200)

    # the same warm-up; the measured sharpness is the exact one of a diagonal quadratic
    edge = 0.1 * (unchecked.precond * a).max(dim=1).values
    torch.testing.assert_close(state.sharpness, edge, rtol=1e-9, atol=0)
    assert bool((edge > 0.95 * limit).all()), edge  # adaptation ran to (past) the limit
    torch.testing.assert_close(0.1 * (state.precond * a).max(dim=1).values, 0.5 * limit * ones(16))
    assert infos[199].grad_evals == 2 + rmsprop.HVP_COST * 8  # Lanczos: D = 8 steps, once
    assert {i.grad_evals for i in infos[:199] + infos[200:]} == {1}

    blown = ~torch.isfinite(unchecked.theta).all(dim=1) | (unchecked.theta.norm(dim=1) > 1e3)
    assert bool(blown.all()), unchecked.theta.norm(dim=1)
    assert float(state.theta.norm(dim=1).max()) < 1e-12  # converged to the mode


def ones(n):
    return torch.ones(n, dtype=torch.float64)


def test_lanczos_finds_the_top_eigenvalue_of_a_preconditioned_quadratic():
    """h·λ_max(P^½AP^½) on a dense 40-D quadratic with a random diagonal P, per chain, against
    the eigenvalues computed directly: 20 Lanczos steps resolve the top one."""
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    precision = q @ torch.diag(torch.logspace(-1, 2, 40, dtype=torch.float64)) @ q.T
    target = GaussianTarget(name="dense", mean=torch.zeros(40), cov=torch.linalg.inv(precision))
    metric = torch.rand(3, 40, generator=g, dtype=torch.float64) + 0.1
    theta = target.init(1, 3, dtype=torch.float64)
    frozen, sharpness, evals = rmsprop.stable(
        target.potential(), None, theta, metric, 0.01, 2.0, 0.5, g
    )
    root = metric.sqrt()
    a = target.precision
    exact = torch.stack([torch.linalg.eigvalsh(r[:, None] * a * r[None, :])[-1] for r in root])
    torch.testing.assert_close(sharpness, 0.01 * exact, rtol=1e-6, atol=0)
    factor = torch.clamp(1.0 / (0.01 * exact), max=1.0)
    torch.testing.assert_close(frozen, metric * factor[:, None])
    assert evals == 1 + rmsprop.HVP_COST * rmsprop.LANCZOS_STEPS


def test_a_linear_potential_has_no_curvature_and_keeps_its_metric():
    class Linear:
        def __call__(self, theta, batch=None):
            return theta @ torch.tensor([1e-3, -2e-3], dtype=theta.dtype)

    metric = torch.tensor([[3.0, 5.0]], dtype=torch.float64)
    frozen, sharpness, _ = rmsprop.stable(
        Linear(),
        None,
        torch.zeros(1, 2, dtype=torch.float64),
        metric,
        1.0,
        2.0,
        0.5,
        torch.Generator().manual_seed(0),
    )
    assert torch.equal(frozen, metric) and float(sharpness) == 0.0


# -- from memorized checkpoints of add_mod113's data with the embedding MLP -----------------------


def memorized_checkpoints():
    """Four memorized points made through the public API: seeds 0 and 1 of the registered
    ``add_mod113_mlp`` reference (AdamW lr 1e-2, wd 2) and of the CPU preset's task
    (``add_mod113`` with the MLP, AdamW lr 1e-2, wd 1), in one vectorized AdamW run (the two
    tasks share data, model and initialization), each chain caught at the first evaluation
    where bench.checkpoints.Criterion holds (train acc 1, loss < 1% of the initial one)."""
    import tasks
    from bench.checkpoints import Criterion

    registered = tasks.make("add_mod113_mlp")
    preset = tasks.make("add_mod113", model="mlp")
    assert registered.config | {"reference": None} == preset.config | {"reference": None}
    refs = [registered.reference, preset.reference]
    decay = torch.tensor([r["weight_decay"] for r in refs for _ in (0, 1)])
    theta = torch.cat([registered.init(seed, 1) for seed in (0, 1)] * 2)
    adamw = samplers.make(
        "adamw", step_size=refs[0]["step_size"], betas=refs[0]["betas"], weight_decay=decay
    )
    assert all(r["step_size"] == refs[0]["step_size"] for r in refs)
    criterion, potential = Criterion(), registered.potential()
    state, generator = adamw.init(theta), torch.Generator().manual_seed(0)
    initial = registered.evaluate(theta)["train_loss"]
    caught: dict[int, torch.Tensor] = {}
    for step in range(1, criterion.max_steps + 1):
        state, _ = adamw.step(state, potential, None, generator)
        if step % criterion.eval_every == 0:
            metrics = registered.evaluate(state.theta)
            for c in torch.nonzero(criterion.holds(metrics, initial)).flatten().tolist():
                if c not in caught:
                    assert float(metrics["val_acc"][c]) < criterion.val_acc_below
                    caught[c] = state.theta[c].clone()
            if len(caught) == 4:
                break
    assert len(caught) == 4, "the reference AdamW memorizes within its criterion's steps"
    return registered, torch.stack([caught[c] for c in range(4)])


@pytest.mark.slow
def test_riemannian_langevin_frozen_at_the_page_setting_no_longer_diverges():
    """The page's setting (h 0.01, tau 1e-6, lambda 1e-3, alpha 0.99, eps 1e-4, the metric frozen
    at 20% of a 4,000-step run) from four memorized checkpoints of both tasks. Frozen unchecked
    (the old rule), every chain breaks within 600 steps of the freeze: diverged, or back at
    chance on its own training set (measured: all four at train accuracy <= 0.04 after 25-600
    steps, three with ‖theta‖ > 1e14). With the frozen step checked (h·λ_max measured 2.4-5.0 at
    the freeze, scaled to 1), the same chains stay finite, bounded and generalizing for 2,000
    steps (measured: validation accuracy >= 0.999, ‖theta‖ 44.1-44.9 from 44.5-45.9). About 10
    minutes on one thread."""
    task, theta = memorized_checkpoints()
    potential = task.potential(1e-3)
    hparams = dict(step_size=0.01, temperature=1e-6, alpha=0.99, eps=1e-4, freeze_after=800)
    sampler = samplers.make("riemannian_langevin", **hparams)
    warm, _ = run(sampler, theta, potential, 799, seed=1)  # the freeze is the next step
    before = warm.theta.norm(dim=1)

    old = samplers.make("riemannian_langevin", **hparams, freeze_margin=None)
    state, broken = warm, torch.zeros(4, dtype=torch.bool)
    for chunk in range(24):  # 600 steps, checked every 25
        state, infos = run(old, None, potential, 25, seed=200 + chunk, state=state)
        flagged = torch.stack([i.diverged for i in infos]).any(dim=0)
        norm = state.theta.norm(dim=1)
        chance = task.evaluate(state.theta)["train_acc"] < 0.5
        broken |= flagged | ~torch.isfinite(norm) | (norm > 100 * before) | chance
    assert bool(broken.all()), broken

    state, infos = run(sampler, None, potential, 1, seed=2, state=warm)
    assert bool((state.sharpness > 2.0).all()), state.sharpness  # past the limit, as measured
    for chunk in range(8):  # 2,000 steps, checked every 250
        state, more = run(sampler, None, potential, 250, seed=3 + chunk, state=state)
        infos += more
        metrics = task.evaluate(state.theta)
        assert not torch.stack([i.diverged for i in infos]).any()
        assert bool((state.theta.norm(dim=1) < 1.5 * before).all())
        assert bool((metrics["val_acc"] >= 0.99).all()), metrics["val_acc"]


# -- preconditioned SGHMC --------------------------------------------------------------------------


class L1:
    """U = c·Σ|theta_i|: every gradient entry is ±c, so the RMSprop metric is the constant
    1/(eps + c) from the first step and the update is plain heavy ball with step h·P."""

    def __init__(self, c):
        self.c = c

    def __call__(self, theta, batch=None):
        return self.c * theta.abs().sum(dim=1)


def test_preconditioned_sghmc_at_zero_temperature_is_preconditioned_sgd_with_momentum():
    c, h, friction, eps = 0.5, 0.01, 0.3, 1e-4
    theta = correlated_gaussian().init(0, 3, dtype=torch.float64)
    psghmc, _ = run(
        PreconditionedSGHMC(
            step_size=h,
            friction=friction,
            temperature=0.0,
            eps=eps,
            freeze_after=5,
        ),
        theta,
        L1(c),
        40,
    )
    p = 1.0 / (eps + c)
    sgd, _ = run(samplers.make("sgd", step_size=h * p, momentum=1.0 - friction), theta, L1(c), 40)
    torch.testing.assert_close(psghmc.theta, sgd.theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(psghmc.velocity, -h * p * sgd.velocity, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(psghmc.precond, torch.full_like(theta, p), rtol=1e-12, atol=0)


def test_preconditioned_sghmc_with_full_friction_is_riemannian_langevin():
    """friction 1: the velocity forgets itself and the step is pSGLD's, noise included; both
    share one metric (adaptation, start and the checked freeze)."""
    target = correlated_gaussian()
    theta = target.init(1, 5, dtype=torch.float64)
    common = dict(step_size=1e-2, temperature=0.3, alpha=0.9, freeze_after=6)
    a, _ = run(
        PreconditionedSGHMC(friction=1.0, **common),
        theta,
        target.potential(),
        20,
        seed=3,
    )
    b, _ = run(
        samplers.make("riemannian_langevin", **common), theta, target.potential(), 20, seed=3
    )
    torch.testing.assert_close(a.theta, b.theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.precond, b.precond, rtol=1e-12, atol=0)
    torch.testing.assert_close(a.sharpness, b.sharpness, rtol=1e-12, atol=0)


def exact_draws(target, tau, chains, seed):
    mean, cov = target.moments(tau)
    z = torch.randn(chains, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return mean + z @ torch.linalg.cholesky(cov).T


def psghmc_linear_chain(sampler, target, tau, precond):
    """z = (x - mu, v) after one step is M z + noise(Q), per chain (each has its own frozen P):
    v' = (1 - a)v - h·P·A·x + s·xi and x' = x + v' get the same noise s·xi, s² = 2·a·h·tau·P."""
    a_mat, h, fr = target.precision.numpy(), sampler.step_size, sampler.friction
    eye = np.eye(2)
    out_m, out_q = [], []
    for p in precond.double().numpy():
        hpa = h * p[:, None] * a_mat
        out_m.append(np.block([[eye - hpa, (1 - fr) * eye], [-hpa, (1 - fr) * eye]]))
        s = np.diag(2 * fr * h * tau * p)
        out_q.append(np.block([[s, s], [s, s]]))
    return np.stack(out_m), np.stack(out_q)


def propagate(m, q, c0, steps):
    c = np.broadcast_to(c0, m.shape)
    mt = np.swapaxes(m, -1, -2)
    for _ in range(steps):
        c = m @ c @ mt + q
    return c


def stationary(m, q):
    d = m.shape[-1]
    kron = np.einsum("nij,nkl->nikjl", m, m).reshape(-1, d * d, d * d)
    vec = np.linalg.solve(np.eye(d * d) - kron, q.reshape(-1, d * d, 1))
    return vec.reshape(-1, d, d)


def cov_se(cov, n):
    var = np.diag(cov)
    return np.sqrt((np.outer(var, var) + cov**2) / n)


@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_preconditioned_sghmc_frozen_samples_tau_sigma(tau):
    """After a warm-up (the metric adapted for 300 steps, then frozen by the checked rule),
    fresh exact draws of tau·Sigma with v = 0 and 300 steps: the chains hold the law computed
    exactly for their frozen metrics (a mixture over chains), which is tau·Sigma up to the O(h)
    bias."""
    target = correlated_gaussian(condition=100.0)
    sampler = PreconditionedSGHMC(step_size=1e-2, friction=0.1, temperature=tau, freeze_after=300)
    seed = 200 + round(10 * tau)
    potential = target.potential()
    warm, _ = run(sampler, exact_draws(target, tau, CHAINS, seed), potential, 300, seed=seed)
    assert warm.precond is not None
    start = exact_draws(target, tau, CHAINS, seed + 1)
    state = dataclasses.replace(warm, theta=start, velocity=torch.zeros_like(start))
    state, _ = run(sampler, None, potential, 300, seed=seed + 2, state=state)

    m, q = psghmc_linear_chain(sampler, target, tau, state.precond)
    c0 = np.zeros((4, 4))
    c0[:2, :2] = target.moments(tau)[1].numpy()
    law = propagate(m, q, c0, 300).mean(axis=0)
    exact = stationary(m, q).mean(axis=0)
    mean, cov = (v.numpy() for v in target.moments(tau))
    x = state.theta.numpy()
    v = state.velocity.numpy()
    assert np.all(np.abs(x.mean(0) - mean) < Z * np.sqrt(np.diag(law)[:2] / CHAINS))
    se = cov_se(law, CHAINS)
    sample = np.cov(np.concatenate([x, v], axis=1).T)
    assert np.all(np.abs(sample - law) < Z * se), (sample, law)  # positions and velocities
    gap = np.abs(law[:2, :2] - cov)
    assert np.all(np.abs(sample[:2, :2] - cov) < Z * se[:2, :2] + gap), "vs tau·Sigma"
    bias = np.abs(exact[:2, :2] - cov)
    assert np.all(bias < 0.15 * np.abs(cov).max()), bias  # the step is small enough to sample


# -- HMC: trajectories with L >= 16, and a diagonal mass adapted as Stan does -------------------

# Final positions of 3 chains after 8 transitions, recorded before adapt_mass existed (float.hex):
# unit mass must stay bit for bit what it was.
UNIT_MASS_GOLDEN = {
    torch.float64: (
        dict(step_size=0.1, num_leapfrog=16, temperature=1.0, adapt_steps=5, target_accept=0.8),
        [
            ["-0x1.705653adae624p-5", "-0x1.a42faf26c3f33p+0"],
            ["0x1.0f6e8ef8b8476p+0", "-0x1.75b0aebf70436p-1"],
            ["0x1.5141d49fdbb7ep-1", "-0x1.eb57bdebbfea4p-1"],
        ],
    ),
    torch.float32: (
        dict(step_size=0.03, num_leapfrog=4, temperature=0.5),
        [
            ["0x1.79d8180000000p+0", "0x1.7d337c0000000p-4"],
            ["0x1.7fb08c0000000p+0", "-0x1.2d80a40000000p-3"],
            ["0x1.45c7100000000p+0", "-0x1.1cdfde0000000p-2"],
        ],
    ),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hmc_unit_mass_is_unchanged_bit_for_bit(dtype):
    hparams, golden = UNIT_MASS_GOLDEN[dtype]
    target = correlated_gaussian(100.0)
    state, _ = run(
        samplers.make("hmc", **hparams),
        target.init(0, 3, dtype=dtype),
        target.potential(),
        8,
        seed=7,
    )
    assert [[float(x).hex() for x in row] for row in state.theta.double()] == golden
    assert state.inv_mass is None


@pytest.mark.parametrize("num_steps", [16, 64])
def test_hmc_leapfrog_is_reversible_and_second_order(num_steps):
    """Long trajectories: L leapfrog steps, the momentum negated, L more steps return to the start
    (to rounding, float64), with and without a mass; the largest energy error along a trajectory
    falls by 4 when the step halves (second order), whatever L (one step at a time: L calls of
    one step compose to the L-step trajectory, the half kicks adding up)."""
    from samplers.hmc import kinetic, leapfrog

    target = correlated_gaussian(100.0)
    potential = target.potential()
    g = torch.Generator().manual_seed(0)
    theta = target.init(2, 64, dtype=torch.float64)
    inv_mass = torch.rand(64, 2, generator=g, dtype=torch.float64) + 0.5
    for mass in (None, inv_mass):
        p0 = torch.randn(64, 2, generator=g, dtype=torch.float64)
        if mass is not None:
            p0 = p0 / mass.sqrt()
        u0, g0 = samplers.value_and_grad(potential, theta, None)
        x, p, _, grad = leapfrog(potential, None, theta, p0, g0, 0.05, 1.0, num_steps, mass)
        back, p_back, _, _ = leapfrog(potential, None, x, -p, grad, 0.05, 1.0, num_steps, mass)
        torch.testing.assert_close(back, theta, rtol=0, atol=1e-10)
        torch.testing.assert_close(-p_back, p0, rtol=0, atol=1e-9)
        errors = []
        for eps in (
            0.02,
            0.01,
        ):  # the largest energy error along the trajectory, one step at a time
            x, p, u, grad, worst = theta, p0, u0, g0, torch.zeros(64, dtype=torch.float64)
            for _ in range(num_steps):
                x, p, u, grad = leapfrog(potential, None, x, p, grad, eps, 1.0, 1, mass)
                error = (u + kinetic(p, mass) - u0 - kinetic(p0, mass)).abs()
                worst = torch.maximum(worst, error)
            errors.append(worst.median())
            whole = leapfrog(potential, None, theta, p0, g0, eps, 1.0, num_steps, mass)
            torch.testing.assert_close(x, whole[0], rtol=0, atol=1e-12)
        assert 3.5 < float(errors[0] / errors[1]) < 4.5, errors


def test_stan_windows():
    from samplers.hmc import mass_windows

    assert mass_windows(1000) == (75, [100, 150, 250, 450, 950])
    assert mass_windows(500) == (75, [100, 150, 250, 450])
    assert mass_windows(150) == (75, [100])
    assert mass_windows(100) == (15, [90])  # short warm-ups: 15% / 75% / 10%
    with pytest.raises(samplers.HyperparameterError, match="adapt_mass needs adapt_steps >= 20"):
        samplers.make("hmc", adapt_mass=True, adapt_steps=10)
    with pytest.raises(samplers.HyperparameterError, match="adapt_mass must be True or False"):
        samplers.make("hmc", adapt_mass=1, adapt_steps=100)


VARIANCES = torch.tensor([100.0, 1.0, 1e-2, 1e-4], dtype=torch.float64)


@pytest.mark.parametrize("tau", [1.0, 0.1])
def test_hmc_adapted_mass_matches_the_variances_and_samples_tau_sigma(tau):
    """A diagonal Gaussian whose variances span 10⁶, HMC with L = 16 from a step of 0.01 and unit
    mass; 1,000 warm-up transitions adapt the mass in Stan's windows and the step by dual
    averaging. The adapted M⁻¹ is the regularized variance of the last window (n = 500): per
    coordinate, the mean over chains is within Z standard errors above it, and below it by at
    most the bias of a variance estimated from correlated draws (the window's first transitions
    re-adapt the step and reject often; measured 2-4% low) - every coordinate to 5%, where the
    unit mass is off by up to 10⁶. Then 200 transitions: acceptance near the target (the averaged
    dual-averaging iterate overshoots it on a Gaussian, as with unit mass: 0.86-0.91 measured on
    an isotropic one), and the final positions of independent chains have mean and variance
    tau·Sigma within Z standard errors."""
    chains, n = 500, 500
    target = GaussianTarget(
        name="diagonal", mean=torch.tensor([1.0, -1.0, 0.5, 0.0]), cov=torch.diag(VARIANCES)
    )
    sampler = samplers.make(
        "hmc",
        step_size=0.01,
        num_leapfrog=16,
        temperature=tau,
        adapt_steps=1000,
        target_accept=0.8,
        adapt_mass=True,
    )
    state, infos = run(
        sampler,
        target.init(0, chains, dtype=torch.float64),
        target.potential(),
        1200,
        seed=round(10 * tau),
    )
    expected = (n / (n + 5)) * tau * VARIANCES + 1e-3 * 5 / (n + 5)
    ratio = state.inv_mass / expected  # (C, 4)
    se = ratio.std(dim=0) / math.sqrt(chains)
    assert bool((ratio.mean(dim=0) < 1 + Z * se).all()), (ratio.mean(dim=0), se)
    assert bool((ratio.mean(dim=0) > 0.95).all()), ratio.mean(dim=0)

    accept = float(torch.stack([i.accept_prob for i in infos[1000:]]).mean())
    assert 0.75 < accept < 0.97, accept
    x, var = state.theta, tau * VARIANCES
    assert bool(((x.mean(dim=0) - target.mean).abs() < Z * (var / chains).sqrt()).all())
    assert bool(((x.var(dim=0) - var).abs() < Z * var * math.sqrt(2 / chains)).all())
