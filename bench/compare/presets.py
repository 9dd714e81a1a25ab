"""Presets (the numbers of a protocol: budget, trials, seeds) and the runtime estimate that lets
``auto`` choose between them on a CPU."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import tasks
from bench.checkpoints import Criterion
from bench.run import run
from bench.spec import RunSpec

#: The model the CPU preset swaps in: the task's data and split stay, only the network is lighter
#: (tasks.make(name, model=...) keeps a registered task's data; measurements in tasks/registry.py).
CPU_MODEL = "mlp"
#: On a CPU, ``auto`` runs the paper preset only when it is estimated to take less than this.
CPU_LIMIT_MINUTES = 15.0
#: The two protocols: ``memorized`` (exploration from a shared memorized checkpoint, the one
#: that tests the claim) and ``init`` (time to target from the task's initialization).
STARTS = ("memorized", "init")
#: When the reference optimizer's run counts as memorized: every preset's (a protocol setting),
#: and ``python -m bench run --start memorized``'s, so that both share their checkpoints.
MEMORIZED = Criterion()


@dataclass(frozen=True)
class Preset:
    """The numbers of a protocol. Budgets, intervals and windows are in gradient evaluations;
    from a memorized start they count from the checkpoint."""

    name: str
    model: str | None  # None: the task as asked; else its data with this (lighter) model
    budget: int | None  # None: the task's default budget (in AdamW steps = gradient evals)
    eval_every: int | None  # None: budget / 100
    trials: int  # per tuning batch (bench.compare.tuner)
    tune_seeds: int
    seeds: int
    batches: int = 2  # tuning batches per row: the first random, the rest guided by TPE
    max_chains: int = 64  # a vectorized job holds at most this many chains
    reference: bool = True  # also run the task's own optimizer setting, untuned, on fresh seeds
    starts: tuple[str, ...] = STARTS  # protocols run by default, the first shown first
    confirm: int | None = None  # window of sustained grokking; None = the rest of the run
    batch_size: int | None = None  # None: the task's (full batch)
    memorized: Criterion = MEMORIZED  # when a checkpoint is memorized
    max_norm_growth: float | None = 10.0  # a chain whose ‖θ‖ grows this much has diverged
    description: str = ""

    def resolve(self, task: Any) -> Preset:
        budget = int(self.budget if self.budget is not None else task.budget)
        eval_every = int(self.eval_every if self.eval_every is not None else max(1, budget // 100))
        return replace(self, budget=budget, eval_every=eval_every)

    def protocol(self, start: str) -> dict[str, Any]:
        """What determines the numbers of one protocol (stored with its comparison and part of
        its key)."""
        out = asdict(self)
        for key in ("description", "max_chains", "starts", "model"):
            out.pop(key)  # packing, the set of protocols run, and the model (in the task config)
        if start != "memorized":
            out.pop("memorized")
        out["start"] = start
        return out

    def task_for(self, name: str) -> Any:
        """The task this preset runs when ``name`` is asked for: with a lighter model, the task
        registered for that model when there is one (``add_mod113_mlp``, whose reference
        optimizer was set for it), else ``name``'s data with the model."""
        if not self.model:
            return tasks.make(name)
        if f"{name}_{self.model}" in tasks.names():
            return tasks.make(f"{name}_{self.model}")
        return tasks.make(name, model=self.model)


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        model=None,
        budget=None,
        eval_every=None,
        trials=9,
        tune_seeds=2,
        seeds=10,
        max_chains=16,
        description="the task as asked with its default budget, both protocols: meant for a GPU",
    ),
    "cpu": Preset(
        name="cpu",
        model=CPU_MODEL,
        budget=3000,
        eval_every=50,
        trials=9,
        tune_seeds=2,
        seeds=10,
        starts=("memorized",),
        description=(
            f"the decisive page on a CPU: the task's data and split with the {CPU_MODEL} model, "
            "the exploration protocol (--start init adds the other), 3x the reference's delay"
        ),
    ),
    "quick": Preset(
        name="quick",
        model=CPU_MODEL,
        budget=2000,
        eval_every=50,
        trials=6,
        tune_seeds=1,
        seeds=2,
        batches=1,
        starts=("memorized",),
        description=(
            "a first look, not the decisive page: the cpu preset's rows, 2x the reference's "
            "delay, one random tuning batch on one seed, 2 fresh seeds (about 15 min)"
        ),
    ),
    "smoke": Preset(
        name="smoke",
        model=None,
        budget=270,
        eval_every=10,
        trials=3,
        tune_seeds=1,
        seeds=2,
        batches=1,
        starts=("memorized",),
        description="a few hundred gradient evaluations from memorized checkpoints, for tests "
        "and CI",
    ),
}


