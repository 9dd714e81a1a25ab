"""Packing (configuration, seed) chains into vectorized jobs, and the runner that trains a job
once: a job whose key is in the store is loaded, never rerun."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import samplers
from bench.compare.presets import Preset
from bench.run import run
from bench.store import Store, code_version, run_key


def grad_evals_per_step(sampler: str, hparams: Mapping[str, Any]) -> int:
    """What one step of ``sampler`` costs in gradient evaluations, as the sampler states it
    (checked against the run's own count afterwards)."""
    return samplers.lookup(sampler).grad_evals_per_step(hparams)


@dataclass
class Job:
    """One vectorized run: a sampler, one hyperparameter value (or list) per key, its seeds."""

    sampler: str
    hparams: dict[str, Any]
    prior_precision: float | list[float]
    seeds: list[int]
    steps: int
    eval_every: int
    label: str

    def key(self, task: Any) -> str:
        return run_key(
            task,
            self.sampler,
            self.hparams,
            prior_precision=self.prior_precision,
            seeds=self.seeds,
            budget=self.steps,
            eval_every=self.eval_every,
        )


def jobs_for(
    sampler: str,
    configs: Sequence[dict[str, Any]],
    seeds: Sequence[int],
    preset: Preset,
    label: str,
) -> list[tuple[Job, list[tuple[int, int]]]]:
    """Vectorized jobs that run every config on every seed; each job comes with the
    (config index, seed) of its chains. Configs that differ in a setting that cannot vary per
    chain go to separate jobs, and a job holds at most ``preset.max_chains`` chains."""
    params = getattr(samplers.lookup(sampler), "params", {})
    fixed_keys = [k for k, p in params.items() if not getattr(p, "per_chain", True)]
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        group = repr([config["hparams"].get(k) for k in fixed_keys])
        groups.setdefault(group, []).append(i)
    out = []
    for members in groups.values():
        chains = [(i, s) for i in members for s in seeds]
        for start in range(0, len(chains), preset.max_chains):
            part = chains[start : start + preset.max_chains]
            hp = [configs[i]["hparams"] for i, _ in part]
            evals = grad_evals_per_step(sampler, hp[0])
            job = Job(
                sampler=sampler,
                hparams=_columns(hp),
                prior_precision=_column([configs[i]["prior_precision"] for i, _ in part]),
                seeds=[s for _, s in part],
                steps=max(1, preset.budget // evals),
                eval_every=max(1, preset.eval_every // evals),
                label=label,
            )
            out.append((job, part))
    return out


def _columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-chain dicts -> one value per key: a scalar when all chains agree, else a list."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: _column([r[k] for r in rows]) for k in keys}


def _column(values: Sequence[Any]) -> Any:
    first = values[0]
    if all(v == first for v in values):
        return list(first) if isinstance(first, tuple) else first
    return [list(v) if isinstance(v, tuple) else v for v in values]


class Runner:
    """Runs jobs through the store: a job whose key is stored is loaded, never rerun."""

    def __init__(self, task, store: Store, *, device=None, progress: bool | None = None, log=print):
        self.task = task
        self.store = store
        self.device = device
        self.progress = progress
        self.log = log
        self.code = code_version()
        self.ran = 0
        self.reused = 0

    def __call__(self, job: Job):
        key = job.key(self.task)
        record = self.store.get_run(key, curves=False)
        if record is not None:
            self.reused += 1
            return key, record.result
        tick = time.perf_counter()
        result = run(
            self.task,
            job.sampler,
            job.hparams,
            seeds=job.seeds,
            budget=job.steps,
            eval_every=job.eval_every,
            prior_precision=job.prior_precision,
            device=self.device,
            progress=self.progress,
        )
        wall = time.perf_counter() - tick
        expected = grad_evals_per_step(job.sampler, _first(job.hparams))
        if result.steps_run and result.grad_evals_per_step != expected:
            raise RuntimeError(
                f"{job.sampler} spent {result.grad_evals_per_step} gradient evaluations per step, "
                f"the protocol assumed {expected}: the budgets would not be equal"
            )
        self.store.put_run(
            key, result, task_config=self.task.config, seconds_wall=wall, code=self.code
        )
        self.ran += 1
        grokked = sum(c.grokked for c in result.chains)
        self.log(
            f"  {job.sampler:<20} {job.label:<6} {len(result.chains):>3} chains x "
            f"{result.steps_run:>6} steps  grokked {grokked}/{len(result.chains)}  {wall:6.1f} s"
        )
        return key, result


def _first(hparams: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v[0] if isinstance(v, list) and k != "betas" else v) for k, v in hparams.items()}
