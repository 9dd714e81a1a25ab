"""A leaderboard's numbers, computed from the store.

Per sampler, over its chosen configuration's fresh-seed chains: the Kaplan–Meier estimates of
gradient evaluations (also steps and seconds) to sustained grokking, of Power et al.'s first
touch and of memorization, and of t_grok / t_mem; how many chains grokked, how many *end* the
run generalized, how many diverged; the mean Metropolis acceptance; and effect sizes (ratios of
KM medians with bootstrap intervals) against the random-walk baselines of the claim (SGD, SGLD)
and AdamW. Rows are ranked by the median gradient evaluations to grok; rows whose median is not
reached rank last and are never dropped. Rendering is :mod:`bench.markdown`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import samplers
from bench import metrics
from bench.metrics import Ratio, Survival
from bench.store import Compare, Entry, RunRecord, Store


@dataclass
class SamplerStats:
    """One row of a leaderboard: a sampler's chosen configuration on fresh seeds."""

    sampler: str
    entry: Entry
    runs: list[RunRecord]
    evals_per_step: int
    budget_evals: int
    n: int
    grokked: int  # sustained grokking
    touched: int  # reached the target at least once (Power et al.)
    generalized: int  # end the run finite with validation accuracy >= target
    memorized: int
    diverged: int
    grok_evals: Survival
    grok_steps: Survival
    grok_seconds: Survival
    touch_evals: Survival
    mem_evals: Survival
    ratio: Survival | None  # t_grok / t_mem over the chains that memorised after step 0
    accept: float | None  # mean acceptance probability (Metropolis samplers only)
    peer: str | None = None  # the library of a peer implementation (``blackjax``), else None
    effects: dict[str, Ratio] = field(default_factory=dict)  # against sgd, sgld, adamw
    rank: int = 0

    @property
    def chains(self):
        return [c for r in self.runs for c in r.result.chains]

    @property
    def is_reference(self) -> bool:
        return self.entry.role == "reference"

    @property
    def label(self) -> str:
        return f"{self.sampler} (reference)" if self.is_reference else self.sampler


@dataclass
class Board:
    """One comparison (one task, one start) as numbers."""

    task: str
    description: str
    target: float
    compare: Compare
    rows: list[SamplerStats]  # the tuned samplers, ranked
    against: list[str]  # the samplers effect sizes are computed against, where present
    reference: SamplerStats | None = None  # the task's own optimizer setting, untuned
    devices: list[str] = field(default_factory=list)
    code_versions: list[str] = field(default_factory=list)
    hours: float = 0.0  # wall-clock of every run behind the board, tuning included

    @property
    def slug(self) -> str:
        return self.task if self.start == "init" else f"{self.task}.{self.start}"

    @property
    def start(self) -> str:
        return self.compare.protocol.get("start", "init")

    @property
    def eval_every(self) -> int:
        """The evaluation grid in gradient evaluations: every time is known to this resolution."""
        return int(self.compare.protocol.get("eval_every") or 1)

    @property
    def all_rows(self) -> list[SamplerStats]:
        return self.rows + ([self.reference] if self.reference is not None else [])


def build_board(store: Store, compare: Compare, description: str | None = None) -> Board:
    """The leaderboard of one comparison, computed from its stored runs (each read once)."""
    protocol = compare.protocol
    rows = []
    wall = 0.0
    devices: list[str] = []
    codes: list[str] = []
    records = _Records(store)
    for entry in store.entries(compare.key):
        runs = [records.get(k, curves=True) for k in entry.final_runs]
        if any(r is None for r in runs):
            continue  # a half-recorded entry cannot happen (entries follow their runs); be safe
        rows.append(_stats(entry, runs, protocol))
        for key in [*entry.tuning_runs, *entry.final_runs]:
            record = records.get(key, curves=False)
            if record is None:
                continue
            wall += record.seconds_wall
            _add(devices, f"{record.result.device} on {record.host or 'an unrecorded host'}")
            _add(codes, record.code_version)
    reference = next((r for r in rows if r.is_reference), None)
    rows = [r for r in rows if not r.is_reference]
    wanted = protocol.get("effect_sizes_against") or [protocol.get("baseline", "adamw")]
    tuned = {r.sampler: r for r in rows}
    against = [name for name in wanted if name in tuned]
    for row in [*rows, *([reference] if reference else [])]:
        for name in against:
            other = tuned[name]
            if row is not other:
                row.effects[name] = metrics.speedup(_times(row), _times(other))
    rows.sort(key=_rank_key)
    for i, row in enumerate(rows, start=1):
        row.rank = i
    if description is None:
        description = protocol.get("task_description", compare.task)
    target = rows[0].runs[0].result.target if rows and rows[0].runs[0].result.target else 0.99
    return Board(
        task=compare.task,
        description=description,
        target=target,
        compare=compare,
        rows=rows,
        against=against,
        reference=reference,
        devices=devices,
        code_versions=codes,
        hours=wall / 3600.0,
    )


