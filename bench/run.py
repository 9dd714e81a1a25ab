"""The one loop: a sampler on a task for C chains at once, recording when each chain groks.

Read top to bottom, the data path is::

    task ──init──▶ theta (C, D) ──potential──▶ sampler.step ──every `eval_every` steps──▶ evaluate
         └─ curves (losses, accuracies, ‖θ‖, distances, acceptance), per-chain outcomes ─▶ RunResult

Per chain the loop records, with ``target`` the task's accuracy target (0.99):

* ``t_mem``: the first evaluated step with train accuracy ≥ target;
* ``t_grok``, **sustained grokking**: the first evaluated step from which validation accuracy
  stays ≥ target through the confirmation window ``confirm``, with the chain finite at the end of
  the run. ``confirm=None`` (the default) is the strictest window, the rest of the run: ``t_grok``
  is where the chain's last unbroken stretch of evaluations at or above the target began, and the
  run always goes to its budget. A whole number ``W`` of steps confirms a stretch once it has held
  for ``W`` steps; such runs stop when every live chain has confirmed. A chain that reaches the
  target and falls back has not grokked: the run goes on until the window confirms or refutes it;
* ``t_touch``: Power et al.'s (2022) "first reaches the target", the first evaluated step with
  validation accuracy ≥ target, whatever comes after;
* ``generalized``: the chain ends the run finite with validation accuracy ≥ target.

Times come in steps, in gradient evaluations and in training seconds (evaluation time excluded).
They are known to a resolution of ``eval_every`` steps: the true crossing lies in
``(t - eval_every, t]``. A chain that does not reach a target within the budget is
right-censored at the last step run: its time is ``None``; it is never dropped and never
counted as the budget. A chain whose potential turns non-finite is marked diverged at the
evaluation that sees it, frozen at its last finite position, and reported; it never counts as
grokked.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

import samplers
from bench.grokking import ChainResult, Tracker
from bench.timing import synchronize
from samplers.base import Sampler

#: Default number of steps between evaluations when the caller gives none: ~200 points per run.
DEFAULT_EVALS_PER_RUN = 200


@dataclass
class RunResult:
    """One vectorized job: C chains of one sampler on one task."""

    task: str
    sampler: str
    hparams: dict[str, Any]  # scalars, or lists with one value per chain
    prior_precision: float | list[float]
    seeds: list[int]
    budget: int
    eval_every: int
    batch_size: int | None
    device: str
    steps_run: int
    grad_evals_per_step: int
    seconds_train: float
    seconds_eval: float
    chains: list[ChainResult]
    curves: list[dict[str, float]]  # one row per (evaluation, chain)
    target: float | None = None
    confirm: int | None = None  # the confirmation window in steps; None = the rest of the run
    seconds_compile: float | None = None  # torch.compile's warm-up step (None: not compiled)
    theta: Tensor | None = field(default=None, repr=False)  # (C, D) final positions; not stored

    @property
    def seconds_per_step(self) -> float:
        return self.seconds_train / max(self.steps_run, 1)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the final positions, as JSON-ready values."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "theta"}
        out["chains"] = [dataclasses.asdict(c) for c in self.chains]
        return out


def run(
    task: Any,
    sampler: str | Sampler,
    hparams: Mapping[str, Any] | None = None,
    *,
    seeds: Sequence[int] | int = 1,
    budget: int | None = None,
    eval_every: int | None = None,
    prior_precision: float | Sequence[float] = 0.0,
    batch_size: int | None = None,
    theta0: Tensor | None = None,
    device: str | torch.device | None = None,
    data_seed: int = 0,
    progress: bool | None = None,
    confirm: int | None = None,
    on_eval: Callable[[int, dict[str, Tensor], Tensor], bool | None] | None = None,
    threads: int | None = 1,
    compile: bool = False,
) -> RunResult:
    """Run ``sampler`` on ``task`` for one chain per seed (or per row of ``theta0``).

    ``hparams`` values may be scalars or sequences with one value per chain (a grid);
    ``seeds`` is a count (seeds 0..n-1) or a list. ``theta0`` starts every chain from a given
    position (e.g. a memorised checkpoint) instead of ``task.init``. Samplers whose update is
    exact only on the full data (HMC) always get the full training set. ``confirm`` is the
    confirmation window of sustained grokking in steps (``None``: the rest of the run; ``0``:
    the first touch, which also stops the run once every chain has touched). ``on_eval(step,
    metrics, theta)`` is called at every evaluation, step 0 included; returning True stops the
    run there.

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
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with cpu_threads(threads if device.type == "cpu" else None):
        return _run(
            task,
            sampler,
            hparams,
            seeds=seeds,
            budget=budget,
            eval_every=eval_every,
            prior_precision=prior_precision,
            batch_size=batch_size,
            theta0=theta0,
            device=device,
            data_seed=data_seed,
            progress=progress,
            confirm=confirm,
            on_eval=on_eval,
            compile=compile,
        )


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


