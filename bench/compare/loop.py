"""The comparison's main loop: tune every sampler on equal budgets, run each one's best
configuration on fresh seeds, and record it all in the store (the protocol is stated in
:mod:`bench.compare.protocol`).

Two batches of independent jobs, each trained through :class:`bench.jobs.Runner` (reused from
the store where they are there, split over the executor's workers): every sampler's tuning
trials, then every sampler's choice and the reference on the fresh seeds. With
``start="memorized"`` every chain of a seed starts from that seed's memorized checkpoint
(:mod:`bench.checkpoints`), made once and shared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from bench import checkpoints
from bench.compare.jobs import grad_evals_per_step, jobs_for
from bench.compare.presets import Preset
from bench.compare.protocol import FRESH_SEED, protocol_for, reference_config, score
from bench.compare.spaces import search_space, trials_for
from bench.jobs import Job, Runner
from bench.run import RunResult
from bench.spec import INIT
from bench.store import Entry, Store


def compare(
    task: Any,
    sampler_names: Sequence[str],
    preset: Preset,
    store: Store,
    *,
    start: str = "init",
    executor: Any = None,
    device: str | None = None,
    log: Callable[[str], None] = print,
    asked: str | None = None,
) -> str:
    """Tune every sampler, run its best configuration on fresh seeds, record it all in
    ``store``; returns the comparison's key. Reruns reuse every stored run. ``start`` is the
    protocol (``"memorized"`` or ``"init"``); ``asked`` is the task named on the command line
    when a preset swapped its model."""
    preset = preset.resolve(task)
    key, protocol = protocol_for(task, preset, sampler_names, start, asked)
    for earlier in store.compares(task.name):
        if earlier.key == key:  # samplers of earlier invocations keep their search spaces
            spaces = earlier.protocol.get("search_spaces", {})
            protocol["search_spaces"] = {**spaces, **protocol["search_spaces"]}
    tune_seeds = list(range(preset.tune_seeds))
    fresh = list(range(FRESH_SEED, FRESH_SEED + preset.seeds))
    starts: dict[int, str] | None = None
    thetas: dict[str, torch.Tensor] = {}
    if start == "memorized":
        points = checkpoints.memorized(
            task, tune_seeds + fresh, preset.memorized, store, device=device, log=log
        )
        starts = {c.seed: c.key for c in points}
        thetas = {c.key: c.theta for c in points}
        protocol["checkpoint_steps"] = {str(c.seed): c.step for c in points}
    store.put_compare(key, task.name, task.config, preset.name, protocol)

    def start_of(job: Job) -> torch.Tensor | None:
        if job.spec.start == INIT:
            return None
        return torch.stack([thetas[k] for k in job.spec.start]).float()

    runner = Runner(task, store, executor=executor, device=device, log=log)

    # -- tuning: every sampler's trials on the tuning seeds ----------------------------------
    plans = {}
    for name in sampler_names:
        configs = trials_for(name, task, preset.trials)
        warmup = search_space(name, task).warmup
        packed = jobs_for(name, configs, tune_seeds, preset, "tune", starts=starts, warmup=warmup)
        plans[name] = (configs, packed)
    jobs = [job for _, packed in plans.values() for job, _ in packed]
    log(f"  tuning: {len(jobs)} jobs ({start} start)")
    results = dict(runner.run_all(jobs, start_of, _check_cost))

    entries: dict[str, Entry] = {}
    finals: dict[str, list[Job]] = {}
    for name, (configs, packed) in plans.items():
        per_trial: dict[int, list] = {i: [] for i in range(len(configs))}
        tuning_runs = []
        for job, members in packed:
            run_id = job.key(task)
            tuning_runs.append(run_id)
            for chain, (i, _seed) in zip(results[run_id].chains, members, strict=True):
                per_trial[i].append((run_id, chain))
        scored, trials_out = [], []
        for i, config in enumerate(configs):
            chains = [c for _, c in per_trial[i]]
            s = score(chains, grad_evals_per_step(name, config["hparams"]))
            scored.append((s, i))
            trials_out.append(
                {
                    **config,
                    "chains": [[r, c.chain] for r, c in per_trial[i]],
                    "score": [None if isinstance(x, float) and math.isinf(x) else x for x in s],
                }
            )
        chosen = configs[min(scored)[1]]
        warmup = search_space(name, task).warmup
        finals[name] = [
            job
            for job, _ in jobs_for(
                name, [chosen], fresh, preset, "final", starts=starts, warmup=warmup
            )
        ]
        entries[name] = Entry(
            compare_key=key,
            sampler=name,
            trials=trials_out,
            tuning_runs=tuning_runs,
            chosen=chosen,
            final_runs=[job.key(task) for job in finals[name]],
        )
    if preset.reference and task.reference:
        name, chosen = reference_config(task)
        jobs = [job for job, _ in jobs_for(name, [chosen], fresh, preset, "ref", starts=starts)]
        finals["reference"] = jobs
        entries["reference"] = Entry(
            compare_key=key,
            sampler=name,
            trials=[],
            tuning_runs=[],
            chosen=chosen,
            final_runs=[job.key(task) for job in jobs],
            role="reference",
        )

    # -- fresh seeds: every sampler's choice, and the reference ------------------------------
    jobs = [job for group in finals.values() for job in group]
    log(f"  fresh seeds: {len(jobs)} jobs")
    runner.run_all(jobs, start_of, _check_cost)
    for entry in entries.values():
        store.put_entry(entry)
    log(f"  {runner.ran} runs trained, {runner.reused} reused from the store")
    return key


def _check_cost(job: Job, result: RunResult) -> None:
    """The equal-budget protocol assumed the sampler's stated cost per step; hold it to it."""
    expected = job.spec.grad_evals_per_step()
    if result.steps_run > 1 and result.grad_evals_per_step != expected:
        raise RuntimeError(
            f"{job.spec.sampler} spent {result.grad_evals_per_step} gradient evaluations per "
            f"step, the protocol assumed {expected}: the budgets would not be equal"
        )
