"""The tuner: Optuna's TPE asks each row a batch of trials, successive halving runs them as
vectorized jobs, and every study lives in the project's store.

Per row and batch (the same for every row, so every row gets the same tuning budget in gradient
evaluations, whatever a step costs it):

1. **ask** ``trials`` points of the row's search space (:mod:`bench.compare.rows`) from a
   :class:`optuna.samplers.TPESampler` seeded by (row, batch), so a rerun asks the same points.
   The first batch is TPE's random start-up; later batches are guided by every earlier trial.
2. **successive halving** (Jamieson & Talwalkar 2016; Li et al. 2017) over the rungs
   :data:`RUNGS` of the budget ``B``: every live trial runs on the tuning seeds (one chain per
   (trial, seed), all the rows' chains of a rung in one batch of vectorized jobs), Optuna hears
   its intermediate values (one per evaluation: ``B·(2 − median validation accuracy)``), and
   the best third by :func:`bench.compare.protocol.score` goes on to the next rung, the others
   are told ``PRUNED``. A trial that goes on is rerun from its checkpoint with the longer budget
   (its earlier run is a prefix of the new one for deterministic samplers: warm-ups are set by
   ``B``, not by the rung). Restarting costs a third more than continuing the same chains would
   (a third of ``kB`` instead of a quarter), and keeps every run an ordinary stored job: its key
   says what it is, a killed tuner resumes from the store, and no chain's state has to be kept
   between rungs.
3. **tell** the survivors of the last rung their :func:`objective`.

Before the last batch, an axis whose best value so far sits in the outer 5 % (log scale) of its
range is widened ten-fold outward, once, unless that end is a physical limit (the stability
limit of the step, the posterior's temperature): the page lists what was widened and what was
not and why.

Resuming after ``kill -9``: trials asked before the kill are found in the study by their batch
and rerun (their jobs are reused from the store); a trial already told is not told again; a
batch that was asked only in part is completed by asking the rest.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna

from bench.compare.presets import Preset
from bench.compare.protocol import score
from bench.compare.rows import Bound, Row
from bench.keys import digest

#: Fractions of the full budget at which successive halving compares the live trials.
RUNGS = (1 / 9, 1 / 3, 1.0)
#: The fraction of live trials that go on to the next rung (η = 3).
KEEP = 1 / 3
#: An axis whose best value lies in this outer fraction of its (log) range is at an edge.
EDGE = 0.05
#: How far an edge widens, once (a factor on the axis' end).
WIDEN = 10.0

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(chains: Sequence[Any], evals_per_step: int, budget: int) -> float:
    """The number Optuna minimizes: the KM median gradient evaluations to grok when reached,
    else ``budget·(2 − median final validation accuracy)`` (a diverged chain counts as 0), plus
    ``budget`` when a chain diverged or collapsed (the order :func:`score` sorts by)."""
    s = score(chains, evals_per_step)
    unreached, bad, median = s[0], s[1], s[2]
    val = [c.final.get("val_acc", math.nan) for c in chains]
    val = [
        0.0 if c.diverged or not math.isfinite(v) else v for c, v in zip(chains, val, strict=True)
    ]
    value = budget * (2.0 - float(np.median(val))) if unreached else float(median)
    return value + (budget if bad else 0.0)


def rung_budgets(preset: Preset) -> list[int]:
    """The gradient evaluations of each rung: the fractions of the budget, on the evaluation
    grid, increasing."""
    out: list[int] = []
    for f in RUNGS:
        b = max(
            preset.eval_every, int(round(preset.budget * f / preset.eval_every)) * preset.eval_every
        )
        if not out or b > out[-1]:
            out.append(min(b, preset.budget))
    return out


@dataclass
class Live:
    """A trial in flight: its Optuna number, its configuration, and its record for the page."""

    number: int
    config: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tuned:
    """What tuning a row produced: its trials (as the page shows them), its choice, its runs,
    the axes it searched and what was widened."""

    trials: list[dict[str, Any]]
    chosen: dict[str, Any]
    runs: list[str]
    bounds: dict[str, Any]
    widened: list[str]
    grad_evals: int


class RowTuner:
    """One row's study: ask a batch, judge a rung, tell."""

    def __init__(
        self,
        row: Row,
        study: optuna.Study,
        bounds: Mapping[str, Bound],
        make_config: Callable[[Mapping[str, Any]], dict[str, Any]],
        trials: int,
    ) -> None:
        self.row, self.study, self.trials = row, study, trials
        self.bounds = dict(bounds)
        self.make_config = make_config
        self.records: dict[int, dict[str, Any]] = {}
        self.runs: list[str] = []
        self.widened: list[str] = []
        self.grad_evals = 0

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {k: b.distribution() for k, b in self.bounds.items()}

    def ask(self, batch: int) -> list[Live]:
        """The batch's trials: those asked before (a resumed run), then new ones."""
        mine = [
            t for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("batch") == batch
        ]
        missing = self.trials - len(mine)
        if missing > 0:
            seed = zlib.crc32(f"{self.row.name}/{batch}".encode())
            self.study.sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=self.trials, constant_liar=True
            )
            for _ in range(missing):
                trial = self.study.ask(self.distributions())
                trial.set_user_attr("batch", batch)
            mine = [
                t
                for t in self.study.get_trials(deepcopy=False)
                if t.user_attrs.get("batch") == batch
            ]
        live = []
        for t in sorted(mine, key=lambda t: t.number):
            config = self.make_config(t.params)
            record = {"number": t.number, "batch": batch, **config, "state": "RUNNING"}
            self.records[t.number] = record
            live.append(Live(t.number, config, record))
        return live

    def judge(
        self,
        live: Sequence[Live],
        chains: Mapping[int, list[tuple[str, Any]]],
        series: Mapping[int, list[tuple[int, float]]],
        evals_per_step: Mapping[int, int],
        budget: int,
        full: int,
        last: bool,
    ) -> list[Live]:
        """A rung is done: report every evaluation's value (``series``: per trial, the
        gradient evaluations and the median validation accuracy of its chains), record, keep the
        best third (or tell the last rung's values); returns the trials that go on."""
        scored = []
        for trial in live:
            members = chains[trial.number]
            results = [c for _, c in members]
            s = score(results, evals_per_step[trial.number])
            value = objective(results, evals_per_step[trial.number], full)
            trial.record.update(
                chains=[[r, c.chain] for r, c in members],
                score=[None if isinstance(x, float) and math.isinf(x) else x for x in s],
                rung=budget,
                value=value,
            )
            scored.append((s, trial.number, trial))
        scored.sort(key=lambda x: (x[0], x[1]))
        keep = len(scored) if last else max(1, math.ceil(len(scored) * KEEP))
        frozen = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        for rank, (_, number, trial) in enumerate(scored):
            if frozen[number].state == optuna.trial.TrialState.RUNNING:
                self._report(frozen[number], series[number], full)
                if rank >= keep:
                    self.study.tell(number, state=optuna.trial.TrialState.PRUNED)
                elif last:
                    self.study.tell(number, trial.record["value"])
            trial.record["state"] = "PRUNED" if rank >= keep else "COMPLETE" if last else "RUNNING"
        return [trial for _, _, trial in scored[:keep]] if not last else []

    def _report(self, frozen: Any, series: Sequence[tuple[int, float]], full: int) -> None:
        """Each evaluation's ``full·(2 − median validation accuracy)`` at its gradient
        evaluations, from where the last rung's reports ended (a rerun's prefix is known)."""
        # An ask/tell trial is reported to through a Trial handle on its stored id; the handle
        # from study.ask is gone when the tuner resumes after a kill.
        handle = optuna.trial.Trial(self.study, frozen._trial_id)
        seen = max(frozen.intermediate_values, default=-1)
        for step, val in series:
            if step > seen:
                handle.report(full * (2.0 - (val if math.isfinite(val) else 0.0)), step)

    def best(self) -> dict[str, Any]:
        complete = [r for r in self.records.values() if r["state"] == "COMPLETE"]
        return min(complete, key=lambda r: (tuple(_inf(x) for x in r["score"]), r["number"]))

    def widen_edges(self) -> None:
        """Widen, once, each continuous axis whose best value so far sits at an edge (see the
        module docstring); record what was widened and what could not be, and why."""
        best = self.best()["search"]
        sides = dict(edges(best, {k: _bound_json(b) for k, b in self.bounds.items()}))
        for name, bound in list(self.bounds.items()):
            at_low, at_high = sides.get(name) == "low", sides.get(name) == "high"
            if at_low:
                if bound.low_is_limit:
                    self.widened.append(f"{name} at its low end, not widened: {bound.low_is_limit}")
                else:
                    self.bounds[name] = bound = replace(bound, low=float(bound.low) / WIDEN)
                    self.widened.append(f"{name} widened down to {bound.low:g}")
            if at_high:
                if bound.high_is_limit:
                    self.widened.append(
                        f"{name} at its high end, not widened: {bound.high_is_limit}"
                    )
                else:
                    self.bounds[name] = replace(bound, high=float(bound.high) * WIDEN)
                    self.widened.append(f"{name} widened up to {float(bound.high) * WIDEN:g}")

    def result(self) -> Tuned:
        trials = [self.records[n] for n in sorted(self.records)]
        return Tuned(
            trials=trials,
            chosen={
                k: v
                for k, v in self.best().items()
                if k in ("search", "hparams", "prior_precision", "units")
            },
            runs=list(dict.fromkeys(self.runs)),
            bounds={k: _bound_json(b) for k, b in self.bounds.items()},
            widened=self.widened,
            grad_evals=self.grad_evals,
        )


