"""The comparison's protocol: what is fair, what is scored, and what a comparison's key covers.

The protocol (after AlgoPerf, Dahl et al. 2023, and DeepOBS, Schneider et al. 2019)
-----------------------------------------------------------------------------------

0. **Two starts, one question each.** ``memorized`` (the exploration protocol, the one that
   tests the claim): per seed, one memorized checkpoint made once by the task's reference
   optimizer (:mod:`bench.checkpoints`: training accuracy 1.0, training loss under a stated
   threshold, validation accuracy still low), shared by every sampler; the score is gradient
   evaluations *from the checkpoint* to sustained grokking. ``init``: the same from
   ``task.init``, AlgoPerf-style time to target. Each start is its own comparison (its own key).
1. **Equal budgets in gradient evaluations.** Every run of every sampler gets the same budget
   ``B`` of gradient evaluations per chain; a sampler states what one step costs
   (``grad_evals_per_step``: HMC's ``num_leapfrog``, its start gradient carried over, plus one
   at its very first step), and runs ``B`` divided by that many steps. Evaluations are every
   ``E`` gradient evaluations for everyone, so ``t_grok`` has the same resolution ``E`` in the
   unit the leaderboard ranks by. Warm-ups (HMC's step-size adaptation, Riemannian Langevin's
   metric) are steps like any other: the budget pays for them.
2. **Sustained grokking, no early stop.** A chain groks at the first evaluation from which
   validation accuracy stays ≥ the target through the confirmation window (``confirm``, in
   gradient evaluations; default: the rest of the run) and ends the run finite; every run goes
   to its budget, so a chain that touches the target and collapses, or diverges later, is not
   counted. Power et al.'s first touch is reported beside it under its own name.
3. **Shared units, equal tuning budgets.** Every row of the factorial (:mod:`bench.compare.rows`)
   searches the same units (:mod:`bench.compare.units`): the decay per gradient evaluation κ,
   the step as a fraction of its stability limit at the checkpoint, the temperature in
   posterior units τ·N. The tuner (:mod:`bench.compare.tuner`, Optuna's TPE with successive
   halving) gives every row the same batches of trials on the same ``tune_seeds`` seeds, so
   every row spends the same gradient evaluations on tuning; a noisy row's τ = 0 twin runs its
   choice with the noise removed and is not tuned.
4. **Selection** (:func:`score`). A trial whose Kaplan–Meier median gradient evaluations to
   grok is reached beats every trial whose median is not (∞, never the budget). Among those,
   a trial with a diverged or collapsed chain (one that reached the target and does not end
   generalized) never beats one without; then the smaller median wins, then the grok rate,
   the median final validation accuracy and the time to memorise break ties.
5. **Fresh seeds.** The chosen configuration runs on ``seeds`` seeds never used in tuning (from
   1000 on); the leaderboard reports these runs only, with effect sizes against the random-walk
   baselines of the claim (SGD, SGLD) and AdamW, and the factors paired by checkpoint.
6. **Instability is named.** A chain whose ‖θ‖ grows past ``max_norm_growth`` times its start,
   or whose loss is not finite, has diverged (never "not grokked"); the page counts both.

Temperatures and priors (the convention of ``samplers/base.py``)
----------------------------------------------------------------
The potential is ``U = mean train loss + ½·λ·‖θ‖²`` and the samplers target ``exp(−U/τ)``.
SGD, SGLD, SGHMC, HMC and Riemannian Langevin get their weight decay from the prior ``λ``
(``prior_precision``), searched on a log grid; AdamW uses its own decoupled ``weight_decay``
and ``λ = 0``. For scale: AdamW's decoupled decay 1.0 at learning rate 1e-3 shrinks θ by 1e-3
per step, as plain SGD with learning rate ``h`` does at ``λ = 1e-3 / h``. Optimizers have no
temperature. HMC's leapfrog step starts from its gradient-step equivalent ``η = ε² / τ`` (one
leapfrog step from rest moves θ by ``−η·∇U``), so ``ε = sqrt(η·τ)`` shrinks like ``sqrt(τ)`` as
it must, and is then adapted; its temperatures reach ``τ = 1/N_train``, the Bayesian posterior.

The grids (:data:`bench.compare.spaces.SEARCH_SPACES`) are stored with each comparison and
rendered into the leaderboard's rules, so a page always shows the spaces its numbers came from.

Presets (:mod:`bench.compare.presets`)
--------------------------------------
``paper``: the task as asked (``add_mod113`` is Nanda et al.'s setting), its default budget, 6
trials x 3 tuning seeds, 8 fresh seeds, both starts: meant for a GPU. ``cpu``: the task's data
and split with a lighter model, the exploration protocol, sized for two CPU cores. ``smoke``: a
few hundred gradient evaluations, for tests and CI. ``auto`` picks ``paper`` on a GPU; on a CPU
``paper`` only when its estimate is under ``CPU_LIMIT_MINUTES``, else ``cpu``, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench import metrics
from bench.compare.presets import Preset
from bench.compare.spaces import search_space
from bench.keys import digest

#: First seed of the fresh seeds; tuning uses seeds 0, 1, ...
FRESH_SEED = 1000
#: The baseline of the speed-up column.
BASELINE = "adamw"
#: Effect sizes on the leaderboard: against the random-walk baselines of the claim and AdamW.
EFFECT_SIZES_AGAINST = ("sgd", "sgld", "adamw")


def score(chains: Sequence[Any], evals_per_step: int) -> tuple:
    """Sort key of a trial over its tuning chains (smaller is better): whether the KM median
    gradient evaluations to grok is not reached, whether any chain diverged or collapsed, the
    median (∞ if not reached), then grok rate, divergence, median final validation accuracy and
    KM median evaluations to memorise."""
    grok = [c.t_grok_grad_evals for c in chains]
    censor = [c.censored_at * evals_per_step for c in chains]
    median = metrics.median_time(grok, censor)
    mem = metrics.median_time([c.t_mem_grad_evals for c in chains], censor)
    rate = sum(c.grokked for c in chains) / len(chains)
    diverged = sum(c.diverged for c in chains) / len(chains)
    val = float(np.median([c.final.get("val_acc", math.nan) for c in chains]))
    bad = any(c.diverged or (c.t_touch is not None and not c.generalized) for c in chains)
    return (
        median is None,
        bad,
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
    task: Any,
    preset: Preset,
    rows: Sequence[Any],
    start: str = "init",
    asked: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The comparison's key and the protocol stored with it (and rendered in its rules).

    The key covers the task and the protocol's numbers only: which rows one invocation asked
    for does not change it, so entries of later invocations join the same leaderboard."""
    reference = None
    if preset.reference and task.reference:
        name, config = reference_config(task)
        reference = {
            "sampler": name,
            **config["hparams"],
            "prior_precision": config["prior_precision"],
        }
    protocol = {
        **preset.resolve(task).protocol(start),
        "task": task.name,
        "baseline": BASELINE,
        "effect_sizes_against": list(EFFECT_SIZES_AGAINST),
        "fresh_seed": FRESH_SEED,
        "reference": reference,
    }
    key = digest({"task": task.name, "task_config": task.config, "protocol": protocol})
    protocol.update(
        rows={r.name: _row_json(r, task) for r in rows},
        task_description=task.description,
        asked_task=asked or task.name,
        model_override=preset.model,
    )
    return key, protocol


def _row_json(row: Any, task: Any) -> dict[str, Any]:
    """A row as its page shows it: sampler, fixed settings, cell, searched axes, warm-up."""
    out = {
        "sampler": row.sampler,
        "fixed": dict(row.fixed),
        "cell": row.cell(),
        "twin": row.twin,
        "warmup": list(row.warmup) if row.warmup else None,
        "axes": {
            k: ({"choices": list(b.choices)} if b.choices is not None else [b.low, b.high])
            for k, b in row.bounds(task).items()
        },
    }
    if row.grid:
        space = search_space(row.sampler, task)
        out.update(fixed={**space.fixed, **out["fixed"]}, note=space.note)
    return out
