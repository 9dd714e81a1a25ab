"""One job of a claim's sweep, and :func:`job`, the one function that builds a theory job.

One job per claim, arm and sampler wherever the sweep varies only what may vary per chain
(step size, temperature, prior precision, the starting point): a step-size ladder, a
temperature ladder or a set of replicas is one job, its hyperparameters one value per chain.
What changes the task (the training fraction) is one job per task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.jobs import Job
from bench.spec import INIT, RunSpec
from bench.theory.preset import Preset


@dataclass
class Planned:
    """One job of a claim's sweep, with the task it runs on and what its chains mean."""

    claim: str
    arm: str
    task: Any
    job: Job
    meta: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.job.key(self.task)


def job(
    preset: Preset,
    label: str,
    sampler: str,
    hparams: Mapping[str, Any],
    prior: float | list[float],
    seeds: list[int],
    steps: int,
    batch_size: int | None,
    *,
    start: list[str] | None = None,
    eval_every: int | None = None,
) -> Job:
    """The job of ``sampler`` with ``hparams`` (a list is one value per chain), prior precision
    ``prior`` (one, or one per chain) and one chain per seed, run for ``steps`` from
    ``task.init`` or from the memorized checkpoints keyed in ``start`` (one per chain),
    evaluated every ``eval_every`` steps (default: the preset's) and stopped once every chain
    has held grokking for the preset's window. Every job of ``bench theory`` is built here."""
    spec = RunSpec(
        sampler,
        hparams,
        prior_precision=prior,
        seeds=seeds,
        budget=steps,
        eval_every=preset.eval_every if eval_every is None else eval_every,
        batch_size=batch_size,
        confirm=preset.confirm,
        start=start or INIT,
    )
    return Job(spec, label)
