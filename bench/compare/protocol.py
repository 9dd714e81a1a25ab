"""``python -m bench compare``: every sampler tuned with the same budget, then run on fresh seeds.

The protocol (after AlgoPerf, Dahl et al. 2023, and DeepOBS, Schneider et al. 2019)
-----------------------------------------------------------------------------------

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

Temperatures and priors (the convention of ``samplers/base.py``)
----------------------------------------------------------------
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

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench import metrics
from bench.compare.presets import Preset
from bench.compare.spaces import SearchSpace, family, search_space
from bench.store import digest

#: First seed of the fresh seeds; tuning uses seeds 0, 1, ...
FRESH_SEED = 1000
#: The baseline of the speed-up column and the two-sample test.
BASELINE = "adamw"


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
