"""``python -m bench compare``: every sampler tuned with the same budget, then run on fresh seeds.

The protocol (DESIGN §6; AlgoPerf / DeepOBS practice)
-----------------------------------------------------

1. **Equal budgets in gradient evaluations.** Every run of every sampler gets the same budget
   ``B`` of gradient evaluations per chain. A step of HMC costs ``num_leapfrog + 1`` of them, so
   HMC runs ``B // (L + 1)`` steps where the others run ``B``; evaluations are every ``E``
   gradient evaluations for everyone, so ``t_grok`` has the same resolution in the unit the
   leaderboard ranks by.
2. **Equal tuning budgets.** Every sampler gets the same number ``K`` of trials (configurations)
   from its search space below, each run on the same ``tune_seeds`` seeds. The search space is a
   grid; when it has more than ``K`` points, ``K`` of them are drawn at random without
   replacement, balanced so that every value of every axis is tried about equally often (seeded:
   the same draw on every rerun). The
   trials of one sampler run as one vectorized job, one chain per (trial, seed); only settings
   that cannot vary per chain (HMC's ``num_leapfrog``) split it into several jobs.
3. **Selection.** The best trial has the smallest Kaplan–Meier median gradient evaluations to
   grok over its tuning seeds; a trial that does not grok counts as not reached (∞), never as
   the budget. Ties, and samplers where no trial groks, are decided by the grok rate, then the
   highest median final validation accuracy, then the earliest memorisation.
4. **Fresh seeds.** The chosen configuration runs on ``seeds`` seeds never used in tuning
   (from 1000 on), as one vectorized job; the leaderboard reports these runs only.

Temperatures and priors (DESIGN §3)
-----------------------------------
The potential is ``U = mean train loss + ½·λ·‖θ‖²`` and the samplers target ``exp(−U/τ)``.
SGD, SGLD, SGHMC, HMC and Riemannian Langevin get their weight decay from the prior ``λ``
(``prior_precision``), searched on a log grid; AdamW uses its own decoupled ``weight_decay``
and ``λ = 0``. For scale: AdamW's decoupled decay 1.0 at learning rate 1e-3 shrinks θ by 1e-3
per step, as plain SGD with learning rate ``h`` does at ``λ = 1e-3 / h``. Optimizers have no
temperature. HMC's leapfrog step is searched through its gradient-step equivalent
``η = ε² / τ`` (one leapfrog step from rest moves θ by ``−η·∇U``), so ``ε = sqrt(η·τ)`` shrinks
like ``sqrt(τ)`` as it must.

Search spaces (``trials`` points are drawn from each grid)
----------------------------------------------------------
``ref`` is the task's reference AdamW setting (its learning rate or decay). The scales differ
by model family (:data:`SEARCH_SPACES`): ``default`` for the cross-entropy models (transformer,
embedding MLP), ``quadratic`` for Gromov's mean-field MSE model, whose gradients at
initialisation are ~1e-5, so its step sizes are ~1e5 and its temperatures and priors smaller by
as much (measured on ``add_mod31_quadratic``; see the comment above :data:`SEARCH_SPACES`).

=================== ====================================== =====================================
sampler             ``default`` family                     ``quadratic`` family
=================== ====================================== =====================================
adamw               step_size ∈ ref·{0.3, 1, 3, 10};       step_size ∈ ref·{0.3, 1, 3, 10, 30};
                    weight_decay ∈ ref·{0.3, 1, 3}         weight_decay as default; λ = 0
sgd                 step_size ∈ {0.03, 0.1, 0.3, 1};       step_size ∈ {3e4, 1e5, 2e5};
                    momentum ∈ {0, 0.9};                   momentum ∈ {0, 0.9};
                    λ ∈ {1e-3, 1e-2, 1e-1}                 λ ∈ {3e-9, 1e-8, 3e-8, 1e-7}
sgld                step_size as sgd;                      step_size as sgd;
                    τ ∈ {1e-6, 1e-5, 1e-4}; λ as sgd       τ ∈ {1e-10, 1e-9, 1e-8}; λ as sgd
sghmc               step_size ∈ {3e-3, 1e-2, 3e-2, 0.1};   step_size ∈ {3e4, 1e5};
                    friction ∈ {0.03, 0.1}; τ, λ as sgld   friction ∈ {0.03, 0.1}; τ, λ as sgld
hmc                 η ∈ {0.01, 0.03, 0.1, 0.3};            η ∈ {1e3, 3e3, 1e4, 3e4};
                    num_leapfrog ∈ {4, 16}; τ as sgld;     num_leapfrog ∈ {4, 16}; τ as sgld;
                    λ ∈ {1e-3, 1e-2}                       λ = 1e-8
riemannian_langevin step_size ∈ ref·{0.3, 1, 3}; τ as      step_size ∈ ref·{1, 3, 10, 30, 100};
                    sgld; λ ∈ {1e-4, 1e-3};                τ as sgld; λ ∈ {1e-8, 3e-8, 1e-7};
                    alpha 0.99, eps 1e-4 (defaults)        alpha 0.9, eps 1e-8
=================== ====================================== =====================================

The grid actually used is stored with each comparison and rendered into the leaderboard's
rules section, so a page always shows the spaces its numbers came from.

Presets
-------
``paper``: the task as asked (``add_mod113`` is Nanda et al.'s setting), its default budget, 12
trials x 1 seed, 8 fresh seeds: meant for a GPU. ``cpu``: the light CPU task
(:data:`CPU_TASK`) with a budget sized to finish in minutes on two cores. ``smoke``: a few
hundred gradient evaluations on the task as asked, for tests and CI. ``auto`` (the default)
picks ``paper`` on a GPU; on a CPU it picks ``paper`` only when its estimate is under
:data:`CPU_LIMIT_MINUTES`, else ``cpu``, and says so with both estimates.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import samplers
import tasks
from bench import metrics
from bench.store import DEFAULT_PATH, Entry, Store, code_version, digest, run_key

#: The light task the CPU preset runs on (registered in tasks/registry.py).
CPU_TASK = "add_mod31_quadratic"
#: On a CPU, ``auto`` runs the paper preset only when it is estimated to take less than this.
CPU_LIMIT_MINUTES = 15.0
#: First seed of the fresh seeds; tuning uses seeds 0, 1, ...
FRESH_SEED = 1000
#: The baseline of the speed-up column and the two-sample test.
BASELINE = "adamw"

# -- search spaces --------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One searched hyperparameter: its name, its grid, and whether the grid is relative to the
    task's reference AdamW setting (``ref_key``: multiply by ``task.reference[ref_key]``)."""

    name: str
    values: tuple[float, ...]
    ref_key: str | None = None

    def resolve(self, reference: Mapping[str, Any]) -> tuple[float, ...]:
        if self.ref_key is None:
            return self.values
        return tuple(_round(v * float(reference[self.ref_key])) for v in self.values)


