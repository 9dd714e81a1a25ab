"""Where a sweep sits, in numbers, and the null process with no loss landscape it competes with.

A prediction about noise can only show where noise matters, and a law of grokking times is only
about the landscape if a process *without* one does not give the same times (issue 19). For each
cell of a sweep (one step size h, momentum μ, prior precision λ and temperature τ):

* ``η_eff = h/(1 − μ)``: how far a unit force moves θ in a step (bench/compare/units.py has the
  same number for every form; the theory's samplers are first-order or heavy-ball);
* the **relaxation time** of weight decay ``1/(η_eff·λ)``, against the window the sweep watches:
  a window longer than it sees the prior relax, whatever the landscape;
* the **noise scale** at the prior's equilibrium ``sqrt(D·τ/λ)``, against ‖θ‖ where the chains
  start and where they grok;
* the **noise-to-drift ratio** of one step: the noise's displacement ``sqrt(2·η_eff·τ·D)`` over
  the decay's ``η_eff·λ·‖θ‖``;
* the chains in the cell.

**The null** is an Ornstein–Uhlenbeck process: weight decay and the same noise, no loss,

    θ_{t+1} = a·θ_t + sqrt(2·η_eff·τ)·ξ,   a = 1 − η_eff·λ,
    E‖θ_t‖² = a^{2t}·(‖θ_0‖² − s²) + s²,   s² = 2·η_eff·τ·D/(1 − a²) ≈ D·τ/λ

(exact for SGLD; for heavy ball its overdamped limit). Its "time to grok" is the step at which
its expected norm falls to the norm at which the chain grokked, counted from where the
landscape's own phase ends (the memorized checkpoint, or t_mem for a chain from
initialization); ∞ when the noise holds the norm above it. :func:`null_ratio` fits
``t_grok / t_null`` over a sweep's chains (censored chains stay censored) with an interval: 1
means the grokking times are weight decay's, the landscape adding nothing a null process without
one would not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import samplers
from bench.theory import fits
from bench.theory.claims.base import Chains, Table
from bench.theory.claims.common import ci, fmt
from bench.theory.fits import FitError, Times


def _with_defaults(sampler: str, hparams: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    cls = samplers.lookup(sampler)
    return cls.dynamics, {**{k: p.default for k, p in cls.params.items()}, **hparams}


def eta_eff(sampler: str, hparams: Mapping[str, Any]) -> float:
    """``h/(1 − μ)`` of a first-order or heavy-ball sampler's ``hparams`` (its defaults
    filling what they leave out)."""
    dyn, hp = _with_defaults(sampler, hparams)
    mu = dyn.mu(hp) if dyn.form == "momentum" else 0.0
    return float(hp[dyn.step]) / (1.0 - mu)


def temperature(sampler: str, hparams: Mapping[str, Any]) -> float:
    """τ of ``hparams`` (0 for a sampler without one)."""
    dyn, hp = _with_defaults(sampler, hparams)
    return float(hp[dyn.temperature]) if dyn.temperature else 0.0


def stationary_sq(eta: float, prior: float, tau: float, dim: int) -> float:
    """``s²``: the null's equilibrium E‖θ‖² (0 without noise; ∞ without decay)."""
    if tau <= 0:
        return 0.0
    a = 1.0 - eta * prior
    if prior <= 0 or abs(a) >= 1:
        return math.inf
    return 2.0 * eta * tau * dim / (1.0 - a * a)


def null_norm(t: np.ndarray | float, norm0: float, eta: float, prior: float, tau: float, dim: int):
    """The null's ``sqrt(E‖θ_t‖²)`` from ‖θ_0‖ = ``norm0``."""
    a = 1.0 - eta * prior
    s2 = stationary_sq(eta, prior, tau, dim)
    t = np.asarray(t, dtype=float)
    if not math.isfinite(s2):  # no decay: a random walk, E‖θ_t‖² = ‖θ_0‖² + 2·η·τ·D·t
        return np.sqrt(norm0**2 + 2.0 * eta * tau * dim * t)
    return np.sqrt(a ** (2 * t) * (norm0**2 - s2) + s2)


def null_time(norm0: float, target: float, eta: float, prior: float, tau: float, dim: int) -> float:
    """Steps until the null's expected norm falls from ``norm0`` to ``target``: 0 when it starts
    there, ∞ when decay never brings it there (no decay, or noise holding it above)."""
    if norm0 <= target:
        return 0.0
    a = 1.0 - eta * prior
    s2 = stationary_sq(eta, prior, tau, dim)
    if not 0 < a < 1 or target**2 <= s2:
        return math.inf
    return math.log((target**2 - s2) / (norm0**2 - s2)) / (2.0 * math.log(a))


def null_drift(s: np.ndarray, norm0: float, eta: float, prior: float) -> np.ndarray:
    """The null's mean displacement from θ_0 after ``s`` steps: ``‖θ_0‖·(1 − a^s)``."""
    return norm0 * (1.0 - (1.0 - eta * prior) ** np.asarray(s, dtype=float))


