"""Stochastic gradient Hamiltonian Monte Carlo (Chen, Fox & Guestrin, ICML 2014).

Update in the SGD-with-momentum form of the paper's Eq. (15) (h = ``step_size``, the learning rate
eta; alpha = ``friction``; tau = ``temperature``; xi ~ N(0, I); g = ∇U(theta) on the batch)::

    v     <- (1 - alpha)·v - h·g + sqrt(2·alpha·h·tau)·xi
    theta <- theta + v

It discretises second-order Langevin dynamics with friction, whose stationary law for theta is
``p_tau ∝ exp(-U/tau)`` (and v ~ N(0, h·tau)); ``v`` is the momentum times the step (v = ε·r,
h = ε², alpha = ε·C in the paper's notation). At tau = 0 it is SGD with momentum mu = 1 - alpha:
the velocity here equals -h times the velocity of ``sgd``.

Ordering matters: the momentum is updated first and the position moves with the *new* momentum
(symplectic Euler). The explicit ordering (move with the old momentum) is unstable unless
alpha > h·lambda_max of the Hessian.

Deviations from the paper: the estimate B̂ of the gradient-noise covariance is taken as 0 (the
paper's recommended practical choice), and there is no Metropolis step. Unlike BlackJAX's
``sghmc``, the momentum is *not* redrawn from N(0, I) at every step: redrawing would fix the
kinetic temperature at 1 whatever tau is, so the sampler would not temper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

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


@dataclass(frozen=True)
class SGHMCState:
    theta: Tensor  # (C, D)
    velocity: Tensor  # (C, D)
    step: int = 0


class SGHMC(Sampler):
    name = "sghmc"
    dynamics = Dynamics("momentum", momentum=("friction", True))
    examples = {
        "toy": Example(dict(step_size=1e-3, friction=0.1, temperature=1.0)),
        "light": Example(
            dict(step_size=0.3, friction=0.1, temperature=1e-6),
            3e-3,
            why="groks within 10,000 steps at some seeds",
        ),
    }
    params = {
        "step_size": Param(1e-3, low=0.0, low_open=True, why="the learning rate must be positive"),
        "friction": Param(
            0.1,
            low=0.0,
            high=1.0,
            low_open=True,
            why="friction alpha in (0, 1]: 0 removes the damping that balances the noise, "
            "above 1 the velocity flips sign every step",
        ),
        "temperature": Param(
            1e-5, low=0.0, why="a temperature is non-negative (0 is SGD with momentum)"
        ),
    }

    def init(self, theta: Tensor) -> SGHMCState:
        return SGHMCState(theta=theta, velocity=torch.zeros_like(theta))

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        h = self.h("step_size", theta)
        alpha = self.h("friction", theta)
        u, g = value_and_grad(potential, theta, batch)
        scale = (2.0 * alpha * h * self.h("temperature", theta)) ** 0.5
        velocity = (1.0 - alpha) * state.velocity - h * g + scale * noise(theta, generator)
        proposal = theta + velocity
        ok = finite_rows(u, proposal)
        theta, velocity = keep_finite(ok, (proposal, theta), (velocity, state.velocity))
        new = SGHMCState(theta=theta, velocity=velocity, step=state.step + 1)
        return new, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)