class _Records:
    """The store's runs, each read at most once: with its curves when any caller wants them
    (a final run's plot), else without (a tuning run's wall-clock, device and code)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.read: dict[str, tuple[RunRecord | None, bool]] = {}

    def get(self, key: str, *, curves: bool) -> RunRecord | None:
        record, with_curves = self.read.get(key, (None, False))
        if key not in self.read or (curves and not with_curves and record is not None):
            record = self.store.get_run(key, curves=curves)
            self.read[key] = (record, curves)
        return record


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _stats(entry: Entry, runs: list[RunRecord], protocol: Mapping[str, Any]) -> SamplerStats:
    chains = [c for r in runs for c in r.result.chains]
    per_step = runs[0].result.grad_evals_per_step or 1
    budget = int(protocol.get("budget") or runs[0].result.spec.budget * per_step)
    censor_steps = [c.censored_at for c in chains]
    censor_evals = [c.censored_at * per_step for c in chains]
    censor_seconds = [r.result.seconds_train for r in runs for _ in r.result.chains]
    memorized = [c for c in chains if c.t_mem is not None]
    ratio = None
    if any(c.t_mem for c in memorized):  # from a memorized start t_mem = 0: no ratio
        ratio = metrics.kaplan_meier(
            [c.t_grok / c.t_mem if c.t_grok is not None and c.t_mem else None for c in memorized],
            [c.censored_at / c.t_mem if c.t_mem else math.inf for c in memorized],
        )
    cls = _registered(entry.sampler)
    accept = None
    if cls is not None and cls.metropolis:
        accept = float(np.mean([c.accept_rate for c in chains]))
    return SamplerStats(
        sampler=entry.sampler,
        entry=entry,
        runs=runs,
        evals_per_step=per_step,
        budget_evals=budget,
        n=len(chains),
        grokked=sum(c.grokked for c in chains),
        touched=sum(c.t_touch is not None for c in chains),
        generalized=sum(c.generalized for c in chains),
        memorized=len(memorized),
        diverged=sum(c.diverged for c in chains),
        grok_evals=metrics.kaplan_meier([c.t_grok_grad_evals for c in chains], censor_evals),
        grok_steps=metrics.kaplan_meier([c.t_grok for c in chains], censor_steps),
        grok_seconds=metrics.kaplan_meier([c.t_grok_seconds for c in chains], censor_seconds),
        touch_evals=metrics.kaplan_meier([c.t_touch_grad_evals for c in chains], censor_evals),
        mem_evals=metrics.kaplan_meier([c.t_mem_grad_evals for c in chains], censor_evals),
        ratio=ratio,
        accept=accept,
        peer=peer_of(entry.sampler),
    )


def peer_of(sampler: str) -> str | None:
    """The library of a peer implementation (``blackjax`` for ``blackjax.sgld``), else None."""
    entry = _registered(sampler)
    return None if entry is None else entry.peer


def _registered(sampler: str) -> type[samplers.Sampler] | None:
    """The sampler's class, or ``None`` for a store written when another one was registered."""
    try:
        return samplers.lookup(sampler)
    except samplers.UnknownSamplerError:
        return None


def _times(row: SamplerStats):
    chains = row.chains
    return (
        [c.t_grok_grad_evals for c in chains],
        [c.censored_at * row.evals_per_step for c in chains],
    )


def _rank_key(row: SamplerStats):
    median = row.grok_evals.median
    reached = median if median is not None else 0.0
    return (median is None, reached, -row.grokked / row.n, row.sampler)
