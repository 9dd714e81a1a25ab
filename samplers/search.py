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


@dataclass(frozen=True)
class Dynamics:
    """Where a sampler sits in the comparison's factorial (geometry × dynamics × noise), and which
    of its hyperparameters carry the shared units of :mod:`bench.compare.units`.

    ``form``: ``"first order"`` (θ ← θ − h·∇U + noise), ``"momentum"`` (heavy ball: the velocity
    keeps ``μ`` of itself a step), ``"hamiltonian"`` (leapfrog trajectories with a Metropolis
    test) or ``"adaptive"`` (AdamW: per-coordinate steps and decoupled decay). ``geometry``:
    ``"identity"`` or ``"diagonal"`` (a diagonal metric P, here RMSprop's, frozen after a
    warm-up). ``momentum``: the hyperparameter that sets μ, and whether it is the friction
    ``α = 1 − μ`` (SGHMC's form) rather than μ itself. ``decay``: the hyperparameter of a
    decoupled weight decay (AdamW); ``None``: the decay is the prior precision λ."""

    form: str
    geometry: str = "identity"
    step: str = "step_size"
    temperature: str | None = "temperature"
    momentum: tuple[str, bool] | None = None
    decay: str | None = None

    FORMS = ("first order", "momentum", "hamiltonian", "adaptive")
    GEOMETRIES = ("identity", "diagonal", "adaptive")

    def __post_init__(self) -> None:
        if self.form not in self.FORMS:
            raise ValueError(f"form must be one of {self.FORMS}, got {self.form!r}")
        if self.geometry not in self.GEOMETRIES:
            raise ValueError(f"geometry must be one of {self.GEOMETRIES}, got {self.geometry!r}")

    def mu(self, hparams: Mapping[str, Any]) -> float:
        """The momentum μ of ``hparams`` (0 without a momentum hyperparameter)."""
        if self.momentum is None:
            return 0.0
        key, is_friction = self.momentum
        value = float(hparams[key])
        return 1.0 - value if is_friction else value


def round_grid(x: float) -> float:
    """``x`` to 6 significant digits, so that a derived grid value prints and keys stably."""
    return float(f"{x:.6g}")


__all__ = ["POSTERIOR", "Axis", "Dynamics", "SearchSpace", "round_grid"]
