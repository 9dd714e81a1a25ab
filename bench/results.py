"""Results as data: a store's runs, curves and tuning trials as tidy pandas DataFrames.

::

    from bench import results
    runs = results.runs("results/store.sqlite", compare="3f2a")    # one row per chain
    curves = results.curves("results/store.sqlite", compare="3f2a")  # per chain and evaluation
    trials = results.studies("results/store.sqlite", compare="3f2a")  # per tuning trial
    results.comparisons("results/store.sqlite")                     # what there is to ask for

Each function takes a store path (opened read-only: SQLite's ``mode=ro``, nothing is created,
upgraded or written) or an open :class:`bench.store.Store`, and the filters ``compare`` (a
comparison's key or a unique prefix of it), ``claim`` (a claim of ``python -m bench theory``:
its runs under any theory preset, on ``task`` if given), ``task`` and ``sampler``. Only the
runs asked for are read: a comparison's runs by their keys, a claim's by the keys of its plan,
a task's or a sampler's by an indexed query; nothing loads the whole store unless asked to.
``python -m bench export`` writes the three frames as CSV or Parquet (:func:`export`).

A chain has a row for each *place* its run holds: a run that two comparisons share, or that is
both a sampler's final run and the reference, appears once per comparison and role; a run that
no comparison made (``python -m bench run`` does not store; ``theory`` does) has no comparison
columns. Claim columns are filled when ``claim`` is asked for. Times not reached are missing
(``<NA>``), right-censored at ``censored_at``: never the budget.

Columns (the frames' dtypes; ``Int64``, ``boolean`` and ``string`` are pandas' nullable ones)
--------------------------------------------------------------------------------------------

``runs``, one row per chain:

========================== ======================= =================================================
column                     dtype                   meaning
========================== ======================= =================================================
task                       string                  the task's registered name
model                      string                  the task's model (its configuration's `model`)
sampler                    string                  the sampler's registered name
run_key                    string                  the run's key in the store
chain                      int64                   the chain's index in its run
seed                       int64                   the chain's seed
comparison                 string                  the comparison's key (compare runs)
role                       string                  `tune`, `final` or `reference` (compare runs)
row                        string                  the board's row (compare runs), e.g. `sgld@0`
trial                      Int64                   index of the tuning trial in the entry's trials
claim                      string                  the theory claim (claim runs)
arm                        string                  the claim's arm: `full` or `minibatch`
label                      string                  the job's label in the claim's plan
prior_precision            float64                 λ of the prior ½·λ·‖θ‖²
temperature                float64                 τ; 0 for an optimizer (no temperature)
start                      string                  `init` or `memorized`; missing in pre-spec stores
budget                     int64                   steps the run was given
budget_grad_evals          int64                   the budget in gradient evaluations
eval_every                 int64                   steps between evaluations: the times' resolution
confirm                    Int64                   window of sustained grokking in steps
batch_size                 Int64                   the minibatch drawn; missing: the full batch
grad_evals_per_step        int64                   what one step cost
steps_run                  int64                   steps the run went
t_mem                      Int64                   steps to memorization (train acc ≥ target)
t_mem_grad_evals           Int64                   the same in gradient evaluations
t_mem_seconds              float64                 the same in training seconds
t_grok                     Int64                   steps to sustained grokking
t_grok_grad_evals          Int64                   the same in gradient evaluations
t_grok_seconds             float64                 the same in training seconds
t_touch                    Int64                   steps to Power et al.'s first touch of the target
t_touch_grad_evals         Int64                   the same in gradient evaluations
censored_at                int64                   the last step run: where unreached times censor
censored_at_grad_evals     int64                   the same in gradient evaluations
censored_at_seconds        float64                 the run's training seconds
censored                   bool                    t_grok not reached (right-censored)
memorized                  bool                    t_mem reached
generalized                bool                    ends the run finite with val acc ≥ target
diverged                   bool                    marked diverged (never counts as grokked)
diverged_step              Int64                   the evaluation step that saw it
diverged_cause             string                  why, where recorded
divergent_transitions      int64                   steps the sampler flagged
accept_rate                float64                 mean acceptance probability (1 without MH test)
code_version               string                  the code that ran it
device                     string                  where it ran
seconds_wall               float64                 the run's wall-clock
finished_at                datetime64[ns, UTC]     when it was stored
hp_<name>                  by value                every other hyperparameter (a pair: _0, _1)
final_<metric>             float64                 the last evaluation's metrics
========================== ======================= =================================================

``curves``, one row per chain and evaluation (then any other metric the task evaluates):

========================== ======================= =================================================
column                     dtype                   meaning
========================== ======================= =================================================
task                       string                  the task
sampler                    string                  the sampler
run_key                    string                  the run's key
chain                      int64                   the chain's index in its run
seed                       int64                   the chain's seed
comparison                 string                  the comparison's key (compare runs)
role                       string                  `tune`, `final` or `reference` (compare runs)
row                        string                  the board's row (compare runs)
trial                      Int64                   the tuning trial (role `tune`)
claim                      string                  the theory claim (claim runs)
step                       int64                   the evaluation's step
grad_evals                 int64                   gradient evaluations so far
seconds                    float64                 training seconds so far
train_loss                 float64                 mean training loss
train_acc                  float64                 training accuracy
val_loss                   float64                 validation loss
val_acc                    float64                 validation accuracy
weight_norm                float64                 ‖θ‖
dist_init                  float64                 ‖θ − θ_start‖
dist_mem                   float64                 ‖θ − θ at t_mem‖ (NaN before t_mem)
accept                     float64                 mean acceptance since the last evaluation
========================== ======================= =================================================

``studies``, one row per tuning trial (then ``search_<axis>``, the searched values in the
shared units, and ``hp_<name>``); the score columns are :func:`bench.compare.score`'s:

========================== ======================= =================================================
column                     dtype                   meaning
========================== ======================= =================================================
comparison                 string                  the comparison's key
task                       string                  the task
sampler                    string                  the sampler tuned
trial                      int64                   the trial's index (the runs frame's `trial`)
number                     int64                   the tuner's trial number (else the index)
state                      string                  the tuner's state (`COMPLETE`, `PRUNED`, ...)
pruned                     bool                    stopped early by the tuner
chosen                     bool                    the configuration run on the fresh seeds
prior_precision            float64                 λ of the prior
temperature                float64                 τ; 0 for an optimizer
not_reached                boolean                 KM median evaluations to grok not reached
diverged_or_collapsed      boolean                 a chain diverged, or touched and fell back
median_grok_evals          float64                 KM median gradient evaluations to grok
grok_rate                  float64                 fraction of the trial's chains that grokked
diverged_fraction          float64                 fraction that diverged
median_final_val_acc       float64                 median final validation accuracy
median_mem_grad_evals      float64                 KM median gradient evaluations to memorize
chains                     int64                   tuning chains behind the score
run_keys                   string                  the tuning runs, comma-separated
========================== ======================= =================================================
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from bench import frames
from bench.checkpoints import checkpoint_key
from bench.files import atomic_write
from bench.frames import NOWHERE, Place
from bench.store import Compare, RunRecord, Store, StoreError
from bench.theory import claims as theory_claims
from tasks.suggestions import did_you_mean

#: The frames :func:`export` writes, by file name.
FRAMES = ("runs", "curves", "studies")
#: ``--format`` -> file suffix.
FORMATS = {"csv": ".csv", "parquet": ".parquet"}

StoreLike = Store | str | os.PathLike


class ResultsError(ValueError):
    """A selection that names nothing in the store, or an export that cannot be written."""


@contextlib.contextmanager
def opened(store: StoreLike) -> Iterator[Store]:
    """``store`` itself if it is an open :class:`Store`, else the store at that path opened
    read-only (a path that is not a grokbench store raises :class:`bench.store.StoreError`)."""
    if isinstance(store, Store):
        yield store
        return
    with Store(store, read_only=True) as opened_store:
        yield opened_store


# -- what there is ----------------------------------------------------------------------------
def comparisons(store: StoreLike, task: str | None = None) -> pd.DataFrame:
    """The store's comparisons, most recently updated first: key, task, preset, start, and
    when each was created and last updated."""
    with opened(store) as s:
        rows = [
            {
                "comparison": c.key,
                "task": c.task,
                "preset": c.preset,
                "start": c.protocol.get("start", "init"),
                "created_at": c.created_at,
                "updated_at": c.updated_at,
            }
            for c in s.compares(task)
        ]
    frame = pd.DataFrame(
        rows, columns=["comparison", "task", "preset", "start", "created_at", "updated_at"]
    )
    for column in ("comparison", "task", "preset", "start"):
        frame[column] = frame[column].astype("string")
    for column in ("created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column].astype("float64"), unit="s", utc=True).astype(
            "datetime64[ns, UTC]"
        )
    return frame


def find_compare(store: Store, key: str) -> Compare:
    """The comparison whose key is ``key`` or starts with it; else :class:`ResultsError`
    naming the nearest keys (with their task and start)."""
    every = store.compares()
    exact = [c for c in every if c.key == key]
    matches = exact or [c for c in every if c.key.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ResultsError(
            f"comparison {key!r} is ambiguous in {store.path}: it starts "
            + ", ".join(c.key for c in matches[:5])
            + "; give more of the key"
        )
    known = [c.key for c in every]
    hint = did_you_mean(key, known, n=3, cutoff=0.3)
    listing = "; ".join(f"{c.key} ({c.task}, {c.protocol.get('start', 'init')})" for c in every[:5])
    by_task = [c for c in every if c.task == key]
    if by_task:
        hint = f"{key} is a task: use --task {key}, or one of its comparisons {by_task[0].key}"
    raise ResultsError(
        f"no comparison {key!r} in {store.path}; "
        + (hint + "; " if hint else "")
        + (f"its comparisons: {listing}" if every else "it holds no comparison")
    )


# -- the three frames ---------------------------------------------------------------------------
def runs(
    store: StoreLike,
    *,
    compare: str | None = None,
    claim: str | None = None,
    task: str | None = None,
    sampler: str | None = None,
) -> pd.DataFrame:
    """One row per chain (and place) of the selected runs; columns in the module docstring."""
    with opened(store) as s:
        places = select(s, compare=compare, claim=claim, task=task, sampler=sampler)
        return frames.runs_frame(_records(s, places, curves=False))


def curves(
    store: StoreLike,
    *,
    compare: str | None = None,
    claim: str | None = None,
    task: str | None = None,
    sampler: str | None = None,
) -> pd.DataFrame:
    """One row per chain and evaluation of the selected runs; columns in the module
    docstring."""
    with opened(store) as s:
        places = select(s, compare=compare, claim=claim, task=task, sampler=sampler)
        return frames.curves_frame(_records(s, places, curves=True))


def studies(
    store: StoreLike,
    *,
    compare: str | None = None,
    claim: str | None = None,
    task: str | None = None,
    sampler: str | None = None,
) -> pd.DataFrame:
    """One row per tuning trial of the selected comparisons (every comparison of ``task``, or
    of the store, when none is named); a claim's sweep has no tuning: no rows."""
    _one_of(compare, claim)
    with opened(store) as s:
        if claim is not None:
            theory_claims.check_claims([claim])
            chosen: list[Compare] = []
        elif compare is not None:
            chosen = [find_compare(s, compare)]
        else:
            chosen = s.compares(task)
        entries = [
            (e, c.task)
            for c in chosen
            if task is None or c.task == task
            for e in s.entries(c.key)
            if sampler is None or e.sampler == sampler
        ]
        return frames.studies_frame(entries)


