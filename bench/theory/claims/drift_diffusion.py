"""Claim "drift, then diffusion" (replicas from one point): its sweep, analysis and figure.

Kozyrev ("How to explain grokking", 2024): before memorization the walk is a drift (distance
∝ t), after it a diffusion on the zero-loss set (distance ∝ √t). SGLD replicas with independent
noise start from one memorized checkpoint (per checkpoint), and as many from one
initialization, measured by :class:`~bench.theory.probe.ReplicaProbe`: the displacement of
their mean (drift) and their spread (diffusion) against steps, with fitted exponents.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from bench.plots import STYLE
from bench.theory import fits
from bench.theory.claims import regime
from bench.theory.claims.base import (
    CONTRADICTED,
    SUPPORTED,
    UNTESTABLE,
    Chains,
    Claim,
    ClaimResult,
    Section,
    Table,
    number,
    page_status,
)
from bench.theory.claims.common import (
    ci,
    fmt,
    hparams_text,
    joined_verdict,
    km_median,
    within,
)
from bench.theory.figures import COLORS, arm_title, legend, new_figure
from bench.theory.fits import FitError
from bench.theory.plan import Planned, job
from bench.theory.preset import Preset
from bench.theory.probe import ReplicaProbe

NAME = "drift_diffusion"


@dataclass(frozen=True)
class Settings:
    """SGLD replicas from memorized checkpoints, and as many from one initialization."""

    hparams: Mapping[str, Any]
    prior: float
    replicas: int  # R replicas from each starting point
    groups: int  # memorized checkpoints, R replicas each
    budget: int
    init_budget: int  # the replicas from one initialization (through memorization)
    init_eval_every: int  # memorization takes a few dozen steps: a finer grid there


CPU = Settings(
    hparams={"step_size": 30.0, "temperature": 1e-7},
    prior=1e-4,
    replicas=6,
    groups=2,
    budget=1000,
    init_budget=200,
    init_eval_every=2,
)
PAPER = Settings(
    hparams={"step_size": 0.2, "temperature": 1e-6},
    prior=1e-2,
    replicas=8,
    groups=3,
    budget=20_000,
    init_budget=2_000,
    init_eval_every=10,
)


def checkpoints(preset: Preset) -> int:
    return preset.settings(NAME).groups


def plan(
    preset: Preset, task: Any, points: Mapping[int, Any], arm: str, batch_size: int | None
) -> list[Planned]:
    """Two jobs per arm: R replicas from each memorized checkpoint, and R from seed 0's
    initialization (the walk towards memorization), each behind a replica probe."""
    sweep: Settings = preset.settings(NAME)
    r = sweep.replicas
    groups = [points[s] for s in range(sweep.groups)]
    origins = torch.stack([c.theta for c in groups])
    probe = ReplicaProbe(task, r, origins, [c.key for c in groups])
    from_mem = job(
        preset,
        f"drift/{arm}",
        "sgld",
        sweep.hparams,
        sweep.prior,
        [0] * (r * len(groups)),
        sweep.budget,
        batch_size,
        start=[c.key for c in groups for _ in range(r)],
    )
    init_probe = ReplicaProbe(task, r, task.init(0, 1), ["init:0"])
    from_init = job(
        preset,
        f"drift0/{arm}",
        "sgld",
        sweep.hparams,
        sweep.prior,
        [0] * r,
        sweep.init_budget,
        batch_size,
        eval_every=sweep.init_eval_every,
    )
    meta = {"replicas": r, "groups": [c.seed for c in groups], "steps": [c.step for c in groups]}
    return [
        Planned(NAME, arm, probe, from_mem, {**meta, "start": "memorized"}),
        Planned(NAME, arm, init_probe, from_init, {"replicas": r, "start": "init"}),
    ]


def replica_moments(gram: np.ndarray, weights: np.ndarray | None = None):
    """(drift², spread²) of R replicas from the (R, R) Gram matrix ``K`` of their displacements
    ``d_r`` from the common start.

    spread² is the trace of the replicas' covariance, and drift² the squared displacement of
    their expected position, ‖mean d‖² less the part the replicas' own noise contributes to
    it (for a pure diffusion the raw ‖mean d‖² grows like spread²/R and would pass for
    drift). With ``weights`` (a bootstrap resample's multiplicities, V₁ = Σw, V₂ = Σw²) both
    are the unbiased reliability-weighted forms: spread² = Σ w_r‖d_r − d̄_w‖² / (V₁ − V₂/V₁),
    drift² = ‖d̄_w‖² − spread²·V₂/V₁²; unit weights give the sample covariance (R − 1) and
    ‖mean d‖² − spread²/R. ``gram`` may carry leading axes (one matrix per step); a resample
    with a single distinct replica has no spread to measure (NaN)."""
    gram = np.asarray(gram, dtype=float)
    r = gram.shape[-1]
    w = np.ones(r) if weights is None else np.asarray(weights, dtype=float)
    v1, v2 = float(w.sum()), float((w**2).sum())
    mean2 = np.einsum("i,...ij,j->...", w, gram, w) / v1**2
    denom = v1 - v2 / v1
    diag = np.einsum("i,...ii->...", w, gram)
    spread2 = (diag - v1 * mean2) / denom if denom > 1e-12 else np.full_like(mean2, np.nan)
    drift2 = mean2 - spread2 * v2 / v1**2
    return drift2, spread2


def _grams(data: Chains, replicas: int) -> tuple[np.ndarray, np.ndarray]:
    """steps (T,) and Gram matrices (T, G, R, R) from the probe's curves."""
    curves = data.result.curves
    steps = sorted({r["step"] for r in curves})
    index = {s: i for i, s in enumerate(steps)}
    n = len(data.chains)
    g = n // replicas
    out = np.full((len(steps), g, replicas, replicas), np.nan)
    for row in curves:
        c = row["chain"]
        for j in range(replicas):
            out[index[row["step"]], c // replicas, c % replicas, j] = number(row.get(f"gram_{j}"))
    return np.array(steps, dtype=float), out


def _pooled(
    grams: np.ndarray, groups: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """drift and spread (distances; the squares averaged over the chosen groups, each with its
    replicas' weights) per step."""
    drift2 = np.zeros(grams.shape[0])
    spread2 = np.zeros(grams.shape[0])
    for g, w in zip(groups, weights, strict=True):
        d2, s2 = replica_moments(grams[:, g], w)
        drift2 += d2 / len(groups)
        spread2 += s2 / len(groups)
    return np.sqrt(np.maximum(drift2, 0.0)), np.sqrt(np.maximum(spread2, 0.0))


def exponents(steps, grams, window):
    """Fitted drift and spread exponents over ``window`` (a boolean mask of steps), with a
    two-level percentile bootstrap (groups, then replicas within each)."""
    g, r = grams.shape[1], grams.shape[2]
    drift, spread = _pooled(grams, np.arange(g), np.ones((g, r)))
    x = steps[window]

    def resampler(which):
        def draw(rng):
            groups = rng.integers(0, g, g)
            weights = np.stack([np.bincount(rng.integers(0, r, r), minlength=r) for _ in range(g)])
            d, s = _pooled(grams[window], groups, weights)
            return d if which == "drift" else s

        return draw

    out = {}
    for which, y in (("drift", drift), ("spread", spread)):
        try:
            out[which] = fits.power_law(x, y[window], resampler(which), resamples=400)
        except FitError:
            out[which] = None
    return drift, spread, out


def analyse(runs: Sequence[Chains], preset: Preset) -> ClaimResult:
    """Per arm and start: the replicas' drift and spread against steps, with fitted
    exponents and their bootstrap intervals."""
    sweep: Settings = preset.settings(NAME)
    sections, panels, summary = [], [], {}
    for data in runs:
        arm, meta = data.planned.arm, data.planned.meta
        r = meta["replicas"]
        steps, grams = _grams(data, r)
        start = meta["start"]
        if start == "memorized":
            median = km_median(data.grok_times())[0]
            end = median if median is not None else steps[-1]
            window = (steps > 0) & (steps <= end)
            phase = "after memorization (from θ_mem, until the replicas' median t_grok)"
        else:
            tm = [c.t_mem for c in data.chains if c.t_mem is not None]
            end = float(np.median(tm)) if tm else steps[-1]
            window = (steps > 0) & (steps <= end)
            phase = "before memorization (from one θ_0, until the replicas' median t_mem)"
        drift, spread, fitted = exponents(steps, grams, window)
        null, regime_note = _null(data, steps, window, end)
        label = "full batch" if arm == "full" else f"minibatch ({data.result.batch_size})"
        sec = Section(f"{label}, {phase}")
        rows = []
        for which, pred in (("drift", "1 (drift)"), ("spread", "1/2 (diffusion)")):
            f, n = fitted[which], null[which]
            rows.append(
                [
                    "mean displacement ‖E θ − θ_start‖" if which == "drift" else "spread √tr Cov θ",
                    "–" if f is None else fmt(f.exponent),
                    "–" if f is None else ci((f.low, f.high)),
                    "–" if f is None else fmt(f.r2),
                    pred,
                    "–" if n is None else fmt(n),
                    "–" if f is None or n is None else _shift(f, n),
                ]
            )
        sec.tables.append(
            (
                f"Exponents of distance ∝ s^α over s ∈ (0, {fmt(end)}] steps ({int(window.sum())} "
                "evaluations; least squares on log–log axes; 95 % percentile bootstrap over "
                "starting points and replicas), beside the same fit to the null process (weight "
                "decay and the same noise, no loss: an Ornstein–Uhlenbeck process from the same "
                "start, bench/theory/claims/regime.py) over the same window.",
                Table(
                    ["quantity", "α", "95 % interval", "R²", "predicted", "null α", "α − null α"],
                    rows,
                ),
            )
        )
        sec.notes.append(regime_note)
        last = int(np.where(window)[0][-1]) if window.any() else -1
        d_end, s_end = float(drift[last]), float(spread[last])
        ratio = d_end / (s_end / math.sqrt(r)) if s_end > 0 else math.inf
        sec.notes.append(
            f"{len(data.chains) // r} starting point(s) × {r} replicas; at s = {fmt(end)}: drift "
            f"{fmt(d_end)}, spread {fmt(s_end)}; drift / (spread/√R) = {fmt(ratio)} (a ratio "
            "near 1 or below would mean the mean moved no more than the replicas' own noise "
            "moves it)."
        )
        if arm == "minibatch":
            sec.notes.append(
                "The replicas of a job share their minibatches (bench/run.py): the data noise "
                "moves them together and counts as drift here; only the sampler's noise spreads "
                "them."
            )
        sec.verdict = _drift_verdict(fitted, ratio, start, null)
        sec.status, sec.why = _status(fitted, ratio, start, null, end)
        sections.append(sec)
        panels.append(
            {
                "arm": arm,
                "start": start,
                "steps": steps,
                "drift": drift,
                "spread": spread,
                "window": window,
                "fitted": fitted,
            }
        )
        a = fitted["drift"]
        s = fitted["spread"]
        summary[f"{arm}/{start}"] = (
            f"drift α = {fmt(a.exponent) if a else '–'}, spread α = {fmt(s.exponent) if s else '–'}"
        )
    status, why = page_status(sections)
    return ClaimResult(
        claim=NAME,
        status=status,
        why=why,
        title="Drift, then diffusion?",
        prediction=(
            "Kozyrev: before memorization the walk is a drift down the loss (distance from the "
            "start ∝ t); after it, on the zero-loss set, a diffusion (distance ∝ √t). One chain "
            "cannot tell them apart; replicas from one point with independent noise can: a "
            "drift moves their mean (exponent 1), a diffusion spreads them (exponent 1/2) "
            "while their mean stays put."
        ),
        setup=[
            f"SGLD ({hparams_text(sweep.hparams)}, λ = {fmt(sweep.prior)}): "
            f"{sweep.replicas} replicas from each of {sweep.groups} memorized "
            f"checkpoint(s) (bench/checkpoints.py) for {sweep.budget} steps, and "
            f"{sweep.replicas} replicas from one initialization for "
            f"{sweep.init_budget} steps; evaluated every {preset.eval_every} steps (every "
            f"{sweep.init_eval_every} from the initialization).",
            "Measured at every evaluation: the Gram matrix of the replicas' displacements from "
            "their start (bench.theory.probe.ReplicaProbe), from which the drift (bias-"
            "corrected ‖mean displacement‖) and the spread (√trace of the replicas' covariance) "
            "follow, and a bootstrap over replicas is exact.",
        ],
        sections=sections,
        verdict=joined_verdict(sections),
        panels=panels,
        figure_caption="Drift (mean displacement, bias-corrected) and spread of the replicas "
        "against steps from their start (log–log), each arm; fitted power laws over the shaded "
        "window; grey: slopes 1 and 1/2 for reference.",
        summary=summary,
        runs=[r.planned.key for r in runs],
    )


def _null(data: Chains, steps: np.ndarray, window: np.ndarray, end: float):
    """The null's drift and spread exponents over ``window``, and the regime in a sentence: the
    decay's relaxation time against the window, the noise scale against ‖θ_start‖."""
    x = regime.numbers(data)
    eta, lam, tau, n0 = (regime.median(v) for v in (x.eta, x.prior, x.tau, x.norm_start))
    s = steps[window]
    null = {"drift": None, "spread": None}
    if len(s) >= 2 and math.isfinite(n0):
        for which, y in (
            ("drift", regime.null_drift(s, n0, eta, lam)),
            ("spread", regime.null_spread(s, eta, lam, tau, x.dim)),
        ):
            with contextlib.suppress(FitError):
                null[which] = fits.power_law(s, y).exponent
    relax = 1 / (eta * lam) if eta * lam > 0 else math.inf
    noise = math.sqrt(regime.stationary_sq(eta, lam, tau, x.dim))
    inside = relax > 3 * end
    where = (
        "well beyond it"
        if inside
        else "within or near it: the prior, not the landscape, can set the exponents"
    )
    note = (
        f"Regime: weight decay relaxes in 1/(η·λ) = {fmt(relax)} steps against a window of "
        f"{fmt(end)} ({where}); the noise's equilibrium scale sqrt(D·τ/λ) = {fmt(noise)} "
        f"against ‖θ_start‖ = {fmt(n0)}."
    )
    null["inside"] = inside
    return null, note


def _shift(f, null: float) -> str:
    """The data's exponent less the null's, with the data's interval (the null has none)."""
    lo = None if f.low is None else f.low - null
    hi = None if f.high is None else f.high - null
    return f"{fmt(f.exponent - null)} ({ci((lo, hi))})"


def _status(fitted, ratio: float, start: str, null: Mapping[str, Any], end: float):
    """Before memorization the claim is a drift (exponent 1); after it a diffusion (spread
    exponent 1/2, the mean within the replicas' noise), testable only where the decay does not
    relax within the window."""
    d, s = fitted["drift"], fitted["spread"]
    if start == "init":
        if d is None or d.low is None:
            return UNTESTABLE, "the mean did not move measurably before memorization"
        if d.low <= 1.0 <= d.high:
            return SUPPORTED, f"before memorization the mean's exponent is {fmt(d.exponent)}"
        return CONTRADICTED, (
            f"before memorization the mean's exponent is {fmt(d.exponent)} "
            f"({ci((d.low, d.high))}), not 1"
        )
    if not null.get("inside", True):
        gaps = [
            f"{w} {fmt(f.exponent)} against the null's {fmt(null[w])}"
            for w, f in (("drift", d), ("spread", s))
            if f is not None and null.get(w) is not None
        ]
        return UNTESTABLE, (
            f"after memorization the decay relaxes within the {fmt(end)}-step window; "
            + ", ".join(gaps)
        )
    if s is not None and s.low is not None and s.low <= 0.5 <= s.high and ratio <= 3:
        return SUPPORTED, f"after memorization the spread's exponent is {fmt(s.exponent)}"
    return CONTRADICTED, (
        "after memorization "
        + (f"the spread's exponent is {fmt(s.exponent)}" if s is not None else "no spread")
        + f", the mean moving {fmt(ratio)}× the replicas' noise"
    )


def _drift_verdict(fitted, ratio: float, start: str, null: Mapping[str, Any]) -> str:
    d, s = fitted["drift"], fitted["spread"]
    parts = []
    if d is not None:
        parts.append(
            f"the mean's exponent is {fmt(d.exponent)} ({ci((d.low, d.high))}), which "
            f"{within((d.low, d.high), 1.0)} 1"
        )
    else:
        parts.append("the mean did not move measurably (drift at or below the replicas' noise)")
    if s is not None:
        parts.append(
            f"the spread's is {fmt(s.exponent)} ({ci((s.low, s.high))}), which "
            f"{within((s.low, s.high), 0.5)} 1/2"
        )
    moved = "moved further than" if ratio > 3 else "stayed within a few times"
    phase = "Before memorization" if start == "init" else "After memorization"
    against = []
    for which, f in (("drift", d), ("spread", s)):
        n = null.get(which)
        if f is not None and n is not None and f.low is not None and f.high is not None:
            same = f.low <= n <= f.high
            against.append(
                f"the {which}'s exponent {'cannot be told from' if same else 'differs from'} "
                f"the null's {fmt(n)}"
            )
    text = f"{phase}, {'; '.join(parts)}; the mean {moved} the replicas' noise (ratio {fmt(ratio)})"
    if against:
        text += "; against a process with no loss (weight decay and the same noise), " + (
            ", ".join(against)
        )
    if not null.get("inside", True):
        text = (
            "Outside the regime the claim needs (the decay relaxes within the window, so the "
            "exponents measure the prior as much as the landscape). " + text
        )
    return text + "."


def figure(panels: Sequence[Mapping[str, Any]]):
    """Drift and spread against steps per arm (log–log), with the fitted power laws."""
    if not panels:
        return None
    arms = list(dict.fromkeys(p["arm"] for p in panels))
    fig, axes = new_figure(len(arms))
    for ax, arm in zip(axes, arms, strict=True):
        with plt.rc_context(STYLE):
            for p in (q for q in panels if q["arm"] == arm):
                s, w = p["steps"], p["window"]
                ls = "-" if p["start"] == "memorized" else ":"
                for key, color in (("drift", COLORS[3]), ("spread", COLORS[0])):
                    y = p[key]
                    ok = (s > 0) & (y > 0)
                    ax.plot(s[ok], y[ok], color=color, ls=ls, lw=1, label=f"{key} ({p['start']})")
                    f = p["fitted"][key]
                    if f is not None and w.any():
                        xs = s[w]
                        ax.plot(xs, f(xs), color="k", lw=0.8)
                if w.any():
                    ax.axvspan(
                        s[w].min(), s[w].max(), color="grey" if ls == "-" else "tan", alpha=0.08
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            lo, hi = ax.get_xlim()
            ylo, yhi = ax.get_ylim()
            xs = np.geomspace(lo, hi, 10)
            mid = math.sqrt(ylo * yhi)
            ax.plot(xs, mid * xs / math.sqrt(lo * hi), color="grey", lw=0.6, ls="--")
            ax.plot(xs, mid * np.sqrt(xs / math.sqrt(lo * hi)), color="grey", lw=0.6, ls="-.")
            ax.set_ylim(ylo, yhi)
            ax.set_xlabel("steps from the start")
            ax.set_ylabel("distance")
            ax.set_title(arm_title({"arm": arm}))
            legend(ax)
    fig.tight_layout()
    return fig


CLAIM = Claim(NAME, {"cpu": CPU, "paper": PAPER}, plan, analyse, figure, checkpoints)
