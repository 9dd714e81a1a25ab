"""Settings shared by the asv suite: tasks, samplers and their hyperparameters, threads, device.

Threads. Every benchmark pins ``torch.set_num_threads(THREADS)``, 1 unless the environment
variable ``GROKBENCH_ASV_THREADS`` says otherwise (asv passes the caller's environment through to
the benchmark processes). One thread keeps timings comparable from commit to commit on a shared
machine, and keeps the CPU trajectories (hence steps-to-grok) independent of the core count.

Device. ``cuda`` when PyTorch sees a GPU, else ``cpu``; ``GROKBENCH_ASV_DEVICE=cpu`` forces the CPU
on a GPU machine. asv records results per machine (``asv machine``), so CPU and GPU figures land in
separate histories. CUDA is touched only inside a benchmark, never at import: asv forks each
benchmark from a server process that has imported this package, and CUDA does not survive a fork.

Hyperparameters. Each sampler's ``"light"`` example (declared on its class, see
:class:`samplers.Example`; AdamW's is the light task's reference): fixed choices picked by hand on
small grids, *not* tuned with equal budgets per sampler: the
suite tracks how the figures move between commits, not which sampler wins. For the fair, tuned
comparison run ``python -m bench compare`` (``bench/compare.py``).
The samplers get their weight decay from the prior precision ``λ`` of the potential
``U = mean loss + ½·λ·‖θ‖²`` and run at a small temperature, so that they sample close to the
zero-loss set rather than the Bayesian posterior (``samplers/base.py``). Changing any of these
values changes what the benchmarks measure: bump the ``version`` of the classes in
:mod:`.quality` and :mod:`.cost` with it, so that asv starts a new history instead of mixing
the two.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch

import samplers
import tasks
from bench import metrics
from samplers.peers import is_peer

THREADS = int(os.environ.get("GROKBENCH_ASV_THREADS", "1"))

#: The light task: AdamW at its reference groks in 1-4k steps, well under a minute on one core.
LIGHT_TASK = "add_mod31_mlp"
#: The medium task (Nanda's transformer, ~5x the parameters): cost benchmarks only.
MEDIUM_TASK = "add_mod31_transformer"
TASKS = (LIGHT_TASK, MEDIUM_TASK)

#: This repository's samplers that declare a ``"light"`` example (``Sampler.examples``): the
#: hyperparameters and prior precision λ each runs with here, picked by hand on small grids on
#: add_mod31_mlp and explained on the sampler's class.
SAMPLERS = tuple(
    name
    for name in samplers.names()
    if not is_peer(samplers.lookup(name)) and "light" in samplers.lookup(name).examples
)

_TASK_CACHE: dict[tuple[str, str], Any] = {}


def configure() -> torch.device:
    """Pin the thread count and return the device to benchmark on."""
    torch.set_num_threads(THREADS)
    name = os.environ.get("GROKBENCH_ASV_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_task(name: str, device: torch.device) -> Any:
    """``tasks.make(name)`` with its data on ``device``, built once per process."""
    key = (name, str(device))
    if key not in _TASK_CACHE:
        _TASK_CACHE[key] = tasks.make(name).to(device)
    return _TASK_CACHE[key]


def sampler_config(sampler: str, task: Any) -> tuple[dict[str, Any], float]:
    """``(hyperparameters, prior precision)`` of ``sampler`` in this suite: the task's
    reference when ``sampler`` is the reference optimizer (decoupled decay, λ = 0), else the
    sampler's ``"light"`` example."""
    reference = dict(task.reference)
    if reference.pop("sampler") == sampler:
        return reference, 0.0
    example = samplers.example(sampler, "light")
    return dict(example.hparams), example.prior_precision


def first_batch(task: Any, sampler: Any, generator: torch.Generator) -> Any:
    """The batch the runner feeds ``sampler`` first: the full training set for Metropolis
    samplers and full-batch tasks, else a minibatch of the task's ``batch_size``."""
    if sampler.metropolis or task.batch_size is None:
        return task.train
    return next(task.batches(generator, task.batch_size))


def median_to_target(times: Iterable[int | None], censored_at: Iterable[float]) -> float:
    """The Kaplan–Meier median of per-chain first-passage times (``None`` = censored at
    ``censored_at``), NaN when it is not reached: :func:`bench.metrics.median_time`, the same
    median the leaderboard reports."""
    times, censored_at = list(times), list(censored_at)
    median = metrics.median_time(times, censored_at) if times else None
    return math.nan if median is None else median


def summarize(result: Any) -> Mapping[str, float]:
    """Per-run figures of :mod:`.quality` from a :class:`bench.run.RunResult`."""
    chains = result.chains
    steps = [c.censored_at for c in chains]
    evals = [s * result.grad_evals_per_step for s in steps]
    return {
        "t_grok": median_to_target((c.t_grok for c in chains), steps),
        "t_grok_grad_evals": median_to_target((c.t_grok_grad_evals for c in chains), evals),
        "t_mem": median_to_target((c.t_mem for c in chains), steps),
        "grok_fraction": sum(c.t_grok is not None for c in chains) / max(len(chains), 1),
    }


def registered_samplers() -> list[str]:
    """The project's own samplers, the frontier optimizers included (peers from other
    libraries register as ``library.name``)."""
    return [name for name in samplers.names() if not is_peer(samplers.lookup(name))]
