"""Riemannian Langevin dynamics with a diagonal RMSprop metric (preconditioned SGLD).

Update (h = ``step_size``, tau = ``temperature``, g = ∇U(theta), xi ~ N(0, I), t = step from 1)::

    V <- alpha·V + (1 - alpha)·g²,  V_0 = mean_i(g_1,i²)   (a scalar per chain, see below)
    P  = 1 / (eps + sqrt(V))                               (diagonal, elementwise)
    theta <- theta - h·P·g + sqrt(2·h·tau·P)·xi
    after ``freeze_after`` steps (default 1000): V no longer updated, and P frozen at
    P·min(1, freeze_margin·2 / s),  s = h·λ_max(P^½ ∇²U P^½) measured there (Lanczos)

This is pSGLD (Li, Chen, Carlson & Carin, AAAI 2016), a diagonal instance of the Riemann manifold
Langevin dynamics of Girolami & Calderhead (2011) with metric G = P⁻¹. It targets
``p_tau ∝ exp(-U/tau)``: exactly (up to the O(h) discretisation bias) once the metric is frozen,
because P is then constant, the curvature term Γ_i = tau·∂P_i/∂theta_i is exactly zero and the
chain is plain SGLD in a fixed preconditioned geometry. While the metric adapts, Γ is dropped (as
in the paper and every library) and the chain is biased: measured on the correlated Gaussian of
``tests/test_samplers.py`` (condition number 100, 4000 chains from exact draws, 3000 steps,
metric never frozen), the stationary covariance is too large by 7% (tau = 1) and 5% (tau = 0.1)
at alpha = 0.99, h = 1e-2; by 19% and 7% at h = 3e-3; by 44% and 23% at alpha = 0.9, h = 1e-2.

Why the metric freezes after 1000 steps by default. The warm-up must outlast the chain's way in:
a metric frozen while the chain still descends keeps the large gradients of the descent and
samples with a step that is too small for good. From (3, 3) on that Gaussian (h = 1e-2, alpha =
0.99) the mean P frozen after 200 / 500 / 1000 steps is 0.22 / 0.69 / 0.99 (tau = 1) and 0.08 /
0.30 / 0.93 (tau = 0.1) of its stationary value (0.137 and 0.40); with the metric frozen at 200
or 500 the chains had not reached the target after 4000 steps, with 1000 they had. 1000 steps is
also ten memories of the EMA at the default alpha (the start's weight alpha^1000 = 4e-5). Set
``freeze_after`` to match a budget, or to ``None`` to adapt for ever (biased, as measured above).

How V starts: from the data, at once. RMSprop's V_0 = 0 underestimates V early by the factor
1 - alpha^t (Adam divides it out); V_0 = 1 instead, with its weight alpha^t, made the metric the
identity for the first ~1/(1 - alpha) steps and, against gradients of ~1e-7 (a memorised
network), plain SGLD with a tiny step for thousands of steps (measured: 1,833 steps until P
reached half of 1/(eps + 1e-7) at eps = 1e-4). Here the weight alpha^t goes to the chain's own
mean square gradient at its first step, so the average is unbiased from step 1 (its weights sum
to one) and at the scale of the gradients: with gradients of 1e-7, P = 1/(eps + 1e-7) at the
first step. Using that scalar for the start rather than each coordinate's own g_1,i² keeps one
noisy draw from setting a coordinate's step: a coordinate whose gradient happens to be zero at
step 1 gets the chain's average scale, P_i <= 1/(eps + sqrt(alpha)·rms(g_1)), not 1/eps, and the
per-coordinate estimate takes over over ~1/(1 - alpha) steps. A floor at the chain's mean for
ever would instead flatten the metric: 69-90% of the coordinates of the light tasks have g² below
their chain's mean at initialisation. A chain whose gradient is exactly zero (started at the mode
of a Gaussian) has no scale to learn from: it takes plain SGLD steps (P = 1), and its V starts at
its first non-zero gradient. (Adam's division would give V̂ = 0 there, P = 1/eps and a first jump
of sqrt(2·h·tau/eps): on that Gaussian, h = 1e-3, tau = 1, a jump of 4.6 where the stiff sd is
0.1.) The one bound that stays is ``eps``: started *near* a mode, where the gradient is tiny but
not zero (4e-6 on that Gaussian in float32), P = 1/(eps + rms(g)) ≈ 1/eps at once and the first
step is that jump (measured: max 15 over 100 chains, still 3.2 from the mean after 2000 steps),
as the V_0 = 1 start did after its lag. A gradient cannot tell a mode from a flat direction;
``eps`` caps P at 1/eps, so choose it at the gradient scale below which directions count as flat.

Why the frozen step is checked (``freeze_margin``, default 0.5). An adapting metric keeps itself
at the edge of stability, h·λ_max(P^½HP^½) ≈ 2, through the feedback of the gradients on V;
freezing it removes the feedback. From memorized checkpoints of add_mod113's data with the
embedding MLP (h 0.01, tau 1e-6, lambda 1e-3, the defaults otherwise, frozen at step 800), the
adapted metric had h·λ_max = 2.4-5.0 at the freeze on all four checkpoints (two seeds each of
the registered ``add_mod113_mlp`` reference and of the CPU preset's), most had grokked,
and every chain broke within 600 steps: back at chance, and most at ‖theta‖ > 1e6 (93-166 steps
in a first run). max P (7.8e3-8.2e3) was below 1/eps, the prior's rate h·P·lambda at most 0.08:
neither eps nor the prior nor the V_0 start was the cause. With the frozen P scaled to
h·λ_max = 1 (half the limit 2), the same chains stayed at validation accuracy >= 0.999 for
2,000 steps (the slow test in tests/test_factorial_samplers.py reproduces both). The
estimate (20 Lanczos steps on exact Hessian-vector products) costs 41 gradient evaluations once,
counted in the freezing step's ``Info.grad_evals``. ``freeze_margin=None`` freezes P unchecked,
as before. See :mod:`samplers.metric`, which ``preconditioned_sghmc`` shares.

Deviations from the paper: the V_0 start above (the paper starts at 0 without correction, which
inflates early steps by up to 1/sqrt(1 - alpha)); the frozen metric by default, its step
checked against the stability limit; the temperature is explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from samplers import metric as rmsprop
from samplers.base import (
    Example,
    Info,
    Param,
    Sampler,
    finite_rows,
    keep_finite,
    noise,
    ones,
    value_and_grad,
)
from samplers.search import Dynamics

#: h·λ_max(P^½HP^½) below which the first-order update is stable on a quadratic.
STABILITY_LIMIT = 2.0


@dataclass(frozen=True)
class RiemannianLangevinState:
    theta: Tensor  # (C, D)
    square_avg: Tensor  # (C, D) V, the EMA of squared gradients (0 until the chain started)
    started: Tensor  # (C,) bool: the chain has seen a non-zero gradient, so V holds data
    precond: Tensor | None  # (C, D) P once frozen, else None
    step: int = 0
    all_started: bool = False  # every chain started: the plain EMA update, no selection
    # (C,) h·λ_max(P^½HP^½) of the adapted metric measured at the freeze (None before it, or
    # when freeze_margin is None): what the frozen metric was scaled down from
    sharpness: Tensor | None = None


class RiemannianLangevin(Sampler):
    name = "riemannian_langevin"
    numerics = "checked-freeze"  # the frozen step is checked against the stability limit
    dynamics = Dynamics("first order", geometry="diagonal")
    examples = {
        "toy": Example(dict(step_size=1e-3, temperature=1.0, freeze_after=1)),
        "light": Example(
            dict(step_size=1e-2, temperature=1e-6),
            1e-3,
            why="groks within 10,000 steps at some seeds",
        ),
    }
    params = {
        "step_size": Param(1e-3, low=0.0, low_open=True, why="the step size must be positive"),
        "temperature": Param(1e-5, low=0.0, why="a temperature is non-negative"),
        **rmsprop.PARAMS,
    }

    def init(self, theta: Tensor) -> RiemannianLangevinState:
        square_avg, started = rmsprop.init(theta)
        return RiemannianLangevinState(
            theta=theta, square_avg=square_avg, started=started, precond=None
        )

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        h = self.h("step_size", theta)
        u, g = value_and_grad(potential, theta, batch)
        t = state.step + 1

        square_avg, started, precond = state.square_avg, state.started, state.precond
        if precond is None:
            metric, square_avg, started = rmsprop.adapt(
                square_avg,
                started,
                state.all_started,
                g,
                self.h("alpha", theta),
                self.h("eps", theta),
            )
        else:
            metric = precond

        scale = (2.0 * h * self.h("temperature", theta) * metric).sqrt()
        proposal = theta - h * metric * g + scale * noise(theta, generator)
        ok = finite_rows(u, proposal)
        new_theta, square_avg = keep_finite(ok, (proposal, theta), (square_avg, state.square_avg))
        started = torch.where(ok, started, state.started)
        all_started = state.all_started or bool(started.all())

        grad_evals, sharpness = 1, state.sharpness
        if precond is None and self.freeze_after is not None and t >= self.freeze_after:
            precond = metric
            if self.freeze_margin is not None:
                precond, sharpness, extra = rmsprop.stable(
                    potential,
                    batch,
                    new_theta,
                    metric,
                    self.step_size,
                    STABILITY_LIMIT,
                    self.freeze_margin,
                    generator,
                )
                grad_evals += extra
        new = RiemannianLangevinState(
            theta=new_theta,
            square_avg=square_avg,
            started=started,
            precond=precond,
            step=t,
            all_started=all_started,
            sharpness=sharpness,
        )
        return new, Info(grad_evals=grad_evals, accept_prob=ones(theta), diverged=~ok, potential=u)
