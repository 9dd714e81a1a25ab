"""How fast each sampler groks the light task: steps, gradient evaluations and steps-to-memorise.

``setup_cache`` trains every sampler of :data:`.common.SAMPLERS` once per ``asv run`` with
:func:`bench.run.run`: :data:`SEEDS` chains (seeds 0..SEEDS-1) as one vectorized job, the same
budget of :data:`BUDGET` gradient evaluations per chain for every sampler (HMC spends
``num_leapfrog`` per step, so it runs fewer steps: the budget unit of ``python -m bench
compare``), and an evaluation every :data:`EVAL_EVERY` gradient evaluations (the resolution of the
times below). The ``track_*`` methods only read the result:

* ``track_steps_to_grok``: the Kaplan–Meier median over chains of ``t_grok`` (sustained
  grokking: validation accuracy >= the task's target, 0.99, from then to the end), in steps;
* ``track_grad_evals_to_grok``: the same in gradient evaluations;
* ``track_steps_to_memorize``: the same for ``t_mem`` (training accuracy >= the target);
* ``track_fraction_not_grokked``: the fraction of chains that did not grok within the budget;
* ``track_final_val_error``: 1 − the median over chains of the validation accuracy at the end, a
  figure that moves even while no chain reaches the target.

Every figure is lower-is-better, as asv assumes when it flags a rise as a regression.

A median that the budget does not reach (fewer than half of the chains got there) is reported as
NaN, which asv shows as n/a: never as the budget, and never as a failure. A sampler that raises
fails its own benchmarks only, with the traceback in the log.

On a CPU the trajectories are deterministic for a given thread count, so these figures move
between commits only when the numerics change; on a GPU they may also move a little by chance.
"""

from __future__ import annotations

import statistics
import sys
import traceback
from typing import Any

import torch

import samplers
from bench.run import run
from bench.spec import RunSpec

from .common import (
    LIGHT_TASK,
    SAMPLERS,
    configure,
    first_batch,
    load_task,
    sampler_config,
    summarize,
)

#: Chains (seeds) per sampler.
SEEDS = 4
#: Gradient evaluations per chain, the same for every sampler.
BUDGET = 4000
#: Gradient evaluations between evaluations: the resolution of t_grok and t_mem.
EVAL_EVERY = 50


def grad_evals_per_step(sampler: str, task: Any, device: torch.device) -> int:
    """What one step of ``sampler`` (with the suite's hyperparameters) spends, measured."""
    hparams, prior_precision = sampler_config(sampler, task)
    algorithm = samplers.make(sampler, **hparams)
    generator = torch.Generator(device=device).manual_seed(0)
    state = algorithm.init(task.init(0, 1, device=device))
    batch = first_batch(task, algorithm, torch.Generator().manual_seed(0))
    _, info = algorithm.step(state, task.potential(prior_precision), batch, generator)
    return int(info.grad_evals)


def train(sampler: str, device: torch.device) -> dict[str, Any]:
    """Train ``sampler`` on the light task; the figures the ``track_*`` methods report."""
    task = load_task(LIGHT_TASK, device)
    hparams, prior_precision = sampler_config(sampler, task)
    per_step = grad_evals_per_step(sampler, task, device)
    spec = RunSpec(
        sampler,
        hparams,
        prior_precision=prior_precision,
        seeds=SEEDS,
        budget=max(1, BUDGET // per_step),
        eval_every=max(1, EVAL_EVERY // per_step),
    )
    result = run(
        task,
        spec,
        device=device,
        progress=False,
        threads=None,  # THREADS, pinned by common.configure()
    )
    figures = dict(summarize(result))
    figures["final_val_acc"] = statistics.median(c.final["val_acc"] for c in result.chains)
    figures["steps_run"] = result.steps_run
    figures["seconds_train"] = result.seconds_train
    return figures


class Grokking:
    """Steps-to-grok and friends for every sampler on the light task (trained once per run)."""

    params = [list(SAMPLERS)]
    param_names = ["sampler"]
    # Bump when the protocol changes: the light task, the samplers' "light" examples, SEEDS,
    # BUDGET or EVAL_EVERY.
    version = "2"  # 2: sustained grokking, the median of bench.metrics, HMC at L a step
    timeout = 60

    def setup_cache(self) -> dict[str, dict[str, Any]]:
        device = configure()
        figures = {}
        for sampler in SAMPLERS:
            try:
                figures[sampler] = train(sampler, device)
            except Exception as err:  # one broken sampler must not sink the others
                traceback.print_exc(file=sys.stderr)
                figures[sampler] = {"error": f"{type(err).__name__}: {err}"}
            print(f"{sampler}: {figures[sampler]}", flush=True)
        return figures

    # Training every sampler takes about 3-6 minutes on one shared CPU core.
    setup_cache.timeout = 1500

    def setup(self, figures: dict[str, dict[str, Any]], sampler: str) -> None:
        error = figures[sampler].get("error")
        if error is not None:
            raise RuntimeError(f"training {sampler} on {LIGHT_TASK} failed: {error}")

    def track_steps_to_grok(self, figures, sampler: str) -> float:
        return figures[sampler]["t_grok"]

    track_steps_to_grok.unit = "steps"

    def track_grad_evals_to_grok(self, figures, sampler: str) -> float:
        return figures[sampler]["t_grok_grad_evals"]

    track_grad_evals_to_grok.unit = "gradient evaluations"

    def track_steps_to_memorize(self, figures, sampler: str) -> float:
        return figures[sampler]["t_mem"]

    track_steps_to_memorize.unit = "steps"

    def track_fraction_not_grokked(self, figures, sampler: str) -> float:
        return 1.0 - figures[sampler]["grok_fraction"]

    track_fraction_not_grokked.unit = "fraction of chains"

    def track_final_val_error(self, figures, sampler: str) -> float:
        return 1.0 - figures[sampler]["final_val_acc"]

    track_final_val_error.unit = "1 - validation accuracy"