def null_spread(s: np.ndarray, eta: float, prior: float, tau: float, dim: int) -> np.ndarray:
    """The null's spread (√trace of its covariance) after ``s`` steps from one point:
    ``sqrt(D·2·η·τ·(1 − a^{2s})/(1 − a²))`` (``sqrt(2·η·τ·D·s)`` without decay)."""
    s = np.asarray(s, dtype=float)
    a = 1.0 - eta * prior
    if prior <= 0:
        return np.sqrt(2.0 * eta * tau * dim * s)
    return np.sqrt(2.0 * eta * tau * dim * (1.0 - a ** (2 * s)) / (1.0 - a * a))


def median(v: np.ndarray) -> float:
    """The median of ``v``'s finite values (NaN when it has none)."""
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else math.nan


@dataclass
class ChainNumbers:
    """Per chain of a job: the numbers of its regime and its null time (NaN where unknown)."""

    eta: np.ndarray
    prior: np.ndarray
    tau: np.ndarray
    norm_start: np.ndarray  # ‖θ‖ where the landscape's phase ends (checkpoint or t_mem)
    norm_grok: np.ndarray  # ‖θ‖ at t_grok
    offset: np.ndarray  # steps before that start (0, or t_mem)
    dim: int

    def subset(self, mask: np.ndarray) -> ChainNumbers:
        return ChainNumbers(*(getattr(self, k)[mask] for k in _PER_CHAIN), self.dim)

    @staticmethod
    def concat(parts: Sequence[ChainNumbers]) -> ChainNumbers:
        per_chain = (np.concatenate([getattr(p, k) for p in parts]) for k in _PER_CHAIN)
        return ChainNumbers(*per_chain, parts[0].dim)

    def null_times(self) -> np.ndarray:
        """Each chain's null time; a chain that did not grok is given the median norm at which
        its sweep's chains grokked (NaN when none did)."""
        target = np.where(
            np.isfinite(self.norm_grok),
            self.norm_grok,
            median(self.norm_grok),
        )
        out = np.full(len(target), np.nan)
        for i, g in enumerate(target):
            if np.isfinite(g) and np.isfinite(self.norm_start[i]):
                out[i] = self.offset[i] + null_time(
                    self.norm_start[i], g, self.eta[i], self.prior[i], self.tau[i], self.dim
                )
        return out


#: ChainNumbers' per-chain arrays, in order
_PER_CHAIN = ("eta", "prior", "tau", "norm_start", "norm_grok", "offset")


def numbers(data: Chains, *, from_mem: bool = False) -> ChainNumbers:
    """The regime's numbers of every chain of ``data``; ``from_mem``: chains from
    initialization, whose landscape phase ends at t_mem (else at the checkpoint, step 0)."""
    spec = data.result.spec
    n = len(data.chains)
    prior = np.broadcast_to(np.asarray(spec.prior_precision, dtype=float), (n,)).copy()
    eta, tau, start, grok, offset = (np.full(n, np.nan) for _ in range(5))
    for i, c in enumerate(data.chains):
        eta[i] = eta_eff(spec.sampler, c.hparams)
        tau[i] = temperature(spec.sampler, c.hparams)
        t0 = c.t_mem if from_mem else 0
        if t0 is not None:
            offset[i] = t0
            start[i] = data.value_at(i, "weight_norm", t0)
        if c.t_grok is not None:
            grok[i] = data.value_at(i, "weight_norm", c.t_grok)
    return ChainNumbers(eta, prior, tau, start, grok, offset, int(data.planned.task.num_params))


def regime_table(
    cells: Sequence[tuple[str, ChainNumbers]], window: int, times: Sequence[Times]
) -> Table:
    """One row per cell: its η_eff·λ, relaxation time against the window, noise scale against
    the norms, noise-to-drift ratio and chains."""
    rows = []
    for (label, x), t in zip(cells, times, strict=True):
        eta, lam, tau, n0, ng = (
            median(v) for v in (x.eta, x.prior, x.tau, x.norm_start, x.norm_grok)
        )
        rate = eta * lam
        noise = math.sqrt(stationary_sq(eta, lam, tau, x.dim))
        drift = rate * n0
        ratio = math.sqrt(2 * eta * tau * x.dim) / drift if drift > 0 else math.inf
        rows.append(
            [
                label,
                fmt(rate),
                f"{fmt(1 / rate) if rate > 0 else '∞'} / {fmt(window)}",
                f"{fmt(noise)} / {fmt(n0)} / {fmt(ng)}",
                fmt(ratio) if tau > 0 else "0",
                f"{t.events}/{len(t)}",
            ]
        )
    return Table(
        [
            "cell",
            "η_eff·λ per step",
            "relaxation 1/(η_eff·λ) / window",
            "noise sqrt(D·τ/λ) / ‖θ_start‖ / ‖θ_grok‖",
            "noise-to-drift per step",
            "grokked / chains",
        ],
        rows,
    )