# -- selection ----------------------------------------------------------------------------------
def select(
    store: Store,
    *,
    compare: str | None = None,
    claim: str | None = None,
    task: str | None = None,
    sampler: str | None = None,
) -> list[tuple[str, Place]]:
    """The run keys the filters select, each with its place, without reading any run."""
    _one_of(compare, claim)
    if compare is not None:
        chosen = find_compare(store, compare)
        if task is not None and chosen.task != task:
            return []
        return [
            (key, place)
            for entry in store.entries(chosen.key)
            if sampler is None or entry.sampler == sampler
            for key, place in frames.entry_places(entry)
        ]
    if claim is not None:
        return claim_places(store, claim, task=task, sampler=sampler)
    keys = store.run_keys(task=task, sampler=sampler)
    wanted = set(keys)
    placed: dict[str, list[Place]] = {}
    for c in store.compares(task):
        for entry in store.entries(c.key):
            for key, place in frames.entry_places(entry):
                if key in wanted:
                    placed.setdefault(key, []).append(place)
    return [(key, place) for key in keys for place in placed.get(key, [NOWHERE])]


def claim_places(
    store: Store, claim: str, *, task: str | None = None, sampler: str | None = None
) -> list[tuple[str, Place]]:
    """The stored runs of ``claim``'s sweep (full and minibatch arms at the preset's batch
    size), under every theory preset whose memorized checkpoints the store holds: the keys its
    plan computes, kept where the store has them."""
    name = theory_claims.check_claims([claim])[0]  # unknown: UnknownClaim, "did you mean"
    out: list[tuple[str, Place]] = []
    for preset_name in theory_claims.PRESETS:
        preset = theory_claims.preset_for(preset_name, task)
        made = preset.make_task()  # unknown task: TaskError with suggestions
        points = {}
        for seed in theory_claims.checkpoint_seeds([name], preset):
            try:
                point = store.get_checkpoint(checkpoint_key(made, seed, preset.memorized))
            except sqlite3.OperationalError:  # a version-2 store has no checkpoints
                point = None
            if point is None:
                break
            points[seed] = point
        else:
            for planned in theory_claims.plan([name], preset, made, points):
                if sampler is not None and planned.job.spec.sampler != sampler:
                    continue
                if store.has_run(planned.key):
                    place = Place(claim=name, arm=planned.arm, label=planned.job.label)
                    out.append((planned.key, place))
    return out


