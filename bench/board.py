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
from bench.compare.rows import FRONTIER
from bench.grokking import sustained_time
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
    # The decisive board's additions (comparisons made with rows in shared units):
    t95_evals: Survival | None = None  # sustained validation accuracy >= 0.95
    rmst_evals: metrics.RestrictedMean | None = None  # ∫ S(t) dt of t_grok up to the budget
    causes: dict[str, int] = field(default_factory=dict)  # diverged chains by cause

    @property
    def cell(self) -> dict[str, str]:
        """Its place in the factorial (geometry, dynamics, noise); empty for the reference and
        for comparisons made before the factorial."""
        return dict(self.entry.chosen.get("cell") or {})

    @property
    def group(self) -> str:
        """``"frontier"`` for a row of the optimizers at the frontier
        (:data:`bench.compare.rows.FRONTIER`), else ``"factorial"`` (its baselines included)."""
        frontier = {r.name for r in FRONTIER}
        return "frontier" if self.sampler in frontier and not self.is_reference else "factorial"

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.table["seed"]]

    @property
    def chains(self):
        return [c for r in self.runs for c in r.result.chains]

    @property
    def is_reference(self) -> bool:
        return self.entry.role == "reference"

    @property
    def label(self) -> str:
        if self.is_reference:  # an entry named after its sampler (older stores) or "reference"
            return f"{self.runs[0].result.spec.sampler} (reference)"
        return self.sampler


@dataclass(frozen=True)
class FactorEffect:
    """One factor's effect at fixed other factors, paired by checkpoint: ``ratio`` is the
    median gradient evaluations to grok without the factor over the median with it (> 1: the
    factor speeds grokking), bootstrapped over the shared fresh seeds."""

    factor: str  # "noise", "momentum", "Hamiltonian dynamics", "preconditioning"
    with_row: str
    without_row: str
    fixed: str  # the other factors, in words
    ratio: Ratio
    pairs: int


#: The factors of the claim: (name, the cell key it changes, value with it, value without it).
FACTORS = (
    ("noise", "noise", "yes", "no"),
    ("momentum", "dynamics", "momentum", "first order"),
    ("Hamiltonian dynamics", "dynamics", "hamiltonian", "first order"),
    ("preconditioning", "geometry", "diagonal", "identity"),
)


@dataclass(frozen=True)
class FrontierGap:
    """Where the fastest better-exploring sampler stands between the random walk and the
    frontier, paired by checkpoint: ``to_frontier`` is its median over the fastest frontier
    row's (> 1: the frontier is faster), ``over_baseline`` the fastest random-walk baseline's
    median over its own (> 1: the sampler is faster)."""

    sampler: str
    frontier: str
    baseline: str
    to_frontier: Ratio
    over_baseline: Ratio


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
    factors: list[FactorEffect] = field(default_factory=list)
    frontier: FrontierGap | None = None  # where the best sampler stands, when the group ran

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
    factors = factor_effects(rows)
    gap = frontier_gap(rows)
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
        factors=factors,
        frontier=gap,
    )


#: The random-walk baselines of the claim: SGD with momentum and SGLD (the random walk itself).
RANDOM_WALK = ("sgd", "sgld")


def explores(row: SamplerStats) -> bool:
    """A row of a sampler the question calls a better explorer than a random walk: noisy, with
    momentum or Hamiltonian dynamics or a preconditioned geometry (SGHMC, HMC, Riemannian
    Langevin, preconditioned SGHMC); SGLD is the random walk itself."""
    cell = row.cell
    return cell.get("noise") == "yes" and (
        cell.get("dynamics") in ("momentum", "hamiltonian") or cell.get("geometry") == "diagonal"
    )


def frontier_gap(rows: list[SamplerStats]) -> FrontierGap | None:
    """The fastest better-exploring sampler against the fastest frontier row and the fastest
    random-walk baseline (``rows`` ranked), paired by checkpoint; ``None`` unless all three ran
    on the same fresh seeds."""
    best = next((r for r in rows if explores(r)), None)
    front = next((r for r in rows if r.group == "frontier"), None)
    base = next((r for r in rows if r.sampler in RANDOM_WALK), None)
    if best is None or front is None or base is None:
        return None
    if not (sorted(best.seeds) == sorted(front.seeds) == sorted(base.seeds)):
        return None

    def paired(a: SamplerStats, b: SamplerStats) -> Ratio:  # b's median over a's
        (ta, ca), (tb, cb) = _by_seed(a), _by_seed(b)
        return metrics.paired_speedup(ta, ca, tb, cb)

    return FrontierGap(
        sampler=best.sampler,
        frontier=front.sampler,
        baseline=base.sampler,
        to_frontier=paired(front, best),
        over_baseline=paired(best, base),
    )


