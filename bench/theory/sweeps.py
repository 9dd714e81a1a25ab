"""The sweeps behind the claims: which jobs each claim needs, packed into vectorized jobs and
trained once through the store by :class:`bench.jobs.Runner` (as ``compare`` trains its jobs:
reused on rerun, resumable after a kill, split over local worker processes).

Every claim runs in two **arms**: ``full`` (full-batch gradients: the only noise is the
sampler's own) and ``minibatch`` (the preset's batch size, or ``--batch-size``: SGD gets
gradient noise). All chains of a job share one minibatch stream (:mod:`bench.run`), so in the
minibatch arm the data noise is common to a job's chains and the sampler's noise is theirs
alone.

One job per claim, arm and sampler wherever the sweep varies only what may vary per chain
(step size, temperature, prior precision, the starting point): a step-size ladder, a
temperature ladder or a set of replicas is one job, its hyperparameters one value per chain.
What changes the task (the training fraction) is one job per task.

* ``tgrok_tmem2``: from ``task.init``, SGD over a ladder of step sizes × seeds;
* ``drift_diffusion``: ``replicas`` chains of SGLD from one memorized checkpoint (per
  checkpoint), with independent noise, measured by :class:`ReplicaProbe`; and as many from one
  initialization, for the approach to memorization;
* ``fraction``: SGD from ``task.init`` at each training fraction (one task per fraction);
* ``eyring``: SGLD and SGHMC from the shared memorized checkpoints over a temperature ladder;
* ``weight_decay``: SGLD from the shared memorized checkpoints over prior precision ×
  temperature (a factorial; τ = 0 is gradient descent).

Memorized checkpoints are :mod:`bench.checkpoints`'s: the task's reference optimizer run until
it memorizes, kept in the store and shared with ``compare``.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

import tasks
from bench import checkpoints
from bench.checkpoints import Criterion
from bench.jobs import Job, Runner
from bench.store import Store

#: The claims, in the order of the issue and of the reports.
CLAIMS = ("tgrok_tmem2", "drift_diffusion", "fraction", "eyring", "weight_decay")
#: The two arms: full-batch gradients, and minibatches (gradient noise).
ARMS = ("full", "minibatch")


class UnknownClaim(ValueError):
    """A claim name that is not one of :data:`CLAIMS` (the message suggests the nearest)."""


def check_claims(names: Sequence[str]) -> list[str]:
    """The claims asked for, in :data:`CLAIMS` order (all of them when none is named); an
    unknown name raises :class:`UnknownClaim` with a "did you mean"."""
    if not names:
        return list(CLAIMS)
    for name in names:
        if name not in CLAIMS:
            close = difflib.get_close_matches(name, CLAIMS, n=2, cutoff=0.4)
            hint = (
                "did you mean " + " or ".join(repr(c) for c in close) + "?"
                if close
                else "the claims are " + ", ".join(CLAIMS)
            )
            raise UnknownClaim(f"unknown claim {name!r}; {hint}")
    return [c for c in CLAIMS if c in names]


# -- the numbers of a preset ------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """The numbers of every claim's sweep. Steps count from each chain's start (``task.init``
    or the memorized checkpoint); ``confirm`` is the window of sustained grokking, after which a
    job whose chains have all confirmed stops."""

    name: str
    task: str
    description: str
    seeds: int  # seeds per sweep point (from init), or memorized checkpoints (from one)
    eval_every: int
    confirm: int
    batch_size: int  # the minibatch arm
    # tgrok_tmem2: SGD from init over step sizes
    tmem_steps: tuple[float, ...]
    tmem_hparams: Mapping[str, Any]
    tmem_prior: float
    tmem_budget: int
    tmem_eval_every: int  # t_mem is a covariate here: a finer grid than the others
    # drift_diffusion: SGLD replicas
    drift_hparams: Mapping[str, Any]
    drift_prior: float
    drift_replicas: int
    drift_groups: int  # memorized checkpoints, R replicas each
    drift_budget: int
    drift_init_budget: int  # the replicas from one initialization (through memorization)
    drift_init_eval_every: int  # memorization takes a few dozen steps: a finer grid there
    # fraction: SGD from init at each training fraction
    fractions: tuple[float, ...]
    fraction_hparams: Mapping[str, Any]
    fraction_prior: float
    fraction_budget: int
    # eyring: SGLD and SGHMC over a temperature ladder from memorized checkpoints
    eyring_temperatures: tuple[float, ...]
    eyring_samplers: Mapping[str, Mapping[str, Any]]
    eyring_prior: float
    eyring_budget: int
    # weight_decay: SGLD over prior precision x temperature from memorized checkpoints
    decay_priors: tuple[float, ...]
    decay_temperatures: tuple[float, ...]
    decay_hparams: Mapping[str, Any]
    decay_budget: int
    decay_seeds: int  # memorized checkpoints per cell of the factorial
    memorized: Criterion = field(default_factory=Criterion)
    task_overrides: Mapping[str, Any] = field(default_factory=dict)  # tasks.make(task, **these)

    def make_task(self, **more: Any) -> Any:
        """The preset's task (with ``more`` settings, e.g. another training fraction)."""
        return tasks.make(self.task, **{**self.task_overrides, **more})

    def arms(self, batch_size: int | None = None) -> dict[str, int | None]:
        return {"full": None, "minibatch": batch_size or self.batch_size}