def _one_of(compare: str | None, claim: str | None) -> None:
    if compare is not None and claim is not None:
        raise ResultsError("select a comparison or a claim, not both")


def _records(
    store: Store, places: Sequence[tuple[str, Place]], *, curves: bool
) -> list[tuple[RunRecord, Place]]:
    """Each selected run read once (with its curves if asked), paired with its places."""
    read: dict[str, RunRecord | None] = {}
    out = []
    for key, place in places:
        if key not in read:
            read[key] = store.get_run(key, curves=curves)
        if read[key] is not None:  # an entry whose run is gone: nothing to show
            out.append((read[key], place))
    return out


# -- export -------------------------------------------------------------------------------------
def export(
    store: StoreLike,
    out: str | os.PathLike,
    fmt: str = "csv",
    *,
    compare: str | None = None,
    claim: str | None = None,
    task: str | None = None,
    sampler: str | None = None,
) -> list[Path]:
    """Write ``runs``, ``curves`` and ``studies`` of the selection to ``out/<frame>.<fmt>``
    (CSV: a header, missing values empty; Parquet: the dtypes kept), each file whole or not at
    all. Every check (format, folder, store, selection) runs before a file is written."""
    if fmt not in FORMATS:
        raise ResultsError(f"--format is one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ResultsError("--format parquet needs the pyarrow package: pip install pyarrow")
    folder = Path(out)
    check_folder(folder)
    with opened(store) as s:
        places = select(s, compare=compare, claim=claim, task=task, sampler=sampler)
        if not places:
            raise ResultsError(f"the selection holds no run in {s.path}: nothing to export")
        tables = {
            "runs": frames.runs_frame(_records(s, places, curves=False)),
            "curves": frames.curves_frame(_records(s, places, curves=True)),
            "studies": studies(s, compare=compare, claim=claim, task=task, sampler=sampler),
        }
    written = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            path = folder / f"{name}{FORMATS[fmt]}"
            if fmt == "csv":
                atomic_write(path, table.to_csv(index=False))
            else:
                buffer = io.BytesIO()
                table.to_parquet(buffer, index=False)
                atomic_write(path, buffer.getvalue())
            written.append(path)
    except OSError as err:  # a folder that looked writable and was not (read-only mount, /proc)
        raise ResultsError(f"cannot write to {folder}: {err.strerror or err}") from None
    return written


def check_folder(folder: Path) -> None:
    """Refuse an output folder that is a file or cannot be written (nothing is made here)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ResultsError(f"cannot write to {folder}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ResultsError(f"cannot write to {folder}: {probe} is not writable")


__all__ = [
    "FORMATS",
    "FRAMES",
    "ResultsError",
    "StoreError",
    "comparisons",
    "curves",
    "export",
    "find_compare",
    "runs",
    "select",
    "studies",
]
