"""Hamiltonian Monte Carlo with a Metropolis correction (Duane et al. 1987; Neal 2011).

With temperature tau, unit mass and step size eps, one transition from theta is::

    p ~ N(0, I);   H(theta, p) = U(theta)/tau + ½‖p‖²
    L leapfrog steps:  p <- p - (eps/2)·∇U/tau;  theta <- theta + eps·p;  p <- p - (eps/2)·∇U/tau
    accept (theta', p') with probability min(1, exp(H(theta, p) - H(theta', p')))

It leaves ``p_tau ∝ exp(-U/tau)`` exactly invariant for the potential it is given, so the runner
hands HMC the full training set: with a minibatch, the Metropolis test is exact for the wrong
target. Because U/tau sharpens as tau falls, a stable step size shrinks like sqrt(tau).

Energies in float64. The leapfrog runs in theta's dtype, but the energies of the Metropolis test
(U at both ends, ½‖p‖², their difference) are float64 whatever that dtype is. In float32 they
are useless at the temperatures where grokking is studied: a mean loss of ~0.03 is resolved to
2^-29 ≈ 1.9e-9, which at tau = 1e-10 is 19 nats, and H = U/tau ≈ 3e8 itself only to 32 nats, so
the acceptance probability can only be 1 or e^-32 (the test in ``tests/test_samplers.py``
measures exactly that), and a float32 forward pass of the light tasks differs from the float64
one by 1e-7 to 2e-6. So U at the end of each trajectory is evaluated once more, as a value only
(no graph, no gradient), by the potential itself at ``theta.double()``: the generic contract
``U(theta, batch) -> (C,)`` is all it needs, and U is then a deterministic float64 function of
the float32 state, which is what the Metropolis test requires. When theta is float64 the value
from the gradient call is used and nothing is added. Measured on the CPU (one thread, light
tasks): the float64 forward pass costs 0.6-1.3 float32 gradient evaluations (embedding MLP 1.2,
quadratic MLP 1.0-1.3 in its earlier mean-field parametrization, transformer 0.6), i.e. +8-17%
of a transition at L = 4 and a few percent at L = 16, which the cached gradient below pays
back: a transition is as fast as before the two changes (0.8-1.05x). It is not a gradient
evaluation and is not counted in ``grad_evals``. A potential that ignores the dtype of theta gets
no benefit but stays correct.

Per step: ``grad_evals = L`` (+1 on the first step). The gradient, U and its float64 value at the
end of a transition are carried over in the state and start the next one (a rejected chain keeps
those of the old theta), so only the first step, where ``init(theta)`` has no potential yet,
spends L + 1. The cache is valid only for the same potential object and the same batch object
(and the same theta values: a caller may replace ``state.theta``): any other potential, batch or
theta is recomputed from scratch, so a potential or batch that changes between steps stays
correct, and the trajectory is bitwise the one of an HMC that recomputes at every step. A NaN or
infinite energy rejects the proposal; an energy error ΔH > 1000 or a non-finite energy marks the
chain diverged for the step (the proposal is rejected and the chain stays where it was).

Step-size adaptation (optional, ``adapt_steps`` > 0): the dual averaging of Hoffman & Gelman
(2014, Algorithm 5) per chain, towards ``target_accept``, during the first ``adapt_steps``
transitions; afterwards the step size is frozen at the averaged iterate, so the chain is a valid
MCMC from then on. Adaptation changes only eps, so it costs no gradient evaluation.

Mass matrix (optional, ``adapt_mass=True``; one setting for every chain). With a diagonal mass M
the Hamiltonian is H = U/tau + ½·pᵀM⁻¹p, p ~ N(0, M), and the leapfrog moves theta by
eps·M⁻¹·p: the momentum keeps unit temperature because U is divided by tau, so M⁻¹ should be the
variance of theta under p_tau (tau·Sigma for a Gaussian), not tau times it. M⁻¹ is estimated as
Stan does (Stan Reference Manual, "HMC algorithm parameters"; ``windowed_adaptation`` and
``diag_e_adaptation`` in stan/mcmc): the ``adapt_steps`` warm-up transitions are split into an
initial buffer (75), slow windows of doubling length from 25, the last one stretched to the
terminal buffer (50), and the terminal buffer; for warm-ups shorter than 150 the buffers are
15% / 75% / 10% of it (1,000 transitions: windows 75-100, 100-150, 150-250, 250-450, 450-950).
At the end of each window, per chain and coordinate, from the n positions the window saw::

    M⁻¹ = (n / (n + 5))·var + 1e-3·(5 / (n + 5))      (var: the sample variance, Welford)

and the dual averaging restarts (its counters reset, mu = log(10·eps) from the current eps), so
the step size is re-adapted to the new mass. After the warm-up M is fixed, so the chain is a
valid MCMC. The shrinkage toward 1e-3·I is Stan's, in Stan's units: for a target whose variances
are far below 1e-3 (a network at tau ~ 1e-6) it dominates short windows. With ``adapt_mass``
False (the default) the mass is the identity and every step is bit for bit what it was before
the option existed.

Deviations from Neal: no random jitter of eps or L; the float64 energies above. From Stan: no
``init_stepsize`` search (the dual averaging starts each window from the last eps), no NUTS.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from samplers.base import (
    Example,
    HyperparameterError,
    Info,
    Param,
    Sampler,
    check_potential_value,
    noise,
    validate_hparam,
    value_and_grad,
)
from samplers.search import Dynamics, round_grid

# Dual-averaging constants of Hoffman & Gelman (2014), Sec. 3.2.1.
_GAMMA, _T0, _KAPPA = 0.05, 10.0, 0.75
#: Stan's windowed adaptation: initial buffer, first slow window, terminal buffer (transitions).
INIT_BUFFER, BASE_WINDOW, TERM_BUFFER = 75, 25, 50
#: The shortest warm-up a mass matrix is estimated in (Stan's).
MIN_MASS_WARMUP = 20
_DIVERGENCE = 1000.0


@dataclass(frozen=True)
class HMCState:
    theta: Tensor  # (C, D)
    step_size: Tensor  # (C,) the leapfrog step in use (adapted during warm-up)
    log_step_bar: Tensor  # (C,) dual averaging: averaged log step size
    error_bar: Tensor  # (C,) dual averaging: running mean of (target - acceptance)
    step: int = 0
    # What the next transition needs at theta, carried over from the last one (None before the
    # first step): valid only for the potential and batch in ``source`` (see the docstring).
    grad: Tensor | None = None  # (C, D) ∇U(theta)
    potential: Tensor | None = None  # (C,) U(theta) as value_and_grad returned it
    energy: Tensor | None = None  # (C,) U(theta) in float64, for the Metropolis test
    source: tuple[Any, Any, Any] | None = field(default=None, repr=False, compare=False)
    # Mass adaptation (adapt_mass; None / 0 otherwise): the diagonal inverse mass in use, the
    # Welford sums of the current window, and where the dual averaging last restarted.
    inv_mass: Tensor | None = None  # (C, D) M⁻¹; None: the identity
    window_count: int = 0  # positions in the current window
    window_mean: Tensor | None = None  # (C, D)
    window_m2: Tensor | None = None  # (C, D) sum of squared deviations
    restart: int = 0  # the transition after which the dual averaging restarted
    log_mu: Tensor | None = None  # (C,) the dual averaging's mu since that restart


class HMC(Sampler):
    name = "hmc"
    dynamics = Dynamics("hamiltonian")
    examples = {
        "toy": Example(dict(step_size=0.05, num_leapfrog=5, temperature=1.0)),
        "light": Example(
            dict(
                step_size=math.sqrt(0.1 * 1e-6),
                num_leapfrog=4,
                temperature=1e-6,
                adapt_steps=100,
                target_accept=0.65,
            ),
            3e-3,
            why="starts from ε = sqrt(η·τ) with η = 0.1 and adapts it by dual averaging over "
            "100 transitions to 65% acceptance (at η = 0.1 it accepted fewer than 1%)",
        ),
    }
    metropolis = True
    params = {
        "step_size": Param(1e-2, low=0.0, low_open=True, why="the leapfrog step must be positive"),
        "num_leapfrog": Param(
            10, low=1, integer=True, per_chain=False, why="at least one leapfrog step"
        ),
        "temperature": Param(
            1.0,
            low=0.0,
            low_open=True,
            why="HMC divides U by the temperature; for tau -> 0 use an optimizer",
        ),
        "adapt_steps": Param(
            0, low=0, integer=True, per_chain=False, why="a number of warm-up transitions"
        ),
        "adapt_mass": Param(
            False,
            flag=True,
            per_chain=False,
            why="a diagonal mass matrix adapted in the warm-up (adapt_steps), as Stan does",
        ),
        "target_accept": Param(
            0.65,
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
            per_chain=False,
            why="an acceptance probability strictly between 0 and 1",
        ),
    }

    @classmethod
    def grad_evals_per_step(cls, hparams: Mapping[str, Any]) -> int:
        """``num_leapfrog`` (the default L when ``hparams`` has none): the cost of a transition
        once the gradient is cached, i.e. of every step but the first (L + 1). L is one number
        for every chain, so a per-chain list or tensor is refused with
        :class:`HyperparameterError`."""
        spec = cls.params["num_leapfrog"]
        value = hparams.get("num_leapfrog", spec.default)
        return validate_hparam(cls.name, "num_leapfrog", value, spec)

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        if self.adapt_mass and self.adapt_steps < MIN_MASS_WARMUP:
            raise HyperparameterError(
                f"{self.name}: adapt_mass needs adapt_steps >= {MIN_MASS_WARMUP} (the warm-up "
                f"its mass is estimated in; Stan's minimum), got {self.adapt_steps}"
            )

    @classmethod
    def hparams_from_search(cls, point: Mapping[str, Any]) -> dict[str, Any]:
        """A search point's hyperparameters, where the grid searches the gradient-step
        equivalent η instead of ε: one leapfrog step from rest moves θ by −(ε²/τ)·∇U, so
        ε = sqrt(η·τ) (rounded to 6 digits), and ε shrinks like sqrt(τ) as it must."""
        hparams = dict(point)
        if "eta" in hparams:
            eta = hparams.pop("eta")
            hparams["step_size"] = round_grid(math.sqrt(eta * hparams["temperature"]))
        return hparams

    def init(self, theta: Tensor) -> HMCState:
        eps = self.step_size
        step = torch.as_tensor(eps, dtype=theta.dtype, device=theta.device).expand(theta.shape[0])
        step = step.clone()
        return HMCState(
            theta=theta,
            step_size=step,
            log_step_bar=torch.zeros_like(step),
            error_bar=torch.zeros_like(step),
        )

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        tau = self.h("temperature", theta)
        tau64 = _flat(_float64(self.hparams["temperature"], theta))
        eps = state.step_size.unsqueeze(1)  # (C, 1)
        num_leapfrog = self.num_leapfrog

        inv_mass = state.inv_mass
        momentum = noise(theta, generator)
        if inv_mass is not None:
            momentum = momentum / inv_mass.sqrt()  # p ~ N(0, M)
        if _cache_valid(state, potential, batch):
            u0, grad0, e0 = state.potential, state.grad, state.energy
            grad_evals = num_leapfrog
        else:
            u0, grad0 = value_and_grad(potential, theta, batch)
            e0 = _energy(potential, theta, batch, u0)
            grad_evals = num_leapfrog + 1
        h0 = e0 / tau64 + kinetic(momentum, inv_mass)

        x, p, u1, grad = leapfrog(
            potential, batch, theta, momentum, grad0, eps, tau, num_leapfrog, inv_mass
        )
        e1 = _energy(potential, x, batch, u1)
        h1 = e1 / tau64 + kinetic(p, inv_mass)

        delta = h1 - h0  # (C,) float64 energy error; NaN or inf: the integrator broke down
        finite = torch.isfinite(delta) & torch.isfinite(x).all(dim=1)
        delta = torch.where(finite, delta, torch.full_like(delta, math.inf))
        accept_prob = torch.exp(torch.clamp(-delta, max=0.0))  # NaN-free: inf -> 0
        uniform = torch.rand(
            theta.shape[0], generator=generator, device=theta.device, dtype=theta.dtype
        )
        accepted = (uniform < accept_prob) & finite
        diverged = ~finite | (delta > _DIVERGENCE)
        accept_prob = accept_prob.to(theta.dtype)

        # A rejected chain stays, and so does its cache: the gradient at the old theta.
        rows = accepted.unsqueeze(1)
        new_theta = torch.where(rows, x, theta)
        new = HMCState(
            theta=new_theta,
            step_size=state.step_size,
            log_step_bar=state.log_step_bar,
            error_bar=state.error_bar,
            step=state.step + 1,
            grad=torch.where(rows, grad, grad0),
            potential=torch.where(accepted, u1, u0),
            energy=torch.where(accepted, e1, e0),
            source=(new_theta, potential, batch),
            inv_mass=inv_mass,
            window_count=state.window_count,
            window_mean=state.window_mean,
            window_m2=state.window_m2,
            restart=state.restart,
            log_mu=state.log_mu,
        )
        if state.step < self.adapt_steps:
            new = self._adapt(new, accept_prob)
            if self.adapt_mass:
                new = self._adapt_mass(new)
        return new, Info(
            grad_evals=grad_evals, accept_prob=accept_prob, diverged=diverged, potential=u0
        )

    def _adapt(self, state: HMCState, accept_prob: Tensor) -> HMCState:
        """One dual-averaging update (Hoffman & Gelman 2014, Alg. 5), per chain."""
        m = state.step - state.restart  # 1-based count of transitions since the (re)start
        if state.log_mu is None:
            mu = torch.log(10.0 * _initial_step(self.step_size, state.step_size))
        else:
            mu = state.log_mu
        w = 1.0 / (m + _T0)
        error_bar = (1.0 - w) * state.error_bar + w * (self.target_accept - accept_prob)
        log_step = mu - math.sqrt(m) / _GAMMA * error_bar
        eta = m ** (-_KAPPA)
        log_step_bar = eta * log_step + (1.0 - eta) * state.log_step_bar
        # During warm-up the chain explores with the noisy iterate; at its end the averaged one,
        # which is what Hoffman & Gelman recommend for the sampling phase.
        final = state.step >= self.adapt_steps
        step_size = torch.exp(log_step_bar if final else log_step)
        return dataclasses.replace(
            state, step_size=step_size, log_step_bar=log_step_bar, error_bar=error_bar
        )

    def _adapt_mass(self, state: HMCState) -> HMCState:
        """Stan's windowed variance estimate: add the new position to the window's Welford
        sums; at a window's end set M⁻¹ from them and restart the dual averaging."""
        start, ends = mass_windows(self.adapt_steps)
        m = state.step  # transitions done, 1-based
        if m <= start or m > ends[-1]:
            return state
        x = state.theta.to(torch.float64)
        n = state.window_count + 1
        if state.window_mean is None or state.window_count == 0:
            mean, m2 = x.clone(), torch.zeros_like(x)
        else:
            delta = x - state.window_mean
            mean = state.window_mean + delta / n
            m2 = state.window_m2 + delta * (x - mean)
        if m not in ends:
            return dataclasses.replace(state, window_count=n, window_mean=mean, window_m2=m2)
        var = m2 / (n - 1)
        inv_mass = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))
        return dataclasses.replace(
            state,
            inv_mass=inv_mass.to(state.theta.dtype),
            window_count=0,
            window_mean=None,
            window_m2=None,
            restart=m,
            log_mu=torch.log(10.0 * state.step_size),
            log_step_bar=torch.zeros_like(state.step_size),
            error_bar=torch.zeros_like(state.step_size),
        )


