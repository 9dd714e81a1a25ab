"""The search spaces of the comparison: one grid per sampler and model family, and the balanced
draw of ``trials`` points from it (the grids are stored with every comparison and rendered on its
leaderboard)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import samplers

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
                out.append(_round(1.0 / len(task.batch()[1])))
            elif self.ref_key is None:
                out.append(v)
            else:
                out.append(_round(v * float(task.reference[self.ref_key])))
        return tuple(out)


@dataclass(frozen=True)
class SearchSpace:
    """A grid of trials for one sampler. Axis names are sampler hyperparameters, or
    ``prior_precision`` (λ), or ``eta`` (HMC: ε = sqrt(η·τ)); ``fixed`` are set, not searched;
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


def _spaces(
    *,
    adam_steps: tuple[float, ...],
    sgd_steps: tuple[float, ...],
    sghmc_steps: tuple[float, ...],
    etas: tuple[float, ...],
    temperatures: tuple[float, ...],
    hmc_temperatures: tuple[float | str, ...],
    priors: tuple[float, ...],
    hmc_priors: tuple[float, ...],
    rl_steps: tuple[float, ...],
    rl_priors: tuple[float, ...],
    rl_fixed: Mapping[str, Any],
    rl_note: str,
) -> dict[str, SearchSpace]:
    """One family's spaces: the same shape for every model, the scales measured per family."""
    adam_note = "betas as in the task's reference; decoupled weight decay, so λ = 0"
    return {
        "adamw": SearchSpace(
            axes=(
                Axis("step_size", adam_steps, ref_key="step_size"),
                Axis("weight_decay", (0.3, 1.0, 3.0), ref_key="weight_decay"),
            ),
            fixed={"prior_precision": 0.0},
            note=adam_note,
            from_reference=("betas",),
        ),
        "sgd": SearchSpace(
            axes=(
                Axis("step_size", sgd_steps),
                Axis("momentum", (0.0, 0.9)),
                Axis("prior_precision", priors),
            ),
        ),
        "sgld": SearchSpace(
            axes=(
                Axis("step_size", sgd_steps),
                Axis("temperature", temperatures),
                Axis("prior_precision", priors),
            ),
        ),
        "sghmc": SearchSpace(
            axes=(
                Axis("step_size", sghmc_steps),
                Axis("friction", (0.03, 0.1)),
                Axis("temperature", temperatures),
                Axis("prior_precision", priors),
            ),
            note="SGD-momentum form: friction 0.1 is momentum 0.9 at the same step_size",
        ),
        "hmc": SearchSpace(
            axes=(
                Axis("eta", etas),
                Axis("num_leapfrog", (4, 16)),
                Axis("temperature", hmc_temperatures),
                Axis("prior_precision", hmc_priors),
            ),
            note="leapfrog step ε = sqrt(η·τ) at the start, then adapted by dual averaging "
            "towards acceptance 0.65 during the first 20% of the steps (paid by the budget); "
            "τ = 1/N is the posterior; full-batch gradients, float64 Metropolis test",
            fixed={"target_accept": 0.65},
            warmup=("adapt_steps", 0.2),
        ),
        "riemannian_langevin": SearchSpace(
            axes=(
                Axis("step_size", rl_steps, ref_key="step_size"),
                Axis("temperature", temperatures),
                Axis("prior_precision", rl_priors),
            ),
            fixed=dict(rl_fixed),
            note=rl_note + "; metric adapted during the first 20% of the steps, then frozen",
            warmup=("freeze_after", 0.2),
        ),
    }


