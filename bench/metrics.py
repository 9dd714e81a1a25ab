"""Statistics of time-to-target that respect right-censoring.

A chain that has not grokked when its budget runs out is *right-censored*: we know only that its
``t_grok`` is larger than the last step run. Dropping such chains, or counting them as the budget,
biases every summary towards the samplers that fail most. Here each sampler's times are summarised
by the Kaplan–Meier estimate of the survival function ``S(t) = P(t_grok > t)``, computed by
:func:`scipy.stats.ecdf` on :class:`scipy.stats.CensoredData`:

* **median** ``t_grok``: where ``S`` falls to ½. Where ``S`` is exactly ½ over an interval, the
  midpoint of that interval (the convention of R's ``survival::quantile.survfit``, so uncensored
  data give the ordinary sample median); where ``S`` never reaches ½ the median is *not reached*
  (``None``): more than half the chains did not grok within the budget.
* **95% interval of the median** (Brookmeyer & Crowley 1982, as R's ``survfit`` reports it): the
  times where the pointwise 95% band of ``S`` (log-log transform, i.e. the exponential Greenwood
  interval of Kalbfleisch & Prentice) crosses ½. The upper end is ``None`` ("not reached", ∞)
  when the band's upper curve stays above ½ — with five uncensored chains that is always so, as
  for any distribution-free 95% interval of a median from five draws. Where the curve drops to
  0 the log-log band is undefined (0/0); there the upper curve uses the exact binomial bound
  for the chains at risk (see :func:`_fill_zero`).
* **speed-up over the baseline**: the ratio of the KM medians (baseline / sampler) in gradient
  evaluations, with a 95% percentile-bootstrap interval: chains are resampled with replacement
  within each group, 2000 times with a fixed seed, and the ratio of the resampled medians is
  recomputed; a resample whose median is not reached counts as an infinite time (ratio 0 for the
  sampler, ∞ for the baseline), so censoring is respected and never replaced by the budget.
* **restricted mean survival time** (RMST) to a horizon τ: ``∫_0^τ S(t) dt``, the expected
  ``min(T, τ)``, the mean time to the target when a chain that has not reached it by τ counts
  τ. Unlike the median it is defined when most chains never reach the target, and it weighs
  every chain, not the middle one (Royston & Parmar 2013). Its standard error is the
  Greenwood-type one of Klein & Moeschberger (2003, §4.5), its interval normal.
* **paired ratio of medians**: where chain ``i`` of two arms starts from the same checkpoint
  (the effect of one factor, everything else fixed), the ratio of the two KM medians with a
  bootstrap that resamples checkpoints, the same ones for both arms (:func:`paired_speedup`).
* **two-sample test**: the log-rank test (:func:`scipy.stats.logrank`, two-sided) of the
  sampler's times against the baseline's, which uses censored chains correctly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Two-sided confidence level of every interval reported.
CONFIDENCE = 0.95
#: Bootstrap resamples for the speed-up interval (fixed seed: the report is reproducible).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
_TOL = 1e-9


@dataclass(frozen=True)
class Survival:
    """The Kaplan–Meier estimate of ``P(T > t)`` for ``n`` chains, ``events`` of them observed.

    ``times`` are the distinct observation times (events and censorings, ascending); ``sf``,
    ``low`` and ``high`` the estimate and its pointwise band just after each of them (``S = 1``
    before ``times[0]``). ``last`` is the largest follow-up time.
    """

    n: int
    events: int
    times: np.ndarray
    sf: np.ndarray
    low: np.ndarray
    high: np.ndarray
    last: float
    median: float | None
    median_low: float | None
    median_high: float | None

    @property
    def rate(self) -> float:
        return self.events / self.n if self.n else math.nan


def kaplan_meier(
    times: Sequence[float | None], censored_at: Sequence[float], confidence: float = CONFIDENCE
) -> Survival:
    """KM estimate from per-chain times: ``times[i]`` is the event time, or ``None`` when chain
    ``i`` was censored at ``censored_at[i]`` (its last observed time)."""
    if len(times) != len(censored_at):
        raise ValueError(f"{len(times)} times but {len(censored_at)} censoring times")
    if not times:
        raise ValueError("a survival estimate needs at least one chain")
    observed = np.array([float(t) for t in times if t is not None])
    right = np.array([float(c) for t, c in zip(times, censored_at, strict=True) if t is None])
    data = stats.CensoredData(uncensored=observed, right=right)
    sf = stats.ecdf(data).sf
    x, s = sf.quantiles, sf.probabilities
    with warnings.catch_warnings():
        # The log-log band is undefined where S is 0 or 1; scipy says so and returns NaN there.
        warnings.filterwarnings("ignore", message="The confidence interval is undefined")
        band = sf.confidence_interval(confidence, method="log-log")
    low = np.where(np.isnan(band.low.probabilities), s, band.low.probabilities)
    high = _fill_zero(x, s, band.high.probabilities, observed, right, confidence)
    last = float(max(np.max(observed, initial=-math.inf), np.max(right, initial=-math.inf)))
    return Survival(
        n=len(times),
        events=len(observed),
        times=x,
        sf=s,
        low=low,
        high=high,
        last=last,
        median=crossing(x, s, last),
        median_low=crossing(x, low, last),
        median_high=crossing(x, high, last),
    )


def _fill_zero(x, s, high, observed, right, confidence: float) -> np.ndarray:
    """The upper curve where the log-log band is undefined.

    Where S = 1 (nothing has happened yet) it is 1. Where S falls to 0 (every chain still at
    risk reached the target at once, common on a coarse evaluation grid: eight chains that all
    grok at the evaluation of step 100) Greenwood's variance is 0/0. There the conditional
    survival at that time is bounded by the exact binomial (Clopper–Pearson) bound for 0
    survivors out of the ``n`` at risk, ``1 − (α/2)^(1/n)``, times the upper curve just before:
    eight chains give 0.37, so the median is known to be reached there; a single chain gives
    0.975, which leaves the interval open.
    """
    high = np.array(high, dtype=float)
    alpha = 1.0 - confidence
    times = np.concatenate([observed, right])
    previous = 1.0
    for i in range(len(x)):
        if np.isnan(high[i]):
            if s[i] > 0:
                high[i] = s[i]  # S = 1: no information yet
            else:
                at_risk = int(np.sum(times >= x[i]))
                high[i] = previous * (1.0 - (alpha / 2.0) ** (1.0 / at_risk))
        previous = high[i]
    return high


def crossing(x: np.ndarray, y: np.ndarray, last: float, p: float = 0.5) -> float | None:
    """Where the step curve ``y`` (its value just after each ``x``; 1 before ``x[0]``) falls to
    ``p``; the midpoint of a flat exactly at ``p`` (R's convention); ``None`` if never."""
    below = np.flatnonzero(y <= p + _TOL)  # NaN compares False: an undefined point never counts
    if below.size == 0:
        return None
    i = int(below[0])
    if abs(y[i] - p) > _TOL:
        return float(x[i])
    after = np.flatnonzero(y < p - _TOL)
    end = float(x[int(after[0])]) if after.size else last
    return (float(x[i]) + end) / 2.0


def median_time(times: Sequence[float | None], censored_at: Sequence[float]) -> float | None:
    """The KM median alone (no interval): cheap enough for the bootstrap and for tuning."""
    return kaplan_meier(times, censored_at).median if times else None


def km_median_of_arrays(events: np.ndarray, observed: np.ndarray) -> float:
    """KM median of one bootstrap resample (``inf`` when not reached), without the band: the
    product-limit estimate walked over the distinct event times in numpy, the same number as
    :func:`kaplan_meier`'s median (tested) at a fraction of scipy's per-call cost."""
    if not observed.any():
        return math.inf
    order = np.argsort(events, kind="stable")
    times, hits = events[order], observed[order]
    distinct = np.unique(times[hits])
    at_risk = len(times) - np.searchsorted(times, distinct, side="left")
    deaths = np.array([np.count_nonzero(hits & (times == t)) for t in distinct])
    sf = np.cumprod(1.0 - deaths / at_risk)
    value = crossing(distinct, sf, float(times[-1]))
    return math.inf if value is None else value


@dataclass(frozen=True)
class RestrictedMean:
    """The restricted mean ``∫_0^horizon S(t) dt`` with its standard error and a normal
    interval (clipped to ``[0, horizon]``, where the mean lies by definition)."""

    value: float
    se: float
    low: float
    high: float
    horizon: float


def rmst(
    times: Sequence[float | None],
    censored_at: Sequence[float],
    horizon: float,
    confidence: float = CONFIDENCE,
) -> RestrictedMean:
    """Restricted mean survival time of the Kaplan–Meier curve of ``(times, censored_at)`` (as
    for :func:`kaplan_meier`) up to ``horizon``, Klein & Moeschberger (2003) §4.5::

        μ_τ    = ∫_0^τ S(t) dt
        Var μ_τ = Σ_{t_i ≤ τ} A_i² · d_i / (Y_i (Y_i − d_i)),   A_i = ∫_{t_i}^τ S(t) dt

    over the distinct event times ``t_i`` with ``d_i`` events among ``Y_i`` chains at risk (an
    event time where every chain at risk reaches the target adds nothing: S is 0 after it, so
    ``A_i = 0``). Uncensored, ``μ_τ`` is the mean of ``min(t, τ)``.

    **The horizon** ``τ`` is in the units of the times (gradient evaluations on the board): the
    mean is restricted to ``[0, τ]`` because nothing is observed past the budget. Rows are
    comparable only at the same ``τ``: use one horizon for all of them, the budget of the run
    (the smallest, if they differ). ``τ`` may not pass the last follow-up time while the curve
    is still above 0 (the curve is unknown there): a :class:`ValueError`.
    """
    if not horizon > 0 or not math.isfinite(horizon):
        raise ValueError(
            f"the horizon of a restricted mean must be a finite time > 0, got {horizon}"
        )
    survival = kaplan_meier(times, censored_at, confidence)
    if horizon > survival.last and survival.sf[-1] > 0:
        raise ValueError(
            f"horizon {horizon} lies past the last follow-up time {survival.last} while the "
            "survival curve is still above 0: the curve is unknown there; take a horizon no "
            "later than the budget"
        )
    # the step curve on [0, τ]: S = 1 up to the first time, sf[i] from times[i] to times[i+1]
    edges = np.concatenate([[0.0], np.minimum(survival.times, horizon), [horizon]])
    levels = np.concatenate([[1.0], survival.sf])
    areas = np.diff(edges) * levels  # area of each flat piece within [0, τ]
    value = float(areas.sum())
    # A_i = ∫_{t_i}^τ S: the areas from the piece that starts at t_i to the end
    tail = np.cumsum(areas[::-1])[::-1][1:]  # tail[i] = ∫_{times[i]}^τ S
    events, observed = _arrays(times, censored_at)
    variance = 0.0
    for i, t in enumerate(survival.times):
        deaths = int(np.count_nonzero(observed & (events == t)))
        at_risk = int(np.count_nonzero(events >= t))
        if t > horizon or deaths == 0 or deaths == at_risk:
            continue
        variance += tail[i] ** 2 * deaths / (at_risk * (at_risk - deaths))
    se = math.sqrt(variance)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    low, high = max(0.0, value - z * se), min(float(horizon), value + z * se)
    return RestrictedMean(value, se, low, high, float(horizon))


@dataclass(frozen=True)
class Ratio:
    """``baseline median / sampler median`` with its bootstrap interval; ``None`` = undefined
    (both medians not reached), ``math.inf`` = the sampler's median reached, the baseline's not."""

    value: float | None
    low: float | None
    high: float | None


def speedup(
    sampler: tuple[Sequence[float | None], Sequence[float]],
    baseline: tuple[Sequence[float | None], Sequence[float]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Ratio:
    """Speed-up of ``sampler`` over ``baseline``: each is ``(times, censored_at)`` as for
    :func:`kaplan_meier`. See the module docstring for the interval."""
    a_events, a_obs = _arrays(*sampler)
    b_events, b_obs = _arrays(*baseline)

    def independent(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        ia = rng.integers(0, len(a_events), len(a_events))
        ib = rng.integers(0, len(b_events), len(b_events))
        return ia, ib

    return _bootstrap_ratio(
        (a_events, a_obs), (b_events, b_obs), independent, resamples, seed, confidence
    )


def paired_speedup(
    a_times: Sequence[float | None],
    a_cens: Sequence[float],
    b_times: Sequence[float | None],
    b_cens: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Ratio:
    """The effect of one factor, paired by checkpoint: ``median(b) / median(a)``, arm ``a``
    *with* the factor and arm ``b`` *without* it (its twin: the same sampler, settings and
    checkpoints, the factor removed). **A ratio > 1 means the factor speeds the target up**
    (``b`` takes longer), < 1 that it slows it down; the direction of :func:`speedup` with ``a``
    as the sampler and ``b`` as the baseline.

    Chain ``i`` of ``a`` and chain ``i`` of ``b`` start from the same checkpoint (the same
    fresh seed); each arm is ``(times, censored_at)`` as for :func:`kaplan_meier`. The point
    is the ratio of the two KM medians; its interval a paired percentile bootstrap: the
    checkpoints are resampled with replacement, the *same* indices for both arms, so that what
    a checkpoint makes easy or hard for both arms cancels in the ratio rather than widening it
    (fixed seed, :data:`BOOTSTRAP_RESAMPLES` resamples). A median not reached counts as an
    infinite time, as in :func:`speedup`: the ratio is ``math.inf`` when only ``a`` reaches
    its median, 0 when only ``b`` does, ``None`` when neither does.
    """
    if len(a_times) != len(b_times):
        raise ValueError(
            f"{len(a_times)} chains with the factor and {len(b_times)} without: paired by "
            "checkpoint, the arms need one chain each per checkpoint"
        )
    if not a_times:
        raise ValueError("a paired ratio needs at least one checkpoint")
    a_events, a_obs = _arrays(a_times, a_cens)
    b_events, b_obs = _arrays(b_times, b_cens)

    def paired(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        i = rng.integers(0, len(a_events), len(a_events))
        return i, i

    return _bootstrap_ratio(
        (a_events, a_obs), (b_events, b_obs), paired, resamples, seed, confidence
    )


def _bootstrap_ratio(
    sampler: tuple[np.ndarray, np.ndarray],
    baseline: tuple[np.ndarray, np.ndarray],
    draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
    resamples: int,
    seed: int,
    confidence: float,
) -> Ratio:
    """``median(baseline) / median(sampler)`` with a percentile-bootstrap interval; ``draw``
    gives each resample's chain indices of the two groups (independent, or paired)."""
    (a_events, a_obs), (b_events, b_obs) = sampler, baseline
    point = _ratio(km_median_of_arrays(b_events, b_obs), km_median_of_arrays(a_events, a_obs))
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    for r in range(resamples):
        ia, ib = draw(rng)
        value = _ratio(
            km_median_of_arrays(b_events[ib], b_obs[ib]),
            km_median_of_arrays(a_events[ia], a_obs[ia]),
        )
        ratios[r] = math.nan if value is None else value
    ratios = ratios[~np.isnan(ratios)]
    if ratios.size == 0:
        return Ratio(point, None, None)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [alpha, 1.0 - alpha], method="inverted_cdf")
    return Ratio(point, float(low), float(high))


def _ratio(baseline: float, sampler: float) -> float | None:
    if math.isinf(baseline) and math.isinf(sampler):
        return None
    if math.isinf(sampler):
        return 0.0
    if math.isinf(baseline):
        return math.inf
    return baseline / sampler


def _arrays(times: Sequence[float | None], censored_at: Sequence[float]):
    events = np.array(
        [float(c) if t is None else float(t) for t, c in zip(times, censored_at, strict=True)]
    )
    observed = np.array([t is not None for t in times], dtype=bool)
    return events, observed


def logrank_p(
    sampler: tuple[Sequence[float | None], Sequence[float]],
    baseline: tuple[Sequence[float | None], Sequence[float]],
) -> float | None:
    """Two-sided log-rank p-value; ``None`` when no chain in either group reached the target
    (the test has nothing to compare)."""
    a_events, a_obs = _arrays(*sampler)
    b_events, b_obs = _arrays(*baseline)
    if not (a_obs.any() or b_obs.any()):
        return None
    a = stats.CensoredData(uncensored=a_events[a_obs], right=a_events[~a_obs])
    b = stats.CensoredData(uncensored=b_events[b_obs], right=b_events[~b_obs])
    return float(stats.logrank(a, b).pvalue)
