"""Rechecking a comparison before trusting it: every row's chosen setting rerun, unchanged, from
memorized checkpoints the comparison never saw, for longer than its budget.

A board ranks the settings its tuner chose on two tuning checkpoints and measured on ten fresh
ones, each run to the board's budget. Two things it cannot see: whether a choice is a property
of those checkpoints (a lottery of the tuning seeds), and what happens after the budget ends (a
chain that groks and then breaks, as Riemannian Langevin's frozen metric did in issue 18, counts
as a sustained grok when the run ends first). A recheck answers both: each row's stored final
:class:`~bench.spec.RunSpec` with only three fields replaced,

* ``seeds``: :data:`RECHECK_SEED` onward, checkpoints made by the same reference optimizer and
  criterion as the board's (:mod:`bench.checkpoints`), disjoint from its tuning seeds (0, 1, …)
  and fresh seeds (:data:`~bench.compare.protocol.FRESH_SEED` onward);
* ``start``: those checkpoints;
* ``budget``: ``factor`` times the board's (steps; the warm-ups stay where the board's runs had
  them, so that the setting is the one the board measured, run on).

Sustained grokking is then judged to the end of the longer run. The runs are ordinary jobs
through :class:`bench.jobs.Runner`: stored, reused on a rerun, resumable after ``kill -9``.
:mod:`bench.recheck_page` writes what they show beside the board.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

import tasks
from bench import checkpoints
from bench.checkpoints import Criterion
from bench.jobs import Job, Runner
from bench.keys import plain
from bench.run import RunResult
from bench.spec import RunSpec
from bench.store import Compare, Entry, Store
from tasks.suggestions import did_you_mean

#: The first seed of a recheck's checkpoints: far from the tuning seeds (0, 1, …) and the fresh
#: seeds (:data:`bench.compare.protocol.FRESH_SEED` …) of every preset (tested).
RECHECK_SEED = 2000
#: The roles of a board's rows that are rechecked: the tuned rows, the twins, the reference.
ROLES = ("tuned", "twin", "reference")


@dataclass(frozen=True)
class Rechecked:
    """One row's chosen setting rerun from other checkpoints for longer."""

    row: str
    entry: Entry
    spec: RunSpec  # what ran: the board's final spec with seeds, start and budget replaced
    result: RunResult
    checkpoint_steps: dict[int, int]  # seed -> the step its checkpoint was memorized at


def task_of(compare: Compare) -> Any:
    """The task a comparison ran, rebuilt from its stored name and configuration (a task the
    CPU preset built from another's data and the MLP is rebuilt the same way)."""
    candidates = [lambda: tasks.make(compare.task)]
    model = compare.task_config.get("model")
    asked = compare.protocol.get("asked_task")
    if asked and model:
        candidates.append(lambda: tasks.make(asked, model=model))
    for make in candidates:
        try:
            task = make()
        except tasks.TaskError:
            continue
        if plain(task.config) == plain(compare.task_config):  # tuples stored as lists
            return task
    raise ValueError(
        f"comparison {compare.key[:12]} ran task {compare.task} with a configuration no "
        "registered task has now; it cannot be rechecked"
    )


def pick_rows(entries: Sequence[Entry], names: Sequence[str] | None) -> list[Entry]:
    """The board's rows to recheck, in the board's order: all of them, or ``names`` (an unknown
    name is a ValueError naming the nearest rows)."""
    rows = [e for e in entries if e.role in ROLES and e.final_runs]
    if names is None:
        return rows
    known = {e.sampler: e for e in rows}
    unknown = [n for n in names if n not in known]
    if unknown:
        said = "; ".join(f"{n!r} {did_you_mean(n, known)}".strip() for n in unknown)
        raise ValueError(f"no row {said} on this board; its rows: {', '.join(known)}")
    wanted = set(names)
    return [e for e in rows if e.sampler in wanted]


def respec(final: RunSpec, seeds: Sequence[int], starts: Sequence[str], factor: float) -> RunSpec:
    """The board's final spec of a row, run from ``starts`` for ``factor`` times its budget;
    every other field (hyperparameters, warm-up, prior, evaluation interval, data seed,
    divergence check) kept."""
    rows = final.per_chain()
    if any(row != rows[0] for row in rows):
        raise ValueError(f"{final.sampler}: a board's final run holds one setting on every chain")
    hparams = {k: v for k, v in rows[0].items() if k != "prior_precision"}
    n = len(seeds)
    return RunSpec.from_chains(
        final.sampler,
        [hparams] * n,
        [rows[0]["prior_precision"]] * n,
        list(seeds),
        **{
            **{
                f.name: getattr(final, f.name)
                for f in dataclasses.fields(RunSpec)
                if f.name not in ("sampler", "hparams", "prior_precision", "seeds")
            },
            "start": list(starts),
            "budget": int(round(final.budget * factor)),
        },
    )


def recheck(
    task: Any,
    store: Store,
    compare: Compare,
    *,
    rows: Sequence[str] | None = None,
    seeds: int = 3,
    factor: float = 2.0,
    executor: Any = None,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> list[Rechecked]:
    """Rerun the chosen settings of ``compare``'s rows (all, or ``rows``) from ``seeds`` new
    memorized checkpoints for ``factor`` times the board's budget (see the module docstring)."""
    if compare.protocol.get("start") != "memorized":
        raise ValueError(
            "a recheck reruns a board's choices from other memorized checkpoints: this "
            f"comparison started from {compare.protocol.get('start', 'init')}"
        )
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if not factor >= 1.0:
        raise ValueError(
            f"factor must be at least 1 (a recheck runs on past the budget), got {factor}"
        )
    entries = pick_rows(store.entries(compare.key), rows)
    criterion = Criterion(**compare.protocol["memorized"])
    new = list(range(RECHECK_SEED, RECHECK_SEED + seeds))
    points = checkpoints.memorized(task, new, criterion, store, device=device, log=log)
    keys = [c.key for c in points]
    thetas = {c.key: c.theta for c in points}
    steps = {c.seed: c.step for c in points}
    planned = []
    for entry in entries:
        record = store.get_run(entry.final_runs[0], curves=False)
        if record is None:
            raise ValueError(f"{entry.sampler}: its final run is not in {store.path}")
        planned.append((entry, Job(respec(record.result.spec, new, keys, factor), "recheck")))
    log(
        f"recheck {compare.task}: {len(planned)} rows from checkpoints {new[0]}-{new[-1]} "
        f"(memorized at steps {sorted(steps.values())}), {factor:g}x the board's budget"
    )
    runner = Runner(task, store, executor=executor, device=device, log=log)

    def start_of(job: Job) -> torch.Tensor:
        return torch.stack([thetas[k] for k in job.spec.start]).float()

    results = dict(runner.run_all([job for _, job in planned], start_of))
    log(f"  {runner.ran} runs trained, {runner.reused} reused from the store")
    out = []
    for entry, job in planned:
        out.append(Rechecked(entry.sampler, entry, job.spec, results[job.key(task)], steps))
    return out


__all__ = ["RECHECK_SEED", "ROLES", "Rechecked", "pick_rows", "recheck", "respec", "task_of"]
