"""A leaderboard's numbers, computed from the store.

Per sampler, over its chosen configuration's fresh-seed chains: the Kaplan–Meier estimates of
gradient evaluations (also steps and seconds) to sustained grokking, of Power et al.'s first
touch and of memorization, and of t_grok / t_mem; how many chains grokked, how many *end* the
run generalized, how many diverged; the mean Metropolis acceptance; and effect sizes (ratios of
KM medians with bootstrap intervals) against the random-walk baselines of the claim (SGD, SGLD)
and AdamW. Rows are ranked by the median gradient evaluations to grok; rows whose median is not
reached rank last and are never dropped. Rendering is :mod:`bench.markdown`'s job.

The per-chain numbers come from :mod:`bench.frames`' runs frame of the comparison's fresh-seed
runs (the table ``python -m bench export`` writes), one group per sampler and role: what a
reader recomputes from the export is what the page shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

import samplers
from bench import frames, metrics
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
    table: pd.DataFrame | None = field(default=None, repr=False)  # its chains (bench.frames)

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
    entries = store.entries(compare.key)
    finals = [[records.get(k, curves=True) for k in e.final_runs] for e in entries]
    chains = frames.runs_frame(
        (record, place)
        for e, runs in zip(entries, finals, strict=True)
        for (_, place), record in zip(_final_places(e), runs, strict=True)
        if record is not None
    )
    groups = dict(list(chains.groupby(["row", "role"], sort=False)))
    for entry, runs in zip(entries, finals, strict=True):
        if any(r is None for r in runs):
            continue  # a half-recorded entry cannot happen (entries follow their runs); be safe
        role = "reference" if entry.role == "reference" else "final"
        rows.append(_stats(entry, runs, groups[(entry.sampler, role)], protocol))
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


def _final_places(entry: Entry) -> list[tuple[str, frames.Place]]:
    return [(k, p) for k, p in frames.entry_places(entry) if p.role != "tune"]


def _stats(
    entry: Entry, runs: list[RunRecord], table: pd.DataFrame, protocol: Mapping[str, Any]
) -> SamplerStats:
    """A sampler's row from ``table``, the runs frame of its fresh-seed chains."""
    per_step = runs[0].result.grad_evals_per_step or 1
    budget = int(protocol.get("budget") or runs[0].result.spec.budget * per_step)
    censor_steps = table["censored_at"]
    censor_evals = censor_steps * per_step
    memorized = table[table["memorized"]]
    ratio = None
    if (memorized["t_mem"] > 0).any():  # from a memorized start t_mem = 0: no ratio
        t_mem = memorized["t_mem"].where(memorized["t_mem"] > 0)  # 0: no ratio, censored at ∞
        ratio = metrics.kaplan_meier(
            _values(memorized["t_grok"] / t_mem),
            (memorized["censored_at"] / t_mem).fillna(math.inf).tolist(),
        )
    cls = _registered(entry.sampler)
    accept = None
    if cls is not None and cls.metropolis:
        accept = float(table["accept_rate"].mean())
    return SamplerStats(
        sampler=entry.sampler,
        entry=entry,
        runs=runs,
        evals_per_step=per_step,
        budget_evals=budget,
        n=len(table),
        grokked=int((~table["censored"]).sum()),
        touched=int(table["t_touch"].notna().sum()),
        generalized=int(table["generalized"].sum()),
        memorized=len(memorized),
        diverged=int(table["diverged"].sum()),
        grok_evals=_km(table["t_grok_grad_evals"], censor_evals),
        grok_steps=_km(table["t_grok"], censor_steps),
        grok_seconds=_km(table["t_grok_seconds"], table["censored_at_seconds"]),
        touch_evals=_km(table["t_touch_grad_evals"], censor_evals),
        mem_evals=_km(table["t_mem_grad_evals"], censor_evals),
        ratio=ratio,
        accept=accept,
        peer=peer_of(entry.sampler),
        table=table,
    )


def _values(column: pd.Series) -> list[float | None]:
    """A time column as Kaplan–Meier takes it: None where not reached."""
    return [None if pd.isna(v) else float(v) for v in column]


def _km(times: pd.Series, censored_at: pd.Series) -> Survival:
    return metrics.kaplan_meier(_values(times), censored_at.astype(float).tolist())


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
    table = row.table
    return _values(table["t_grok_grad_evals"]), (table["censored_at"] * row.evals_per_step).tolist()


def _rank_key(row: SamplerStats):
    median = row.grok_evals.median
    reached = median if median is not None else 0.0
    return (median is None, reached, -row.grokked / row.n, row.sampler)
