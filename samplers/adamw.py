"""AdamW: Adam with decoupled weight decay, the reference optimizer of the grokking literature.

Update (h = ``step_size``, wd = ``weight_decay``, (b1, b2) = ``betas``, g = ∇U(theta), t = step
count from 1)::

    theta <- theta·(1 - h·wd)                       # decoupled decay (Loshchilov & Hutter 2019)
    m     <- b1·m + (1 - b1)·g
    v     <- b2·v + (1 - b2)·g²
    theta <- theta - h·m̂ / (sqrt(v̂) + eps),   m̂ = m/(1 - b1^t),  v̂ = v/(1 - b2^t)

the same arithmetic as ``torch.optim.AdamW`` (Kingma & Ba 2015), applied row-wise to C chains.
It targets nothing: it is an optimizer (temperature 0). Grokking papers use lr 1e-3, wd 1.0,
betas (0.9, 0.98) (Nanda et al. 2023); the potential should then carry no prior term, because the
decay is already decoupled here.

Optional Grokfast-EMA filter (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow
Gradients"): before the Adam moments, the gradient is replaced by ``g + lamb·e`` with
``e <- a·e + (1 - a)·g`` (``grokfast_alpha`` = a, published 0.98; ``grokfast_lamb`` = lamb,
published 2.0; lamb = 0, the default, turns the filter off).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from samplers.base import (
    Example,
    Hyper,
    Info,
    Param,
    Sampler,
    finite_rows,
    keep_finite,
    ones,
    value_and_grad,
)
from samplers.search import Dynamics


def adamw_update(
    theta: Tensor,
    g: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    t: int,
    *,
    lr: Hyper,
    betas: tuple[Hyper, Hyper],
    eps: Hyper,
    weight_decay: Hyper,
) -> tuple[Tensor, Tensor, Tensor]:
    """One AdamW step of the module docstring on ``theta`` (C, n) with gradient ``g``, the
    moments before it and its count ``t`` (from 1): ``(proposal, exp_avg, exp_avg_sq)``, new
    tensors. Hyperparameters are numbers or ``(C, 1)`` (:func:`~samplers.base.per_chain`).
    Shared by the optimizers that use AdamW's arithmetic on all or part of theta (⊥AdamW, Muon's
    non-matrix parameters)."""
    b1, b2 = betas
    exp_avg = torch.lerp(exp_avg, g, 1.0 - b1)
    exp_avg_sq = b2 * exp_avg_sq + (1.0 - b2) * g * g
    bias1 = 1.0 - b1**t
    bias2_sqrt = (1.0 - b2**t) ** 0.5
    denom = exp_avg_sq.sqrt() / bias2_sqrt + eps
    decayed = theta * (1.0 - lr * weight_decay)
    proposal = decayed - (lr / bias1) * exp_avg / denom
    return proposal, exp_avg, exp_avg_sq


@dataclass(frozen=True)
class AdamWState:
    theta: Tensor  # (C, D)
    exp_avg: Tensor  # (C, D) first moment m
    exp_avg_sq: Tensor  # (C, D) second moment v
    grokfast: Tensor | None  # (C, D) slow-gradient EMA, None when the filter is off
    step: int = 0


class AdamW(Sampler):
    name = "adamw"
    dynamics = Dynamics("adaptive", geometry="adaptive", temperature=None, decay="weight_decay")
    examples = {
        "toy": Example(dict(step_size=1e-2, weight_decay=0.1)),
        "light": Example(
            dict(step_size=1e-2, weight_decay=1.0, betas=(0.9, 0.98)),
            why="the light task's reference (decoupled decay, so λ = 0); groks in 1-4k steps",
        ),
    }
    samples = False
    params = {
        "step_size": Param(1e-3, low=0.0, low_open=True, why="the learning rate must be positive"),
        "weight_decay": Param(1.0, low=0.0, why="weight decay is non-negative"),
        "betas": Param(
            (0.9, 0.98),
            low=0.0,
            high=1.0,
            high_open=True,
            pair=True,
            why="each beta is an EMA factor in [0, 1)",
        ),
        "eps": Param(1e-8, low=0.0, low_open=True, why="eps keeps the denominator positive"),
        "grokfast_alpha": Param(
            0.98, low=0.0, high=1.0, high_open=True, why="an EMA factor in [0, 1)"
        ),
        "grokfast_lamb": Param(0.0, low=0.0, why="the amplification of slow gradients, >= 0"),
    }

    def init(self, theta: Tensor) -> AdamWState:
        filtered = isinstance(self.grokfast_lamb, Tensor) or self.grokfast_lamb > 0
        return AdamWState(
            theta=theta,
            exp_avg=torch.zeros_like(theta),
            exp_avg_sq=torch.zeros_like(theta),
            grokfast=torch.zeros_like(theta) if filtered else None,
        )

    def _gradient(self, g: Tensor, theta: Tensor) -> Tensor:
        """The gradient the update uses: ``g`` itself here (a subclass transforms it,
        :class:`~samplers.ortho_adamw.OrthoAdamW` projects it)."""
        del theta
        return g

    def _step(self, state, potential, batch, generator):
        del generator  # deterministic given the batch
        theta = state.theta
        t = state.step + 1
        lr = self.h("step_size", theta)
        b1, b2 = self.h("betas", theta)
        u, g = value_and_grad(potential, theta, batch)
        g = self._gradient(g, theta)

        grokfast = state.grokfast
        if grokfast is not None:
            a = self.h("grokfast_alpha", theta)
            grokfast = a * grokfast + (1.0 - a) * g
            g = g + self.h("grokfast_lamb", theta) * grokfast

        proposal, exp_avg, exp_avg_sq = adamw_update(
            theta,
            g,
            state.exp_avg,
            state.exp_avg_sq,
            t,
            lr=lr,
            betas=(b1, b2),
            eps=self.h("eps", theta),
            weight_decay=self.h("weight_decay", theta),
        )

        ok = finite_rows(u, proposal)
        pairs = [(proposal, theta), (exp_avg, state.exp_avg), (exp_avg_sq, state.exp_avg_sq)]
        if grokfast is not None:
            pairs.append((grokfast, state.grokfast))
        theta, exp_avg, exp_avg_sq, *rest = keep_finite(ok, *pairs)
        new = AdamWState(
            theta=theta,
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            grokfast=rest[0] if rest else None,
            step=t,
        )
        return new, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)
