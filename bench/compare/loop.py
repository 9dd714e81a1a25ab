"""The comparison's main loop: measure the checkpoint's scales, tune every row of the factorial
on equal budgets, run each row's choice (and each noisy row's τ = 0 twin) on fresh seeds, and
record it all in the store (the protocol is stated in :mod:`bench.compare.protocol`).

Every run is a job trained through :class:`bench.jobs.Runner` (reused from the store where it is
there, split over the executor's workers): the tuner's rungs, all rows' chains of a rung in one
batch of jobs, then every row's choice, every twin and the reference on the fresh seeds. With
``start="memorized"`` every chain of a seed starts from that seed's memorized checkpoint
(:mod:`bench.checkpoints`), made once and shared.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import torch

import samplers
from bench import checkpoints
from bench.compare import tuner, units
from bench.compare.jobs import grad_evals_per_step, jobs_for
from bench.compare.presets import Preset
from bench.compare.protocol import FRESH_SEED, protocol_for, reference_config
from bench.compare.rows import Row, rows_for, twin_of
from bench.jobs import Job, Runner
from bench.run import RunResult
from bench.spec import INIT
from bench.store import Entry, Store
from samplers import HyperparameterError


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
    """Tune every row of ``sampler_names`` (:func:`bench.compare.rows.rows_for`), run its
    choice on fresh seeds, record it all in ``store``; returns the comparison's key. Reruns
    reuse every stored run and study. ``start`` is the protocol (``"memorized"`` or
    ``"init"``); ``asked`` is the task named on the command line when a preset swapped it."""
    preset = preset.resolve(task)
    rows = rows_for(sampler_names)
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
        checkpoint_steps = {str(c.seed): c.step for c in points}
        tuning_thetas = torch.stack([thetas[starts[s]] for s in tune_seeds])
    else:
        tuning_thetas = torch.cat([task.init(s, 1) for s in tune_seeds])
    scales = units.probe(task, tuning_thetas)
    log(
        f"  scales at the tuning {'checkpoints' if starts else 'starts'}: ‖θ‖ {scales.norm:.3g}, "
        f"λ_max {scales.sharpness:.3g}, λ_c {scales.lambda_c:.3g}, mean P̂ {scales.precond_mean:.3g}"
    )
    rows = _runnable(rows, task, preset, scales, log)
    key, protocol = protocol_for(task, preset, rows, start, asked)
    for earlier in store.compares(task.name):
        if earlier.key == key:  # rows of earlier invocations keep their spaces on the page
            protocol["rows"] = {**earlier.protocol.get("rows", {}), **protocol["rows"]}
    protocol["scales"] = scales.to_dict()
    if starts is not None:
        protocol["checkpoint_steps"] = checkpoint_steps
    store.put_compare(key, task.name, task.config, preset.name, protocol)

    def start_of(job: Job) -> torch.Tensor | None:
        if job.spec.start == INIT:
            return None
        return torch.stack([thetas[k] for k in job.spec.start]).float()

    runner = Runner(task, store, executor=executor, device=device, log=log)

    def run_jobs(jobs: list[Job]) -> dict[str, RunResult]:
        return dict(runner.run_all(jobs, start_of, _check_cost))

    # -- tuning: every row's study, rung by rung ---------------------------------------------
    tuned = tune(rows, task, preset, scales, store, key, run_jobs, tune_seeds, starts, log)

    # -- fresh seeds: every row's choice, every twin, and the reference ----------------------
    finals: dict[str, tuple[Row, dict[str, Any], str]] = {}
    for row in rows:
        result = tuned[row.name]
        finals[row.name] = (row, result.chosen, "tuned")
        if row.twin:
            twin = twin_of(row)
            finals[twin.name] = (twin, row.twin_config(result.chosen, scales), "twin")
    if preset.reference and task.reference:
        name, chosen = reference_config(task)
        finals["reference"] = (Row("reference", name), chosen, "reference")
    planned: dict[str, list[Job]] = {}
    for name, (row, chosen, _) in finals.items():
        packed = jobs_for(
            row.sampler, [chosen], fresh, preset, "final", starts=starts, warmup=row.warmup
        )
        planned[name] = [job for job, _ in packed]
    jobs = [job for group in planned.values() for job in group]
    log(f"  fresh seeds: {len(jobs)} jobs")
    run_jobs(jobs)
    for name, (row, chosen, role) in finals.items():
        result = tuned.get(name)
        store.put_entry(
            Entry(
                compare_key=key,
                sampler=name,
                trials=result.trials if result else [],
                tuning_runs=result.runs if result else [],
                chosen={
                    **chosen,
                    "sampler": row.sampler,
                    "cell": row.cell() if role != "reference" else {},
                    "twin_of": row.twin_of,
                    "tuning": _tuning_json(result) if result else None,
                },
                final_runs=[job.key(task) for job in planned[name]],
                role=role,
            )
        )
    log(f"  {runner.ran} runs trained, {runner.reused} reused from the store")
    return key


def tune(
    rows: Sequence[Row],
    task: Any,
    preset: Preset,
    scales: units.Scales,
    store: Store,
    compare_key: str,
    run_jobs: Callable[[list[Job]], dict[str, RunResult]],
    seeds: Sequence[int],
    starts: dict[int, str] | None,
    log: Callable[[str], None],
) -> dict[str, tuner.Tuned]:
    """Every row's study (:mod:`bench.compare.tuner`), batch by batch and rung by rung, all rows'
    chains of a rung trained as one batch of jobs."""
    storage = tuner.storage(store.path)
    tuners = {
        row.name: tuner.RowTuner(
            row,
            tuner.study(storage, compare_key, row, row.bounds(task)),
            row.bounds(task),
            lambda values, row=row: row.config(values, scales, task),
            preset.trials,
        )
        for row in rows
    }
    budgets = tuner.rung_budgets(preset)
    for batch in range(preset.batches):
        if batch and batch == preset.batches - 1:
            for t in tuners.values():
                t.widen_edges()
        live = {name: t.ask(batch) for name, t in tuners.items()}
        for r, budget in enumerate(budgets):
            last = r == len(budgets) - 1
            packed = {}
            for name, trials in live.items():
                row = tuners[name].row
                configs = [trial.config for trial in trials]
                packed[name] = jobs_for(
                    row.sampler,
                    configs,
                    seeds,
                    preset,
                    "tune",
                    starts=starts,
                    warmup=row.warmup,
                    budget=budget,
                )
            jobs = [job for group in packed.values() for job, _ in group]
            log(
                f"  tuning batch {batch + 1}/{preset.batches}, rung of {budget} gradient "
                f"evaluations: {len(jobs)} jobs"
            )
            results = run_jobs(jobs)
            for name, trials in live.items():
                t = tuners[name]
                chains: dict[int, list] = {trial.number: [] for trial in trials}
                series: dict[int, list] = {}
                evals: dict[int, int] = {}
                for job, members in packed[name]:
                    run_id = job.key(task)
                    t.runs.append(run_id)
                    result = results[run_id]
                    t.grad_evals += result.steps_run * result.grad_evals_per_step * job.spec.chains
                    curves = result.curves or store.get_run(run_id).result.curves
                    for chain, (i, _seed) in zip(result.chains, members, strict=True):
                        number = trials[i].number
                        chains[number].append((run_id, chain))
                        evals[number] = job.spec.grad_evals_per_step()
                        series.setdefault(number, []).extend(
                            (int(c["grad_evals"]), float(c.get("val_acc", float("nan"))))
                            for c in curves
                            if c["chain"] == chain.chain
                        )
                medians = {n: _median_by_step(points) for n, points in series.items()}
                live[name] = t.judge(trials, chains, medians, evals, budget, preset.budget, last)
    return {name: t.result() for name, t in tuners.items()}


def _runnable(
    rows: list[Row], task: Any, preset: Preset, scales: units.Scales, log: Callable[[str], None]
) -> list[Row]:
    """The rows this preset can run, before any training: every choice of each categorical
    axis, at the middle of the continuous ones, must make a valid sampler at the preset's budget.
    A row that cannot (HMC's adapted mass needs a warm-up of 20 steps, more than a smoke budget
    holds) is left out with a line saying why; if none is left the error is raised."""
    kept = []
    for row in rows:
        try:
            _check(row, task, preset, scales)
        except HyperparameterError as error:
            if len(rows) == 1:
                raise
            log(f"  {row.name}: left out at this budget ({preset.budget} evaluations): {error}")
        else:
            kept.append(row)
    if not kept:
        raise HyperparameterError(f"no row can run at this budget ({preset.budget} evaluations)")
    return kept


def _check(row: Row, task: Any, preset: Preset, scales: units.Scales) -> None:
    """Raise HyperparameterError where some choice of ``row`` makes no valid sampler."""
    points: list[dict[str, Any]] = [{}]
    for name, bound in row.bounds(task).items():
        if bound.choices is not None:
            points = [{**p, name: v} for p in points for v in bound.choices]
        else:
            mid = (float(bound.low) * float(bound.high)) ** 0.5 if bound.log else None
            points = [{**p, name: mid if mid is not None else bound.low} for p in points]
    for point in points:
        config = row.config(point, scales, task)
        for job, _ in jobs_for(row.sampler, [config], [0], preset, "check", warmup=row.warmup):
            samplers.make(job.spec.sampler, **job.spec.sampler_hparams())


def _median_by_step(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    by: dict[int, list[float]] = {}
    for step, value in points:
        by.setdefault(step, []).append(value)
    return [(step, statistics.median(v)) for step, v in sorted(by.items())]


def _tuning_json(result: tuner.Tuned) -> dict[str, Any]:
    return {"bounds": result.bounds, "widened": result.widened, "grad_evals": result.grad_evals}


def _check_cost(job: Job, result: RunResult) -> None:
    """The equal-budget protocol assumed the sampler's stated cost per step; hold it to it."""
    expected = job.spec.grad_evals_per_step()
    if result.steps_run > 1 and result.grad_evals_per_step != expected:
        raise RuntimeError(
            f"{job.spec.sampler} spent {result.grad_evals_per_step} gradient evaluations per "
            f"step, the protocol assumed {expected}: the budgets would not be equal"
        )


__all__ = ["compare", "grad_evals_per_step", "tune"]
