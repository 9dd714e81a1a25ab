"""Each claim's analysis: from the stored runs of its sweep to fitted laws, their intervals, the
competing law and a verdict that says only what the numbers support.

The claims (Kozyrev, "How to explain grokking", 2024; Power et al., "Grokking: generalization
beyond overfitting on small algorithmic datasets", 2022; Millidge, "Grokking as simple
thermodynamics", 2022):

* ``tgrok_tmem2``: memorization is drift (distance ∝ t), grokking diffusion on the zero-loss
  set (distance ∝ √t), so t_grok ≈ t_mem². Tested as the slope b of log t_grok on log t_mem over
  a step-size ladder; the competing law is the first passage of weight-norm decay, t_grok −
  t_mem = c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ), which on a step-size ladder gives b ≈ 1.
* ``drift_diffusion``: replicas from one point with independent noise; the displacement of
  their mean (drift) and their spread (diffusion) against steps, with fitted exponents.
* ``fraction``: t_grok grows exponentially as the training fraction shrinks (Power et al.:
  +40–50 % per −1 % of data near 25–30 %); exponential against power law.
* ``eyring``: escape rate ∝ exp(−ΔF/τ) over a temperature ladder (slope ΔF of log t_grok on
  1/τ) against a rate independent of τ.
* ``weight_decay``: weight decay (the Gaussian prior's precision λ) is the strongest lever:
  t_grok against λ at fixed τ, and τ against λ as a factorial.

Fits are :mod:`bench.theory.fits`'s; times are intervals on the evaluation grid and censored
chains stay censored. A chain that diverged is left out of every fit and counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.metrics import kaplan_meier
from bench.store import Store
from bench.theory import fits
from bench.theory.fits import Fit, FitError, Times
from bench.theory.sweeps import Planned, Preset

#: Power et al. (2022, Fig. 1 right and §3.1): "+40–50 %" optimization steps to generalize per
#: −1 % of training data near 25–30 %: a slope of log t against the fraction of −100·ln 1.4 to
#: −100·ln 1.5.
POWER_PER_PERCENT = (0.40, 0.50)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One arm's (or one sampler's) results on a claim's page."""

    title: str
    tables: list[tuple[str, Table]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict: str = ""


@dataclass
class ClaimResult:
    claim: str
    title: str
    prediction: str
    setup: list[str]
    sections: list[Section]
    verdict: str
    panels: list[dict[str, Any]] = field(default_factory=list)  # drawn by bench.theory.report
    figure_caption: str = ""
    summary: dict[str, str] = field(default_factory=dict)  # index columns
    runs: list[str] = field(default_factory=list)


# -- shared helpers ---------------------------------------------------------------------------
@dataclass
class Chains:
    """The chains of one planned job, as read back from the store."""

    planned: Planned
    result: Any  # RunResult (with curves)

    @property
    def chains(self):
        return self.result.chains

    @property
    def eval_every(self) -> int:
        return self.result.eval_every

    def live(self) -> np.ndarray:
        return np.array([not c.diverged for c in self.chains])

    def grok_times(self) -> Times:
        """Every chain's sustained-grokking time as an interval. Not reached: right-censored
        at the end of the run, or, for a chain that ended above the target in a stretch the
        window had not yet confirmed, at the end less the window (its stretch began later)."""
        window = self.result.confirm or 0
        lower, upper = [], []
        for c in self.chains:
            if c.t_grok is not None:
                lower.append(max(c.t_grok - self.eval_every, 0))
                upper.append(c.t_grok)
            else:
                end = c.censored_at
                lower.append(max(end - window, 0) if c.generalized else end)
                upper.append(math.inf)
        return Times(np.array(lower, dtype=float), np.array(upper))

    def curve(self, chain: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [r for r in self.result.curves if r["chain"] == chain]
        steps = np.array([r["step"] for r in rows], dtype=float)
        values = np.array([_num(r.get(key)) for r in rows], dtype=float)
        return steps, values

    def value_at(self, chain: int, key: str, step: int) -> float:
        for r in self.result.curves:
            if r["chain"] == chain and r["step"] == step:
                return _num(r.get(key))
        return math.nan


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def load(store: Store, planned: Sequence[Planned]) -> list[Chains]:
    out = []
    for p in planned:
        record = store.get_run(p.key)
        if record is None:
            raise FitError(f"run {p.key} ({p.job.label}) is not in {store.path}: train it first")
        out.append(Chains(p, record.result))
    return out


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "∞"
    if isinstance(x, float) and math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    if 1e3 <= abs(x) < 1e7:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def ci(interval: tuple[float | None, float | None], digits: int = 3) -> str:
    lo, hi = interval
    return f"{'−∞' if lo is None else fmt(lo, digits)} – {fmt(hi, digits)}"


def _within(interval, value: float) -> str:
    return "contains" if fits.contains(interval, value) else "excludes"


def comparison_table(models: Sequence[Fit]) -> Table:
    weights = fits.akaike_weights(models)
    best = min(f.aic for f in models)
    rows = [
        [
            f.name,
            f"`{f.formula}`",
            str(f.k),
            f"{f.loglik:.2f}",
            f"{f.aic:.2f}",
            f"{f.aic - best:.2f}",
            f"{w:.2f}",
        ]
        for f, w in zip(models, weights, strict=True)
    ]
    return Table(["law", "log t_grok =", "k", "log-lik", "AIC", "ΔAIC", "Akaike weight"], rows)


def _aic_phrase(a: Fit, b: Fit) -> str:
    """Which of two laws AIC prefers, in words, on the usual scale (Burnham & Anderson: ΔAIC
    < 2 is no preference)."""
    d = b.aic - a.aic
    if abs(d) < 2:
        return f"AIC does not separate the {a.name} and the {b.name} law (ΔAIC {abs(d):.2f} < 2)"
    win, lose = (a, b) if d > 0 else (b, a)
    return f"AIC prefers the {win.name} law over the {lose.name} law by {abs(d):.1f}"


def _censoring_note(times: Times, dropped: int = 0) -> str:
    n = len(times)
    text = f"{times.events} of {n} chains grokked within their runs; {n - times.events} censored"
    if dropped:
        text += f"; {dropped} diverged or never memorized, left out"
    return text


def km_median(times: Times) -> tuple[float | None, float | None, float | None]:
    """Kaplan–Meier median of the upper ends (grid times; censored at their lower end) and its
    95 % interval (bench.metrics)."""
    obs = [float(u) if math.isfinite(u) else None for u in times.upper]
    cens = [
        float(lo) if not math.isfinite(u) else float(u)
        for lo, u in zip(times.lower, times.upper, strict=True)
    ]
    s = kaplan_meier(obs, cens)
    return s.median, s.median_low, s.median_high


# -- tgrok_tmem2 ------------------------------------------------------------------------------
def tgrok_tmem2(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for data in load(store, planned):
        arm = data.planned.arm
        sec = Section(f"{arm} batch" if arm == "full" else f"minibatch ({data.result.batch_size})")
        e = data.eval_every
        eta = np.array(data.planned.meta["step_size"], dtype=float)
        momentum = float(data.result.hparams.get("momentum", 0.0) or 0.0)
        lam = float(data.result.prior_precision)
        tmem = np.array([np.nan if c.t_mem is None else c.t_mem for c in data.chains], dtype=float)
        keep = data.live() & np.isfinite(tmem)
        times_all = data.grok_times()
        times = times_all.subset(keep)
        x = tmem[keep] - e / 2  # the middle of (t_mem − e, t_mem]
        rows = []
        norm_mem = np.array(
            [
                data.value_at(i, "weight_norm", int(t)) if k else np.nan
                for i, (t, k) in enumerate(zip(tmem, keep, strict=True))
            ]
        )
        grokked = [i for i, c in enumerate(data.chains) if c.t_grok is not None and keep[i]]
        norm_star = (
            float(
                np.median([data.value_at(i, "weight_norm", data.chains[i].t_grok) for i in grokked])
            )
            if grokked
            else math.nan
        )
        for step in sorted(set(eta)):
            idx = np.where((eta == step) & keep)[0]
            sub = times_all.subset((eta == step) & keep)
            med = km_median(sub) if len(sub) else (None, None, None)
            rows.append(
                [
                    fmt(step),
                    f"{sub.events}/{int(np.sum(eta == step))}",
                    fmt(float(np.median(tmem[idx]))) if len(idx) else "–",
                    fmt(med[0])
                    if med[0] is not None
                    else f"> {fmt(float(np.max(sub.lower)))}"
                    if len(sub)
                    else "–",
                    fmt(float(np.median(norm_mem[idx]))) if len(idx) else "–",
                ]
            )
        sec.tables.append(
            (
                "Per step size: chains that grokked, median t_mem, Kaplan–Meier median t_grok "
                "(steps), median ‖θ‖ at t_mem.",
                Table(["η", "grokked", "t_mem", "t_grok (KM median)", "‖θ_mem‖"], rows),
            )
        )
        panel = {"arm": arm, "x": x, "times": times, "eta": eta[keep], "e": e}
        try:
            exog = np.column_stack([np.ones(len(x)), np.log(x)])
            power = fits.censored_lognormal(
                times, exog, ["a", "b"], profile=["b"], name="power", formula="a + b·log t_mem"
            )
            rate = eta[keep] * lam / (1.0 - momentum)
            lever = np.maximum(np.log(norm_mem[keep] / norm_star), 1e-3)
            drive = lever / rate

            def decay_mean(beta, X, x=x, drive=drive):
                return np.log(x + math.exp(beta[0]) * drive)

            decay = fits.censored_lognormal(
                times,
                exog,
                ["log_c"],
                mean=decay_mean,
                start=[0.0, 0.0],
                profile=["log_c"],
                name="norm decay",
                formula="log(t_mem + c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ))",
            )

            def scale_mean(beta, X, x=x, rate=rate):
                return np.log(x + math.exp(beta[0]) / rate)

            scale = fits.censored_lognormal(
                times,
                exog,
                ["log_c"],
                mean=scale_mean,
                start=[0.0, 0.0],
                profile=["log_c"],
                name="decay time",
                formula="log(t_mem + c/(η_eff·λ))",
            )
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            sec.verdict = f"No fit ({err})."
            sections.append(sec)
            panels.append(panel)
            summary[arm] = "no fit"
            continue
        b, b_ci = power["b"], power.interval("b")
        c_ci = _exp_interval(decay.interval("log_c"))
        k_ci = _exp_interval(scale.interval("log_c"))
        c, k = math.exp(decay["log_c"]), math.exp(scale["log_c"])
        sec.tables.append(
            (
                "Fits (censored log-normal regressions on the same chains; 95 % profile-"
                "likelihood intervals).",
                Table(
                    ["law", "parameter", "estimate", "95 % interval", "σ (log scale)"],
                    [
                        ["power", "slope b", fmt(b), ci(b_ci), fmt(power.sigma)],
                        ["norm decay", "c", fmt(c), ci(c_ci), fmt(decay.sigma)],
                        ["decay time", "c", fmt(k), ci(k_ci), fmt(scale.sigma)],
                    ],
                ),
            )
        )
        sec.tables.append(
            ("Model comparison on the same chains.", comparison_table([power, decay, scale]))
        )
        sec.notes.append(
            _censoring_note(times, int(np.sum(~keep)))
            + f"; ‖θ*‖ = {fmt(norm_star)} (median ‖θ‖ at t_grok of the chains that grokked); "
            f"η_eff·λ = η·λ/(1 − momentum) with λ = {fmt(lam)}, momentum {fmt(momentum)}."
        )
        sec.verdict = (
            f"The slope of log t_grok on log t_mem is {fmt(b)} (95 % CI {ci(b_ci)}): the interval "
            f"{_within(b_ci, 2.0)} 2 (t_grok ∝ t_mem²) and {_within(b_ci, 1.0)} 1 (t_grok ∝ "
            f"t_mem, what weight decay alone gives on a step-size ladder). The norm-decay law "
            f"needs c = {fmt(c)} ({ci(c_ci)}), "
            + ("consistent with 1" if fits.contains(c_ci, 1.0) else "not the 1 it predicts")
            + f": ‖θ‖ went from a median {fmt(float(np.nanmedian(norm_mem[keep])))} at t_mem to "
            f"{fmt(norm_star)} at t_grok; the decay time scale alone, t_grok − t_mem = "
            f"c/(η_eff·λ), fits with c = {fmt(k)} ({ci(k_ci)}); {_aic_phrase(power, decay)}, and "
            f"{_aic_phrase(power, scale)}."
        )
        panel.update(power=power, decay=decay, drive=drive, scale=scale, rate=rate)
        panels.append(panel)
        sections.append(sec)
        summary[arm] = f"b = {fmt(b)} ({ci(b_ci)})"
    verdict = " ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict)
    return ClaimResult(
        claim="tgrok_tmem2",
        title="t_grok ≈ t_mem²?",
        prediction=(
            "Kozyrev: memorization is drift (distance ∝ t) and grokking is diffusion on the "
            "zero-loss set (distance ∝ √t), so the time to grok grows as the square of the time "
            "to memorize: slope 2 of log t_grok on log t_mem. Competing law: after memorization "
            "weight decay shrinks ‖θ‖ geometrically until it reaches the generalizing norm ‖θ*‖: "
            "t_grok − t_mem = c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ) with c ≈ 1, which on a step-size "
            "ladder (t_mem ∝ 1/η) gives slope 1; beside it, the decay time scale alone, t_grok − "
            "t_mem = c/(η_eff·λ)."
        ),
        setup=[
            "SGD from `task.init` over step sizes η ∈ "
            f"{{{', '.join(fmt(s) for s in preset.tmem_steps)}}} "
            f"× {preset.seeds} seeds, everything else fixed ({_hp(preset.tmem_hparams)}, "
            f"λ = {fmt(preset.tmem_prior)}); budget {preset.tmem_budget} steps; "
            f"evaluated every {preset.tmem_eval_every} steps.",
        ],
        sections=sections,
        verdict=verdict,
        panels=panels,
        figure_caption="t_grok against t_mem (log–log); open triangles are censored chains (at "
        "their censoring time, the truth above); solid line: the fitted power law; dashed: "
        "slope 2 through the data's centre; crosses and pluses: the norm-decay and the "
        "decay-time laws' predictions per chain.",
        summary=summary,
        runs=[p.key for p in planned],
    )


def _exp_interval(interval):
    return tuple(None if v is None else math.exp(v) for v in interval)


def _hp(hparams) -> str:
    return (
        ", ".join(f"{k} = {fmt(v) if isinstance(v, float) else v}" for k, v in hparams.items())
        or "defaults"
    )


# -- drift_diffusion --------------------------------------------------------------------------
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
            out[index[row["step"]], c // replicas, c % replicas, j] = _num(row.get(f"gram_{j}"))
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


def _exponents(steps, grams, window):
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


def drift_diffusion(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for data in load(store, planned):
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
        drift, spread, fitted = _exponents(steps, grams, window)
        label = "full batch" if arm == "full" else f"minibatch ({data.result.batch_size})"
        sec = Section(f"{label}, {phase}")
        rows = []
        for which, pred in (("drift", "1 (drift)"), ("spread", "1/2 (diffusion)")):
            f = fitted[which]
            rows.append(
                [
                    "mean displacement ‖E θ − θ_start‖" if which == "drift" else "spread √tr Cov θ",
                    "–" if f is None else fmt(f.exponent),
                    "–" if f is None else ci((f.low, f.high)),
                    "–" if f is None else fmt(f.r2),
                    pred,
                ]
            )
        sec.tables.append(
            (
                f"Exponents of distance ∝ s^α over s ∈ (0, {fmt(end)}] steps ({int(window.sum())} "
                "evaluations; least squares on log–log axes; 95 % percentile bootstrap over "
                "starting points and replicas).",
                Table(["quantity", "α", "95 % interval", "R²", "predicted"], rows),
            )
        )
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
        sec.verdict = _drift_verdict(fitted, ratio, start)
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
    return ClaimResult(
        claim="drift_diffusion",
        title="Drift, then diffusion?",
        prediction=(
            "Kozyrev: before memorization the walk is a drift down the loss (distance from the "
            "start ∝ t); after it, on the zero-loss set, a diffusion (distance ∝ √t). One chain "
            "cannot tell them apart; replicas from one point with independent noise can: a "
            "drift moves their mean (exponent 1), a diffusion spreads them (exponent 1/2) "
            "while their mean stays put."
        ),
        setup=[
            f"SGLD ({_hp(preset.drift_hparams)}, λ = {fmt(preset.drift_prior)}): "
            f"{preset.drift_replicas} replicas from each of {preset.drift_groups} memorized "
            f"checkpoint(s) (bench/checkpoints.py) for {preset.drift_budget} steps, and "
            f"{preset.drift_replicas} replicas from one initialization for "
            f"{preset.drift_init_budget} steps; evaluated every {preset.eval_every} steps (every "
            f"{preset.drift_init_eval_every} from the initialization).",
            "Measured at every evaluation: the Gram matrix of the replicas' displacements from "
            "their start (bench.theory.sweeps.ReplicaProbe), from which the drift (bias-"
            "corrected ‖mean displacement‖) and the spread (√trace of the replicas' covariance) "
            "follow, and a bootstrap over replicas is exact.",
        ],
        sections=sections,
        verdict=" ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict),
        panels=panels,
        figure_caption="Drift (mean displacement, bias-corrected) and spread of the replicas "
        "against steps from their start (log–log), each arm; fitted power laws over the shaded "
        "window; grey: slopes 1 and 1/2 for reference.",
        summary=summary,
        runs=[p.key for p in planned],
    )


def _drift_verdict(fitted, ratio: float, start: str) -> str:
    d, s = fitted["drift"], fitted["spread"]
    parts = []
    if d is not None:
        parts.append(
            f"the mean's exponent is {fmt(d.exponent)} ({ci((d.low, d.high))}), which "
            f"{_within((d.low, d.high), 1.0)} 1"
        )
    else:
        parts.append("the mean did not move measurably (drift at or below the replicas' noise)")
    if s is not None:
        parts.append(
            f"the spread's is {fmt(s.exponent)} ({ci((s.low, s.high))}), which "
            f"{_within((s.low, s.high), 0.5)} 1/2"
        )
    moved = "moved further than" if ratio > 3 else "stayed within a few times"
    phase = "Before memorization" if start == "init" else "After memorization"
    return (
        f"{phase}, {'; '.join(parts)}; the mean {moved} the replicas' noise (ratio {fmt(ratio)})."
    )


# -- fraction ---------------------------------------------------------------------------------
def fraction(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for arm in dict.fromkeys(p.arm for p in planned):
        datas = load(store, [p for p in planned if p.arm == arm])
        frac, lower, upper, dropped, rows = [], [], [], 0, []
        for data in datas:
            f = data.planned.meta["fraction"]
            times = data.grok_times().subset(data.live())
            dropped += int(np.sum(~data.live()))
            frac += [f] * len(times)
            lower += list(times.lower)
            upper += list(times.upper)
            med = km_median(times) if len(times) else (None, None, None)
            rows.append(
                [
                    fmt(f),
                    str(len(data.planned.task.batch()[1])),
                    f"{times.events}/{len(times)}",
                    fmt(med[0]) if med[0] is not None else f"> {fmt(float(times.lower.max()))}",
                    f"{fmt(med[1])} – {fmt(med[2])}" if med[0] is not None else "–",
                ]
            )
        batch = datas[0].result.batch_size
        sec = Section("full batch" if arm == "full" else f"minibatch ({batch})")
        sec.tables.append(
            (
                "Per training fraction: Kaplan–Meier median t_grok in steps with its 95 % "
                "interval.",
                Table(["fraction", "training pairs", "grokked", "t_grok", "95 % interval"], rows),
            )
        )
        times = Times(np.array(lower), np.array(upper))
        f = np.array(frac)
        panel = {"arm": arm, "f": f, "times": times}
        try:
            expo = fits.censored_lognormal(
                times,
                np.column_stack([np.ones(len(f)), f]),
                ["a", "b"],
                profile=["b"],
                name="exponential",
                formula="a + b·f",
            )
            power = fits.censored_lognormal(
                times,
                np.column_stack([np.ones(len(f)), np.log(f)]),
                ["a", "k"],
                profile=["k"],
                name="power",
                formula="a + k·log f",
            )
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            sec.verdict = f"No fit ({err})."
            sections.append(sec)
            panels.append(panel)
            summary[arm] = "no fit"
            continue
        b, b_ci = expo["b"], expo.interval("b")

        def per_percent(v):
            return None if v is None else math.exp(-v / 100) - 1

        pct = per_percent(b)
        pct_ci = (per_percent(b_ci[1]), per_percent(b_ci[0]))
        ref = tuple(-100 * math.log1p(p) for p in POWER_PER_PERCENT)
        sec.tables.append(
            (
                "Fits (censored log-normal regressions; 95 % profile-likelihood intervals).",
                Table(
                    ["law", "parameter", "estimate", "95 % interval", "per −1 % of data"],
                    [
                        [
                            "exponential",
                            "b",
                            fmt(b),
                            ci(b_ci),
                            f"{_pct(pct)} ({_pct(pct_ci[0])} – {_pct(pct_ci[1])})",
                        ],
                        ["power", "k", fmt(power["k"]), ci(power.interval("k")), "–"],
                        [
                            "Power et al. (reference)",
                            "b",
                            f"{fmt(ref[1])} – {fmt(ref[0])}",
                            "–",
                            "+40 % – +50 %",
                        ],
                    ],
                ),
            )
        )
        sec.tables.append(("Model comparison on the same chains.", comparison_table([expo, power])))
        sec.notes.append(_censoring_note(times, dropped))
        overlap = _overlaps(b_ci, (ref[1], ref[0]))
        sec.verdict = (
            f"t_grok changes by {_pct(pct)} per −1 % of data (95 % CI {_pct(pct_ci[0])} to "
            f"{_pct(pct_ci[1])}), {'which overlaps' if overlap else 'which does not overlap'} "
            f"Power et al.'s +40–50 %; {_aic_phrase(expo, power)}"
            + (
                ""
                if b_ci[1] is not None and b_ci[1] < 0
                else "; the data do not show t_grok growing as the fraction shrinks"
            )
            + "."
        )
        panel.update(expo=expo, power=power)
        panels.append(panel)
        sections.append(sec)
        summary[arm] = f"{_pct(pct)} per −1 % ({_pct(pct_ci[0])} – {_pct(pct_ci[1])})"
    return ClaimResult(
        claim="fraction",
        title="Does t_grok grow exponentially as the training fraction shrinks?",
        prediction=(
            "Power et al. (2022): the steps to generalize grow steeply as the training fraction "
            "shrinks, about +40–50 % per −1 % of the data near 25–30 %, i.e. exponentially "
            "(log t linear in the fraction). Competing law: a power law (log t linear in log "
            "fraction)."
        ),
        setup=[
            f"SGD ({_hp(preset.fraction_hparams)}, λ = {fmt(preset.fraction_prior)}) from "
            f"`task.init` at training fractions {', '.join(fmt(f) for f in preset.fractions)} "
            f"(the task's split seed; one task per fraction) × {preset.seeds} seeds; budget "
            f"{preset.fraction_budget} steps; evaluated every {preset.eval_every} steps.",
        ],
        sections=sections,
        verdict=" ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict),
        panels=panels,
        figure_caption="t_grok (log axis) against the training fraction; open triangles are "
        "censored chains; solid: exponential fit; dashed: power-law fit; grey band: Power et "
        "al.'s +40–50 % per −1 % through the exponential fit's middle.",
        summary=summary,
        runs=[p.key for p in planned],
    )


def _factor(slope: float, interval, span: float):
    """The factor exp(|slope|·span) on t_grok and its interval from the slope's."""
    lo, hi = (
        (-math.inf if interval[0] is None else interval[0]),
        (math.inf if interval[1] is None else interval[1]),
    )
    ends = sorted((abs(lo), abs(hi)))
    low = 0.0 if lo <= 0 <= hi else ends[0]
    high = math.exp(ends[1] * span) if math.isfinite(ends[1]) else None
    return math.exp(abs(slope) * span), (math.exp(low * span), high)


def _median_text(median: float | None, times: Times) -> str:
    if median is not None:
        return f"{fmt(median)} steps"
    return f"above {fmt(float(times.lower.max()))} (not reached)" if len(times) else "–"


def _pct(x: float | None) -> str:
    if x is None:
        return "∞"
    return f"{100 * x:+.0f} %"


def _overlaps(a, b) -> bool:
    lo = -math.inf if a[0] is None else a[0]
    hi = math.inf if a[1] is None else a[1]
    return lo <= b[1] and b[0] <= hi


# -- eyring -----------------------------------------------------------------------------------
def eyring(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for data in load(store, planned):
        arm, sampler = data.planned.arm, data.planned.meta["sampler"]
        tau = np.array(data.planned.meta["temperature"], dtype=float)
        keep = data.live()
        times = data.grok_times().subset(keep)
        t = tau[keep]
        label = "full batch" if arm == "full" else f"minibatch ({data.result.batch_size})"
        sec = Section(f"{sampler}, {label}")
        rows, frozen, medians = [], [], {}
        for level in sorted(set(tau)):
            sub = times.subset(t == level)
            med = km_median(sub) if len(sub) else (None, None, None)
            medians[level] = med[0]
            if sub.events == 0:
                frozen.append(level)
            rows.append(
                [
                    fmt(level),
                    f"{sub.events}/{int(np.sum(tau == level))}",
                    fmt(med[0])
                    if med[0] is not None
                    else f"> {fmt(float(sub.lower.max()))}"
                    if len(sub)
                    else "–",
                    f"{fmt(med[1])} – {fmt(med[2])}" if med[0] is not None else "–",
                    fmt(1 / med[0]) if med[0] else "–",
                ]
            )
        sec.tables.append(
            (
                "Per temperature: Kaplan–Meier median t_grok (steps from the checkpoint) and the "
                "rate 1/median.",
                Table(["τ", "grokked", "t_grok", "95 % interval", "rate"], rows),
            )
        )
        panel = {"arm": arm, "sampler": sampler, "tau": t, "times": times, "rows": rows}
        scale = float(np.max(1 / t))
        try:
            arr = fits.censored_lognormal(
                times,
                np.column_stack([np.ones(len(t)), (1 / t) / scale]),
                ["a", "dF"],
                profile=["dF"],
                name="Eyring",
                formula="a + ΔF/τ",
            )
            flat = fits.censored_lognormal(
                times,
                np.ones((len(t), 1)),
                ["a"],
                name="τ-independent",
                formula="a",
            )
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            if frozen:
                sec.notes.append(
                    f"No chain escaped at τ ∈ {{{', '.join(fmt(v) for v in frozen)}}}."
                )
            sec.verdict = f"No fit ({err})."
            sections.append(sec)
            panels.append(panel)
            summary[f"{sampler}/{arm}"] = "no fit"
            continue
        dF = arr["dF"] / scale
        dF_ci = tuple(None if v is None else v / scale for v in arr.interval("dF"))
        p = fits.likelihood_ratio(flat, arr)
        sec.tables.append(
            (
                "Fits (censored log-normal regressions; 95 % profile-likelihood interval; the "
                "likelihood-ratio test of ΔF = 0).",
                Table(
                    ["law", "ΔF (units of U)", "95 % interval", "LR p (ΔF = 0)"],
                    [["Eyring", fmt(dF), ci(dF_ci), fmt(p)], ["τ-independent", "0", "–", "–"]],
                ),
            )
        )
        sec.tables.append(("Model comparison on the same chains.", comparison_table([arr, flat])))
        sec.notes.append(_censoring_note(times, int(np.sum(~keep))))
        if frozen:
            sec.notes.append(
                f"At τ ∈ {{{', '.join(fmt(v) for v in frozen)}}} no chain escaped within the "
                "budget: there τ is too small for any escape we can see (kept in the fit as "
                "censored)."
            )
        sign = (
            "positive (slower when colder, as Eyring has it)"
            if dF_ci[0] is not None and dF_ci[0] > 0
            else "negative (faster when colder: against Eyring)"
            if dF_ci[1] is not None and dF_ci[1] < 0
            else "not distinguishable from 0"
        )
        cold, hot = min(medians), max(medians)
        sec.verdict = (
            f"The median t_grok is {_median_text(medians[cold], times.subset(t == cold))} at "
            f"τ = {fmt(cold)} and {_median_text(medians[hot], times.subset(t == hot))} at "
            f"τ = {fmt(hot)}; ΔF = {fmt(dF)} (95 % CI {ci(dF_ci)}), {sign}; "
            f"{_aic_phrase(arr, flat)}"
            + (
                " (with ΔF < 0: a faster escape when colder, not an activated one)"
                if dF < 0 and arr.aic < flat.aic - 2
                else ""
            )
            + (f"; no escape at τ ≤ {fmt(max(frozen))}" if frozen else "")
            + "."
        )
        panel.update(fit=arr, flat=flat, dF=dF, scale=scale)
        panels.append(panel)
        sections.append(sec)
        summary[f"{sampler}/{arm}"] = f"ΔF = {fmt(dF)} ({ci(dF_ci)})"
    return ClaimResult(
        claim="eyring",
        title="Eyring: rate ∝ exp(−ΔF/τ)?",
        prediction=(
            "Millidge; Kozyrev: escaping the memorizing region is thermally activated over a "
            "free-energy barrier ΔF, so the rate 1/t_grok ∝ exp(−ΔF/τ): log t_grok linear in "
            "1/τ with slope ΔF > 0. Competing law: the escape is driven by weight decay and the "
            "rate does not depend on τ."
        ),
        setup=[
            f"{' and '.join(f'{s} ({_hp(h)})' for s, h in preset.eyring_samplers.items())} "
            f"from {preset.seeds} shared memorized checkpoints (bench/checkpoints.py) over "
            f"τ ∈ {{{', '.join(fmt(t) for t in preset.eyring_temperatures)}}}, λ = "
            f"{fmt(preset.eyring_prior)}; budget {preset.eyring_budget} steps; evaluated every "
            f"{preset.eval_every} steps. A temperature ladder is one job per sampler and arm.",
        ],
        sections=sections,
        verdict=" ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict),
        panels=panels,
        figure_caption="log rate (1 / Kaplan–Meier median t_grok) against 1/τ on a log axis "
        "(the Eyring line, linear in 1/τ, curves on it); open markers: "
        "no median within the budget (rate below 1/budget); lines: the Eyring fit (the rate at "
        "the fitted median) and the τ-independent fit.",
        summary=summary,
        runs=[p.key for p in planned],
    )


# -- weight_decay -----------------------------------------------------------------------------
def weight_decay(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for data in load(store, planned):
        arm = data.planned.arm
        lam = np.array(data.planned.meta["prior_precision"], dtype=float)
        tau = np.array(data.planned.meta["temperature"], dtype=float)
        keep = data.live()
        times = data.grok_times().subset(keep)
        lam_k, tau_k = lam[keep], tau[keep]
        label = "full batch" if arm == "full" else f"minibatch ({data.result.batch_size})"
        sec = Section(label)
        levels = sorted(set(tau))
        rows = []
        for lv in sorted(set(lam)):
            row = [fmt(lv)]
            for tv in levels:
                sub = times.subset((lam_k == lv) & (tau_k == tv))
                med = km_median(sub)[0] if len(sub) else None
                row.append(
                    f"{fmt(med)} ({sub.events}/{len(sub)})"
                    if med is not None
                    else f"> {fmt(float(sub.lower.max()))} ({sub.events}/{len(sub)})"
                    if len(sub)
                    else "–"
                )
            rows.append(row)
        sec.tables.append(
            (
                "Kaplan–Meier median t_grok (steps from the checkpoint; grokked/chains) per "
                "prior precision λ (rows) and temperature τ (columns).",
                Table(["λ \\ τ", *(fmt(t) for t in levels)], rows),
            )
        )
        panel = {"arm": arm, "lam": lam_k, "tau": tau_k, "times": times, "levels": levels}
        dummies = (
            np.column_stack([(tau_k == lv).astype(float) for lv in levels[1:]])
            if len(levels) > 1
            else np.zeros((len(tau_k), 0))
        )
        one = np.ones((len(lam_k), 1))
        loglam = np.log(lam_k)[:, None]
        tnames = [f"τ={fmt(lv)}" for lv in levels[1:]]
        try:
            both = fits.censored_lognormal(
                times,
                np.hstack([one, loglam, dummies]),
                ["a", "b", *tnames],
                profile=["b", *tnames],
                name="λ and τ",
                formula="a + b·log λ + γ_τ",
            )
            only_lam = fits.censored_lognormal(
                times,
                np.hstack([one, loglam]),
                ["a", "b"],
                name="λ only",
                formula="a + b·log λ",
            )
            only_tau = fits.censored_lognormal(
                times,
                np.hstack([one, dummies]),
                ["a", *tnames],
                name="τ only",
                formula="a + γ_τ",
            )
            null = fits.censored_lognormal(times, one, ["a"], name="neither", formula="a")
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            sec.verdict = f"No fit ({err})."
            sections.append(sec)
            panels.append(panel)
            summary[arm] = "no fit"
            continue
        b, b_ci = both["b"], both.interval("b")
        p_tau = fits.likelihood_ratio(only_lam, both)
        p_lam = fits.likelihood_ratio(only_tau, both)
        span = math.log(max(lam) / min(lam))
        lam_factor, lam_ci = _factor(b, b_ci, span)
        gammas = {n: (both[n], both.interval(n)) for n in tnames}
        strongest = max(gammas, key=lambda n: abs(gammas[n][0])) if gammas else None
        tau_factor, tau_ci = _factor(*gammas[strongest], 1.0) if strongest else (1.0, (1.0, 1.0))
        per_level, slopes = [], {}
        for lv in levels:
            m = tau_k == lv
            sub = times.subset(m)
            try:
                fit = fits.censored_lognormal(
                    sub,
                    np.column_stack([np.ones(int(m.sum())), np.log(lam_k[m])]),
                    ["a", "b"],
                    profile=["b"],
                )
                slopes[lv] = (fit["b"], fit.interval("b"))
                per_level.append(
                    [fmt(lv), f"{sub.events}/{len(sub)}", fmt(fit["b"]), ci(fit.interval("b"))]
                )
            except FitError as err:
                per_level.append([fmt(lv), f"{sub.events}/{len(sub)}", "–", f"no fit: {err}"])
        inter = None
        if tnames:
            try:
                inter = fits.censored_lognormal(
                    times,
                    np.hstack([one, loglam, dummies, dummies * loglam]),
                    ["a", "b", *tnames, *(f"δ{n}" for n in tnames)],
                    name="λ × τ",
                    formula="a + b_τ·log λ + γ_τ",
                )
            except FitError:
                inter = None
        sec.tables.append(
            (
                "At fixed temperature: the slope b_τ of log t_grok on log λ (t_grok ∝ λ^b_τ; the "
                "norm-decay first passage predicts −1), censored log-normal fits with 95 % "
                "profile intervals.",
                Table(["τ", "grokked", "b_τ", "95 % interval"], per_level),
            )
        )
        sec.tables.append(
            (
                "The additive fit a + b·log λ + γ_τ (censored log-normal; 95 % profile "
                "intervals) and the likelihood-ratio test of each factor given the other.",
                Table(
                    ["quantity", "estimate", "95 % interval / p"],
                    [
                        ["b (common slope on log λ)", fmt(b), ci(b_ci)],
                        *[
                            [f"γ at {n} (log t_grok vs τ = {fmt(levels[0])})", fmt(g), ci(g_ci)]
                            for n, (g, g_ci) in gammas.items()
                        ],
                        ["LR test: does τ matter, given λ?", "–", f"p = {fmt(p_tau)}"],
                        ["LR test: does λ matter, given τ?", "–", f"p = {fmt(p_lam)}"],
                        [
                            f"factor on t_grok across the λ grid (×{fmt(max(lam) / min(lam))})",
                            fmt(lam_factor),
                            ci(lam_ci),
                        ],
                        ["factor on t_grok across the τ grid", fmt(tau_factor), ci(tau_ci)],
                    ],
                ),
            )
        )
        models = [both, only_lam, only_tau, null] + ([inter] if inter is not None else [])
        sec.tables.append(("Model comparison on the same chains.", comparison_table(models)))
        sec.notes.append(_censoring_note(times, int(np.sum(~keep))))
        if tau_ci[1] is not None and lam_ci[0] > tau_ci[1]:
            lever = "λ is the stronger lever over these grids"
        elif lam_ci[1] is not None and tau_ci[0] > lam_ci[1]:
            lever = "τ is the stronger lever over these grids"
        else:
            lever = "over these grids the two levers are comparable (their intervals overlap)"
        at_zero = slopes.get(levels[0])
        sec.verdict = (
            (
                f"At τ = {fmt(levels[0])}, t_grok ∝ λ^{fmt(at_zero[0])} (95 % CI "
                f"{ci(at_zero[1])}, which {_within(at_zero[1], -1.0)} −1); "
                if at_zero
                else ""
            )
            + f"across the grids λ changes t_grok by a factor {fmt(lam_factor)} "
            f"({ci(lam_ci)}) and τ by {fmt(tau_factor)} ({ci(tau_ci)}): {lever}; both matter "
            f"(LR p for λ {fmt(p_lam)}, for τ {fmt(p_tau)})"
            + (f"; {_aic_phrase(inter, both)}" if inter is not None else "")
            + "."
        )
        panel.update(fit=both)
        panels.append(panel)
        sections.append(sec)
        summary[arm] = f"b = {fmt(b)} ({ci(b_ci)})"
    return ClaimResult(
        claim="weight_decay",
        title="Is weight decay (the prior's precision) the strongest lever?",
        prediction=(
            "Power et al. (2022) found weight decay the most effective intervention; Millidge "
            "reads it as the precision λ of a Gaussian prior. If grokking is the first passage "
            "of weight-norm decay, t_grok ∝ 1/λ (exponent −1) at fixed temperature; noise and "
            "decay are confounded in any single tuned setting, so they are crossed here."
        ),
        setup=[
            f"SGLD ({_hp(preset.decay_hparams)}) from {preset.decay_seeds} shared memorized "
            "checkpoints "
            f"over λ ∈ {{{', '.join(fmt(v) for v in preset.decay_priors)}}} × τ ∈ "
            f"{{{', '.join(fmt(v) for v in preset.decay_temperatures)}}} (τ = 0 is gradient "
            f"descent); budget {preset.decay_budget} steps; evaluated every {preset.eval_every} "
            "steps. The whole factorial is one job per arm.",
        ],
        sections=sections,
        verdict=" ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict),
        panels=panels,
        figure_caption="t_grok against λ (log–log), one colour per temperature; open triangles "
        "are censored chains; lines: the additive fit per temperature.",
        summary=summary,
        runs=[p.key for p in planned],
    )


ANALYSES = {
    "tgrok_tmem2": tgrok_tmem2,
    "drift_diffusion": drift_diffusion,
    "fraction": fraction,
    "eyring": eyring,
    "weight_decay": weight_decay,
}
