"""The one loop: a run (a :class:`bench.spec.RunSpec`) on a task, recording when each chain groks.

Read top to bottom, the data path is::

    spec ──▶ the sampler with its (C,) hyperparameters, the prior λ, the seeds, the budget
    task ──init──▶ theta (C, D) ──potential──▶ sampler.step ──every `eval_every` steps──▶ evaluate
         └─ curves (losses, accuracies, ‖θ‖, distances, acceptance), per-chain outcomes ─▶ RunResult

Per chain the loop records, with ``target`` the task's accuracy target (0.99):

* ``t_mem``: the first evaluated step with train accuracy ≥ target;
* ``t_grok``, **sustained grokking**: the first evaluated step from which validation accuracy
  stays ≥ target through the spec's confirmation window ``confirm``, with the chain finite at
  the end of the run. ``confirm=None`` (the default) is the strictest window, the rest of the
  run: ``t_grok`` is where the chain's last unbroken stretch of evaluations at or above the
  target began, and the run always goes to its budget. A whole number ``W`` of steps confirms a
  stretch once it has held for ``W`` steps; such runs stop when every live chain has confirmed.
  A chain that reaches the target and falls back has not grokked: the run goes on until the
  window confirms or refutes it;
* ``t_touch``: Power et al.'s (2022) "first reaches the target", the first evaluated step with
  validation accuracy ≥ target, whatever comes after;
* ``generalized``: the chain ends the run finite with validation accuracy ≥ target.

Times come in steps, in gradient evaluations and in training seconds (evaluation time excluded).
They are known to a resolution of ``eval_every`` steps: the true crossing lies in
``(t - eval_every, t]``. A chain that does not reach a target within the budget is
right-censored at the last step run: its time is ``None``; it is never dropped and never
counted as the budget. A chain is marked **diverged** at the evaluation that sees it, held
at its last position there, and reported with its cause; it never counts as grokked:

* ``"sampler"``: the sampler flagged a step (``Info.diverged``: its update or energy turned
  non-finite); a Metropolis sampler instead rejects such a step and carries on, and only a
  non-finite current energy stops it (cause ``"non-finite"``);
* ``"non-finite"``: the position or its training loss is not finite;
* ``"norm growth"``: with the spec's ``max_norm_growth`` set, ``‖θ‖ > max_norm_growth ·
  ‖θ_start‖`` (per chain, ``θ_start`` its starting position): the weights run away while every
  number is still finite, as Riemannian Langevin's did from a frozen metric (issue 18), where a
  run ending first would have counted a sustained grok.

All chains share one data stream (the same minibatch each step) and one noise generator; a chain's
trajectory is therefore identical to a separate run's for deterministic updates (SGD, AdamW on
full batches) and equal in distribution for stochastic ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

import samplers
from bench.grokking import ChainResult, Tracker
from bench.spec import INIT, RunSpec
from bench.timing import synchronize
from samplers.base import Sampler
from samplers.layout import with_layout


@dataclass
class RunResult:
    """One vectorized job: C chains of one sampler on one task, and the spec they ran."""

    task: str
    spec: RunSpec  # resolved: its budget and evaluation interval are the ones run
    device: str
    batch_size: int | None  # the minibatch drawn: the spec's or the task's; None = full batch
    steps_run: int
    grad_evals_per_step: int
    seconds_train: float
    seconds_eval: float
    chains: list[ChainResult]
    curves: list[dict[str, float]]  # one row per (evaluation, chain)
    target: float | None = None
    seconds_compile: float | None = None  # torch.compile's warm-up step (None: not compiled)
    theta: Tensor | None = field(default=None, repr=False)  # (C, D) final positions; not stored

    @property
    def seconds_per_step(self) -> float:
        return self.seconds_train / max(self.steps_run, 1)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the final positions, as JSON-ready values.

        The layout is the one stores and raw records have always had: the spec's fields at the
        top (``batch_size`` there is the minibatch drawn), then what the spec adds since it is
        recorded whole (its start, its data seed and the minibatch it asked for); a result read
        back from a store written before then has none of these and writes none. The spec's
        ``max_norm_growth`` and a chain's ``diverged_cause`` are written only when set."""
        spec = self.spec.to_dict()
        out = {
            "task": self.task,
            **{k: spec[k] for k in ("sampler", "hparams", "prior_precision", "seeds")},
            "budget": spec["budget"],
            "eval_every": spec["eval_every"],
            "batch_size": self.batch_size,
            "device": self.device,
            "steps_run": self.steps_run,
            "grad_evals_per_step": self.grad_evals_per_step,
            "seconds_train": self.seconds_train,
            "seconds_eval": self.seconds_eval,
            "chains": [_chain_dict(c) for c in self.chains],
            "curves": self.curves,
            "target": self.target,
            "confirm": spec["confirm"],
            "seconds_compile": self.seconds_compile,
        }
        if self.spec.start is not None:
            out.update(
                start=spec["start"],
                data_seed=spec["data_seed"],
                asked_batch_size=spec["batch_size"],
            )
        if self.spec.max_norm_growth is not None:
            out["max_norm_growth"] = self.spec.max_norm_growth
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        """A result from :meth:`to_dict`'s JSON (its chains as dicts or ChainResults); a record
        written before the spec was recorded whole gets ``start=None`` (unknown) and the data
        seed every run had then, 0."""
        data = dict(data)
        fields = ("sampler", "hparams", "prior_precision", "seeds", "budget", "eval_every")
        spec = RunSpec(
            **{k: data.pop(k) for k in fields},
            batch_size=data.pop("asked_batch_size", data.get("batch_size")),
            confirm=data.pop("confirm", None),
            start=data.pop("start", None),
            data_seed=data.pop("data_seed", 0),
            max_norm_growth=data.pop("max_norm_growth", None),
        )
        data["chains"] = [
            c if isinstance(c, ChainResult) else ChainResult(**c) for c in data["chains"]
        ]
        return cls(spec=spec, **data)