#: The CPU preset, measured on add_mod31_quadratic (Gromov's quadratic MLP, D = 46,500) with one
#: torch thread per job on a shared two-core VM. Full-batch SGD from task.init at λ = 1e-4:
#: step 20 → t_mem 120, t_grok 1390; 30 → 80, 930; 40 → 60, 700 (t_mem ≈ 2400/η); step 10
#: had not grokked by 2,500 (val 0.9); λ = 2e-4 never memorizes (collapses), λ = 1e-3 neither.
#: Minibatch 64 (of 480 pairs): step 20 → t_grok 1370, 1570; 40 → 690, 780. SGLD at step 30
#: from a memorized checkpoint (AdamW, 20 steps): t_grok 690 for τ ≤ 1e-8, 790 at 1e-7, 1670 at
#: 1e-6; gradient descent from it at λ = 3.5e-5 → 1670, 1e-4 → 690, 1.4e-4 → 700, 2e-4 collapses
#: (val 0.67, train 0.94 at 2,500). Training fraction (full-batch SGD from init): 0.3 → none by
#: 4,000 (val 0.15, 0.03), 0.35 → 3200, >4000; 0.4 → 1770, 1960; 0.45 → 1170, 1290; 0.6 → 800,
#: 840. SGHMC at step 3, friction 0.1 (momentum 0.9): 740, 790, 1810 at τ = 1e-8, 1e-7, 1e-6.
#: The cross-entropy MLP (add_mod31_mlp) was measured first and set aside: SGD (steps
#: 0.1-2, momentum 0 or 0.9, λ 1e-3-1e-2) had not grokked after 3-4k steps, and λ >= 2e-2
#: collapses it. A step costs 4-6 ms per chain on the full batch on an idle core; with other
#: users loading the two cores (load 7.6) a 24-chain SGLD job on minibatches of 64 ran 2,500
#: steps in 228 s (3.8 ms per chain-step): the ladders below are sized for such a machine. The
#: whole preset (22 jobs, 170 chains, checkpoints and pages included) took 17.7 min of
#: wall-clock on two workers under that load (32 min of worker time).
CPU = Preset(
    name="cpu",
    task="add_mod31_quadratic",
    description=(
        "Gromov's quadratic MLP on (x + y) mod 31, SGD / SGLD / SGHMC at λ = 1e-4 around step "
        "30 (where gradient descent groks in ~1k steps); every claim in under 30 minutes on two "
        "CPU cores"
    ),
    seeds=3,
    eval_every=20,
    confirm=150,
    batch_size=64,
    tmem_steps=(17.0, 24.0, 34.0, 48.0),
    tmem_hparams={},
    tmem_prior=1e-4,
    tmem_budget=2400,
    tmem_eval_every=10,
    drift_hparams={"step_size": 30.0, "temperature": 1e-7},
    drift_prior=1e-4,
    drift_replicas=6,
    drift_groups=2,
    drift_budget=1000,
    drift_init_budget=200,
    drift_init_eval_every=2,
    fractions=(0.35, 0.4, 0.45, 0.5, 0.6),
    fraction_hparams={"step_size": 30.0},
    fraction_prior=1e-4,
    fraction_budget=3000,
    eyring_temperatures=(1e-8, 1e-7, 3e-7, 1e-6),
    eyring_samplers={
        "sgld": {"step_size": 30.0},
        "sghmc": {"step_size": 3.0, "friction": 0.1},
    },
    eyring_prior=1e-4,
    eyring_budget=2200,
    decay_priors=(3.5e-5, 5e-5, 1e-4, 1.4e-4),
    decay_temperatures=(0.0, 1e-6),
    decay_hparams={"step_size": 30.0},
    decay_budget=2200,
    decay_seeds=2,
    # The first evaluation at training accuracy 1 (step 20 of AdamW, ‖θ‖ 23, loss 0.017 = 47 %
    # of its initial 0.036): from compare's default (1 % of it: step 60, ‖θ‖ 34) gradient descent
    # at step 30 diverges within 20 steps.
    memorized=Criterion(train_loss_ratio=0.5),
)

