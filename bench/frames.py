"""Stored runs as tidy pandas frames: one row per chain, per evaluation, per tuning trial.

The columns and their dtypes are stated once, here, as :data:`RUN_COLUMNS`,
:data:`CURVE_COLUMNS` and :data:`STUDY_COLUMNS` (documented for users in :mod:`bench.results`,
which selects what to read from a store; a test holds the two to each other). A frame is built
from records already read (:class:`bench.store.RunRecord`) and from where each run stands
(:class:`Place`: its comparison, role and trials, or its claim), so that :mod:`bench.board`
computes a leaderboard from the very records it shows, and nothing here touches SQL.

Missing values are pandas' ``<NA>`` in the nullable dtypes (``Int64``, ``boolean``,
``string``) and ``NaN`` in ``float64``: a time that was not reached is missing, never the
budget (right-censored at ``censored_at``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.spec import INIT
from bench.store import Compare, Entry, RunRecord, Store

#: One row per chain (and per place the run has, see :class:`Place`), in this order; then one
#: ``hp_<name>`` column per hyperparameter (``hp_<name>_0``, ``_1`` for a pair such as AdamW's
#: betas) and one ``final_<metric>`` float64 column per metric of the last evaluation.
RUN_COLUMNS: dict[str, tuple[str, str]] = {
    "task": ("string", "the task's registered name"),
    "model": ("string", "the task's model (its configuration's `model`)"),
    "sampler": ("string", "the sampler's registered name"),
    "run_key": ("string", "the run's key in the store"),
    "chain": ("int64", "the chain's index in its run"),
    "seed": ("int64", "the chain's seed"),
    "comparison": ("string", "the comparison's key (compare runs)"),
    "role": ("string", "`tune`, `final` or `reference` (compare runs)"),
    "row": ("string", "the board's row (compare runs): a sampler, a twin `sgld@0`, `hmc+mass`"),
    "trial": ("Int64", "index of the tuning trial in the entry's trials (role `tune`)"),
    "claim": ("string", "the theory claim (claim runs)"),
    "arm": ("string", "the claim's arm: `full` or `minibatch` (claim runs)"),
    "label": ("string", "the job's label in the claim's plan (claim runs)"),
    "prior_precision": ("float64", "λ of the prior ½·λ·‖θ‖²"),
    "temperature": ("float64", "τ; 0 for an optimizer (no temperature)"),
    "start": ("string", "`init` or `memorized` (checkpoints); missing in pre-spec stores"),
    "budget": ("int64", "steps the run was given"),
    "budget_grad_evals": ("int64", "the budget in gradient evaluations"),
    "eval_every": ("int64", "steps between evaluations: the times' resolution"),
    "confirm": ("Int64", "window of sustained grokking in steps; missing: the rest of the run"),
    "batch_size": ("Int64", "the minibatch drawn; missing: the full batch"),
    "grad_evals_per_step": ("int64", "what one step cost"),
    "steps_run": ("int64", "steps the run went"),
    "t_mem": ("Int64", "steps to memorization (train acc ≥ target)"),
    "t_mem_grad_evals": ("Int64", "the same in gradient evaluations"),
    "t_mem_seconds": ("float64", "the same in training seconds"),
    "t_grok": ("Int64", "steps to sustained grokking"),
    "t_grok_grad_evals": ("Int64", "the same in gradient evaluations"),
    "t_grok_seconds": ("float64", "the same in training seconds"),
    "t_touch": ("Int64", "steps to Power et al.'s first touch of the target"),
    "t_touch_grad_evals": ("Int64", "the same in gradient evaluations"),
    "censored_at": ("int64", "the last step run: where an unreached time is censored"),
    "censored_at_grad_evals": ("int64", "the same in gradient evaluations"),
    "censored_at_seconds": ("float64", "the run's training seconds"),
    "censored": ("bool", "t_grok not reached (right-censored)"),
    "memorized": ("bool", "t_mem reached"),
    "generalized": ("bool", "ends the run finite with val acc ≥ target"),
    "diverged": ("bool", "marked diverged (never counts as grokked)"),
    "diverged_step": ("Int64", "the evaluation step that saw it"),
    "diverged_cause": ("string", "why, where recorded"),
    "divergent_transitions": ("int64", "steps the sampler flagged"),
    "accept_rate": ("float64", "mean acceptance probability (1 without a Metropolis test)"),
    "code_version": ("string", "the code that ran it"),
    "device": ("string", "where it ran"),
    "seconds_wall": ("float64", "the run's wall-clock"),
    "finished_at": ("datetime64[ns, UTC]", "when it was stored"),
}

#: One row per chain and evaluation (and per place of its run); then one float64 column per
#: other metric the task evaluates (e.g. ``potential`` for a Gaussian).
CURVE_COLUMNS: dict[str, tuple[str, str]] = {
    "task": ("string", "the task"),
    "sampler": ("string", "the sampler"),
    "run_key": ("string", "the run's key"),
    "chain": ("int64", "the chain's index in its run"),
    "seed": ("int64", "the chain's seed"),
    "comparison": ("string", "the comparison's key (compare runs)"),
    "role": ("string", "`tune`, `final` or `reference` (compare runs)"),
    "row": ("string", "the board's row (compare runs)"),
    "trial": ("Int64", "the tuning trial (role `tune`)"),
    "claim": ("string", "the theory claim (claim runs)"),
    "step": ("int64", "the evaluation's step"),
    "grad_evals": ("int64", "gradient evaluations so far"),
    "seconds": ("float64", "training seconds so far"),
    "train_loss": ("float64", "mean training loss"),
    "train_acc": ("float64", "training accuracy"),
    "val_loss": ("float64", "validation loss"),
    "val_acc": ("float64", "validation accuracy"),
    "weight_norm": ("float64", "‖θ‖"),
    "dist_init": ("float64", "‖θ − θ_start‖"),
    "dist_mem": ("float64", "‖θ − θ at t_mem‖ (NaN before t_mem)"),
    "accept": ("float64", "mean acceptance since the last evaluation (NaN at step 0)"),
}

#: One row per tuning trial of a comparison's entry, in this order; then ``search_<axis>`` (the
#: searched values, in the shared units) and ``hp_<name>`` (the sampler's hyperparameters).
STUDY_COLUMNS: dict[str, tuple[str, str]] = {
    "comparison": ("string", "the comparison's key"),
    "task": ("string", "the task"),
    "sampler": ("string", "the sampler tuned"),
    "trial": ("int64", "the trial's index in the entry (the runs frame's `trial`)"),
    "number": ("int64", "the tuner's trial number (the index where none is recorded)"),
    "state": ("string", "the tuner's state (`COMPLETE`, `PRUNED`, ...) where recorded"),
    "pruned": ("bool", "stopped early by the tuner"),
    "chosen": ("bool", "the configuration run on the fresh seeds"),
    "prior_precision": ("float64", "λ of the prior"),
    "temperature": ("float64", "τ; 0 for an optimizer"),
    "not_reached": ("boolean", "score: KM median evaluations to grok not reached"),
    "diverged_or_collapsed": ("boolean", "score: a chain diverged, or touched and fell back"),
    "median_grok_evals": ("float64", "score: KM median gradient evaluations to grok"),
    "grok_rate": ("float64", "score: fraction of the trial's chains that grokked"),
    "diverged_fraction": ("float64", "score: fraction that diverged"),
    "median_final_val_acc": ("float64", "score: median final validation accuracy"),
    "median_mem_grad_evals": ("float64", "score: KM median gradient evaluations to memorize"),
    "chains": ("int64", "tuning chains behind the score"),
    "run_keys": ("string", "the tuning runs, comma-separated"),
}


@dataclass(frozen=True)
class Place:
    """Where a run stands: in a comparison (its role, and each chain's trial for a tuning run)
    or in a claim's sweep (its arm and label). A run reused by several comparisons, or both a
    sampler's final run and the reference, has several places and a row for each."""

    compare: str | None = None
    role: str | None = None  # tune, final, reference
    row: str | None = None  # the board's row: the entry's name (sgld, sgld@0, hmc+mass)
    trials: Mapping[int, int] = field(default_factory=dict)  # chain -> trial (role tune)
    claim: str | None = None
    arm: str | None = None
    label: str | None = None


#: A run with no place (a whole-store export of a run neither compare nor a claim made).
NOWHERE = Place()


def compare_places(store: Store, compare: Compare) -> list[tuple[str, Place]]:
    """Every run of ``compare`` with its place, in the store's entry order: each tuned entry's
    tuning runs (each chain's trial from the trials' ``chains``), then its final runs (role
    ``final``, or ``reference`` for the task's own untuned setting)."""
    out: list[tuple[str, Place]] = []
    for entry in store.entries(compare.key):
        out += entry_places(entry)
    return out


def entry_places(entry: Entry) -> list[tuple[str, Place]]:
    """The runs of one comparison entry with their places (see :func:`compare_places`)."""
    trial_of: dict[str, dict[int, int]] = {k: {} for k in entry.tuning_runs}
    for i, trial in enumerate(entry.trials):
        for run_key, chain in trial.get("chains", []):
            trial_of.setdefault(run_key, {})[int(chain)] = i
    row = entry.sampler
    out = [(k, Place(entry.compare_key, "tune", row, trial_of[k])) for k in entry.tuning_runs]
    role = "reference" if entry.role == "reference" else "final"
    return out + [(k, Place(entry.compare_key, role, row)) for k in entry.final_runs]


# -- the frames ---------------------------------------------------------------------------------
def runs_frame(records: Iterable[tuple[RunRecord, Place]]) -> pd.DataFrame:
    """One row per chain of every ``(record, place)``, columns :data:`RUN_COLUMNS`, then the
    ``hp_`` and ``final_`` columns."""
    rows = []
    for record, place in records:
        result = record.result
        spec = result.spec
        per_step = result.grad_evals_per_step or 1
        model = _model_of(record)
        for c in result.chains:
            hparams = dict(c.hparams)
            prior = hparams.pop("prior_precision", spec.prior_precision)
            temperature = hparams.pop("temperature", 0.0)
            row = {
                "task": result.task,
                "model": model,
                "sampler": spec.sampler,
                "run_key": record.key,
                "chain": c.chain,
                "seed": c.seed,
                **_place_columns(place, c.chain),
                "arm": place.arm,
                "label": place.label,
                "prior_precision": prior,
                "temperature": 0.0 if temperature is None else temperature,
                "start": _start(spec.start),
                "budget": spec.budget,
                "budget_grad_evals": spec.budget * per_step,
                "eval_every": spec.eval_every,
                "confirm": spec.confirm,
                "batch_size": result.batch_size,
                "grad_evals_per_step": per_step,
                "steps_run": result.steps_run,
                "t_mem": c.t_mem,
                "t_mem_grad_evals": c.t_mem_grad_evals,
                "t_mem_seconds": c.t_mem_seconds,
                "t_grok": c.t_grok,
                "t_grok_grad_evals": c.t_grok_grad_evals,
                "t_grok_seconds": c.t_grok_seconds,
                "t_touch": c.t_touch,
                "t_touch_grad_evals": c.t_touch_grad_evals,
                "censored_at": c.censored_at,
                "censored_at_grad_evals": c.censored_at * per_step,
                "censored_at_seconds": result.seconds_train,
                "censored": c.t_grok is None,
                "memorized": c.t_mem is not None,
                "generalized": bool(c.generalized),
                "diverged": bool(c.diverged),
                "diverged_step": c.diverged_step,
                "diverged_cause": getattr(c, "diverged_cause", None),
                "divergent_transitions": c.divergent_transitions,
                "accept_rate": c.accept_rate,
                "code_version": record.code_version,
                "device": result.device,
                "seconds_wall": record.seconds_wall,
                "finished_at": record.finished_at,
            }
            row.update(_hp_columns(hparams))
            row.update({f"final_{k}": v for k, v in c.final.items()})
            rows.append(row)
    frame = _typed(rows, RUN_COLUMNS)
    frame["finished_at"] = _utc(frame["finished_at"])
    return frame


def curves_frame(records: Iterable[tuple[RunRecord, Place]]) -> pd.DataFrame:
    """One row per chain and evaluation of every ``(record, place)`` (records read with their
    curves), columns :data:`CURVE_COLUMNS`, then any other metric the task evaluates."""
    rows = []
    for record, place in records:
        result = record.result
        seeds = {c.chain: c.seed for c in result.chains}
        head = {"task": result.task, "sampler": result.spec.sampler, "run_key": record.key}
        for point in result.curves:
            chain = int(point["chain"])
            rows.append(
                {
                    **head,
                    "chain": chain,
                    "seed": seeds.get(chain),
                    **_place_columns(place, chain),
                    **{k: (math.nan if v is None else v) for k, v in point.items()},
                }
            )
    return _typed(rows, CURVE_COLUMNS, rest="float64")


def studies_frame(entries: Iterable[tuple[Entry, str]]) -> pd.DataFrame:
    """One row per tuning trial of every ``(entry, task)``, columns :data:`STUDY_COLUMNS`,
    then ``search_`` and ``hp_``. A trial's ``score`` is :func:`bench.compare.score`'s tuple
    with infinities stored as null; ``state`` and ``number`` are read where a tuner recorded
    them (an Optuna study: ``PRUNED`` trials are flagged ``pruned``)."""
    rows = []
    for entry, task in entries:
        if entry.role == "reference":
            continue  # untuned: no trials
        chosen = entry.chosen or {}
        for i, trial in enumerate(entry.trials):
            state = trial.get("state")
            score = list(trial.get("score") or [])
            score = score + [None] * (7 - len(score)) if len(score) <= 7 else [None] * 7
            hparams = dict(trial.get("hparams", {}))
            temperature = hparams.pop("temperature", 0.0)
            is_chosen = trial.get("hparams") == chosen.get("hparams") and trial.get(
                "prior_precision"
            ) == chosen.get("prior_precision")
            keys = list(dict.fromkeys(str(run) for run, _ in trial.get("chains", [])))
            row = {
                "comparison": entry.compare_key,
                "task": task,
                "sampler": entry.sampler,
                "trial": i,
                "number": trial.get("number", i),
                "state": state,
                "pruned": str(state).upper() == "PRUNED",
                "chosen": is_chosen,
                "prior_precision": trial.get("prior_precision"),
                "temperature": 0.0 if temperature is None else temperature,
                "not_reached": score[0],
                "diverged_or_collapsed": score[1],
                "median_grok_evals": score[2],
                "grok_rate": _negated(score[3]),
                "diverged_fraction": score[4],
                "median_final_val_acc": _negated(score[5]),
                "median_mem_grad_evals": score[6],
                "chains": len(trial.get("chains", [])),
                "run_keys": ",".join(keys),
            }
            row.update({f"search_{k}": v for k, v in (trial.get("search") or {}).items()})
            row.update(_hp_columns(hparams))
            rows.append(row)
    return _typed(rows, STUDY_COLUMNS)


# -- helpers ------------------------------------------------------------------------------------
def _utc(seconds: pd.Series) -> pd.Series:
    """Seconds since the epoch as UTC timestamps, in nanoseconds whatever pandas would infer."""
    return pd.to_datetime(seconds.astype("float64"), unit="s", utc=True).astype(
        "datetime64[ns, UTC]"
    )


def _place_columns(place: Place, chain: int) -> dict[str, Any]:
    return {
        "comparison": place.compare,
        "role": place.role,
        "row": place.row,
        "trial": place.trials.get(chain),
        "claim": place.claim,
    }


def _model_of(record: RunRecord) -> str | None:
    return (record.task_config or {}).get("model")


def _start(start: Any) -> str | None:
    if start is None:
        return None
    return INIT if start == INIT else "memorized"


def _negated(value: Any) -> Any:
    # the score stores "higher is better" values negated so that smaller sorts first
    return None if value is None else -value


def _hp_columns(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """``hp_<name>`` per hyperparameter; a pair (or any list) as ``hp_<name>_0``, ``_1``."""
    out = {}
    for key, value in hparams.items():
        if isinstance(value, (list, tuple)):
            out.update({f"hp_{key}_{i}": v for i, v in enumerate(value)})
        else:
            out[f"hp_{key}"] = value
    return out


def _typed(
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, tuple[str, str]],
    rest: str | None = None,
) -> pd.DataFrame:
    """The rows as a frame: the stated columns first in their dtypes, then every other column,
    typed by its values (``rest`` if given)."""
    extra: list[str] = []
    for row in rows:
        extra += [k for k in row if k not in columns and k not in extra]
    # grouped by kind, each group in the order first seen: searched values, hyperparameters,
    # final metrics, then anything else (a task's own metrics)
    kinds = ("search_", "hp_", "final_", "")
    names = list(columns) + sorted(
        extra, key=lambda k: next(i for i, p in enumerate(kinds) if k.startswith(p))
    )
    data = {n: [row.get(n) for row in rows] for n in names}
    frame = pd.DataFrame({n: pd.Series(data[n], dtype="object") for n in names})
    for name in names:
        if name in columns:
            dtype = columns[name][0]
            if dtype.startswith("datetime"):
                frame[name] = pd.to_numeric(frame[name]).astype("float64")
                continue
        else:
            dtype = rest or _dtype_of(data[name])
        frame[name] = _cast(frame[name], dtype)
    return frame


def _dtype_of(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "Int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float64"
    return "string"


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == "float64":
        return pd.to_numeric(series.astype("object").where(series.notna(), math.nan)).astype(
            "float64"
        )
    if dtype == "string":
        return series.map(lambda v: v if v is None or isinstance(v, str) else str(v)).astype(
            "string"
        )
    if dtype in ("int64", "bool"):
        return series.astype(dtype)
    return series.astype(dtype)  # Int64, boolean: nullable