def storage(path: Any) -> optuna.storages.RDBStorage:
    """Optuna's storage in the store's own SQLite file (its tables beside the store's)."""
    return optuna.storages.RDBStorage(
        f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 60}}
    )


def study(
    storage_: optuna.storages.BaseStorage,
    compare_key: str,
    row: Row,
    bounds: Mapping[str, Bound],
) -> optuna.Study:
    """The row's study of one comparison, created or loaded. Its name carries a digest of what
    the row searches (its sampler, fixed settings, warm-up and axes' ``bounds``): a row whose
    search space changed starts a new study instead of resuming trials drawn from the old one
    (the comparison's key leaves the rows out, so that invocations asking for different rows
    share one leaderboard)."""
    space = digest(
        {
            "sampler": row.sampler,
            "fixed": dict(row.fixed),
            "warmup": list(row.warmup) if row.warmup else None,
            "bounds": {k: _bound_json(b) for k, b in bounds.items()},
        }
    )
    return optuna.create_study(
        study_name=f"{compare_key}/{row.name}/{space[:12]}",
        storage=storage_,
        direction="minimize",
        load_if_exists=True,
    )


def edges(
    search: Mapping[str, Any], bounds: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """``(axis, "low" | "high")`` for each continuous axis of ``bounds`` (as :class:`Tuned`
    stores them) on which ``search`` lies in the outer :data:`EDGE` of the (log) range."""
    found = []
    for name, bound in bounds.items():
        if "choices" in bound or name not in search:
            continue
        scale = math.log if bound.get("log", True) else float
        lo, hi, x = (scale(float(v)) for v in (bound["low"], bound["high"], search[name]))
        if x <= lo + EDGE * (hi - lo):
            found.append((name, "low"))
        elif x >= hi - EDGE * (hi - lo):
            found.append((name, "high"))
    return found


def _bound_json(b: Bound) -> dict[str, Any]:
    if b.choices is not None:
        return {"choices": list(b.choices)}
    return {"low": float(b.low), "high": float(b.high), "log": b.log}


def _inf(x: Any) -> Any:
    return math.inf if x is None else x


__all__ = [
    "EDGE",
    "KEEP",
    "RUNGS",
    "WIDEN",
    "edges",
    "Live",
    "RowTuner",
    "Tuned",
    "objective",
    "rung_budgets",
    "storage",
    "study",
]
