"""What every claim's analysis shares: the result records, the chains loaded from the store,
number formatting, model-comparison tables and the censoring-aware median."""

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
from bench.theory.sweeps import Planned

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


def _hp(hparams) -> str:
    return (
        ", ".join(f"{k} = {fmt(v) if isinstance(v, float) else v}" for k, v in hparams.items())
        or "defaults"
    )


def _median_text(median: float | None, times: Times) -> str:
    if median is not None:
        return f"{fmt(median)} steps"
    return f"above {fmt(float(times.lower.max()))} (not reached)" if len(times) else "–"


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
