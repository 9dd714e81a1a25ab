"""The jobs a comparison needs: every (configuration, seed) chain packed into vectorized jobs
with the budget in gradient evaluations turned into each sampler's steps (trained once through
the store by :class:`bench.jobs.Runner`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import samplers
from bench.compare.presets import Preset
from bench.jobs import Job
from bench.spec import INIT, RunSpec


def grad_evals_per_step(sampler: str, hparams: Mapping[str, Any]) -> int:
    """What one step of ``sampler`` costs in gradient evaluations, as the sampler states it
    (checked against the run's own count afterwards)."""
    return samplers.lookup(sampler).grad_evals_per_step(hparams)


def jobs_for(
    sampler: str,
    configs: Sequence[dict[str, Any]],
    seeds: Sequence[int],
    preset: Preset,
    label: str,
    *,
    starts: Mapping[int, str] | None = None,
    warmup: tuple[str, float] | None = None,
    budget: int | None = None,
) -> list[tuple[Job, list[tuple[int, int]]]]:
    """Vectorized jobs that run every config on every seed; each job comes with the
    (config index, seed) of its chains. Configs that differ in a setting that cannot vary per
    chain go to separate jobs, and a job holds at most ``preset.max_chains`` chains.

    ``starts`` maps a seed to the key of its memorized checkpoint (``None``: from
    ``task.init``); ``warmup = (hyperparameter, fraction)`` gives that fraction of each job's
    steps to the sampler's adaptation. ``budget`` (gradient evaluations; default the preset's)
    shortens a run without moving its warm-up, which is always that of a run of the preset's
    budget: a shorter run is then a prefix of the full one (a rung of the tuner)."""
    params = samplers.lookup(sampler).params
    fixed_keys = [k for k, p in params.items() if not p.per_chain]
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        group = repr([config["hparams"].get(k) for k in fixed_keys])
        groups.setdefault(group, []).append(i)
    out = []
    for members in groups.values():
        chains = [(i, s) for i in members for s in seeds]
        for start in range(0, len(chains), preset.max_chains):
            part = chains[start : start + preset.max_chains]
            hp = [dict(configs[i]["hparams"]) for i, _ in part]
            evals = grad_evals_per_step(sampler, hp[0])
            full = max(1, preset.budget // evals)
            steps = full if budget is None else max(1, budget // evals)
            if warmup is not None:
                for h in hp:
                    h[warmup[0]] = max(1, int(warmup[1] * full))
            spec = RunSpec.from_chains(
                sampler,
                hp,
                [configs[i]["prior_precision"] for i, _ in part],
                [s for _, s in part],
                budget=steps,
                eval_every=max(1, preset.eval_every // evals),
                batch_size=preset.batch_size,
                confirm=None if preset.confirm is None else preset.confirm // evals,
                start=[starts[s] for _, s in part] if starts else INIT,
                max_norm_growth=preset.max_norm_growth,
            )
            job = Job(spec, label)
            out.append((job, part))
    return out
