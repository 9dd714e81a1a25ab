"""Lion: the sign of an interpolated momentum, with optional row-norm clipping (Chen et al. 2023).

Update (h = ``step_size``, wd = ``weight_decay``, (b1, b2) = ``betas``, g = ∇U(theta))::

    c     <- b1·m + (1 - b1)·g
    theta <- theta·(1 - h·wd) - h·sign(c)          # = theta - h·(sign(c) + wd·theta)
    m     <- b2·m + (1 - b2)·g

X. Chen et al., "Symbolic Discovery of Optimization Algorithms" (NeurIPS 2023), Program 1, in
the order of the ``lion-pytorch`` package (decay first, then the sign step; sign(0) = 0). Every
coordinate moves by exactly h (plus the decay), so h is typically 3-10x smaller than AdamW's
and wd 3-10x larger; defaults b1 0.9, b2 0.99. It is an optimizer (temperature 0).

Optional row clipping (``max_row_norm``, None: off), as in the cliptogrok study of grokking
with weight-norm clipping: after each update every unit's weight vector in every weight matrix
is rescaled to an L2 norm of at most ``max_row_norm``, ``w <- w·min(1, max_row_norm/‖w‖)``.
A unit's vector is a row of ``torch.nn.Linear.weight`` (its incoming weights), which in this
repository's input-major storage is a column of a ``"matrix"`` block, and a token's row of an
``"embedding"`` block (:mod:`samplers.layout`); biases are not clipped. The blocks come from the
potential's ``layout``: a potential without one has no weight matrices, and clipping it is an
error (:class:`~samplers.base.HyperparameterError`) rather than silently nothing.

Deviations: none from Program 1. A chain whose gradient is not finite is flagged diverged and
stands still even where sign() would have turned an infinite entry into ±1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from samplers.base import (
    Example,
    HyperparameterError,
    Info,
    Param,
    Sampler,
    finite_rows,
    keep_finite,
    ones,
    value_and_grad,
)
from samplers.layout import Block, layout_of
from samplers.search import Axis, Dynamics, SearchSpace


@dataclass(frozen=True)
class LionState:
    theta: Tensor  # (C, D)
    exp_avg: Tensor  # (C, D) momentum m
    step: int = 0


def clip_rows(theta: Tensor, blocks: tuple[Block, ...], max_norm: float | Tensor) -> Tensor:
    """``theta`` (C, D) with every unit's weight vector in its ``"matrix"`` and ``"embedding"``
    blocks rescaled to a norm of at most ``max_norm`` (a number or ``(C, 1)``); a new tensor."""
    out = theta.clone()
    limit = max_norm.unsqueeze(-1) if isinstance(max_norm, Tensor) else max_norm  # (C, 1, 1)
    for block in blocks:
        if block.kind == "vector":
            continue
        w = block.of(out)  # (C, fan_in, fan_out) or (C, vocabulary, width): a view of out
        axis = 1 if block.kind == "matrix" else 2  # a unit's column, a token's row
        norm = w.norm(dim=axis, keepdim=True)
        w.mul_((limit / norm).clamp(max=1.0))  # norm 0: inf, clamped to 1
    return out


class Lion(Sampler):
    name = "lion"
    frontier = True
    samples = False
    dynamics = Dynamics("adaptive", geometry="adaptive", temperature=None, decay="weight_decay")
    examples = {
        "toy": Example(dict(step_size=1e-3, weight_decay=0.1)),
        "light": Example(
            dict(step_size=1e-3, weight_decay=0.0, max_row_norm=2.0),
            why="the cliptogrok recipe (clipping, no decay); piloted on add_mod31_mlp over 4,000 "
            "steps: memorized at 160-480 steps, validation accuracy still 0.0 at 4,000 (wd 1-10 "
            "without clipping did no better); tracked for its cost and its time to memorize",
        ),
    }
    search_space = SearchSpace(
        axes=(
            Axis("step_size", (0.1, 0.3), ref_key="step_size"),
            Axis("weight_decay", (3.0, 10.0), ref_key="weight_decay"),
        ),
        fixed={"prior_precision": 0.0},
        note="Chen et al.'s rule: a step 3-10x smaller and a decay 3-10x larger than the task's "
        "AdamW reference; not yet piloted here",
    )
    params = {
        "step_size": Param(1e-4, low=0.0, low_open=True, why="the learning rate must be positive"),
        "weight_decay": Param(0.0, low=0.0, why="weight decay is non-negative"),
        "betas": Param(
            (0.9, 0.99),
            low=0.0,
            high=1.0,
            pair=True,
            why="each beta is an interpolation factor in [0, 1]",
        ),
        "max_row_norm": Param(
            None,
            low=0.0,
            low_open=True,
            optional=True,
            why="a unit's weight norm is clipped to a positive bound (None: no clipping)",
        ),
    }

    def init(self, theta: Tensor) -> LionState:
        return LionState(theta=theta, exp_avg=torch.zeros_like(theta))

    def _step(self, state, potential, batch, generator):
        del generator  # deterministic given the batch
        theta = state.theta
        clip = self.hparams["max_row_norm"]
        if clip is not None:
            blocks = layout_of(potential, theta.shape[1])
            if all(b.kind == "vector" for b in blocks):
                raise HyperparameterError(
                    f"{self.name}: max_row_norm clips the rows of weight matrices, and the "
                    "potential states none (no `layout` with a 'matrix' or 'embedding' block; "
                    "see samplers.layout)"
                )
        lr = self.h("step_size", theta)
        b1, b2 = self.h("betas", theta)
        u, g = value_and_grad(potential, theta, batch)

        direction = (b1 * state.exp_avg + (1.0 - b1) * g).sign_()
        decayed = theta * (1.0 - lr * self.h("weight_decay", theta))
        proposal = decayed - lr * direction
        if clip is not None:
            proposal = clip_rows(proposal, blocks, self.h("max_row_norm", theta))
        exp_avg = b2 * state.exp_avg + (1.0 - b2) * g

        # sign() maps an infinite gradient to ±1, so the proposal alone may look finite: the
        # new momentum, which holds the gradient itself, is checked too
        ok = finite_rows(u, proposal) & torch.isfinite(exp_avg.sum(dim=1))
        theta, exp_avg = keep_finite(ok, (proposal, theta), (exp_avg, state.exp_avg))
        new = LionState(theta=theta, exp_avg=exp_avg, step=state.step + 1)
        return new, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)
