"""Riemannian Langevin dynamics with a diagonal RMSprop metric (preconditioned SGLD).

Update (h = ``step_size``, tau = ``temperature``, g = ∇U(theta), xi ~ N(0, I), t = step from 1)::

    V <- alpha·V + (1 - alpha)·g²,  V_0 = 1   (so V_t = alpha^t + (1 - alpha)·Σ_s alpha^(t-s)·g_s²)
    P  = 1 / (eps + sqrt(V))                    (diagonal, elementwise)
    theta <- theta - h·P·g + sqrt(2·h·tau·P)·xi

This is pSGLD (Li, Chen, Carlson & Carin, AAAI 2016), a diagonal instance of the Riemann manifold
Langevin dynamics of Girolami & Calderhead (2011) with metric G = P⁻¹. It targets
``p_tau ∝ exp(-U/tau)`` up to the curvature term Γ_i = tau·∂P_i/∂theta_i, which is dropped here
as in the paper and every library; while the metric adapts that drop is an O(1 - alpha) bias.
With ``freeze_after = n`` the metric stops adapting after n steps: P is then constant, Γ is
exactly zero and the chain is plain SGLD in a fixed preconditioned geometry (exact up to the O(h)
discretisation bias).

Bias correction, and why V starts at 1. RMSprop started at V_0 = 0 underestimates V early by the
factor 1 - alpha^t; Adam divides it out. Here the missing weight alpha^t is instead given to the
identity metric (V = 1): the average is unbiased from step 1 (its weights sum to one) *and* a
chain started exactly at a mode, where g = 0, takes plain SGLD steps (P ≈ 1) while the metric
learns the curvature over ~1/(1 - alpha) steps. Adam's division would give V̂ = 0 there, P = 1/eps,
and a first jump of sqrt(2·h·tau/eps) that throws the chain far out along its stiffest direction
(measured on the ill-conditioned Gaussian of the tests: a jump of 4.6 where the stiff sd is 0.1,
then thousands of steps frozen by the huge gradients it causes). ``eps`` still caps P at 1/eps
once the gradients are tiny, as on the zero-loss manifold of a memorised network.

Deviations from the paper: the V_0 = 1 start above (the paper starts at 0 without correction,
which inflates early steps by up to 1/sqrt(1 - alpha)); the temperature is explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from samplers.base import (
    Info,
    Param,
    Sampler,
    finite_rows,
    keep_finite,
    noise,
    ones,
    value_and_grad,
)


@dataclass(frozen=True)
class RiemannianLangevinState:
    theta: Tensor  # (C, D)
    square_avg: Tensor  # (C, D) V, the EMA of squared gradients
    precond: Tensor | None  # (C, D) P once frozen, else None
    step: int = 0


class RiemannianLangevin(Sampler):
    name = "riemannian_langevin"
    params = {
        "step_size": Param(1e-3, low=0.0, low_open=True, why="the step size must be positive"),
        "temperature": Param(1e-5, low=0.0, why="a temperature is non-negative"),
        "alpha": Param(
            0.99, low=0.0, high=1.0, high_open=True, why="the metric's EMA factor is in [0, 1)"
        ),
        "eps": Param(
            1e-4,
            low=0.0,
            low_open=True,
            why="eps caps the preconditioner at 1/eps; it must be positive",
        ),
        "freeze_after": Param(
            None,
            low=1,
            integer=True,
            per_chain=False,
            optional=True,
            why="the number of warm-up steps after which the metric is frozen",
        ),
    }

    def init(self, theta: Tensor) -> RiemannianLangevinState:
        return RiemannianLangevinState(theta=theta, square_avg=torch.ones_like(theta), precond=None)

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        h = self.h("step_size", theta)
        u, g = value_and_grad(potential, theta, batch)
        t = state.step + 1

        square_avg, precond = state.square_avg, state.precond
        if precond is None:
            alpha = self.h("alpha", theta)
            square_avg = alpha * square_avg + (1.0 - alpha) * g * g
            metric = 1.0 / (self.h("eps", theta) + square_avg.sqrt())
        else:
            metric = precond

        scale = (2.0 * h * self.h("temperature", theta) * metric).sqrt()
        proposal = theta - h * metric * g + scale * noise(theta, generator)
        ok = finite_rows(u, proposal)
        new_theta, square_avg = keep_finite(ok, (proposal, theta), (square_avg, state.square_avg))

        if precond is None and self.freeze_after is not None and t >= self.freeze_after:
            precond = metric
        new = RiemannianLangevinState(
            theta=new_theta,
            square_avg=square_avg,
            precond=precond,
            step=t,
        )
        return new, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)
