"""Presets (the numbers of a protocol: budget, trials, seeds) and the runtime estimate that lets
``auto`` choose between them on a CPU."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import tasks
from bench.run import run

#: The light task the CPU preset runs on (registered in tasks/registry.py).
CPU_TASK = "add_mod31_quadratic"
#: On a CPU, ``auto`` runs the paper preset only when it is estimated to take less than this.
CPU_LIMIT_MINUTES = 15.0


@dataclass(frozen=True)
class Preset:
    """The numbers of a protocol. Budgets and intervals are in gradient evaluations."""

    name: str
    task: str | None  # None: the task asked for
    budget: int | None  # None: the task's default budget (in AdamW steps = gradient evals)
    eval_every: int | None  # None: budget / 100
    trials: int
    tune_seeds: int
    seeds: int
    max_chains: int = 64  # a vectorized job holds at most this many chains
    reference: bool = True  # also run the task's own optimizer setting, untuned, on fresh seeds
    description: str = ""

    def resolve(self, task: Any) -> Preset:
        budget = int(self.budget if self.budget is not None else task.budget)
        eval_every = int(self.eval_every if self.eval_every is not None else max(1, budget // 100))
        return replace(self, budget=budget, eval_every=eval_every)

    def protocol(self) -> dict[str, Any]:
        """What determines the numbers (stored with the comparison and part of its key)."""
        out = asdict(self)
        out.pop("description")
        out.pop("max_chains")  # how chains are packed into jobs does not change results' law
        return out


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        task=None,
        budget=None,
        eval_every=None,
        trials=12,
        tune_seeds=1,
        seeds=8,
        max_chains=16,
        description="the task as asked with its default budget: meant for a GPU",
    ),
    "cpu": Preset(
        name="cpu",
        task=CPU_TASK,
        budget=1200,
        eval_every=10,
        trials=8,
        tune_seeds=1,
        seeds=8,
        description=f"the light task {CPU_TASK} with a budget that fits two CPU cores",
    ),
    "smoke": Preset(
        name="smoke",
        task=None,
        budget=300,
        eval_every=10,
        trials=2,
        tune_seeds=1,
        seeds=3,
        description="a few hundred gradient evaluations, for tests and CI",
    ),
}


def chain_evals(preset: Preset, sampler_names: Iterable[str]) -> int:
    """Chain-gradient-evaluations a comparison costs at most (runs stop early once every chain
    has grokked)."""
    n = sum(preset.trials * preset.tune_seeds + preset.seeds for _ in sampler_names)
    n += preset.seeds if preset.reference else 0
    return n * preset.budget


def probe_seconds(task: Any, chains: int, device: str | None = None) -> float:
    """Seconds per chain-gradient-evaluation of ``task`` here, from a few AdamW steps on
    ``chains`` chains (evaluation included at the loop's usual rate of about 1%): the fastest
    of two timings of at least a quarter of a second each (or one step when a step takes longer),
    so a busy moment on a shared machine does not inflate it."""

    def timed(steps: int) -> float:
        tick = time.perf_counter()
        run(
            task,
            "adamw",
            {},
            seeds=chains,
            budget=steps,
            eval_every=steps,
            device=device,
            progress=False,
        )
        return time.perf_counter() - tick

    one = timed(1)  # also warms up: first calls allocate
    steps = max(1, min(50, int(0.25 / max(one, 1e-6))))
    best = min(timed(steps) for _ in range(2)) if steps > 1 else timed(1)
    return best / (steps * chains)


def estimate_minutes(task: Any, preset: Preset, sampler_names: Sequence[str], device=None):
    """Minutes a comparison would take here at most, from a probe of the task's step cost."""
    preset = preset.resolve(task)
    # Cost per chain grows about linearly with the chains of a job on a CPU: probe a few.
    chains = min(4, preset.max_chains, preset.trials * preset.tune_seeds)
    per = probe_seconds(task, max(1, chains), device)
    return chain_evals(preset, sampler_names) * per / 60.0


def choose_preset(
    choice: str,
    overrides: Mapping[str, int],
    task_name: str,
    names: Sequence[str],
    device: str,
    log: Callable[[str], None],
) -> Preset:
    """The preset to run, with the user's overrides applied. On a CPU, ``auto`` estimates the
    paper setting and falls back to the CPU preset when it would take longer than
    :data:`CPU_LIMIT_MINUTES`, and says so; ``paper`` on a CPU states its estimate."""

    def build(name: str) -> Preset:
        return replace(PRESETS[name], **overrides)

    if choice != "auto":
        preset = build(choice)
        if choice == "paper" and device == "cpu":
            minutes = estimate_minutes(tasks.make(task_name), preset, names, device)
            log(
                f"paper preset on a CPU: estimated {_duration(minutes)} for {task_name} "
                "(at most: runs stop early once every chain has grokked)"
            )
        return preset
    if device != "cpu":
        return build("paper")
    paper = build("paper")
    paper_minutes = estimate_minutes(tasks.make(task_name), paper, names, device)
    if paper_minutes <= CPU_LIMIT_MINUTES:
        log(f"no GPU: the paper preset on {task_name} is estimated at {_duration(paper_minutes)}")
        return paper
    cpu = build("cpu")
    cpu_minutes = estimate_minutes(tasks.make(cpu.task), cpu, names, device)
    log(
        f"no GPU: running the CPU preset on {cpu.task} instead of {task_name} (estimated "
        f"{_duration(cpu_minutes)} at most); use --preset paper to force the paper setting "
        f"(estimated {_duration(paper_minutes)} on this CPU)"
    )
    return cpu


def _duration(minutes: float) -> str:
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} hours"