@dataclass(frozen=True)
class SearchSpace:
    """A grid of trials for one sampler. Axis names are sampler hyperparameters, or
    ``prior_precision`` (λ), or ``eta`` (HMC: ε = sqrt(η·τ)); ``fixed`` are set, not searched."""

    axes: tuple[Axis, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def grid(self, reference: Mapping[str, Any]) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = [{}]
        for axis in self.axes:
            points = [{**p, axis.name: v} for p in points for v in axis.resolve(reference)]
        return points


def _spaces(
    *,
    adam_steps: tuple[float, ...],
    sgd_steps: tuple[float, ...],
    sghmc_steps: tuple[float, ...],
    etas: tuple[float, ...],
    temperatures: tuple[float, ...],
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
                Axis("temperature", temperatures),
                Axis("prior_precision", hmc_priors),
            ),
            note="leapfrog step ε = sqrt(η·τ); full-batch gradients and Metropolis test",
        ),
        "riemannian_langevin": SearchSpace(
            axes=(
                Axis("step_size", rl_steps, ref_key="step_size"),
                Axis("temperature", temperatures),
                Axis("prior_precision", rl_priors),
            ),
            fixed=dict(rl_fixed),
            note=rl_note,
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
    model = getattr(task, "config", {}).get("model")
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
    grid = space.grid(task.reference)
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
    if "weight_decay" in point and "betas" in reference:
        hparams["betas"] = list(reference["betas"])
    return {"search": search, "hparams": hparams, "prior_precision": prior}


def _round(x: float) -> float:
    return float(f"{x:.6g}")


# -- presets --------------------------------------------------------------------------------
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


# -- the protocol ---------------------------------------------------------------------------
def grad_evals_per_step(sampler: str, hparams: Mapping[str, Any]) -> int:
    """Gradient evaluations one step of ``sampler`` costs: ``num_leapfrog + 1`` for samplers
    with leapfrog steps (HMC), else 1. Checked against the run's own count afterwards."""
    cls = samplers.lookup(sampler)
    if getattr(cls, "peer", None) and sampler.rsplit(".", 1)[-1] != "sgld":
        # BlackJAX's HMC caches a gradient, its SGHMC takes K inner steps, its NUTS and Pyro's
        # kernels spend a data-dependent number (and more during adaptation): none has the
        # fixed cost per step that an equal budget in gradient evaluations is built on.
        raise ValueError(
            f"{sampler} spends a varying number of gradient evaluations per step, which the "
            "equal-budget protocol cannot fix in advance; compare it with `python -m bench run` "
            "or `python -m bench speed` (blackjax.sgld takes part in compare)"
        )
    params = getattr(cls, "params", {})
    if "num_leapfrog" in params:
        return int(hparams.get("num_leapfrog", params["num_leapfrog"].default)) + 1
    return 1


@dataclass
class Job:
    """One vectorized run: a sampler, one hyperparameter value (or list) per key, its seeds."""

    sampler: str
    hparams: dict[str, Any]
    prior_precision: float | list[float]
    seeds: list[int]
    steps: int
    eval_every: int
    label: str

    def key(self, task: Any) -> str:
        return run_key(
            task,
            self.sampler,
            self.hparams,
            prior_precision=self.prior_precision,
            seeds=self.seeds,
            budget=self.steps,
            eval_every=self.eval_every,
        )


def jobs_for(
    sampler: str,
    configs: Sequence[dict[str, Any]],
    seeds: Sequence[int],
    preset: Preset,
    label: str,
) -> list[tuple[Job, list[tuple[int, int]]]]:
    """Vectorized jobs that run every config on every seed; each job comes with the
    (config index, seed) of its chains. Configs that differ in a setting that cannot vary per
    chain go to separate jobs, and a job holds at most ``preset.max_chains`` chains."""
    params = getattr(samplers.lookup(sampler), "params", {})
    fixed_keys = [k for k, p in params.items() if not getattr(p, "per_chain", True)]
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        group = repr([config["hparams"].get(k) for k in fixed_keys])
        groups.setdefault(group, []).append(i)
    out = []
    for members in groups.values():
        chains = [(i, s) for i in members for s in seeds]
        for start in range(0, len(chains), preset.max_chains):
            part = chains[start : start + preset.max_chains]
            hp = [configs[i]["hparams"] for i, _ in part]
            evals = grad_evals_per_step(sampler, hp[0])
            job = Job(
                sampler=sampler,
                hparams=_columns(hp),
                prior_precision=_column([configs[i]["prior_precision"] for i, _ in part]),
                seeds=[s for _, s in part],
                steps=max(1, preset.budget // evals),
                eval_every=max(1, preset.eval_every // evals),
                label=label,
            )
            out.append((job, part))
    return out


def _columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-chain dicts -> one value per key: a scalar when all chains agree, else a list."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: _column([r[k] for r in rows]) for k in keys}


def _column(values: Sequence[Any]) -> Any:
    first = values[0]
    if all(v == first for v in values):
        return list(first) if isinstance(first, tuple) else first
    return [list(v) if isinstance(v, tuple) else v for v in values]


class Runner:
    """Runs jobs through the store: a job whose key is stored is loaded, never rerun."""

    def __init__(self, task, store: Store, *, device=None, progress: bool | None = None, log=print):
        self.task = task
        self.store = store
        self.device = device
        self.progress = progress
        self.log = log
        self.code = code_version()
        self.ran = 0
        self.reused = 0

    def __call__(self, job: Job):
        from bench.run import run

        key = job.key(self.task)
        record = self.store.get_run(key, curves=False)
        if record is not None:
            self.reused += 1
            return key, record.result
        tick = time.perf_counter()
        result = run(
            self.task,
            job.sampler,
            job.hparams,
            seeds=job.seeds,
            budget=job.steps,
            eval_every=job.eval_every,
            prior_precision=job.prior_precision,
            device=self.device,
            progress=self.progress,
        )
        wall = time.perf_counter() - tick
        expected = grad_evals_per_step(job.sampler, _first(job.hparams))
        if result.steps_run and result.grad_evals_per_step != expected:
            raise RuntimeError(
                f"{job.sampler} spent {result.grad_evals_per_step} gradient evaluations per step, "
                f"the protocol assumed {expected}: the budgets would not be equal"
            )
        self.store.put_run(
            key, result, task_config=self.task.config, seconds_wall=wall, code=self.code
        )
        self.ran += 1
        grokked = sum(c.grokked for c in result.chains)
        self.log(
            f"  {job.sampler:<20} {job.label:<6} {len(result.chains):>3} chains x "
            f"{result.steps_run:>6} steps  grokked {grokked}/{len(result.chains)}  {wall:6.1f} s"
        )
        return key, result


def _first(hparams: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v[0] if isinstance(v, list) and k != "betas" else v) for k, v in hparams.items()}


def score(chains: Sequence[Any], evals_per_step: int) -> tuple:
    """Sort key of a trial over its tuning chains (smaller is better): KM median gradient
    evaluations to grok (∞ if not reached), then grok rate, divergence, median final validation
    accuracy and KM median evaluations to memorise."""
    grok = [c.t_grok_grad_evals for c in chains]
    censor = [c.censored_at * evals_per_step for c in chains]
    median = metrics.median_time(grok, censor)
    mem = metrics.median_time([c.t_mem_grad_evals for c in chains], censor)
    rate = sum(c.grokked for c in chains) / len(chains)
    diverged = sum(c.diverged for c in chains) / len(chains)
    val = float(np.median([c.final.get("val_acc", math.nan) for c in chains]))
    return (
        math.inf if median is None else median,
        -rate,
        diverged,
        -val if math.isfinite(val) else math.inf,
        math.inf if mem is None else mem,
    )


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


def reference_config(task: Any) -> tuple[str, dict[str, Any]]:
    """The task's own optimizer setting (``task.reference``) as a trial: the anchor row of the
    leaderboard, where the classic grokking delay of the literature shows."""
    hparams = dict(task.reference)
    name = hparams.pop("sampler")
    prior = hparams.pop("prior_precision", 0.0)
    hparams = {k: list(v) if isinstance(v, tuple) else v for k, v in hparams.items()}
    return name, {"search": {}, "hparams": hparams, "prior_precision": prior}


def protocol_for(
    task: Any, preset: Preset, sampler_names: Sequence[str], asked: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The comparison's key and the protocol stored with it (and rendered in its rules).

    The key covers the task and the protocol's numbers only: which samplers one invocation
    asked for does not change it, so entries of later invocations join the same leaderboard."""
    reference = None
    if preset.reference and task.reference:
        name, config = reference_config(task)
        reference = {
            "sampler": name,
            **config["hparams"],
            "prior_precision": config["prior_precision"],
        }
    protocol = {
        **preset.resolve(task).protocol(),
        "task": task.name,
        "baseline": BASELINE,
        "fresh_seed": FRESH_SEED,
        "reference": reference,
    }
    key = digest({"task": task.name, "task_config": task.config, "protocol": protocol})
    protocol.update(
        search_spaces={s: _space_json(search_space(s, task), task) for s in sampler_names},
        search_family=family(task),
        task_description=task.description,
        asked_task=asked or task.name,
    )
    return key, protocol


def _space_json(space: SearchSpace, task: Any) -> dict[str, Any]:
    return {
        "axes": {a.name: list(a.resolve(task.reference)) for a in space.axes},
        "fixed": dict(space.fixed),
        "note": space.note,
    }


def _bar(progress: bool | None, total: int, desc: str):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sampler", position=0, dynamic_ncols=True)


# -- estimates --------------------------------------------------------------------------------
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
    from bench.run import run

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
    preset = preset.resolve(task)
    # Cost per chain grows about linearly with the chains of a job on a CPU: probe a few.
    chains = min(4, preset.max_chains, preset.trials * preset.tune_seeds)
    per = probe_seconds(task, max(1, chains), device)
    return chain_evals(preset, sampler_names) * per / 60.0


# -- command line ---------------------------------------------------------------------------
def add_arguments(sub, cmd_compare, cmd_report) -> None:
    """Register ``compare`` and ``report`` on the CLI's subparsers."""
    p = sub.add_parser(
        "compare",
        help="tune every sampler with an equal budget, run the best on fresh seeds, "
        "write the leaderboard",
        description=(
            "Tune every sampler with the same budget in gradient evaluations, run the best "
            "configuration on fresh seeds, store every run (a rerun or a resumed run reuses "
            "them) and write reports/<task>.md. On a CPU the default preset is the CPU preset "
            f"on {CPU_TASK}; see bench/compare.py for the protocol and search spaces."
        ),
    )
    p.add_argument("--task", required=True, help="e.g. add_mod113")
    p.add_argument(
        "--samplers",
        default=None,
        help="comma-separated sampler names (default: every registered sampler of this package)",
    )
    p.add_argument(
        "--preset",
        default="auto",
        choices=["auto", *PRESETS],
        help="auto: paper on a GPU, the CPU preset on a CPU unless the paper one is quick",
    )
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"(default: {DEFAULT_PATH})")
    p.add_argument("--reports", default="reports", help="leaderboard folder (default: reports)")
    p.add_argument("--budget", type=int, default=None, help="gradient evaluations per chain")
    p.add_argument("--eval-every", type=int, default=None, help="in gradient evaluations")
    p.add_argument("--trials", type=int, default=None, help="configurations per sampler")
    p.add_argument("--tune-seeds", type=int, default=None, help="seeds per trial")
    p.add_argument("--seeds", type=int, default=None, help="fresh seeds for the chosen config")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default on a CPU: 1)"
    )
    p.add_argument("--no-report", action="store_true", help="only fill the store")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "report",
        help="regenerate the leaderboards from the store (no training)",
        description="Regenerate reports/<task>.md, its plots and reports/README.md from the store.",
    )
    p.add_argument("--task", action="append", default=None, help="only this task (repeatable)")
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"(default: {DEFAULT_PATH})")
    p.add_argument("--reports", default="reports", help="leaderboard folder (default: reports)")
    p.set_defaults(func=cmd_report)