#: The paper preset: Nanda et al.'s add_mod113 (one-layer transformer, 30 % of the pairs) for a
#: GPU. Its ladders are scaled from the CPU preset's shape and have NOT been measured on this
#: task (no GPU was available when it was written): a first run should check that gradient
#: descent groks within the budgets at these step sizes and priors, and widen them if not.
PAPER = Preset(
    name="paper",
    task="add_mod113",
    description=(
        "Nanda et al.'s one-layer transformer on (x + y) mod 113 (30 % of the pairs), for a GPU; "
        "ladders scaled from the CPU preset, not yet measured on this task"
    ),
    seeds=4,
    eval_every=50,
    confirm=1000,
    batch_size=512,
    tmem_steps=(0.1, 0.14, 0.2, 0.28, 0.4),
    tmem_hparams={"momentum": 0.9},
    tmem_prior=1e-2,
    tmem_budget=40_000,
    tmem_eval_every=20,
    drift_hparams={"step_size": 0.2, "temperature": 1e-6},
    drift_prior=1e-2,
    drift_replicas=8,
    drift_groups=3,
    drift_budget=20_000,
    drift_init_budget=2_000,
    drift_init_eval_every=10,
    fractions=(0.25, 0.3, 0.35, 0.4, 0.5),
    fraction_hparams={"step_size": 0.2, "momentum": 0.9},
    fraction_prior=1e-2,
    fraction_budget=40_000,
    eyring_temperatures=(1e-8, 1e-7, 1e-6, 3e-6, 1e-5),
    eyring_samplers={
        "sgld": {"step_size": 0.2},
        "sghmc": {"step_size": 0.02, "friction": 0.1},
    },
    eyring_prior=1e-2,
    eyring_budget=30_000,
    decay_priors=(3e-3, 5e-3, 1e-2, 2e-2),
    decay_temperatures=(0.0, 1e-6, 1e-5),
    decay_hparams={"step_size": 0.2},
    decay_budget=30_000,
    decay_seeds=3,
)

PRESETS: dict[str, Preset] = {"cpu": CPU, "paper": PAPER}


