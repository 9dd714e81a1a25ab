"""SGD with heavy-ball momentum: the optimizer that grokking was first seen with.

Update (h = ``step_size``, mu = ``momentum``, g = ∇U(theta) on the batch)::

    v     <- mu·v + g
    theta <- theta - h·v

This is ``torch.optim.SGD`` with momentum and no dampening (Polyak 1964; Sutskever et al. 2013).
It targets nothing: it descends to a minimum of U. Weight decay lives in the potential as the prior
term ½·lambda·‖theta‖² (``task.potential(prior_precision=lambda)``), which for SGD is the same as
coupled L2 weight decay. With mu = 0 this is plain gradient descent, and SGLD at temperature 0
reproduces it bit for bit.
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
    gradient_step,
    keep_finite,
    ones,
    value_and_grad,
)
from samplers.search import Dynamics


@dataclass(frozen=True)
class SGDState:
    theta: Tensor  # (C, D)
    velocity: Tensor  # (C, D)
    step: int = 0


class SGD(Sampler):
    name = "sgd"
    dynamics = Dynamics("momentum", temperature=None, momentum=("momentum", False))
    examples = {
        "toy": Example(dict(step_size=1e-2, momentum=0.9)),
        "light": Example(
            dict(step_size=0.3, momentum=0.9),
            3e-3,
            why="stops just short of 0.99 validation accuracy within 10,000 steps (0.988 at best)",
        ),
    }
    samples = False
    params = {
        "step_size": Param(1e-2, low=0.0, low_open=True, why="the learning rate must be positive"),
        "momentum": Param(0.0, low=0.0, high=1.0, high_open=True, why="momentum must be in [0, 1)"),
    }

    def init(self, theta: Tensor) -> SGDState:
        return SGDState(theta=theta, velocity=torch.zeros_like(theta))

    def _step(self, state, potential, batch, generator):
        del generator  # deterministic given the batch
        theta = state.theta
        u, g = value_and_grad(potential, theta, batch)
        mu = self.h("momentum", theta)
        # one fresh buffer, updated in place: the same two roundings as mu·v + g without its
        # temporary; with no momentum v is g itself (mu·v + g = g), as in SGLD at tau = 0
        velocity = g if isinstance(mu, float | int) and mu == 0 else (state.velocity * mu).add_(g)
        proposal = gradient_step(theta, velocity, self.h("step_size", theta))
        ok = finite_rows(u, proposal)
        theta, velocity = keep_finite(ok, (proposal, theta), (velocity, state.velocity))
        new = SGDState(theta=theta, velocity=velocity, step=state.step + 1)
        return new, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)