def run(
    task: Any,
    spec: RunSpec,
    *,
    theta0: Tensor | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    on_eval: Callable[[int, dict[str, Tensor], Tensor], bool | None] | None = None,
    threads: int | None = 1,
    compile: bool = False,
) -> RunResult:
    """Run ``spec`` on ``task``: one chain per seed, from ``task.init`` of each seed, or from
    the rows of ``theta0`` when the spec starts from checkpoints (one row per chain).

    Samplers whose update is exact only on the full data (HMC) always get the full training
    set. ``on_eval(step, metrics, theta)`` is called at every evaluation, step 0 included;
    returning True stops the run there.

    ``threads``: torch's CPU threads for this run, the previous setting restored afterwards
    (default 1: on these small models two threads on one job were measured up to 13x slower
    than one when the other core was busy, so parallelism comes from jobs side by side, see
    :mod:`bench.jobs`); ``None`` leaves torch's setting as it is. Ignored on a GPU.
    ``compile``: ``torch.compile`` the potential (forward and backward) before the first step;
    the warm-up step that compiles it runs on a copy of the start with its own generator, so the
    trajectory is the eager one up to float rounding (gradients equal to ~1e-8), and its
    seconds are reported as ``seconds_compile``, never as training time. It pays on long runs
    and on a GPU (measured in reports/scaling.md); a potential with its own fused
    ``value_and_grad`` (the Gaussians) is left as it is.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1 or None, got {threads}")
    if spec.start is None:
        raise ValueError("a spec without a recorded start cannot be run; give start='init' or keys")
    spec = spec.resolve(task)
    chains = spec.chains
    if (theta0 is None) != (spec.start == INIT):
        raise ValueError(
            "theta0 gives the positions of a spec that starts from checkpoints, and only of one"
            if theta0 is not None
            else f"the spec starts from {chains} checkpoint(s): give their positions as theta0"
        )
    if theta0 is not None and theta0.shape[0] != chains:
        raise ValueError(f"{chains} seeds for a theta0 with {theta0.shape[0]} chains")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with cpu_threads(threads if device.type == "cpu" else None):
        # -- the sampler, with per-chain hyperparameters as (C,) tensors ---------------------
        sampler = samplers.make(spec.sampler, **spec.sampler_hparams())
        if sampler.metropolis:
            batch_size = None  # a Metropolis test on a minibatch is exact for the wrong target
        else:
            batch_size = spec.batch_size if spec.batch_size is not None else task.batch_size

        # -- the task on the device: data, potential, starting point -------------------------
        task.to(device)
        potential = task.potential(prior_precision=spec.prior())
        if theta0 is None:
            theta0 = torch.cat([task.init(s, 1) for s in spec.seeds])
        theta0 = theta0.detach().to(device=device, dtype=torch.float32)
        data_gen = torch.Generator(device="cpu").manual_seed(spec.data_seed)
        noise_gen = torch.Generator(device=device).manual_seed(
            spec.data_seed + spec.seeds[0] * 1_000_003
        )
        batches = task.batches(data_gen, batch_size)

        state = sampler.init(theta0)
        seconds_compile = None
        if compile:
            potential, batches, seconds_compile = _compiled(sampler, state, potential, batches)
        budget, eval_every, target = spec.budget, spec.eval_every, task.target
        tracker = Tracker(chains, device, target, spec.confirm)
        frozen: Tensor | None = None  # positions of diverged chains, held fixed
        accept_sum = torch.zeros(chains, device=device)
        divergent = torch.zeros(chains, device=device, dtype=torch.long)
        fatal = torch.zeros(chains, device=device, dtype=torch.bool)
        accept_window = torch.zeros(chains, device=device)
        # ‖θ‖ a chain may reach before it counts as diverged (inf: no check)
        norm_limit = (
            theta0.norm(dim=1) * spec.max_norm_growth
            if spec.max_norm_growth is not None
            else torch.full((chains,), math.inf, device=device)
        )
        grad_evals = 0
        seconds_train = seconds_eval = 0.0
        curves: list[dict[str, float]] = []

        bar = _progress(progress, budget, f"{task.name} · {spec.sampler}")
        metrics = _evaluate(task, theta0)
        tracker.update(0, 0, 0.0, metrics, theta0)
        metrics.update(_geometry(theta0, theta0, tracker.theta_mem))
        curves += _rows(0, 0, 0.0, metrics, None, chains)
        stopped = on_eval is not None and bool(on_eval(0, metrics, theta0))

        step = 0
        window = 0
        clock = time.perf_counter()
        while step < budget and not stopped:
            state, info = sampler.step(state, potential, next(batches), noise_gen)
            if frozen is not None:
                state = dataclasses.replace(
                    state, theta=torch.where(tracker.dead[:, None], frozen, state.theta)
                )
            step += 1
            window += 1
            grad_evals += info.grad_evals
            accept_window += info.accept_prob
            divergent += info.diverged
            # A Metropolis sampler rejects a divergent transition and carries on (it is
            # counted); for any other update a divergence means the energy itself broke down.
            fatal |= ~torch.isfinite(info.potential) if sampler.metropolis else info.diverged
            if step % eval_every and step != budget:
                continue

            # -- evaluation: the only place the loop waits for the device -------------------
            synchronize(device)
            seconds_train += time.perf_counter() - clock
            tick = time.perf_counter()
            metrics = _evaluate(task, state.theta)
            accept = accept_window / window
            accept_sum += accept_window
            accept_window.zero_()
            window = 0
            non_finite = _non_finite(state.theta, metrics)
            grown = state.theta.norm(dim=1) > norm_limit
            newly_dead = (fatal | non_finite | grown) & ~tracker.dead
            if newly_dead.any():
                tracker.mark_dead(newly_dead, step, _causes(fatal, non_finite, sampler.metropolis))
                # samplers keep a diverged chain at its last finite position; hold it there
                frozen = state.theta.clone()
            tracker.update(step, grad_evals, seconds_train, metrics, state.theta)
            metrics.update(_geometry(state.theta, theta0, tracker.theta_mem))
            curves += _rows(step, grad_evals, seconds_train, metrics, accept, chains)
            if on_eval is not None and on_eval(step, metrics, state.theta):
                break  # the caller has what it needs (e.g. a memorized checkpoint of every chain)
            seconds_eval += time.perf_counter() - tick
            if bar is not None:
                bar.update(step - bar.n)
                bar.set_postfix_str(tracker.summary())
            if tracker.all_done():
                break
            clock = time.perf_counter()

        if bar is not None:
            bar.close()
        results = [
            tracker.chain_result(
                c,
                seed=spec.seeds[c],
                hparams=hparams,
                end=step,
                divergent=int(divergent[c]),
                accept_rate=float(accept_sum[c]) / max(step, 1),
                final={k: float(v[c]) for k, v in metrics.items()},
            )
            for c, hparams in enumerate(spec.per_chain())
        ]
        return RunResult(
            task=task.name,
            spec=spec,
            device=_device_name(device),
            batch_size=batch_size,
            steps_run=step,
            grad_evals_per_step=grad_evals // max(step, 1),
            seconds_train=seconds_train,
            seconds_eval=seconds_eval,
            chains=results,
            curves=curves,
            target=target,
            seconds_compile=seconds_compile,
            theta=state.theta,
        )


def _chain_dict(chain: ChainResult) -> dict[str, Any]:
    """A chain's record; its divergence cause only when it has one, so the record of a chain
    that did not diverge is byte for byte the one stored before causes were kept."""
    out = dataclasses.asdict(chain)
    if out["diverged_cause"] is None:
        del out["diverged_cause"]
    return out


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``threads`` inside the block (for the calling
    thread), the previous setting restored after it; ``None`` changes nothing."""
    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _compiled(sampler: Sampler, state: Any, potential: Any, batches: Iterator[Any]):
    """``torch.compile(potential)``, the batches unchanged (the first one drawn here is put
    back), and the seconds of one throw-away step that compiles it: a step never mutates its
    input and draws its noise from a generator of its own here, so the run's trajectory and
    random streams are untouched."""
    if getattr(potential, "value_and_grad", None) is not None:
        return potential, batches, 0.0  # fused analytic gradient: nothing to compile
    compiled = torch.compile(potential)
    if getattr(potential, "layout", None) is not None:  # the model's blocks (Muon, Lion's clip)
        compiled = with_layout(compiled, potential.layout)
    first = next(batches)
    device = state.theta.device
    tick = time.perf_counter()
    sampler.step(state, compiled, first, torch.Generator(device=device).manual_seed(0))
    synchronize(device)
    return compiled, itertools.chain([first], batches), time.perf_counter() - tick


