"""The rows of the board: the factorial geometry × dynamics × noise, and the search space of each
row in shared units (:mod:`bench.compare.units`).

A row is a sampler with fixed settings, placed in the factorial. Rows vary one factor at a time
from the same checkpoints:

============================  =========  ============  =====  =====================================
row                           geometry   dynamics      noise  note
============================  =========  ============  =====  =====================================
``adamw``                     adaptive   optimizer     no     tuned; the reference row is untuned
``sgd``                       identity   momentum      no     heavy ball μ 0.9, tuned on its own
``sgld`` / ``sgld@0``         identity   first order   yes/no ``@0``: the twin at τ = 0 (= GD)
``sghmc`` / ``sghmc@0``       identity   momentum      yes/no friction 0.1 (μ 0.9)
``riemannian_langevin``/@0    diagonal   first order   yes/no pSGLD (Li et al. 2016)
``preconditioned_sghmc``/@0   diagonal   momentum      yes/no Springenberg et al. (2016)
``hmc``                       identity   Hamiltonian   yes    unit mass, L ≥ 16, acceptance 0.8
``hmc+mass``                  diagonal   Hamiltonian   yes    mass matrix adapted (Stan windows)
============================  =========  ============  =====  =====================================

Beside the factorial, a second group, **the optimizers at the frontier** (:data:`FRONTIER`):
the fastest published ways to make a network grok, tuned by the same tuner on the same budget in
the same units (``lr`` and κ = lr·wd, their decay being decoupled as AdamW's):

==============  ===============  ==========================================================
row             sampler          note
==============  ===============  ==========================================================
``grokfast``    ``adamw``        Grokfast-EMA (Lee et al. 2024): α 0.98, λ_g 2, as published
``ortho_adamw`` ``ortho_adamw``  ⊥AdamW (Prieto et al. 2025)
``lion``        ``lion``         Chen et al. 2023; its step is a sign, so its lr range is
                                 ten times lower than AdamW's (Chen et al.'s rule: 3-10x)
``muon``        ``muon``         torch.optim.Muon's orthogonalization per weight matrix;
                                 AdamW at the task's reference lr (1e-2) on the other blocks
==============  ===============  ==========================================================

A frontier row joins a comparison when ``--samplers`` names it (``grokfast``, or ``frontier``
for the group), so that the default command keeps reproducing the committed factorial page.

A twin (``@0``) is not tuned: it runs its noisy row's chosen settings with the temperature set
to 0, so the difference between the two is the noise alone. HMC has no twin: its target
``exp(−U/τ)`` has no τ = 0 form. A sampler from a peer library or a plugin package, or one of ours
named on the command line without a row here, is a row of its own searched on its grid
(:mod:`bench.compare.spaces`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import optuna

import samplers
from bench.compare.spaces import search_space
from bench.compare.units import Scales, in_units, to_hparams
from samplers.search import Dynamics

#: The suffix of a noisy row's τ = 0 twin.
TWIN = "@0"


@dataclass(frozen=True)
class Bound:
    """A searched axis in shared units: its range, and why it may not widen past an end
    (``None``: it may widen ×10 outward once, when the best trial sits at that end)."""

    low: float | int | str
    high: float | int | str
    log: bool = True
    choices: tuple[Any, ...] | None = None  # a categorical axis
    low_is_limit: str | None = None
    high_is_limit: str | None = None

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(self.choices)
        return optuna.distributions.FloatDistribution(
            float(self.low), float(self.high), log=self.log
        )


#: The shared axes (see :mod:`bench.compare.units`): κ spans from below the checkpoint's λ_c to
#: the collapse edge; h_rel reaches the stability limit and no further; τ·N reaches the posterior.
KAPPA = Bound(1e-4, 3e-1)
H_REL = Bound(1e-2, 1.0, high_is_limit="the stability limit at the checkpoint")
TAU_N = Bound(1e-3, 1.0, choices=(1e-3, 1e-2, 1e-1, 1.0))
LR = Bound(1e-3, 1e-1)
#: Lion moves every coordinate by its whole lr (a sign step): ten times lower than :data:`LR`.
LION_LR = Bound(1e-4, 1e-2)
#: Trajectories long enough to move (L ≥ 16); 24 at most so that the mass matrix's warm-up (30 %
#: of the run) still holds Stan's minimum of 20 transitions at a budget of 3,000 evaluations.
LEAPFROG = Bound(16, 24, choices=(16, 24))


@dataclass(frozen=True)
class Row:
    """One row of the board: ``sampler`` with ``fixed`` settings. ``twin``: also run its τ = 0
    twin. ``warmup = (hyperparameter, fraction)``: that fraction of the run's steps goes to the
    sampler's adaptation (paid by the budget). ``geometry`` overrides the sampler's own cell
    (HMC with an adapted mass matrix is diagonal)."""

    name: str
    sampler: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    twin: bool = False
    warmup: tuple[str, float] | None = None
    geometry: str | None = None
    twin_of: str | None = None  # set on a twin: the noisy row whose choice it runs
    grid: bool = False  # searched on the sampler's own grid (peers, plugins)
    group: str = "factorial"  # or "frontier": the page shows each group as its own table
    lr: Bound = LR  # the lr axis of a row with decoupled decay

    @property
    def dynamics(self) -> Dynamics | None:
        return samplers.lookup(self.sampler).dynamics

    def cell(self) -> dict[str, str]:
        """Its place in the factorial: geometry, dynamics and noise."""
        d = self.dynamics
        if d is None:
            return {"geometry": "?", "dynamics": "?", "noise": "?"}
        form = d.form
        if form == "momentum" and d.mu(self.fixed) == 0.0:
            form = "first order"
        noisy = d.temperature is not None and self.twin_of is None
        return {
            "geometry": self.geometry or d.geometry,
            "dynamics": {"adaptive": "optimizer"}.get(form, form),
            "noise": "yes" if noisy else "no",
        }

    def bounds(self, task: Any = None) -> dict[str, Bound]:
        """The searched axes, in shared units (a grid row: its grid's axes as categoricals)."""
        if self.grid:
            space = search_space(self.sampler, task)
            return {a.name: Bound(0, 0, choices=tuple(a.resolve(task))) for a in space.axes}
        d = self.dynamics
        if d.decay is not None:
            return {"lr": self.lr, "kappa": KAPPA}
        out = {"kappa": KAPPA, "h_rel": H_REL}
        if d.temperature is not None:
            out["tau_n"] = TAU_N
        if d.form == "hamiltonian":
            out["num_leapfrog"] = LEAPFROG
        return out

    def config(self, values: Mapping[str, Any], scales: Scales, task: Any) -> dict[str, Any]:
        """A trial: ``{"search": values, "hparams": ..., "prior_precision": λ, "units": ...}``."""
        if self.grid:
            space = search_space(self.sampler, task)
            to = samplers.lookup(self.sampler).hparams_from_search
            given = {**values, **space.fixed}
            hparams = to({k: v for k, v in given.items() if k != "prior_precision"})
            prior = float(given.get("prior_precision", 0.0))
            for key in space.from_reference:
                if key in task.reference:
                    v = task.reference[key]
                    hparams[key] = list(v) if isinstance(v, (list, tuple)) else v
            return {"search": dict(values), "hparams": hparams, "prior_precision": prior}
        hparams, prior = to_hparams(self.dynamics, values, self.fixed, scales)
        return {
            "search": dict(values),
            "hparams": hparams,
            "prior_precision": prior,
            "units": in_units(self.dynamics, hparams, prior, scales),
        }

    def twin_config(self, chosen: Mapping[str, Any], scales: Scales) -> dict[str, Any]:
        """The τ = 0 twin of a noisy row's chosen trial: every other setting kept."""
        hparams = {**chosen["hparams"], self.dynamics.temperature: 0.0}
        search = {**chosen["search"], "tau_n": 0.0}
        prior = chosen["prior_precision"]
        return {
            "search": search,
            "hparams": hparams,
            "prior_precision": prior,
            "units": in_units(self.dynamics, hparams, prior, scales),
        }


#: The factorial's rows, in the board's order.
ROWS: tuple[Row, ...] = (
    Row("adamw", "adamw"),
    Row("sgd", "sgd", fixed={"momentum": 0.9}),
    Row("sgld", "sgld", twin=True),
    Row("sghmc", "sghmc", fixed={"friction": 0.1}, twin=True),
    Row("riemannian_langevin", "riemannian_langevin", twin=True, warmup=("freeze_after", 0.2)),
    Row(
        "preconditioned_sghmc",
        "preconditioned_sghmc",
        fixed={"friction": 0.1},
        twin=True,
        warmup=("freeze_after", 0.2),
    ),
    Row("hmc", "hmc", fixed={"target_accept": 0.8}, warmup=("adapt_steps", 0.3)),
    Row(
        "hmc+mass",
        "hmc",
        fixed={"target_accept": 0.8, "adapt_mass": True},
        warmup=("adapt_steps", 0.3),
        geometry="diagonal",
    ),
)

#: The optimizers at the frontier, shown as their own group (see the module docstring).
FRONTIER: tuple[Row, ...] = (
    Row(
        "grokfast",
        "adamw",
        fixed={"grokfast_alpha": 0.98, "grokfast_lamb": 2.0},
        group="frontier",
    ),
    Row("ortho_adamw", "ortho_adamw", group="frontier"),
    Row("lion", "lion", group="frontier", lr=LION_LR),
    Row("muon", "muon", fixed={"adam_step_size": 1e-2}, group="frontier"),
)

#: The name that picks every frontier row at once.
FRONTIER_GROUP = "frontier"


def rows_for(names: Sequence[str]) -> list[Row]:
    """The rows of the samplers (or rows) ``names``: every factorial row of a named sampler, in
    the board's order, then the frontier rows named (by row name, by a frontier sampler's name,
    or all of them as ``frontier``), then a grid row for each named sampler that has none."""
    wanted = list(dict.fromkeys(names))
    out = [r for r in ROWS if r.sampler in wanted or r.name in wanted]
    out += [
        r
        for r in FRONTIER
        if FRONTIER_GROUP in wanted
        or r.name in wanted
        or (r.sampler in wanted and getattr(samplers.lookup(r.sampler), "frontier", False))
    ]
    wanted = [n for n in wanted if n != FRONTIER_GROUP]
    covered = {r.sampler for r in out} | {r.name for r in out}
    for name in wanted:
        if name not in covered:
            samplers.lookup(name)  # an unknown name: "did you mean"
            search_space(name)  # no space: a ValueError saying where to add one
            out.append(Row(name, name, grid=True, warmup=search_space(name).warmup))
    return out


def row_names() -> list[str]:
    """The names ``--samplers`` accepts besides sampler names: the rows here and the group."""
    return [r.name for r in (*ROWS, *FRONTIER)] + [FRONTIER_GROUP]


def twin_of(row: Row) -> Row:
    """The τ = 0 twin row of a noisy row."""
    return replace(row, name=row.name + TWIN, twin=False, twin_of=row.name)


__all__ = [
    "FRONTIER",
    "FRONTIER_GROUP",
    "KAPPA",
    "LION_LR",
    "H_REL",
    "LEAPFROG",
    "LR",
    "ROWS",
    "TAU_N",
    "TWIN",
    "Bound",
    "Row",
    "row_names",
    "rows_for",
    "twin_of",
]