#: Grids per model family. ``default``: cross-entropy models (the transformer of ``add_mod113``,
#: the embedding MLP) with O(1) gradients at initialisation, where τ ~ 1e-6..1e-4 is the
#: interesting regime for mean losses. ``quadratic``: Gromov's mean-field quadratic MLP with MSE
#: loss, whose gradients at initialisation are ~1e-5, so gradient-descent steps are ~1e5 and the
#: temperatures and priors that matter are smaller by as much. The quadratic grids were shaped
#: by pilot runs on add_mod31_quadratic from the tuning seed's initialisation (the leaderboard
#: reports fresh seeds only): SGD with momentum 0.9, step 1e5, λ 1e-8 groks in ~120 steps, step
#: 2e5 with momentum and 3e5 without diverge, λ 1e-7 (at step 1e5) shrinks the network to the
#: origin, τ ≥ 1e-7 melts SGHMC at step 1e5; AdamW groks fastest near lr 0.3 (30x the reference),
#: collapses at lr 1.0 or decay 1.0; HMC at η ≤ 3e4 is stable (acceptance 0.1-0.5) but too slow
#: to memorise within a CPU budget, and larger η is rejected almost always.
SEARCH_SPACES: dict[str, dict[str, SearchSpace]] = {
    "default": _spaces(
        adam_steps=(0.3, 1.0, 3.0, 10.0),
        sgd_steps=(0.03, 0.1, 0.3, 1.0),
        sghmc_steps=(3e-3, 1e-2, 3e-2, 0.1),
        etas=(0.01, 0.03, 0.1, 0.3),
        temperatures=(1e-6, 1e-5, 1e-4),
        hmc_temperatures=(1e-5, 1e-4, POSTERIOR),
        priors=(1e-3, 1e-2, 1e-1),
        hmc_priors=(1e-3, 1e-2),
        rl_steps=(0.3, 1.0, 3.0),
        rl_priors=(1e-4, 1e-3),
        rl_fixed={},
        rl_note="RMSprop metric with the defaults alpha = 0.99, eps = 1e-4",
    ),
    "quadratic": _spaces(
        adam_steps=(0.3, 1.0, 3.0, 10.0, 30.0),
        sgd_steps=(3e4, 1e5, 2e5),
        sghmc_steps=(3e4, 1e5),
        etas=(1e3, 3e3, 1e4, 3e4),
        temperatures=(1e-10, 1e-9, 1e-8),
        hmc_temperatures=(1e-10, 1e-9, 1e-8),
        priors=(3e-9, 1e-8, 3e-8, 1e-7),
        hmc_priors=(1e-8,),
        rl_steps=(1.0, 3.0, 10.0, 30.0, 100.0),
        rl_priors=(1e-8, 3e-8, 1e-7),
        rl_fixed={"alpha": 0.9, "eps": 1e-8},
        rl_note="alpha 0.9 so the metric forgets its identity start (V₀ = 1) within the "
        "budget; eps 1e-8 as the gradients are ~1e-5; λ small, or the prior's gradient "
        "dominates the metric and shrinks every weight by ~step_size per step",
    ),
}


def family(task: Any) -> str:
    """The search-space family of a task: ``quadratic`` for Gromov's model, else ``default``."""
    model = task.config.get("model")
    return "quadratic" if model == "quadratic" else "default"


def search_space(sampler: str, task: Any = None) -> SearchSpace:
    """The space of ``sampler`` for ``task``'s family; a peer (``blackjax.sgld``) uses the space
    of its algorithm."""
    spaces = SEARCH_SPACES[family(task) if task is not None else "default"]
    base = sampler.rsplit(".", 1)[-1]
    if base in spaces:
        return spaces[base]
    raise ValueError(
        f"no search space for sampler {sampler!r}; the comparison knows "
        f"{', '.join(sorted(spaces))} (add one to bench.compare.SEARCH_SPACES)"
    )


def trials_for(sampler: str, task: Any, k: int) -> list[dict[str, Any]]:
    """``k`` configurations from ``sampler``'s grid: all of it when it has ``k`` points or
    fewer, else a balanced random subset (:func:`balanced_subset`, the same on every call).
    Each trial is ``{"search": axis values, "hparams": sampler hyperparameters,
    "prior_precision": λ}``."""
    space = search_space(sampler, task)
    grid = space.grid(task)
    if len(grid) > k:
        seed = zlib.crc32(sampler.rsplit(".", 1)[-1].encode())
        picked = balanced_subset(grid, k, np.random.default_rng(seed))
        grid = [grid[i] for i in sorted(picked)]
    return [_trial(point, space, task.reference) for point in grid]


def balanced_subset(grid: Sequence[Mapping[str, Any]], k: int, rng: np.random.Generator):
    """Indices of ``k`` grid points drawn at random without replacement, each draw among the
    points whose values have been tried least so far (summed over the axes): every value of
    every axis is tried about equally often, which plain random search on a small budget does
    not ensure."""
    order = [int(i) for i in rng.permutation(len(grid))]
    counts: dict[tuple[str, Any], int] = {}
    picked: list[int] = []
    for _ in range(k):
        best = min(order, key=lambda i: sum(counts.get(item, 0) for item in grid[i].items()))
        order.remove(best)
        picked.append(best)
        for item in grid[best].items():
            counts[item] = counts.get(item, 0) + 1
    return picked


def _trial(point: Mapping[str, Any], space: SearchSpace, reference: Mapping[str, Any]):
    search = dict(point)
    hparams = {k: v for k, v in point.items() if k not in ("prior_precision", "eta")}
    hparams.update({k: v for k, v in space.fixed.items() if k != "prior_precision"})
    prior = point.get("prior_precision", space.fixed.get("prior_precision", 0.0))
    if "eta" in point:
        hparams["step_size"] = _round(math.sqrt(point["eta"] * point["temperature"]))
    for key in space.from_reference:
        if key in reference:
            value = reference[key]
            hparams[key] = list(value) if isinstance(value, (list, tuple)) else value
    return {"search": search, "hparams": hparams, "prior_precision": prior}


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def own_samplers() -> list[str]:
    """Every registered sampler of this package, the comparison's default (peers such as
    ``blackjax.sgld`` are named explicitly)."""
    return [n for n in samplers.names() if "." not in n]
