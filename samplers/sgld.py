"""Stochastic gradient Langevin dynamics (Welling & Teh, ICML 2011).

Update (h = ``step_size``, tau = ``temperature``, xi ~ N(0, I), g = ∇U(theta) on the batch)::

    theta <- theta - h·g + sqrt(2·h·tau)·xi

This is the Euler–Maruyama discretisation of the overdamped Langevin SDE
``d theta = -∇U dt + sqrt(2 tau) dW``, whose stationary law is ``p_tau ∝ exp(-U/tau)``: the
thermodynamic picture of learning as Brownian motion in the loss landscape. The discrete chain has
an O(h) bias in its stationary law (no Metropolis correction) and, with minibatches, extra
gradient noise of order h·Var[g].

Deviations from the paper: Welling & Teh write the update for the unnormalised log posterior
with step ε/2 and noise N(0, ε) at temperature 1 and decay ε over time; here U is a *mean* loss
plus prior, the temperature is explicit (tau = 1/N is the Bayesian posterior), and the step size is
constant (decay it from the outside if needed). At tau = 0 the update is exactly gradient descent:
noise is still drawn, so a temperature grid shares common random numbers and the trajectory for
tau = 0 equals ``sgd`` with zero momentum bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from samplers.base import (
    Example,
    Info,
    Param,
    Sampler,
    finite_rows,
    gradient_step,
    keep_finite,
    noise,
    ones,
    value_and_grad,
)
from samplers.search import Dynamics


@dataclass(frozen=True)
class SGLDState:
    theta: Tensor  # (C, D)
    step: int = 0


class SGLD(Sampler):
    name = "sgld"
    dynamics = Dynamics("first order")
    examples = {
        "toy": Example(dict(step_size=1e-3, temperature=1.0)),
        "light": Example(
            dict(step_size=3.0, temperature=1e-6),
            3e-3,
            why="stops short of 0.99 validation accuracy within 10,000 steps (0.975 at best)",
        ),
    }
    params = {
        "step_size": Param(1e-3, low=0.0, low_open=True, why="the step size must be positive"),
        "temperature": Param(
            1e-5, low=0.0, why="a temperature is non-negative (0 is gradient descent)"
        ),
    }

    def init(self, theta: Tensor) -> SGLDState:
        return SGLDState(theta=theta)

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        h = self.h("step_size", theta)
        u, g = value_and_grad(potential, theta, batch)
        scale = (2.0 * h * self.h("temperature", theta)) ** 0.5
        # one fresh buffer, updated in place; the same gradient-step op as sgd's, so that at
        # tau = 0 the two agree bit for bit
        proposal = gradient_step(theta, g, h).add_(noise(theta, generator).mul_(scale))
        ok = finite_rows(u, proposal)
        (new_theta,) = keep_finite(ok, (proposal, theta))
        new = SGLDState(theta=new_theta, step=state.step + 1)
        return new, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)
