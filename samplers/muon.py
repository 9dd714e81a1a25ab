"""Muon: momentum orthogonalized by Newton–Schulz on each weight matrix, AdamW on the rest.

Update of each ``"matrix"`` block W of theta (h = ``step_size``, mu = ``momentum``, wd =
``weight_decay``, G = the block of ∇U(theta)), per chain, as ``torch.optim.Muon``::

    B  <- mu·B + (1 - mu)·G                        # torch's lerp: an EMA of the gradient
    M  <- (1 - mu)·G + mu·B  if nesterov else B
    O  <- NS_5(M)                                   # ~ U·Vᵀ of M = U·S·Vᵀ, in bfloat16
    W  <- W·(1 - h·wd) - h·sqrt(max(1, fan_out/fan_in))·O

and AdamW (:func:`samplers.adamw.adamw_update`, with ``adam_step_size``, ``betas``, ``eps`` and
the same ``weight_decay``) on every other block: embeddings and biases, as
``torch.optim.Muon``'s documentation recommends ("Other parameters, such as bias, and embedding,
should be optimized by a standard method such as AdamW"). The read-out layer is a
``"matrix"`` like any other layer here and is orthogonalized (Jordan's recipe for language
models gives the classifier head to AdamW too). It is an optimizer (temperature 0).

K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024,
kellerjordan.github.io/posts/muon); on grokking, A. Tveit, B. Remseth, A. Skogvold, "Muon
Optimizer Accelerates Grokking" (2025, arXiv:2504.16041). NS_5 is torch's own Newton–Schulz
helper (``torch.optim._muon._zeropower_via_newtonschulz``: 5 quintic iterations with Jordan's
coefficients (3.4445, −4.7750, 2.0315), eps 1e-7, in bfloat16, so its singular values land in
about [0.5, 1.5] rather than at 1) and the step's scale is torch's ``_adjust_lr`` ("original",
Jordan's), applied to each chain's matrix in torch's orientation (``nn.Linear.weight``,
``(fan_out, fan_in)``, the transpose of the input-major storage here). One chain equals
``torch.optim.Muon`` (on the matrices) and ``torch.optim.AdamW`` (on the rest) step for step.

The blocks come from the potential's ``layout`` (:mod:`samplers.layout`). A potential without
one (the toy Gaussians) has no matrices: Muon is then AdamW on the whole of theta.

Deviations: none in the arithmetic. Cost: the helper takes one matrix, so the chains' matrices
are orthogonalized one after another (a vmapped helper rounds differently in bfloat16 and would
no longer match torch's optimizer); a many-chain job pays a Python loop of chains × matrices.
``torch.optim._muon`` is a private module (written against torch 2.13): a torch without it
cannot make a Muon (refused with the version), and the rest of the registry still imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from samplers.adamw import AdamW, adamw_update
from samplers.base import (
    Example,
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

try:
    from torch.optim._muon import (
        DEFAULT_A,
        DEFAULT_B,
        DEFAULT_C,
        EPS,
        _adjust_lr,
        _zeropower_via_newtonschulz,
    )
except ImportError:  # pragma: no cover - a torch without torch.optim.Muon
    _zeropower_via_newtonschulz = None


@dataclass(frozen=True)
class MuonState:
    theta: Tensor  # (C, D)
    momentum: Tensor  # (C, D) Muon's buffer B; used on the matrices' columns only
    exp_avg: Tensor  # (C, D) AdamW's m; used on the other columns only
    exp_avg_sq: Tensor  # (C, D) AdamW's v; used on the other columns only
    step: int = 0


def orthogonalize(update: Tensor, block: Block, ns_steps: int) -> Tensor:
    """torch's Newton–Schulz of each chain's block of ``update`` (C, size), in torch's
    ``(fan_out, fan_in)`` orientation: ``(C, size)`` in bfloat16."""
    matrices = update.unflatten(1, block.shape)  # (C, fan_in, fan_out)
    coefficients = (DEFAULT_A, DEFAULT_B, DEFAULT_C)
    out = [
        _zeropower_via_newtonschulz(m.T, coefficients, ns_steps, EPS).T for m in matrices.unbind(0)
    ]
    return torch.stack(out).flatten(1)


class Muon(Sampler):
    name = "muon"
    frontier = True
    samples = False
    # an optimizer cell, as AdamW and Lion: its momentum is not the heavy ball of the factorial's
    # "momentum" rows (an orthogonalized EMA), and AdamW moves its other blocks
    dynamics = Dynamics("adaptive", geometry="adaptive", temperature=None, decay="weight_decay")
    examples = {
        "toy": Example(dict(step_size=1e-2, adam_step_size=1e-2, weight_decay=0.1)),
        "light": Example(
            dict(step_size=2e-2, adam_step_size=1e-2, weight_decay=1.0),
            why="Jordan's step, AdamW's light step on the other blocks; piloted on add_mod31_mlp "
            "over 4,000 steps: memorized at 120 steps, validation accuracy 0.11 at 4,000 (wd 0.1: "
            "0.004 and ‖θ‖ 205)",
        ),
    }
    search_space = SearchSpace(
        axes=(
            Axis("step_size", (1e-2, 2e-2)),
            Axis("adam_step_size", (1.0, 3.0), ref_key="step_size"),
            Axis("weight_decay", (0.1, 1.0), ref_key="weight_decay"),
        ),
        fixed={"prior_precision": 0.0},
        note="Jordan's Muon step (0.02) and half of it; AdamW's on the other blocks at 1-3x the "
        "task's reference step; not yet piloted here",
    )
    params = {
        "step_size": Param(2e-2, low=0.0, low_open=True, why="the learning rate must be positive"),
        "momentum": Param(0.95, low=0.0, high=1.0, high_open=True, why="momentum is in [0, 1)"),
        "nesterov": Param(True, flag=True, why="Nesterov momentum on or off"),
        "weight_decay": Param(0.1, low=0.0, why="weight decay is non-negative"),
        "ns_steps": Param(
            5,
            low=1,
            high=99,
            integer=True,
            per_chain=False,
            why="torch's Newton–Schulz helper takes 1 to 99 iterations",
        ),
        "adam_step_size": Param(
            1e-3, low=0.0, low_open=True, why="AdamW's learning rate must be positive"
        ),
        # AdamW's, for the blocks that are not matrices
        "betas": AdamW.params["betas"],
        "eps": AdamW.params["eps"],
    }

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        if _zeropower_via_newtonschulz is None:  # pragma: no cover - an older torch
            raise RuntimeError(
                f"muon needs torch.optim.Muon, which torch {torch.__version__} lacks"
            )

    def init(self, theta: Tensor) -> MuonState:
        zeros = torch.zeros_like(theta)
        return MuonState(theta=theta, momentum=zeros, exp_avg=zeros, exp_avg_sq=zeros)

    def _step(self, state, potential, batch, generator):
        del generator  # deterministic given the batch
        theta = state.theta
        t = state.step + 1
        blocks = layout_of(potential, theta.shape[1])
        u, g = value_and_grad(potential, theta, batch)
        lr, mu = self.h("step_size", theta), self.h("momentum", theta)
        decay = self.h("weight_decay", theta)
        proposal, momentum = theta.clone(), state.momentum.clone()
        exp_avg, exp_avg_sq = state.exp_avg.clone(), state.exp_avg_sq.clone()

        for block in (b for b in blocks if b.kind == "matrix"):
            cols = slice(block.offset, block.stop)
            buf = torch.lerp(state.momentum[:, cols], g[:, cols], 1.0 - mu)
            update = torch.lerp(g[:, cols], buf, mu) if self.nesterov else buf
            ortho = orthogonalize(update, block, self.ns_steps)  # (C, size) bfloat16
            fan_in, fan_out = block.shape
            scaled_lr = _adjust_lr(lr, None, (fan_out, fan_in))
            decayed = theta[:, cols] * (1.0 - lr * decay)
            if isinstance(scaled_lr, Tensor):
                proposal[:, cols] = decayed - scaled_lr * ortho
            else:
                proposal[:, cols] = decayed.add(ortho, alpha=-scaled_lr)
            momentum[:, cols] = buf

        rest = [b for b in blocks if b.kind != "matrix"]
        if rest:
            cols = torch.cat([torch.arange(b.offset, b.stop) for b in rest]).to(theta.device)
            p, m, v = adamw_update(
                theta[:, cols],
                g[:, cols],
                state.exp_avg[:, cols],
                state.exp_avg_sq[:, cols],
                t,
                lr=self.h("adam_step_size", theta),
                betas=self.h("betas", theta),
                eps=self.h("eps", theta),
                weight_decay=decay,
            )
            proposal[:, cols], exp_avg[:, cols], exp_avg_sq[:, cols] = p, m, v

        ok = finite_rows(u, proposal)
        pairs = [
            (proposal, theta),
            (momentum, state.momentum),
            (exp_avg, state.exp_avg),
            (exp_avg_sq, state.exp_avg_sq),
        ]
        theta, momentum, exp_avg, exp_avg_sq = keep_finite(ok, *pairs)
        new = MuonState(theta, momentum, exp_avg, exp_avg_sq, step=t)
        return new, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)
