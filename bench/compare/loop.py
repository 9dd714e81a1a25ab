"""The comparison's main loop: tune every sampler on equal budgets, run each one's best
configuration on fresh seeds, and record it all in the store (the protocol is stated in
:mod:`bench.compare.protocol`)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bench.compare.jobs import Runner, grad_evals_per_step, jobs_for
from bench.compare.presets import Preset
from bench.compare.protocol import FRESH_SEED, protocol_for, reference_config, score
from bench.compare.spaces import trials_for
from bench.store import Entry, Store


def compare(
    task: Any,
    sampler_names: Sequence[str],
    preset: Preset,
    store: Store,
    *,
    device: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    asked: str | None = None,
) -> str:
    """Tune every sampler, run its best configuration on fresh seeds, record it all in
    ``store``; returns the comparison's key. Reruns reuse every stored run. ``asked`` is the
    task named on the command line when a preset substituted another one."""
    preset = preset.resolve(task)
    key, protocol = protocol_for(task, preset, sampler_names, asked)
    for earlier in store.compares(task.name):
        if earlier.key == key:  # samplers of earlier invocations keep their search spaces
            spaces = earlier.protocol.get("search_spaces", {})
            protocol["search_spaces"] = {**spaces, **protocol["search_spaces"]}
    store.put_compare(key, task.name, task.config, preset.name, protocol)
    tune_seeds = list(range(preset.tune_seeds))
    fresh = list(range(FRESH_SEED, FRESH_SEED + preset.seeds))
    bar = _bar(progress, len(sampler_names), "samplers")
    if bar is not None:  # print above the progress bars, not through them
        log = bar.write
    runner = Runner(task, store, device=device, progress=progress, log=log)
    for name in sampler_names:
        if bar is not None:
            bar.set_description(f"{task.name} · {name}")
        configs = trials_for(name, task, preset.trials)
        scored: list[tuple[tuple, int]] = []
        trials_out: list[dict[str, Any]] = []
        tuning_runs: list[str] = []
        per_trial: dict[int, list] = {i: [] for i in range(len(configs))}
        for job, members in jobs_for(name, configs, tune_seeds, preset, "tune"):
            run_id, result = runner(job)
            tuning_runs.append(run_id)
            for chain, (i, _seed) in zip(result.chains, members, strict=True):
                per_trial[i].append((run_id, chain))
        for i, config in enumerate(configs):
            chains = [c for _, c in per_trial[i]]
            evals = grad_evals_per_step(name, config["hparams"])
            s = score(chains, evals)
            scored.append((s, i))
            trials_out.append(
                {
                    **config,
                    "chains": [[r, c.chain] for r, c in per_trial[i]],
                    "score": [None if math.isinf(x) else x for x in s],
                }
            )
        best = min(scored)[1]
        chosen = configs[best]
        final_runs = [runner(job)[0] for job, _ in jobs_for(name, [chosen], fresh, preset, "final")]
        store.put_entry(
            Entry(
                compare_key=key,
                sampler=name,
                trials=trials_out,
                tuning_runs=tuning_runs,
                chosen=chosen,
                final_runs=final_runs,
            )
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if preset.reference and task.reference:
        name, chosen = reference_config(task)
        final_runs = [runner(job)[0] for job, _ in jobs_for(name, [chosen], fresh, preset, "ref")]
        store.put_entry(
            Entry(
                compare_key=key,
                sampler=name,
                trials=[],
                tuning_runs=[],
                chosen=chosen,
                final_runs=final_runs,
                role="reference",
            )
        )
    log(f"  {runner.ran} runs trained, {runner.reused} reused from the store")
    return key


def _bar(progress: bool | None, total: int, desc: str):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sampler", position=0, dynamic_ncols=True)
