"""Side-by-side speed: our sampler, BlackJAX's, Pyro's and posteriors', on the same task, chains
and data.

    python -m bench speed --task add_mod31_mlp --sampler sgld --chains 1 16

For one sampler (``sgld``, ``sghmc``, ``hmc`` or ``nuts``) it times every implementation there is:

``ours``
    our sampler stepped as ``bench/run.py`` steps it (evaluation excluded);
``blackjax``
    the registered peer (``blackjax.sgld``, ...), stepped the same way: torch <-> JAX conversion,
    one jitted vmapped transition and the containment of non-finite chains at every step;
The native loops (``blackjax-scan``, ``pyro-mcmc``, ``posteriors-loop``) live with the peers
(:func:`samplers.peers.native_loop`); this module only measures.

``blackjax-scan``
    BlackJAX as its users run it: one jitted ``jax.lax.scan`` over all timed steps of the
    vmapped kernel, no conversion, nothing else computed (fixed step size, no adaptation);
``pyro``
    the registered Pyro peer (``pyro.hmc``, ``pyro.nuts``), one kernel per chain;
``pyro-mcmc``
    Pyro as its users run it: ``MCMC(kernel, num_samples, warmup_steps=0).run()`` per chain;
``posteriors``
    the registered posteriors peer (``posteriors.sgld``, ``posteriors.sghmc``), stepped the same
    way as ours: all chains as one tensor, the global generator forked and seeded from ours, and
    the containment of non-finite chains at every step;
``posteriors-loop``
    posteriors as its users run it: the transform built once and ``transform.update(state,
    batch)`` in a Python loop, drawing from the global generator, nothing else computed.

Memory: by default the command asks glibc to keep freed memory instead of returning every large
block to the kernel (``mallopt`` of ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``). Without that,
every call into a jitted JAX function gets fresh output and scratch buffers from ``mmap`` and
pays a page fault per 4 KiB on first touch: on the embedding MLP with 16 chains that doubled the
cost of a per-step BlackJAX call (about 36 ms CPU against 18 ms inside one ``lax.scan``, which
reuses its buffers). torch gains too: see :mod:`bench.allocator`, which every
``python -m bench`` command applies. ``--no-malloc-tuning`` measures without it.

All start from the task's initial weights (``task.init(seed + c, 1)``) on the full training batch
(the batch the runner gives a Metropolis sampler; for SGLD/SGHMC a full batch keeps the JAX scan
and the per-step paths on the same data). Compilation and warm-up are excluded. Rounds
interleave the implementations (A B C, A B C, ...) so that a neighbour's load on a shared
machine hits all of them alike; the table reports the best round (the least disturbed, as
``timeit`` does) and the median. ``x ours`` is the time per
gradient evaluation relative to ours: above 1 is slower than ours.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import samplers
import tasks
from bench.timing import synchronize
from samplers import peers

#: Ours, then each library's wrapper followed by its native loop (``samplers.peers.native_loop``).
IMPLEMENTATIONS = ("ours", *(x for item in peers.NATIVE_LOOPS.items() for x in item))
#: The algorithms some library has a peer of.
SAMPLERS = tuple(dict.fromkeys(entry.name.split(".", 1)[1] for entry in peers.PEERS))


@dataclass
class Timing:
    implementation: str
    chains: int
    steps: int
    seconds: list[float]  # wall-clock, one per round
    grad_evals_per_step: float  # per chain
    note: str = ""
    cpu_seconds: list[float] | None = None  # process CPU time (all threads), one per round

    @property
    def seconds_per_step(self) -> float:
        """The best round (as ``timeit`` reports): the least disturbed by other processes."""
        return min(self.seconds) / self.steps

    @property
    def median_seconds_per_step(self) -> float:
        return statistics.median(self.seconds) / self.steps

    @property
    def cpu_seconds_per_step(self) -> float:
        """Process CPU time of the best round: robust to waiting for a shared core, and it
        counts every thread (JAX's and torch's thread pools alike)."""
        return min(self.cpu_seconds or [math.nan]) / self.steps

    @property
    def grad_evals_per_second(self) -> float:
        """Chain-gradients per second: chains × gradients per chain-step / seconds per step."""
        return self.chains * self.grad_evals_per_step / self.seconds_per_step

    @property
    def seconds_per_grad_eval(self) -> float:
        return 1.0 / self.grad_evals_per_second


def measure(
    task_name: str,
    sampler: str,
    chains: int,
    *,
    hparams: dict[str, Any] | None = None,
    steps: int = 100,
    rounds: int = 5,
    prior_precision: float = 0.0,
    implementations: tuple[str, ...] = IMPLEMENTATIONS,
    seed: int = 0,
    device: str = "cpu",
) -> list[Timing]:
    """Time each available implementation of ``sampler`` on ``task_name`` with ``chains``."""
    if sampler not in SAMPLERS:
        raise ValueError(f"speed compares {', '.join(SAMPLERS)}; got {sampler!r}")
    if steps < 1 or rounds < 1:
        raise ValueError("steps and rounds must be at least 1")
    task = tasks.make(task_name)
    task.to(device)
    hparams = dict(hparams or {})
    theta0 = torch.cat([task.init(seed + c, 1) for c in range(chains)]).to(device)
    potential = task.potential(prior_precision=prior_precision)
    batch = task.batch()

    runners: dict[str, tuple[Callable[[int], None], float, str]] = {}
    for impl in implementations:
        built = _build(impl, sampler, hparams, task, potential, batch, theta0, seed, steps)
        if built is not None:
            runners[impl] = built
    if not runners:
        raise ValueError(f"no implementation of {sampler!r} among {implementations}")

    times: dict[str, list[float]] = {impl: [] for impl in runners}
    cpu: dict[str, list[float]] = {impl: [] for impl in runners}
    for _ in range(rounds):
        for impl, (run_steps, _, _) in runners.items():
            tick, tock = time.perf_counter(), time.process_time()
            run_steps(steps)
            times[impl].append(time.perf_counter() - tick)
            cpu[impl].append(time.process_time() - tock)
    return [
        Timing(impl, chains, steps, times[impl], evals, note, cpu[impl])
        for impl, (_, evals, note) in runners.items()
    ]


def _build(impl, sampler, hparams, task, potential, batch, theta0, seed, steps):
    """``(run(steps), grad evals per chain-step, note)`` or None where there is no such
    implementation. Every runner is warmed up (compiled) before it is returned."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {impl!r}; choose from {IMPLEMENTATIONS}")
    if impl == "ours" or impl in peers.NATIVE_LOOPS:
        name = sampler if impl == "ours" else f"{impl}.{sampler}"
        if name not in samplers.names():
            return None
        return _stepper(samplers.make(name, **_only(name, hparams)), potential, batch, theta0)
    library = next(lib for lib, native in peers.NATIVE_LOOPS.items() if native == impl)
    loop = peers.native_loop(
        library, sampler, hparams, potential, batch, theta0, seed=seed, steps=steps
    )
    return None if loop is None else (loop.run, loop.grad_evals_per_step, loop.note)