def _evaluate(task, theta: Tensor) -> dict[str, Tensor]:
    with torch.no_grad():
        return dict(task.evaluate(theta))


def _geometry(theta: Tensor, theta0: Tensor, theta_mem: Tensor | None) -> dict[str, Tensor]:
    """The geometry of the walk: ‖θ‖, distance from the start, and distance from the position at
    memorisation (NaN before t_mem). Drift before t_mem, diffusion after (Kozyrev, "How to
    explain grokking")."""
    with torch.no_grad():
        norm = theta.norm(dim=1)
        dist_mem = (
            torch.full_like(norm, math.nan)
            if theta_mem is None
            else (theta - theta_mem).norm(dim=1)
        )
        return {
            "weight_norm": norm,
            "dist_init": (theta - theta0).norm(dim=1),
            "dist_mem": dist_mem,
        }


def _non_finite(theta: Tensor, metrics: Mapping[str, Tensor]) -> Tensor:
    """(C,) bool: the position or its training loss (potential, for data-free targets) is not
    finite."""
    bad = ~torch.isfinite(theta).all(dim=1)
    loss = metrics.get("train_loss", metrics.get("potential"))
    return bad if loss is None else bad | ~torch.isfinite(loss)


def _causes(fatal: Tensor, non_finite: Tensor, metropolis: bool) -> list[str]:
    """Per chain, why it counts as diverged should it be: the sampler's flag first (what it
    saw, at the step it saw it), then a non-finite position or loss, else the norm's growth.
    A Metropolis sampler's flag is its non-finite energy (it rejects every other divergence)."""
    flagged = "non-finite" if metropolis else "sampler"
    return [
        flagged if f else "non-finite" if n else "norm growth"
        for f, n in zip(fatal.tolist(), non_finite.tolist(), strict=True)
    ]


def _rows(step, grad_evals, seconds, metrics, accept, chains) -> list[dict[str, float]]:
    cols = {k: v.tolist() for k, v in metrics.items()}
    acc = accept.tolist() if accept is not None else [math.nan] * chains
    return [
        {
            "chain": c,
            "step": step,
            "grad_evals": grad_evals,
            "seconds": seconds,
            **{k: v[c] for k, v in cols.items()},
            "accept": acc[c],
        }
        for c in range(chains)
    ]


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _progress(enabled: bool | None, total: int, desc: str):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)