def _run(
    task: Any,
    sampler: str | Sampler,
    hparams: Mapping[str, Any] | None,
    *,
    seeds: Sequence[int] | int,
    budget: int | None,
    eval_every: int | None,
    prior_precision: float | Sequence[float],
    batch_size: int | None,
    theta0: Tensor | None,
    device: torch.device,
    data_seed: int,
    progress: bool | None,
    confirm: int | None,
    on_eval: Callable[[int, dict[str, Tensor], Tensor], bool | None] | None,
    compile: bool,
) -> RunResult:
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    chains = len(seeds) if theta0 is None else theta0.shape[0]
    if theta0 is not None and len(seeds) != chains:
        seeds = [seeds[0] + c for c in range(chains)] if len(seeds) == 1 else seeds
        if len(seeds) != chains:
            raise ValueError(f"{len(seeds)} seeds for a theta0 with {chains} chains")
    if chains < 1:
        raise ValueError("a run needs at least one chain (seed)")
    budget = int(budget if budget is not None else task.budget)
    if budget < 1:
        raise ValueError(f"budget must be at least 1 step, got {budget}")
    if eval_every is not None and eval_every < 1:
        raise ValueError(f"eval_every must be at least 1 step, got {eval_every}")
    eval_every = int(eval_every or max(1, budget // DEFAULT_EVALS_PER_RUN))
    if confirm is not None and confirm < 0:
        raise ValueError(f"confirm must be a window of >= 0 steps or None, got {confirm}")

    # -- the sampler, with per-chain hyperparameters as (C,) tensors -------------------------
    hparams = dict(hparams or {})
    if isinstance(sampler, str):
        name = sampler
        sampler = samplers.make(name, **_per_chain(hparams, chains))
    else:
        name = sampler.name
    if sampler.metropolis:
        batch_size = None  # a Metropolis test on a minibatch is exact for the wrong target
    elif batch_size is None:
        batch_size = task.batch_size

    # -- the task on the device: data, potential, starting point ---------------------------
    task.to(device)
    lam = _per_chain({"prior_precision": prior_precision}, chains)["prior_precision"]
    potential = task.potential(prior_precision=lam)
    if theta0 is None:
        theta0 = torch.cat([task.init(s, 1) for s in seeds])
    theta0 = theta0.detach().to(device=device, dtype=torch.float32)
    data_gen = torch.Generator(device="cpu").manual_seed(data_seed)
    noise_gen = torch.Generator(device=device).manual_seed(data_seed + seeds[0] * 1_000_003)
    batches = task.batches(data_gen, batch_size)

    state = sampler.init(theta0)
    seconds_compile = None
    if compile:
        potential, batches, seconds_compile = _compiled(sampler, state, potential, batches)
    target = task.target
    tracker = Tracker(chains, device, target, confirm)
    frozen: Tensor | None = None  # positions of diverged chains, held fixed
    accept_sum = torch.zeros(chains, device=device)
    divergent = torch.zeros(chains, device=device, dtype=torch.long)
    fatal = torch.zeros(chains, device=device, dtype=torch.bool)
    accept_window = torch.zeros(chains, device=device)
    grad_evals = 0
    seconds_train = seconds_eval = 0.0
    curves: list[dict[str, float]] = []

    bar = _progress(progress, budget, f"{task.name} · {name}")
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
        # A Metropolis sampler rejects a divergent transition and carries on (it is counted);
        # for any other update a divergence means the energy itself broke down.
        fatal |= ~torch.isfinite(info.potential) if sampler.metropolis else info.diverged
        if step % eval_every and step != budget:
            continue

        # -- evaluation: the only place the loop waits for the device -----------------------
        synchronize(device)
        seconds_train += time.perf_counter() - clock
        tick = time.perf_counter()
        metrics = _evaluate(task, state.theta)
        accept = accept_window / window
        accept_sum += accept_window
        accept_window.zero_()
        window = 0
        newly_dead = (fatal | _non_finite(state.theta, metrics)) & ~tracker.dead
        if newly_dead.any():
            tracker.mark_dead(newly_dead, step)
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
    per_chain_hparams = _split_hparams(sampler.hparams, chains)
    lams = lam.tolist() if isinstance(lam, Tensor) else [lam] * chains
    results = [
        tracker.chain_result(
            c,
            seed=seeds[c],
            hparams={**per_chain_hparams[c], "prior_precision": lams[c]},
            end=step,
            divergent=int(divergent[c]),
            accept_rate=float(accept_sum[c]) / max(step, 1),
            final={k: float(v[c]) for k, v in metrics.items()},
        )
        for c in range(chains)
    ]
    return RunResult(
        task=task.name,
        sampler=name,
        hparams=_jsonable(hparams),
        prior_precision=_jsonable(prior_precision),
        seeds=seeds,
        budget=budget,
        eval_every=eval_every,
        batch_size=batch_size,
        confirm=confirm,
        device=_device_name(device),
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


def _compiled(sampler: Sampler, state: Any, potential: Any, batches: Iterator[Any]):
    """``torch.compile(potential)``, the batches unchanged (the first one drawn here is put
    back), and the seconds of one throw-away step that compiles it: a step never mutates its
    input and draws its noise from a generator of its own here, so the run's trajectory and
    random streams are untouched."""
    if getattr(potential, "value_and_grad", None) is not None:
        return potential, batches, 0.0  # fused analytic gradient: nothing to compile
    compiled = torch.compile(potential)
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


def _per_chain(hparams: Mapping[str, Any], chains: int) -> dict[str, Any]:
    """Sequences become (C,) tensors (one value per chain); scalars and tuples stay as they are.

    ``betas`` is a pair, not a per-chain list, unless it is a list of pairs."""
    out = {}
    for key, value in hparams.items():
        if (
            key == "betas"
            and isinstance(value, (list, tuple))
            and value
            and not isinstance(value[0], (list, tuple))
        ):
            out[key] = tuple(value)
        elif key == "betas" and isinstance(value, (list, tuple)):
            out[key] = tuple(
                torch.tensor([b[i] for b in value], dtype=torch.float64) for i in range(2)
            )
        elif isinstance(value, (list, tuple)):
            if len(value) != chains:
                raise ValueError(
                    f"{key} has {len(value)} values but the run has {chains} chains; give one "
                    "value per chain or a single value"
                )
            out[key] = torch.tensor(value, dtype=torch.float64)
        else:
            out[key] = value
    return out


def _split_hparams(hparams: Mapping[str, Any], chains: int) -> list[dict[str, Any]]:
    """The sampler's hyperparameters as one plain dict per chain."""

    def pick(value, c):
        if isinstance(value, tuple):
            return [pick(v, c) for v in value]
        if isinstance(value, Tensor):
            return value[c].item()
        return value

    return [{k: pick(v, c) for k, v in hparams.items()} for c in range(chains)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


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
