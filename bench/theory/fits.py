"""The fits behind the claims: censored regressions of times, power laws, model comparisons.

Censored log-normal regressions of a time to target, power laws of a displacement, and the
model comparisons between competing laws.

**Times are intervals.** A chain's time to a target is known only to the evaluation grid and
only when it was reached: an observed ``t`` evaluated every ``e`` steps lies in ``(t − e, t]``;
a chain that did not reach it within its run lies in ``(c, ∞)`` (right-censored at ``c``).
:class:`Times` holds such intervals, and every regression here maximizes the likelihood of the
intervals themselves (Klein & Moeschberger, *Survival Analysis*, 2003, §3.5), so a censored
time is never fitted as if it were observed and never replaced by the budget.

**The regression.** :class:`CensoredLogNormal` is the accelerated-failure-time model with
log-normal errors, ``log T = μ(x; β) + σ·ε``, ``ε ~ N(0, 1)`` (Kalbfleisch & Prentice, *The
Statistical Analysis of Failure Time Data*, 2002, §2.2.3), for a linear ``μ = Xβ`` or any
smooth mean function. It is a :class:`statsmodels.base.model.GenericLikelihoodModel`:
statsmodels maximizes the likelihood (scipy's BFGS, then Nelder–Mead where BFGS stops short)
and gives the Hessian's standard errors; this module writes down only the likelihood.

**Intervals** of a fitted parameter are profile-likelihood intervals (Venzon & Moolgavkar,
*Applied Statistics* 37, 1988): the values ``v`` where ``2·(ℓ̂ − max ℓ | β_j = v)`` reaches the
χ²₁ quantile, found with :func:`scipy.optimize.brentq`, each profile point refitted by
statsmodels. An end is ``None`` (unbounded) where the profile never climbs that high within
a wide search, which is what the data say when a slope is not identified.

**Model comparison** on the same observations: Akaike's information criterion ``AIC = 2k −
2ℓ̂`` (Burnham & Anderson, *Model Selection and Multimodel Inference*, 2002), its
small-sample form AICc, Akaike weights, and for nested models the likelihood-ratio test.

**Power laws of a displacement** (:func:`power_law`) are least-squares lines on log–log axes
fitted by :func:`scipy.optimize.curve_fit`, with percentile-bootstrap intervals supplied by
the caller's resampling (points along one trajectory are correlated, so curve_fit's own
covariance would be too narrow).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

#: Two-sided level of every interval.
CONFIDENCE = 0.95
#: The profile-likelihood threshold: the χ²₁ quantile at CONFIDENCE.
PROFILE_DROP = float(stats.chi2.ppf(CONFIDENCE, 1))
#: Percentile-bootstrap resamples and their fixed seed (the reports are reproducible).
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


class FitError(ValueError):
    """Too few observed times, or a likelihood that statsmodels could not maximize."""


# -- censored times --------------------------------------------------------------------------
@dataclass(frozen=True)
class Times:
    """Positive times known as intervals ``(lower, upper]``: ``lower == upper`` is exact,
    ``upper = inf`` is right-censored at ``lower``, ``lower = 0`` is left-open."""

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lo = np.asarray(self.lower, dtype=float)
        hi = np.asarray(self.upper, dtype=float)
        if lo.shape != hi.shape or lo.ndim != 1:
            raise ValueError("lower and upper must be 1-d arrays of one length")
        if np.any(lo < 0) or np.any(hi < lo) or np.any(hi <= 0) or np.any(np.isnan(lo + hi)):
            raise ValueError("every time interval needs 0 <= lower <= upper, upper > 0")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @classmethod
    def from_grid(
        cls,
        times: Sequence[float | None],
        censored_at: Sequence[float],
        resolution: float | Sequence[float] = 0.0,
    ) -> Times:
        """``times[i]`` observed on a grid of ``resolution`` steps (the truth in ``(t − e, t]``),
        or ``None``: not reached, right-censored at ``censored_at[i]``."""
        n = len(times)
        res = np.broadcast_to(np.asarray(resolution, dtype=float), (n,))
        lower, upper = np.empty(n), np.empty(n)
        for i, (t, c) in enumerate(zip(times, censored_at, strict=True)):
            if t is None:
                lower[i], upper[i] = float(c), math.inf
            else:
                lower[i], upper[i] = max(float(t) - res[i], 0.0), float(t)
        return cls(lower, upper)

    def __len__(self) -> int:
        return len(self.lower)

    @property
    def observed(self) -> np.ndarray:
        """Reached (exact or within a grid interval), as opposed to right-censored."""
        return np.isfinite(self.upper)

    @property
    def events(self) -> int:
        return int(self.observed.sum())

    def subset(self, mask: np.ndarray) -> Times:
        return Times(self.lower[mask], self.upper[mask])

    def point(self) -> np.ndarray:
        """A plotting position: the geometric middle of an observed interval, the censoring
        time of a censored one (draw it as censored)."""
        lo, hi = self.lower, self.upper
        mid = np.where(lo > 0, np.sqrt(np.maximum(lo, 1e-300) * hi), hi)
        return np.where(np.isfinite(hi), mid, lo)


def interval_loglik(times: Times, mu: np.ndarray, sigma: float) -> np.ndarray:
    """Per observation: log P(T in its interval) for log T ~ N(mu, sigma²); the log density
    (on the time scale) for an exact time."""
    lo, hi = times.lower, times.upper
    exact = lo == hi
    with np.errstate(divide="ignore"):
        z_lo = np.where(lo > 0, (np.log(np.where(lo > 0, lo, 1.0)) - mu) / sigma, -np.inf)
        z_hi = np.where(
            np.isfinite(hi), (np.log(np.where(np.isfinite(hi), hi, 1.0)) - mu) / sigma, np.inf
        )
    out = np.empty_like(mu, dtype=float)
    if exact.any():
        t = hi[exact]
        out[exact] = stats.norm.logpdf(z_hi[exact]) - math.log(sigma) - np.log(t)
    inner = ~exact
    if inner.any():
        a, b = z_lo[inner], z_hi[inner]
        # log(Φ(b) − Φ(a)), stable in both tails: on the upper side as log(S(a) − S(b)).
        upper_side = a > 0
        la = np.where(upper_side, special.log_ndtr(-a), special.log_ndtr(a))
        lb = np.where(upper_side, special.log_ndtr(-b), special.log_ndtr(b))
        big, small = np.where(upper_side, la, lb), np.where(upper_side, lb, la)
        with np.errstate(divide="ignore"):
            out[inner] = big + np.log1p(-np.exp(np.minimum(small - big, 0.0)))
    return out


# -- the censored log-normal regression ------------------------------------------------------
def _linear(beta: np.ndarray, exog: np.ndarray) -> np.ndarray:
    return exog @ beta


def _model_class():
    from statsmodels.base.model import GenericLikelihoodModel

    class _Censored(GenericLikelihoodModel):
        """log T ~ N(mean(β, exog), exp(log_sigma)²), observations as intervals of T; the
        parameters are β then log_sigma (their count need not match exog's columns)."""

        def __init__(self, times: Times, exog: np.ndarray, mean):
            self.times = times
            self.mean = mean
            super().__init__(times.point(), exog, hasconst=False)

        def loglikeobs(self, params):
            params = np.asarray(params, dtype=float)
            mu = np.asarray(self.mean(params[:-1], self.exog), dtype=float)
            sigma = math.exp(min(max(params[-1], -30.0), 30.0))
            return interval_loglik(self.times, mu, sigma)

    return _Censored


@dataclass
class Fit:
    """A fitted censored log-normal regression."""

    name: str
    names: list[str]  # mean parameters, then log_sigma
    params: np.ndarray
    bse: np.ndarray
    loglik: float
    n: int
    events: int
    intervals: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    formula: str = ""

    @property
    def k(self) -> int:
        return len(self.params)

    @property
    def aic(self) -> float:
        return 2 * self.k - 2 * self.loglik

    @property
    def aicc(self) -> float:
        """AIC with the small-sample correction (infinite when n <= k + 1)."""
        d = self.n - self.k - 1
        return self.aic + (2 * self.k * (self.k + 1) / d if d > 0 else math.inf)

    @property
    def sigma(self) -> float:
        return math.exp(self.params[-1])

    def __getitem__(self, name: str) -> float:
        return float(self.params[self.names.index(name)])

    def interval(self, name: str) -> tuple[float | None, float | None]:
        return self.intervals[name]


def censored_lognormal(
    times: Times,
    exog: np.ndarray,
    names: Sequence[str],
    *,
    mean: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    start: Sequence[float] | None = None,
    profile: Sequence[str] = (),
    name: str = "",
    formula: str = "",
) -> Fit:
    """Maximum-likelihood fit of ``log T = mean(β, exog) + σ·ε`` (``mean`` defaults to
    ``exog @ β``) to interval/right-censored ``times``; profile-likelihood intervals for the
    parameters named in ``profile``. Raises :class:`FitError` with fewer than two observed
    times, or fewer observations than parameters."""
    exog = np.asarray(exog, dtype=float)
    if exog.ndim == 1:
        exog = exog[:, None]
    names = list(names)
    mean = mean or _linear
    if times.events < 2:
        raise FitError(f"{times.events} observed time(s): a fit needs at least two")
    if len(times) <= len(names):
        raise FitError(f"{len(times)} observations for {len(names) + 1} parameters")
    if start is None:
        start = _start(times, exog, mean, len(names))
    params, loglik, bse = _maximize(times, exog, mean, names, np.asarray(start, dtype=float))
    fit = Fit(
        name=name,
        names=[*names, "log_sigma"],
        params=params,
        bse=bse,
        loglik=loglik,
        n=len(times),
        events=times.events,
        formula=formula,
    )
    for key in profile:
        fit.intervals[key] = profile_interval(times, exog, mean, names, fit, key)
    return fit


def _start(times: Times, exog, mean, k: int) -> np.ndarray:
    """Least squares on the log plotting positions (linear mean), else zeros: only a start."""
    y = np.log(times.point())
    beta = np.zeros(k)
    if mean is _linear:
        beta = np.linalg.lstsq(exog, y, rcond=None)[0]
        resid = y - exog @ beta
    else:
        resid = y - np.mean(y)
    spread = float(np.std(resid)) if len(y) > 1 else 1.0
    return np.array([*beta, math.log(max(spread, 0.05))])


def _maximize(times, exog, mean, names, start):
    del names  # the parameters are positional; names are the caller's
    best = None
    with warnings.catch_warnings():
        # Convergence and Hessian-inversion warnings are judged here, by the result.
        warnings.simplefilter("ignore")
        model = _model_class()(times, exog, mean)
        for method, maxiter in (("bfgs", 2000), ("nm", 20000), ("bfgs", 2000)):
            s = start if best is None else best.params
            try:
                res = model.fit(start_params=s, method=method, maxiter=maxiter, disp=0)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                continue
            if not np.isfinite(res.llf):
                continue
            if best is None or res.llf > best.llf + 1e-9:
                best = res
        if best is None:
            raise FitError("statsmodels could not maximize the censored likelihood")
        try:
            bse = np.asarray(best.bse, dtype=float)
        except (np.linalg.LinAlgError, ValueError):
            bse = np.full(len(best.params), math.nan)
    return np.asarray(best.params, dtype=float), float(best.llf), bse


def _profile_loglik(times, exog, mean, names, fit: Fit, j: int, value: float) -> float:
    """max ℓ with mean parameter ``j`` held at ``value`` (the others refitted)."""

    def held(beta, x):
        full = np.insert(beta, j, value)
        return mean(full, x)

    rest = [n for i, n in enumerate(names) if i != j]
    start = np.delete(fit.params, j)
    try:
        _, loglik, _ = _maximize(times, exog, held, rest, start)
    except FitError:
        return -math.inf
    return loglik


def profile_interval(
    times: Times, exog, mean, names: Sequence[str], fit: Fit, name: str
) -> tuple[float | None, float | None]:
    """The profile-likelihood interval of mean parameter ``name`` (``None``: unbounded)."""
    names = list(names)
    j = names.index(name)
    best = fit.params[j]
    scale = fit.bse[j] if np.isfinite(fit.bse[j]) and fit.bse[j] > 0 else max(abs(best), 1.0)

    def excess(v: float) -> float:
        return 2 * (fit.loglik - _profile_loglik(times, exog, mean, names, fit, j, v)) - (
            PROFILE_DROP
        )

    ends: list[float | None] = []
    for sign in (-1.0, 1.0):
        inner, step, found = best, scale, None
        for _ in range(12):  # out to ~2^12 standard errors
            outer = best + sign * step
            if excess(outer) > 0:
                found = outer
                break
            inner, step = outer, step * 2
        if found is None:
            ends.append(None)
            continue
        lo, hi = sorted((inner, found))
        ends.append(float(optimize.brentq(excess, lo, hi, xtol=1e-4 * scale)))
    return ends[0], ends[1]


def likelihood_ratio(small: Fit, big: Fit) -> float:
    """p-value of the likelihood-ratio test of nested ``small`` within ``big``."""
    df = big.k - small.k
    stat = max(2 * (big.loglik - small.loglik), 0.0)
    return float(stats.chi2.sf(stat, df)) if df > 0 else math.nan


def akaike_weights(fits: Sequence[Fit]) -> list[float]:
    """Akaike weights of fits on the same observations."""
    aic = np.array([f.aic for f in fits])
    rel = np.exp(-0.5 * (aic - aic.min()))
    return list(rel / rel.sum())


# -- power laws of a displacement ------------------------------------------------------------
@dataclass(frozen=True)
class PowerLaw:
    """``y = a·x^exponent`` fitted on log–log axes, with a percentile-bootstrap interval."""

    exponent: float
    prefactor: float
    low: float | None
    high: float | None
    points: int
    r2: float

    def __call__(self, x):
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent


def _line(x, intercept, slope):
    return intercept + slope * x


def log_log_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, R²) of the least-squares line of log y on log x (scipy's curve_fit);
    points with y <= 0 are left out."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    if keep.sum() < 3:
        raise FitError(f"{int(keep.sum())} positive point(s): a power law needs at least three")
    lx, ly = np.log(x[keep]), np.log(y[keep])
    (intercept, slope), _ = optimize.curve_fit(_line, lx, ly, p0=(float(ly.mean()), 1.0))
    resid = ly - _line(lx, intercept, slope)
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / total if total > 0 else math.nan
    return float(slope), float(intercept), r2


def power_law(
    x: np.ndarray,
    y: np.ndarray,
    resample: Callable[[np.random.Generator], np.ndarray] | None = None,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PowerLaw:
    """Fit ``y ∝ x^α`` on log–log axes; ``resample(rng)`` returns a bootstrap replicate of
    ``y`` (at the same ``x``) for the percentile interval of α (``None``: no interval)."""
    slope, intercept, r2 = log_log_slope(x, y)
    low = high = None
    if resample is not None:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(resamples):
            try:
                draws.append(log_log_slope(x, resample(rng))[0])
            except (FitError, RuntimeError):
                continue
        if len(draws) >= resamples // 2:
            alpha = 1 - CONFIDENCE
            low, high = (float(q) for q in np.quantile(draws, [alpha / 2, 1 - alpha / 2]))
    return PowerLaw(slope, math.exp(intercept), low, high, int(np.sum(np.asarray(y) > 0)), r2)


def contains(interval: tuple[float | None, float | None], value: float) -> bool:
    lo, hi = interval
    return (lo is None or lo <= value) and (hi is None or value <= hi)
