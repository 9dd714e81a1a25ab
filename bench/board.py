"""A leaderboard's numbers, computed from the store: per sampler, the fresh-seed chains'
Kaplan–Meier estimates (time to grok in gradient evaluations, steps and seconds; time to
memorise; t_grok / t_mem), divergence and acceptance, and the speed-up and log-rank test against
the baseline; rows ranked by the median gradient evaluations to grok (not reached last, never
dropped). Rendering them is :mod:`bench.reports`' job."""

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
    grokked: int
    memorized: int
    diverged: int
    grok_evals: Survival
    grok_steps: Survival
    grok_seconds: Survival
    mem_evals: Survival
    ratio: Survival | None  # t_grok / t_mem over the chains that memorised
    accept: float | None  # mean acceptance probability (Metropolis samplers only)
    peer: str | None = None  # the library of a peer implementation (``blackjax``), else None
    speedup: Ratio | None = None
    logrank_p: float | None = None
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
    task: str
    description: str
    target: float
    compare: Compare
    rows: list[SamplerStats]  # the tuned samplers, ranked
    baseline: str | None
    reference: SamplerStats | None = None  # the task's own optimizer setting, untuned
    devices: list[str] = field(default_factory=list)
    code_versions: list[str] = field(default_factory=list)
    hours: float = 0.0  # wall-clock of every run behind the board, tuning included

    @property
    def slug(self) -> str:
        return self.task

    @property
    def all_rows(self) -> list[SamplerStats]:
        return self.rows + ([self.reference] if self.reference is not None else [])


def build_board(store: Store, compare: Compare, description: str | None = None) -> Board:
    """The leaderboard of one comparison, computed from its stored runs."""
    entries = store.entries(compare.key)
    baseline_name = compare.protocol.get("baseline", "adamw")
    rows = []
    wall = 0.0
    devices: list[str] = []
    codes: list[str] = []
    for entry in entries:
        runs = [store.get_run(k) for k in entry.final_runs]
        if any(r is None for r in runs):
            continue  # a half-recorded entry cannot happen (entries follow their runs); be safe
        rows.append(_stats(entry, runs, compare.protocol))
        for key in [*entry.tuning_runs, *entry.final_runs]:
            record = store.get_run(key, curves=False)
            if record is None:
                continue
            wall += record.seconds_wall
            _add(devices, f"{record.result.device} on {record.host or 'an unrecorded host'}")
            _add(codes, record.code_version)
    reference = next((r for r in rows if r.is_reference), None)
    rows = [r for r in rows if not r.is_reference]
    baseline = next((r for r in rows if r.sampler == baseline_name), None)
    for row in [*rows, *([reference] if reference else [])]:
        if baseline is not None and row is not baseline:
            mine, theirs = _times(row), _times(baseline)
            row.speedup = metrics.speedup(mine, theirs)
            row.logrank_p = metrics.logrank_p(mine, theirs)
    rows.sort(key=_rank_key)
    for i, row in enumerate(rows, start=1):
        row.rank = i
    if description is None:
        description = compare.protocol.get("task_description", compare.task)
    target = rows[0].runs[0].result.target if rows and rows[0].runs[0].result.target else 0.99
    return Board(
        task=compare.task,
        description=description,
        target=target,
        compare=compare,
        rows=rows,
        baseline=baseline.sampler if baseline else None,
        reference=reference,
        devices=devices,
        code_versions=codes,
        hours=wall / 3600.0,
    )


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _stats(entry: Entry, runs: list[RunRecord], protocol: Mapping[str, Any]) -> SamplerStats:
    chains = [c for r in runs for c in r.result.chains]
    per_step = runs[0].result.grad_evals_per_step or 1
    budget = int(protocol.get("budget") or runs[0].result.budget * per_step)
    censor_steps = [c.censored_at for c in chains]
    censor_evals = [c.censored_at * per_step for c in chains]
    censor_seconds = [r.result.seconds_train for r in runs for _ in r.result.chains]
    memorized = [c for c in chains if c.t_mem is not None]
    ratio = None
    if memorized:
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
        memorized=len(memorized),
        diverged=sum(c.diverged for c in chains),
        grok_evals=metrics.kaplan_meier([c.t_grok_grad_evals for c in chains], censor_evals),
        grok_steps=metrics.kaplan_meier([c.t_grok for c in chains], censor_steps),
        grok_seconds=metrics.kaplan_meier([c.t_grok_seconds for c in chains], censor_seconds),
        mem_evals=metrics.kaplan_meier([c.t_mem_grad_evals for c in chains], censor_evals),
        ratio=ratio,
        accept=accept,
        peer=peer_of(entry.sampler),
    )


def peer_of(sampler: str) -> str | None:
    """The library of a peer implementation (``blackjax`` for ``blackjax.sgld``), else None."""
    return getattr(_registered(sampler), "peer", None)


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