@dataclass
class NullFit:
    """``t_grok / t_null`` over a sweep: its median ratio and 95 % interval, with the chains
    it could not use."""

    ratio: float
    interval: tuple[float | None, float | None]
    used: int
    unreachable: int  # the null never reaches the chain's grokking norm (noise, or no decay)
    unknown: int  # no grokking norm to aim at, or no start (never memorized)

    def phrase(self) -> str:
        lo, hi = self.interval
        where = (
            "indistinguishable from the null: these times are weight decay's, the landscape "
            "adding nothing a process without one would not"
            if fits.contains(self.interval, 1.0)
            else "slower than the null: the loss holds the weights up against the decay"
            if lo is not None and lo > 1
            else "faster than the null: something besides the decay shrinks the weights"
        )
        skipped = []
        if self.unreachable:
            skipped.append(f"{self.unreachable} whose null never reaches its norm")
        if self.unknown:
            skipped.append(f"{self.unknown} without a grokking norm to aim at")
        return (
            f"t_grok / t_null = {fmt(self.ratio)} (95 % CI {ci(self.interval)}) over "
            f"{self.used} chains{' (left out: ' + ', '.join(skipped) + ')' if skipped else ''}"
            f": {where}"
        )


def null_ratio(times: Times, null: np.ndarray) -> NullFit:
    """The censored log-normal fit of ``t_grok / t_null`` (an intercept: the median ratio, with
    its profile-likelihood interval); chains with a null of 0, ∞ or unknown are left out and
    counted. Raises :class:`FitError` with fewer than two observed ratios."""
    null = np.asarray(null, dtype=float)
    unreachable = np.isinf(null)
    use = np.isfinite(null) & (null > 0)
    unknown = ~use & ~unreachable  # no target norm or start, or a null of 0 (started below it)
    scaled = Times(times.lower[use] / null[use], times.upper[use] / null[use])
    fit = fits.censored_lognormal(
        scaled, np.ones((int(use.sum()), 1)), ["a"], profile=["a"], name="null", formula="a"
    )
    lo, hi = fit.interval("a")
    return NullFit(
        ratio=math.exp(fit["a"]),
        interval=(None if lo is None else math.exp(lo), None if hi is None else math.exp(hi)),
        used=int(use.sum()),
        unreachable=int(unreachable.sum()),
        unknown=int(unknown.sum()),
    )


def null_section(
    cells: Sequence[tuple[str, ChainNumbers]], times: Sequence[Times], window: int
) -> tuple[list[tuple[str, Table]], str, NullFit | None]:
    """The regime table of ``cells`` (their chains' times in ``times``, in order) and the null's
    fit over all of them: ``(tables, the null's sentence, its fit or None)``."""
    tables = [
        (
            "The regime (medians per cell): decay per step, its relaxation time against the "
            "window, the noise's equilibrium scale against ‖θ‖ at the start (checkpoint or "
            "t_mem) and at grokking, the noise's step against the decay's (bench/theory/claims/"
            "regime.py). τ is the sampler's temperature: a minibatch arm's gradient noise is not "
            "in these numbers.",
            regime_table(cells, window, times),
        )
    ]
    every = ChainNumbers.concat([x for _, x in cells])
    pooled = Times(
        np.concatenate([t.lower for t in times]), np.concatenate([t.upper for t in times])
    )
    null = every.null_times()
    try:
        fit = null_ratio(pooled, null)
    except FitError as err:
        return tables, f"No null comparison: {err}.", None
    rows = []
    bounds = np.cumsum([0] + [len(t) for t in times])
    for (label, _), t, lo, hi in zip(cells, times, bounds[:-1], bounds[1:], strict=True):
        nt = null[lo:hi]  # the pooled fit's null times: censored chains aim at the sweep's norm
        obs = t.upper[np.isfinite(t.upper)]
        reached = nt[np.isfinite(nt)]
        rows.append(
            [
                label,
                fmt(float(np.median(obs))) if len(obs) else "–",
                fmt(float(np.median(reached)))
                if len(reached)
                else "∞"
                if np.isinf(nt).any()
                else "–",
            ]
        )
    tables.append(
        (
            "The null, per cell: the median observed t_grok and the median time the null "
            "process (weight decay and the same noise, no loss) takes to bring E‖θ‖ from the "
            "start to the norm at which the chain grokked.",
            Table(["cell", "t_grok (observed)", "t_null"], rows),
        )
    )
    return tables, fit.phrase() + ".", fit


__all__ = [
    "ChainNumbers",
    "NullFit",
    "eta_eff",
    "null_drift",
    "null_norm",
    "null_spread",
    "null_ratio",
    "null_section",
    "null_time",
    "numbers",
    "regime_table",
    "stationary_sq",
]