def mass_windows(warmup: int) -> tuple[int, list[int]]:
    """Stan's adaptation windows for a warm-up of ``warmup`` transitions: ``(start, ends)``,
    the transition after which the first window opens and the transition each window closes
    at (1-based counts). 1,000 gives ``(75, [100, 150, 250, 450, 950])``."""
    init, base, term = INIT_BUFFER, BASE_WINDOW, TERM_BUFFER
    if init + base + term > warmup:
        init, term = int(0.15 * warmup), int(0.1 * warmup)
        base = warmup - init - term
    last, start, size, ends = warmup - term, init, base, []
    while not ends or ends[-1] < last:
        end = start + size
        if end + 2 * size > last:  # the next, doubled window would not fit: stretch this one
            end = last
        ends.append(end)
        start, size = end, 2 * size
    return init, ends


def leapfrog(
    potential: Any,
    batch: Any,
    theta: Tensor,
    momentum: Tensor,
    grad: Tensor,
    step_size: float | Tensor,
    temperature: float | Tensor,
    num_steps: int,
    inv_mass: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``num_steps`` leapfrog steps of H = U/tau + ½·pᵀM⁻¹p from ``(theta, momentum)`` with
    ``grad`` = ∇U(theta): ``(theta', p', U(theta'), ∇U(theta'))``. ``step_size`` and
    ``temperature`` are numbers or ``(C, 1)``; ``inv_mass`` is ``(C, D)`` or None (identity)."""
    x, eps, tau = theta, step_size, temperature
    p = momentum - 0.5 * eps * grad / tau
    for i in range(num_steps):
        x = x + eps * p if inv_mass is None else x + eps * (inv_mass * p)
        u, grad = value_and_grad(potential, x, batch)
        p = p - (eps if i < num_steps - 1 else 0.5 * eps) * grad / tau
    return x, p, u, grad


def _cache_valid(state: HMCState, potential: Any, batch: Any) -> bool:
    """The carried gradient and energies belong to this theta, potential and batch.

    Potential and batch must be the very objects of the last step (a new potential object, a
    new minibatch or a changed prior means recomputing). Theta is usually the object the last
    step returned; a caller that replaces it (the runner holds diverged chains in place with
    ``dataclasses.replace``) still keeps the cache when the values are unchanged.
    """
    if state.grad is None or state.source is None:
        return False
    theta, source_potential, source_batch = state.source
    if source_potential is not potential or source_batch is not batch:
        return False
    if state.theta is theta:
        return True
    return (
        state.theta.shape == theta.shape
        and state.theta.dtype == theta.dtype
        and state.theta.device == theta.device
        and torch.equal(state.theta, theta)
    )


def _energy(potential: Any, theta: Tensor, batch: Any, value: Tensor) -> Tensor:
    """U(theta) ``(C,)`` in float64 for the Metropolis test: ``value`` itself when theta is
    float64, else one forward pass (no gradient) of the potential at ``theta.double()``."""
    if theta.dtype == torch.float64:
        return value.to(torch.float64)
    with torch.no_grad():
        energy = potential(theta.double(), batch)
    check_potential_value(energy, theta)
    return energy.detach().to(torch.float64)


def kinetic(p: Tensor, inv_mass: Tensor | None = None) -> Tensor:
    """½·pᵀM⁻¹p per chain (½‖p‖² for the identity), in float64."""
    p = p.to(torch.float64)
    if inv_mass is None:
        return 0.5 * (p * p).sum(dim=1)
    return 0.5 * (p * p * inv_mass.to(torch.float64)).sum(dim=1)


def _float64(value, theta: Tensor):
    """A scalar or ``(C,)`` hyperparameter as a float64 scalar or ``(C,)`` tensor."""
    if isinstance(value, Tensor):
        return value.to(device=theta.device, dtype=torch.float64)
    return float(value)


def _flat(value):
    """A per-chain ``(C, 1)`` hyperparameter as ``(C,)``; scalars pass through."""
    return value.reshape(-1) if isinstance(value, Tensor) else value


def _initial_step(value, like: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand_as(like)
