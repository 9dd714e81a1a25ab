"""Train a plan through the store: its memorized checkpoints, then every job the store lacks.

Jobs are trained as ``compare`` trains its own: reused on rerun, resumable after a kill, split
over local worker processes.

Memorized checkpoints are :mod:`bench.checkpoints`'s: the task's reference optimizer run until
it memorizes, kept in the store and shared with ``compare``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from bench import checkpoints
from bench.jobs import Job, Runner
from bench.spec import INIT
from bench.store import Store
from bench.theory.plan import Planned
from bench.theory.preset import Preset


def memorized_points(
    task: Any,
    seeds: Sequence[int],
    preset: Preset,
    store: Store,
    *,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[int, Any]:
    """The memorized checkpoints of ``seeds`` (made once, kept in the store)."""
    if not seeds:
        return {}
    made = checkpoints.memorized(task, list(seeds), preset.memorized, store, device=device, log=log)
    return {c.seed: c for c in made}


def run_plan(
    planned: Sequence[Planned],
    store: Store,
    thetas: Mapping[str, Tensor],
    *,
    executor: Any = None,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> tuple[int, int]:
    """Train every planned job that the store lacks (one :class:`Runner` per task, the longest
    jobs first so that the workers finish together); returns (trained, reused)."""
    by_task: dict[str, list[Planned]] = {}
    tasks_of: dict[str, Any] = {}
    for p in planned:
        ident = repr((p.task.name, sorted(p.task.config.items(), key=lambda kv: kv[0])))
        by_task.setdefault(ident, []).append(p)
        tasks_of.setdefault(ident, p.task)

    def start_of(job: Job) -> Tensor | None:
        if job.spec.start == INIT:
            return None
        return torch.stack([thetas[k] for k in job.spec.start]).float()

    trained = reused = 0
    order = sorted(by_task, key=lambda k: -sum(_cost(p.job) for p in by_task[k]))
    for ident in order:
        runner = Runner(tasks_of[ident], store, executor=executor, device=device, log=log)
        jobs = sorted((p.job for p in by_task[ident]), key=lambda j: -_cost(j))
        runner.run_all(jobs, start_of)
        trained += runner.ran
        reused += runner.reused
    return trained, reused


def _cost(job: Job) -> int:
    """Chain-steps: what a job costs, to start the longest first."""
    return job.spec.budget * job.spec.chains
