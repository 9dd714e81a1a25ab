"""What a sampler may try in a comparison: the grid of its search space (:class:`SearchSpace`).

A sampler declares its grid here, in plain data, so that a sampler from a plugin package brings
its own (``Sampler.search_space``); :mod:`bench.compare.spaces` draws the trials from it and
holds the grids of the samplers in this repository beside the pilot runs that placed them. A
grid value may be relative to the task's reference AdamW setting (``Axis.ref_key``) or the task's
posterior temperature (:data:`POSTERIOR`), so the grid is resolved against a task: any object
with ``reference`` (a mapping) and ``batch()`` (whose second entry holds the training targets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: A grid value that stands for the task's posterior temperature τ = 1/N_train, where the
#: target exp(−U/τ) is the Bayesian posterior with prior precision N·λ and HMC is a sampler,
#: not a noisy optimizer.
POSTERIOR = "1/N"


@dataclass(frozen=True)
class Axis:
    """One searched hyperparameter: its name, its grid, and whether the grid is relative to the
    task's reference AdamW setting (``ref_key``: multiply by ``task.reference[ref_key]``).
    A value :data:`POSTERIOR` is the task's posterior temperature 1/N_train."""

    name: str
    values: tuple[float | str, ...]
    ref_key: str | None = None

    def resolve(self, task: Any) -> tuple[float, ...]:
        out = []
        for v in self.values:
            if v == POSTERIOR:
                out.append(round_grid(1.0 / len(task.batch()[1])))
            elif self.ref_key is None:
                out.append(v)
            else:
                out.append(round_grid(v * float(task.reference[self.ref_key])))
        return tuple(out)


@dataclass(frozen=True)
class SearchSpace:
    """A grid of trials for one sampler. Axis names are the sampler's hyperparameters, or
    ``prior_precision`` (λ), or a search variable the sampler's ``hparams_from_search`` turns
    into hyperparameters (HMC's ``eta``: ε = sqrt(η·τ)); ``fixed`` are set, not searched;
    ``from_reference`` are copied from the task's reference optimizer (AdamW's betas);
    ``warmup = (hyperparameter, fraction)`` gives the sampler's adaptation (HMC's step-size
    adaptation, Riemannian Langevin's metric) that fraction of the run's steps, paid for by
    the budget like every other step."""

    axes: tuple[Axis, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    from_reference: tuple[str, ...] = ()
    warmup: tuple[str, float] | None = None

    def grid(self, task: Any) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = [{}]
        for axis in self.axes:
            points = [{**p, axis.name: v} for p in points for v in axis.resolve(task)]
        return points


def round_grid(x: float) -> float:
    """``x`` to 6 significant digits, so that a derived grid value prints and keys stably."""
    return float(f"{x:.6g}")


__all__ = ["POSTERIOR", "Axis", "SearchSpace", "round_grid"]
