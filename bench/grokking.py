"""When a chain has memorized and grokked: the per-chain record and the tracker that keeps it.

At every evaluation :class:`Tracker` sees each chain's training and validation accuracy and
keeps, per chain: the first evaluation with training accuracy ≥ the target (``t_mem``) and the
position there; Power et al.'s first touch of the target on validation (``t_touch``); the start
of the current unbroken stretch of evaluations at or above the target; and, with a finite
confirmation window ``W``, the start of the first stretch that held for ``W`` steps. Sustained
grokking (``t_grok``) is that confirmed start, or with no window (``None``, the rest of the run)
the start of a stretch that holds to the end. A diverged chain never counts as grokked. The
definitions are stated for users in :mod:`bench.run`'s docstring.

:func:`sustained_time` applies the same rule (with no window) to a recorded curve after the run,
for any threshold: the time to 0.95 and to 0.99 validation accuracy of issue 18, read from the
curves a result keeps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass
class ChainResult:
    """What happened to one chain."""

    chain: int
    seed: int
    hparams: dict[str, Any]
    t_mem: int | None  # steps; None = not reached (censored)
    t_grok: int | None  # sustained grokking (see the module docstring)
    t_mem_grad_evals: int | None
    t_grok_grad_evals: int | None
    t_mem_seconds: float | None
    t_grok_seconds: float | None
    censored_at: int  # the last step run: where an unreached target is censored
    t_touch: int | None = None  # Power et al.'s first touch of the target
    t_touch_grad_evals: int | None = None
    generalized: bool = False  # ends the run finite with validation accuracy >= target
    diverged: bool = False
    diverged_step: int | None = None  # the evaluation step at which it was seen
    divergent_transitions: int = 0  # steps the sampler flagged (HMC: ΔH > 1000 or NaN)
    accept_rate: float = 1.0  # mean acceptance probability over the run
    final: dict[str, float] = field(default_factory=dict)  # last evaluation's metrics
    # why it diverged (None: it did not, or a record from before causes were kept): "sampler"
    # (the sampler's own flag), "non-finite" (position or loss), "norm growth" (‖θ‖ past the
    # spec's max_norm_growth × its start)
    diverged_cause: str | None = None

    @property
    def memorized(self) -> bool:
        return self.t_mem is not None

    @property
    def grokked(self) -> bool:
        return self.t_grok is not None


def sustained_time(
    steps: Sequence[float], values: Sequence[float], threshold: float, *, diverged: bool = False
) -> float | None:
    """The first evaluated step from which ``values`` stay ``>= threshold`` through the end of
    the curve: sustained grokking at ``threshold``, as :class:`Tracker` defines it with no
    window (``confirm=None``), so that at the task's target it is the chain's ``t_grok``.

    ``steps`` are the evaluation times, ascending (steps, or gradient evaluations: any clock
    of the same evaluations), ``values`` the metric there (validation accuracy). ``None`` when
    the last value is below the threshold (not reached: censored at the last step), when the
    curve is empty, or when the chain ``diverged`` (it never counts as grokked). A NaN value
    breaks a stretch, as it does in the tracker (NaN ≥ t is false). Returned as given in
    ``steps``.
    """
    steps, values = list(steps), list(values)
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values: one value per step")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError("steps must be strictly increasing (one value per evaluation)")
    if diverged:
        return None
    start = None
    # walk back from the end: the stretch ends at the first value below the threshold
    for step, value in zip(reversed(steps), reversed(values), strict=True):
        if not value >= threshold:
            break
        start = step
    return start


#: Why a chain counts as diverged, as :attr:`ChainResult.diverged_cause` records it.
DIVERGENCE_CAUSES = ("sampler", "non-finite", "norm growth")


class Tracker:
    """Per chain: the first memorisation, the first touch and the current stretch of the target
    on validation, the confirmed grokking time, and the position at memorisation."""

    def __init__(
        self, chains: int, device: torch.device, target: float | None, confirm: int | None
    ) -> None:
        self.target = target
        self.confirm = confirm
        self.chains = chains
        Mark = tuple[int, int, float] | None  # (step, gradient evaluations, seconds)
        self.t_mem: list[Mark] = [None] * chains
        self.t_touch: list[Mark] = [None] * chains
        self.stretch: list[Mark] = [None] * chains  # start of the current stretch >= target
        self.t_grok: list[Mark] = [None] * chains  # confirmed (finite window only)
        self.dead = torch.zeros(chains, dtype=torch.bool, device=device)
        self.dead_step: list[int | None] = [None] * chains
        self.dead_cause: list[str | None] = [None] * chains
        self.theta_mem: Tensor | None = None  # (C, D) position at t_mem (NaN until reached)

    def update(self, step, grad_evals, seconds, metrics, theta) -> None:
        if self.target is None or "train_acc" not in metrics:
            return
        mem = (metrics["train_acc"] >= self.target).tolist()
        above = (metrics["val_acc"] >= self.target).tolist()
        dead = self.dead.tolist()
        mark = (step, grad_evals, seconds)
        for c in range(self.chains):
            if dead[c]:
                continue
            if mem[c] and self.t_mem[c] is None:
                self.t_mem[c] = mark
                if self.theta_mem is None:
                    self.theta_mem = torch.full_like(theta, math.nan)
                self.theta_mem[c] = theta[c]
            if not above[c]:
                self.stretch[c] = None
                continue
            if self.t_touch[c] is None:
                self.t_touch[c] = mark
            if self.stretch[c] is None:
                self.stretch[c] = mark
            held = step - self.stretch[c][0]
            if self.confirm is not None and self.t_grok[c] is None and held >= self.confirm:
                self.t_grok[c] = self.stretch[c]

    def mark_dead(
        self, newly: Tensor, step: int, cause: str | list[str | None] | None = None
    ) -> None:
        """Chains ``newly`` (a (C,) bool mask) diverged at ``step``; ``cause`` is one of
        :data:`DIVERGENCE_CAUSES` for all of them, or a list with one entry per chain."""
        self.dead |= newly
        for c in newly.nonzero().flatten().tolist():
            self.dead_step[c] = step
            self.dead_cause[c] = cause[c] if isinstance(cause, list) else cause

    def grokked(self, c: int) -> tuple[int, int, float] | None:
        """Chain ``c``'s sustained grokking time, as far as the run has gone: the confirmed one
        (finite window), else the start of a stretch that holds to the end (``None`` window)."""
        if self.target is None or bool(self.dead[c]):
            return None
        return self.stretch[c] if self.confirm is None else self.t_grok[c]

    def all_done(self) -> bool:
        """Every chain is dead, or has confirmed grokking within a finite window."""
        dead = self.dead.tolist()
        if self.target is None or self.confirm is None:
            return all(dead)
        return all(g is not None or d for g, d in zip(self.t_grok, dead, strict=True))

    def summary(self) -> str:
        mem = sum(t is not None for t in self.t_mem)
        above = sum(t is not None for t in self.stretch)
        dead = int(self.dead.sum())
        return f"mem {mem}/{self.chains} val>=target {above}/{self.chains}" + (
            f" diverged {dead}" if dead else ""
        )

    def chain_result(self, c, *, seed, hparams, end, divergent, accept_rate, final):
        mem, grok, touch = self.t_mem[c], self.grokked(c), self.t_touch[c]
        generalized = (
            self.target is not None
            and not bool(self.dead[c])
            and final.get("val_acc", math.nan) >= self.target
        )
        return ChainResult(
            chain=c,
            seed=seed,
            hparams=hparams,
            t_mem=mem[0] if mem else None,
            t_grok=grok[0] if grok else None,
            t_mem_grad_evals=mem[1] if mem else None,
            t_grok_grad_evals=grok[1] if grok else None,
            t_mem_seconds=mem[2] if mem else None,
            t_grok_seconds=grok[2] if grok else None,
            censored_at=end,
            t_touch=touch[0] if touch else None,
            t_touch_grad_evals=touch[1] if touch else None,
            generalized=generalized,
            diverged=bool(self.dead[c]),
            diverged_step=self.dead_step[c],
            diverged_cause=self.dead_cause[c],
            divergent_transitions=divergent,
            accept_rate=accept_rate,
            final=final,
        )