# -- a task that also measures replicas -------------------------------------------------------
class ReplicaProbe:
    """A task whose evaluation also reports, for chains in groups of ``replicas`` that start
    from one point each (``origins``, one row per group), the inner products of their
    displacements from that point: chain ``c`` of group ``g`` gets ``gram_j = ⟨θ_c − o_g,
    θ_{g,j} − o_g⟩`` for every replica ``j`` of its group. The replicas' mean displacement and
    their spread, and any bootstrap resample of the replicas, follow exactly from these
    (:func:`bench.theory.claims.replica_moments`); a single chain's distance cannot tell drift
    from diffusion. Everything else is the wrapped task's."""

    def __init__(self, inner: Any, replicas: int, origins: Tensor, origin_keys: Sequence[str]):
        self.inner = inner
        self.replicas = int(replicas)
        self.origins = origins.detach().to(torch.float32)
        self.origin_keys = list(origin_keys)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("inner", "replicas", "origins", "origin_keys"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def config(self) -> dict[str, Any]:
        return {
            **self.inner.config,
            "probe": {"replicas": self.replicas, "origins": self.origin_keys},
        }

    def to(self, device: torch.device | str) -> ReplicaProbe:
        self.inner.to(device)
        self.origins = self.origins.to(device)
        return self

    @torch.no_grad()
    def evaluate(self, theta: Tensor) -> dict[str, Tensor]:
        out = dict(self.inner.evaluate(theta))
        r = self.replicas
        g = theta.shape[0] // r
        d = theta.reshape(g, r, -1).to(torch.float64) - self.origins[:g, None, :].to(torch.float64)
        gram = torch.einsum("gid,gjd->gij", d, d).reshape(g * r, r)
        for j in range(r):
            out[f"gram_{j}"] = gram[:, j].to(torch.float32)
        return out


# -- the plan: claim -> arm -> jobs -----------------------------------------------------------
@dataclass
class Planned:
    """One job of a claim's sweep, with the task it runs on and what its chains mean."""

    claim: str
    arm: str
    task: Any
    job: Job
    meta: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.job.key(self.task)


def _job(
    sampler: str,
    hparams: Mapping[str, Any],
    prior: float | list[float],
    seeds: list[int],
    steps: int,
    preset: Preset,
    label: str,
    batch_size: int | None,
    start: list[str] | None = None,
) -> Job:
    return Job(
        sampler=sampler,
        hparams=dict(hparams),
        prior_precision=prior,
        seeds=seeds,
        steps=steps,
        eval_every=preset.eval_every,
        label=label,
        confirm=preset.confirm,
        batch_size=batch_size,
        start=list(start or []),
    )


def plan(
    claims: Sequence[str],
    preset: Preset,
    task: Any,
    points: Mapping[int, Any],
    *,
    batch_size: int | None = None,
) -> list[Planned]:
    """Every job of ``claims``; ``points`` maps a checkpoint seed to its
    :class:`~bench.store.Checkpoint` (the seeds :func:`checkpoint_seeds` asks for)."""
    out: list[Planned] = []
    seeds = list(range(preset.seeds))
    for arm, bs in preset.arms(batch_size).items():
        for claim in claims:
            out += _PLANNERS[claim](preset, task, points, seeds, arm, bs)
    return out


def checkpoint_seeds(claims: Sequence[str], preset: Preset) -> list[int]:
    """The seeds whose memorized checkpoints ``claims`` start from."""
    n = 0
    if "drift_diffusion" in claims:
        n = max(n, preset.drift_groups)
    if "eyring" in claims:
        n = max(n, preset.seeds)
    if "weight_decay" in claims:
        n = max(n, preset.decay_seeds)
    return list(range(n))


def _tmem(preset, task, points, seeds, arm, bs) -> list[Planned]:
    steps = [s for s in preset.tmem_steps for _ in seeds]
    job = _job(
        "sgd",
        {**preset.tmem_hparams, "step_size": steps},
        preset.tmem_prior,
        [s for _ in preset.tmem_steps for s in seeds],
        preset.tmem_budget,
        replace(preset, eval_every=preset.tmem_eval_every),
        f"tmem/{arm}",
        bs,
    )
    return [Planned("tgrok_tmem2", arm, task, job, {"step_size": steps})]


def _drift(preset, task, points, seeds, arm, bs) -> list[Planned]:
    r = preset.drift_replicas
    groups = [points[s] for s in range(preset.drift_groups)]
    origins = torch.stack([c.theta for c in groups])
    probe = ReplicaProbe(task, r, origins, [c.key for c in groups])
    from_mem = _job(
        "sgld",
        preset.drift_hparams,
        preset.drift_prior,
        [0] * (r * len(groups)),
        preset.drift_budget,
        preset,
        f"drift/{arm}",
        bs,
        start=[c.key for c in groups for _ in range(r)],
    )
    # R replicas from one initialization: the walk towards memorization (seed 0's init)
    init_probe = ReplicaProbe(task, r, task.init(0, 1), ["init:0"])
    from_init = _job(
        "sgld",
        preset.drift_hparams,
        preset.drift_prior,
        [0] * r,
        preset.drift_init_budget,
        replace(preset, eval_every=preset.drift_init_eval_every),
        f"drift0/{arm}",
        bs,
    )
    meta = {"replicas": r, "groups": [c.seed for c in groups], "steps": [c.step for c in groups]}
    return [
        Planned("drift_diffusion", arm, probe, from_mem, {**meta, "start": "memorized"}),
        Planned("drift_diffusion", arm, init_probe, from_init, {"replicas": r, "start": "init"}),
    ]


def _fraction(preset, task, points, seeds, arm, bs) -> list[Planned]:
    out = []
    for f in preset.fractions:
        sub = preset.make_task(frac_train=f)  # same split seed and model
        job = _job(
            "sgd",
            preset.fraction_hparams,
            preset.fraction_prior,
            seeds,
            preset.fraction_budget,
            preset,
            f"frac{f:g}/{arm}",
            bs if bs is None or bs < len(sub.batch()[1]) else None,
        )
        out.append(Planned("fraction", arm, sub, job, {"fraction": f}))
    return out


def _eyring(preset, task, points, seeds, arm, bs) -> list[Planned]:
    out = []
    ladder = [t for t in preset.eyring_temperatures for _ in seeds]
    for sampler, hparams in preset.eyring_samplers.items():
        job = _job(
            sampler,
            {**hparams, "temperature": ladder},
            preset.eyring_prior,
            [0] * len(ladder),
            preset.eyring_budget,
            preset,
            f"eyring/{sampler}/{arm}",
            bs,
            start=[points[s].key for _ in preset.eyring_temperatures for s in seeds],
        )
        out.append(Planned("eyring", arm, task, job, {"sampler": sampler, "temperature": ladder}))
    return out


def _decay(preset, task, points, seeds, arm, bs) -> list[Planned]:
    seeds = seeds[: preset.decay_seeds]
    cells = [(lam, tau) for lam in preset.decay_priors for tau in preset.decay_temperatures]
    lam = [c[0] for c in cells for _ in seeds]
    tau = [c[1] for c in cells for _ in seeds]
    job = _job(
        "sgld",
        {**preset.decay_hparams, "temperature": tau},
        lam,
        [0] * len(lam),
        preset.decay_budget,
        preset,
        f"decay/{arm}",
        bs,
        start=[points[s].key for _ in cells for s in seeds],
    )
    return [Planned("weight_decay", arm, task, job, {"prior_precision": lam, "temperature": tau})]


_PLANNERS: dict[str, Callable[..., list[Planned]]] = {
    "tgrok_tmem2": _tmem,
    "drift_diffusion": _drift,
    "fraction": _fraction,
    "eyring": _eyring,
    "weight_decay": _decay,
}


# -- running the plan -------------------------------------------------------------------------
def run_plan(
    planned: Sequence[Planned],
    store: Store,
    thetas: Mapping[str, Tensor],
    *,
    executor: Any = None,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> tuple[int, int]:
    """Train every planned job that the store lacks (one :class:`Runner` per task, the longest
    jobs first so that the workers finish together); returns (trained, reused)."""
    by_task: dict[str, list[Planned]] = {}
    tasks_of: dict[str, Any] = {}
    for p in planned:
        ident = repr((p.task.name, sorted(p.task.config.items(), key=lambda kv: kv[0])))
        by_task.setdefault(ident, []).append(p)
        tasks_of.setdefault(ident, p.task)

    def start_of(job: Job) -> Tensor | None:
        return torch.stack([thetas[k] for k in job.start]).float() if job.start else None

    trained = reused = 0
    order = sorted(by_task, key=lambda k: -sum(_cost(p.job) for p in by_task[k]))
    for ident in order:
        runner = Runner(tasks_of[ident], store, executor=executor, device=device, log=log)
        jobs = sorted((p.job for p in by_task[ident]), key=lambda j: -_cost(j))
        runner.run_all(jobs, start_of)
        trained += runner.ran
        reused += runner.reused
    return trained, reused


def _cost(job: Job) -> int:
    return job.steps * len(job.seeds)


def memorized_points(
    task: Any,
    seeds: Sequence[int],
    preset: Preset,
    store: Store,
    *,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[int, Any]:
    """The memorized checkpoints of ``seeds`` (made once, kept in the store)."""
    if not seeds:
        return {}
    made = checkpoints.memorized(task, list(seeds), preset.memorized, store, device=device, log=log)
    return {c.seed: c for c in made}


def preset_for(name: str, task_name: str | None = None) -> Preset:
    """A preset by name, on another task when ``task_name`` is given."""
    if name not in PRESETS:
        raise UnknownClaim(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return replace(preset, task=task_name) if task_name else preset


def wall(start: float) -> float:
    return (time.perf_counter() - start) / 60.0
