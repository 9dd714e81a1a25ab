"""The wording and tables every claim's page shares: numbers, intervals, model comparisons.

Also the censoring notes and the censoring-aware (Kaplan–Meier) median.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.metrics import kaplan_meier
from bench.theory import fits
from bench.theory.claims.base import Table
from bench.theory.fits import Fit, Times


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


def within(interval, value: float) -> str:
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


def aic_phrase(a: Fit, b: Fit) -> str:
    """Which of two laws AIC prefers, in words, on the usual scale (Burnham & Anderson: ΔAIC
    < 2 is no preference)."""
    d = b.aic - a.aic
    if abs(d) < 2:
        return f"AIC does not separate the {a.name} and the {b.name} law (ΔAIC {abs(d):.2f} < 2)"
    win, lose = (a, b) if d > 0 else (b, a)
    return f"AIC prefers the {win.name} law over the {lose.name} law by {abs(d):.1f}"


def censoring_note(times: Times, dropped: int = 0) -> str:
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


def hparams_text(hparams: Mapping[str, Any]) -> str:
    return (
        ", ".join(f"{k} = {fmt(v) if isinstance(v, float) else v}" for k, v in hparams.items())
        or "defaults"
    )


def median_text(median: float | None, times: Times) -> str:
    if median is not None:
        return f"{fmt(median)} steps"
    return f"above {fmt(float(times.lower.max()))} (not reached)" if len(times) else "–"


def factor(slope: float, interval, span: float):
    """The factor exp(|slope|·span) on t_grok and its interval from the slope's."""
    lo, hi = (
        (-math.inf if interval[0] is None else interval[0]),
        (math.inf if interval[1] is None else interval[1]),
    )
    ends = sorted((abs(lo), abs(hi)))
    low = 0.0 if lo <= 0 <= hi else ends[0]
    high = math.exp(ends[1] * span) if math.isfinite(ends[1]) else None
    return math.exp(abs(slope) * span), (math.exp(low * span), high)


def joined_verdict(sections) -> str:
    """The page's verdict: each section's, after its title in bold."""
    return " ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict)