def tuning_chain_budgets(preset: Preset) -> float:
    """A tuned row's tuning cost in full-budget chains: per batch, successive halving runs
    every trial on every tuning seed to each rung's budget (bench.compare.tuner)."""
    from bench.compare.tuner import KEEP, RUNGS  # the tuner imports presets

    live, total = float(preset.trials), 0.0
    for i, fraction in enumerate(RUNGS):
        total += live * preset.tune_seeds * fraction
        if i < len(RUNGS) - 1:
            live = max(1.0, math.ceil(live * KEEP))
    return total * preset.batches


def chain_counts(preset: Preset, sampler_names: Iterable[str], starts: Sequence[str]) -> float:
    """Full-budget chains a comparison trains: per protocol, every tuned row's tuning, every
    row's choice (and every twin's) on the fresh seeds, and the reference on the fresh seeds."""
    from bench.compare.rows import rows_for

    rows = rows_for(list(sampler_names))
    finals = len(rows) + sum(r.twin for r in rows) + (1 if preset.reference else 0)
    per_start = len(rows) * tuning_chain_budgets(preset) + finals * preset.seeds
    return per_start * len(starts)


def probe_seconds(task: Any, chains: int, device: str | None = None) -> tuple[float, float]:
    """Seconds per chain-step and per chain-evaluation of ``task`` here, from AdamW runs of
    ``n`` and ``3n`` steps on ``chains`` chains (each run evaluates at its start and end): the
    difference of the two is ``2n`` steps without evaluation, which is what a long run is made
    of; the fastest of two timings each, so that a busy moment on a shared machine does not
    inflate them."""

    def timed(steps: int) -> float:
        tick = time.perf_counter()
        spec = RunSpec("adamw", seeds=range(chains), budget=steps, eval_every=steps)
        run(task, spec, device=device, progress=False)
        return time.perf_counter() - tick

    one = timed(1)  # also warms up: first calls allocate
    n = max(1, min(30, int(0.2 / max(one, 1e-6))))
    short = min(timed(n) for _ in range(2))
    long = min(timed(3 * n) for _ in range(2))
    step = max((long - short) / (2 * n), 1e-9)
    evaluation = max((short - n * step) / 2, 0.0)
    return step / chains, evaluation / chains


def estimate_minutes(
    task: Any,
    preset: Preset,
    sampler_names: Sequence[str],
    device: str | None = None,
    *,
    starts: Sequence[str] | None = None,
    workers: int = 1,
) -> float:
    """Minutes a comparison takes here: every run goes to its budget (sustained grokking has no
    early stop), evaluations included, split over ``workers``."""
    preset = preset.resolve(task)
    starts = preset.starts if starts is None else starts
    # Cost per chain grows about linearly with the chains of a job on a CPU: probe a few.
    chains = min(4, preset.max_chains, preset.trials * preset.tune_seeds)
    step, evaluation = probe_seconds(task, max(1, chains), device)
    n = chain_counts(preset, sampler_names, starts)
    seconds = n * (preset.budget * step + preset.budget / preset.eval_every * evaluation)
    return seconds / workers / 60.0


def choose_preset(
    choice: str,
    overrides: Mapping[str, Any],
    task_name: str,
    names: Sequence[str],
    device: str,
    log: Callable[[str], None],
    *,
    workers: int = 1,
) -> Preset:
    """The preset to run, with the user's overrides applied. On a CPU, ``auto`` estimates the
    paper setting and falls back to the CPU preset when it would take longer than
    :data:`CPU_LIMIT_MINUTES`, and says so; ``paper`` on a CPU states its estimate."""

    def build(name: str) -> Preset:
        return replace(PRESETS[name], **overrides)

    def minutes(preset: Preset) -> float:
        task = preset.task_for(task_name)
        return estimate_minutes(task, preset, names, device, workers=workers)

    if choice != "auto":
        preset = build(choice)
        if choice == "paper" and device == "cpu":
            log(f"paper preset on a CPU: estimated {_duration(minutes(preset))} for {task_name}")
        return preset
    paper = build("paper")
    if device != "cpu":
        return paper
    paper_minutes = minutes(paper)
    if paper_minutes <= CPU_LIMIT_MINUTES:
        log(f"no GPU: the paper preset on {task_name} is estimated at {_duration(paper_minutes)}")
        return paper
    cpu = build("cpu")
    log(
        f"no GPU: running the CPU preset, {task_name}'s data with the {cpu.model} model "
        f"(estimated {_duration(minutes(cpu))} on {workers} worker(s)); --preset paper runs the "
        f"paper setting (estimated {_duration(paper_minutes)} on this CPU)"
    )
    return cpu


def _duration(minutes: float) -> str:
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} hours"