def own_samplers() -> list[str]:
    """Every registered sampler of this package (peers such as ``blackjax.sgld`` are named
    explicitly with ``--samplers``)."""
    return [n for n in samplers.names() if "." not in n]


def parse_samplers(text: str | None) -> list[str]:
    if text is None:
        names = own_samplers()
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise ValueError("--samplers is empty: name at least one sampler, e.g. adamw,sgld")
    seen = []
    for name in names:
        samplers.lookup(name)  # unknown name: UnknownSamplerError with suggestions
        search_space(name)  # every family has the same samplers
        if name not in seen:
            seen.append(name)
    return seen


def preset_overrides(args: argparse.Namespace) -> dict[str, int]:
    """The protocol numbers given on the command line, each checked to be at least 1."""
    overrides = {
        "budget": args.budget,
        "eval_every": args.eval_every,
        "trials": args.trials,
        "tune_seeds": args.tune_seeds,
        "seeds": args.seeds,
    }
    for key, value in overrides.items():
        if value is not None and value < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    return {k: v for k, v in overrides.items() if v is not None}


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


def main(args: argparse.Namespace) -> int:
    """``python -m bench compare``: check every input, then open the store, then train; a bad
    input leaves nothing behind."""
    from bench import leaderboard

    log = _printer()
    overrides = preset_overrides(args)
    asked = tasks.make(args.task)  # unknown task: TaskError with suggestions
    names = parse_samplers(args.samplers)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    reports = Path(args.reports)
    leaderboard.check_writable(reports)
    check_store_path(Path(args.store))
    if device == "cpu":
        # One thread by default: on a shared two-core machine, two threads contending with
        # other work were measured 6-10x slower than one on these small models.
        torch.set_num_threads(args.threads or 1)
        log(f"CPU threads: {torch.get_num_threads()} (--threads to change)")
    elif args.threads is not None:
        torch.set_num_threads(args.threads)

    preset = choose_preset(args.preset, overrides, args.task, names, device.split(":")[0], log)
    task = tasks.make(preset.task) if preset.task else asked
    if args.preset != "auto" and task.name != asked.name:
        log(f"the {preset.name} preset runs on {task.name}, not on {asked.name}")
    resolved = preset.resolve(task)
    for name in names:
        size = len(search_space(name, task).grid(task.reference))
        if size < resolved.trials:
            raise ValueError(
                f"--trials {resolved.trials} is more than the {size} points of {name}'s search "
                "space: the tuning budgets would not be equal"
            )
    with Store(args.store) as store:  # corrupt or foreign: StoreError before any training
        log(
            f"compare {task.name}: preset {preset.name}, {len(names)} samplers "
            f"({', '.join(names)}), {resolved.trials} trials x {resolved.tune_seeds} seed(s) "
            f"each, then {resolved.seeds} fresh seeds; budget {resolved.budget} gradient "
            f"evaluations per chain; store {store.path}"
        )
        tick = time.perf_counter()
        key = compare(
            task,
            names,
            preset,
            store,
            device=device,
            progress=False if args.no_progress else None,
            log=log,
            asked=args.task,
        )
        log(f"compare finished in {(time.perf_counter() - tick) / 60:.1f} min")
        if not args.no_report:
            written = leaderboard.write_reports(store, reports, compare_keys=[key])
            for path in written:
                log(f"wrote {path}")
    return 0


def check_store_path(path: Path) -> None:
    """Refuse early a store path that could not be created (no file is made here)."""
    from bench.store import StoreError, check_creatable

    if path.is_dir():
        raise StoreError(f"store path {path} is a directory; give a file path")
    if not path.exists():
        check_creatable(path, create_parents=False)


def report_main(args: argparse.Namespace) -> int:
    """``python -m bench report``: regenerate leaderboards from the store, no training."""
    from bench import leaderboard

    log = _printer()
    reports = Path(args.reports)
    leaderboard.check_writable(reports)
    with Store(args.store, create=False) as store:
        written = leaderboard.write_reports(store, reports, tasks=args.task)
    for path in written:
        log(f"wrote {path}")
    return 0


def _printer() -> Callable[[str], None]:
    def log(line: str) -> None:
        print(line, flush=True)

    return log
