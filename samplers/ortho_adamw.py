"""⊥AdamW: AdamW on the gradient's part orthogonal to the weights (Prieto et al. 2025).

Update (g = ∇U(theta), per chain; then AdamW's update of :mod:`samplers.adamw` on g⊥)::

    g⊥    <- g - (g·theta / ‖theta‖²)·theta        # ⊥Grad: g⊥·theta = 0
    theta <- AdamW(theta, g⊥)                      # moments, bias correction, decoupled decay

L. Prieto, M. Barsbey, P. A. M. Mediano, T. Birdal, "Grokking at the Edge of Numerical
Stability" (ICLR 2025): past memorization, cross-entropy keeps falling by scaling the logits up,
along theta itself ("naive loss minimization"), until the softmax's floating-point arithmetic
breaks down (softmax collapse); removing the gradient's component along theta takes that
direction away, and their ⊥AdamW groks without weight decay (published: lr 5e-3 to 1e-2, no
weight decay, so the default decay here is 0). It is an optimizer (temperature 0). The AdamW
arithmetic, the Grokfast option included, is :class:`~samplers.adamw.AdamW`'s: this class only
projects the gradient first.

Deviations: the projection is on each chain's whole theta, the paper's equation. The authors'
code (the ``OrthoGrad`` wrapper) projects each parameter tensor separately and then rescales
g⊥ to the norm of g; neither is done here. A chain at theta = 0 has no direction to remove:
its gradient is used as it is (the projection's denominator is 0 there).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from samplers.adamw import AdamW
from samplers.base import Example, Param
from samplers.search import Axis, SearchSpace


def orthogonal_part(g: Tensor, theta: Tensor) -> Tensor:
    """``g - (g·theta / ‖theta‖²)·theta`` per row of ``g`` and ``theta`` (C, D); a row with
    ``theta = 0`` keeps its ``g``."""
    norm_sq = theta.square().sum(dim=1, keepdim=True)  # (C, 1)
    tiny = torch.finfo(theta.dtype).tiny
    coefficient = (g * theta).sum(dim=1, keepdim=True) / norm_sq.clamp(min=tiny)
    return g - torch.where(norm_sq > 0, coefficient, 0.0) * theta


class OrthoAdamW(AdamW):
    name = "ortho_adamw"
    frontier = True
    examples = {
        "toy": Example(dict(step_size=1e-2)),
        "light": Example(
            dict(step_size=1e-2),
            why="Prieto et al.'s setting (no decay); piloted on add_mod31_mlp: grokked at 3,820 "
            "and 3,860 steps (lr 1e-2, 3e-3; one chain each), diverged in norm at 3e-2, and "
            "collapsed (training accuracy < 0.3) with any weight decay 0.1-1",
        ),
    }
    search_space = SearchSpace(
        axes=(Axis("step_size", (5e-3, 1e-2)),),
        fixed={"weight_decay": 0.0, "prior_precision": 0.0},
        note="the published setting (lr 5e-3 to 1e-2, no weight decay), betas as in the task's "
        "reference; not yet piloted here",
        from_reference=("betas",),
    )
    params = {
        **AdamW.params,
        "step_size": Param(1e-2, low=0.0, low_open=True, why="the learning rate must be positive"),
        "weight_decay": dataclasses.replace(AdamW.params["weight_decay"], default=0.0),
    }

    def _gradient(self, g: Tensor, theta: Tensor) -> Tensor:
        return orthogonal_part(g, theta)