def _only(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters this sampler takes (ours and the peers' names overlap)."""
    accepted = samplers.lookup(name).params
    return {k: v for k, v in hparams.items() if k in accepted}


def _stepper(sampler, potential, batch, theta0):
    generator = torch.Generator(device=theta0.device).manual_seed(0)
    box = {"state": sampler.init(theta0.clone())}
    evals: list[int] = []

    def run(steps: int) -> None:
        state = box["state"]
        for _ in range(steps):
            state, info = sampler.step(state, potential, batch, generator)
            evals.append(info.grad_evals)
        synchronize(state.theta)
        box["state"] = state

    run(3)  # compile and warm up
    evals.clear()
    run(5)
    return run, statistics.mean(evals), ""


def format_table(timings: list[Timing], task: str, sampler: str) -> str:
    """A text table: seconds per step, gradient evaluations per second and the ratio to ours."""
    ours = {t.chains: t for t in timings if t.implementation == "ours"}
    head = [
        "chains",
        "implementation",
        "ms/step",
        "(median)",
        "cpu ms/step",
        "grads/step",
        "grads/s",
        "x ours",
        "x ours cpu",
        "note",
    ]
    rows = []
    for t in timings:
        ref = ours.get(t.chains)
        ratio = f"{t.seconds_per_grad_eval / ref.seconds_per_grad_eval:.2f}" if ref else "-"
        cpu = f"{_cpu_per_grad(t) / _cpu_per_grad(ref):.2f}" if ref and t.cpu_seconds else "-"
        rows.append(
            [
                str(t.chains),
                t.implementation,
                f"{1e3 * t.seconds_per_step:.3f}",
                f"({1e3 * t.median_seconds_per_step:.3f})",
                f"{1e3 * t.cpu_seconds_per_step:.3f}",
                f"{t.grad_evals_per_step:g}",
                f"{t.grad_evals_per_second:,.0f}",
                ratio,
                cpu,
                t.note,
            ]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        f"{task} · {sampler}: best of interleaved rounds (median in brackets); x ours = wall "
        f"time per gradient evaluation relative to ours (> 1: slower than ours), x ours cpu "
        f"the same in process CPU time (robust to a busy machine); torch threads "
        f"{torch.get_num_threads()}",
    ]
    for row in [head, *rows]:
        lines.append("  ".join(x.rjust(w) for x, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _cpu_per_grad(t: Timing) -> float:
    return t.cpu_seconds_per_step / (t.chains * t.grad_evals_per_step)


__all__ = ["IMPLEMENTATIONS", "SAMPLERS", "Timing", "format_table", "measure"]