def factor_effects(rows: list[SamplerStats]) -> list[FactorEffect]:
    """Every pair of factorial rows that differ in one factor of :data:`FACTORS` alone, paired
    by checkpoint (the same fresh seeds). The factorial's rows are the noisy samplers and their
    τ = 0 twins; the baselines tuned on their own (SGD, AdamW) are not cells of it."""
    cells = [r for r in rows if r.cell and r.cell.get("dynamics") != "optimizer"]
    cells = [r for r in cells if r.cell.get("noise") == "yes" or r.entry.role == "twin"]
    out = []
    for name, key, yes, no in FACTORS:
        for a in cells:
            if a.cell.get(key) != yes:
                continue
            for b in cells:
                same = all(a.cell.get(k) == b.cell.get(k) for k in a.cell if k != key)
                if b.cell.get(key) != no or not same or sorted(a.seeds) != sorted(b.seeds):
                    continue
                (at, ac), (bt, bc) = _by_seed(a), _by_seed(b)
                fixed = ", ".join(f"{k} {v}" for k, v in a.cell.items() if k != key)
                out.append(
                    FactorEffect(
                        name,
                        a.sampler,
                        b.sampler,
                        fixed,
                        metrics.paired_speedup(at, ac, bt, bc),
                        len(at),
                    )
                )
    return out


def _by_seed(row: SamplerStats):
    """The row's times to grok and censoring times (gradient evaluations), ordered by seed."""
    times, cens = _times(row)
    order = sorted(range(len(times)), key=lambda i: row.seeds[i])
    return [times[i] for i in order], [cens[i] for i in order]


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
    cls = _registered(runs[0].result.spec.sampler)
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
        peer=peer_of(runs[0].result.spec.sampler),
        table=table,
        t95_evals=_sustained(runs, table, per_step, SUSTAINED_LOW) if "rows" in protocol else None,
        rmst_evals=_rmst(table, per_step, budget) if "rows" in protocol else None,
        causes=table.loc[table["diverged"], "diverged_cause"]
        .fillna("unrecorded")
        .value_counts()
        .to_dict(),
    )


#: The lower threshold of sustained validation accuracy the decisive board also times.
SUSTAINED_LOW = 0.95


def _sustained(
    runs: list[RunRecord], table: pd.DataFrame, per_step: int, threshold: float
) -> Survival:
    """KM of the gradient evaluations from which validation accuracy stays ≥ ``threshold``
    to the end of the run (read off each chain's curve; a diverged chain never holds)."""
    curves: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for record in runs:
        for c in record.result.curves:
            point = (int(c["grad_evals"]), float(c.get("val_acc", math.nan)))
            curves.setdefault((record.key, int(c["chain"])), []).append(point)
    times = []
    for key, chain, diverged in zip(
        table["run_key"], table["chain"], table["diverged"], strict=True
    ):
        points = sorted(curves.get((key, int(chain)), []))
        times.append(
            sustained_time(
                [p[0] for p in points], [p[1] for p in points], threshold, diverged=bool(diverged)
            )
        )
    return metrics.kaplan_meier(times, (table["censored_at"] * per_step).astype(float).tolist())


def _rmst(table: pd.DataFrame, per_step: int, budget: int) -> metrics.RestrictedMean | None:
    """The restricted mean gradient evaluations to grok up to the budget. A diverged chain is
    known not to grok within the budget (it is held where it broke), so it is censored at the
    budget rather than where it broke; a chain that ran to within one step of the budget (HMC
    with L = 24 gets 83 steps of 2,000 evaluations: 1,992) is followed to the budget, so that
    every row is restricted to the same horizon."""
    cens = (table["censored_at"] * per_step).where(~table["diverged"], budget).astype(float)
    cens = cens.where(cens + per_step <= budget, float(budget))
    try:
        return metrics.rmst(_values(table["t_grok_grad_evals"]), cens.tolist(), float(budget))
    except ValueError:  # a run that stopped before its budget with chains still at risk
        return None


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
