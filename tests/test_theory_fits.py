"""bench.theory's fits recover known parameters from synthetic data, censored points included,
within their intervals; a censored time is never fitted as observed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bench.theory import fits
from bench.theory.claims import drift_diffusion
from bench.theory.fits import Times


def _grid(t: np.ndarray, grid: float, censor: float | np.ndarray) -> Times:
    """Times observed on a grid of ``grid`` steps, right-censored past ``censor``."""
    c = np.broadcast_to(np.asarray(censor, dtype=float), t.shape)
    obs = [
        None if ti > ci else float(math.ceil(ti / grid) * grid) for ti, ci in zip(t, c, strict=True)
    ]
    return Times.from_grid(obs, list(c), grid)


def test_times_are_intervals_on_the_grid_and_censored_ones_open():
    times = Times.from_grid([100, None, 30], [500, 400, 500], 10)
    assert times.lower.tolist() == [90, 400, 20]
    assert times.upper.tolist() == [100, math.inf, 30]
    assert times.events == 2 and times.observed.tolist() == [True, False, True]
    with pytest.raises(ValueError):
        Times(np.array([5.0]), np.array([4.0]))


def test_a_censored_time_contributes_its_survival_not_a_density():
    mu, sigma = np.array([math.log(100.0)]), 0.5
    right = fits.interval_loglik(Times(np.array([200.0]), np.array([math.inf])), mu, sigma)
    assert right[0] == pytest.approx(stats.norm.logsf((math.log(200) - mu[0]) / sigma))
    inside = fits.interval_loglik(Times(np.array([90.0]), np.array([100.0])), mu, sigma)
    z = (np.log([90.0, 100.0]) - mu[0]) / sigma
    assert inside[0] == pytest.approx(math.log(stats.norm.cdf(z[1]) - stats.norm.cdf(z[0])))
    far = fits.interval_loglik(Times(np.array([1e9]), np.array([2e9])), mu, sigma)
    assert np.isfinite(far[0])  # the far upper tail, computed stably


def test_censored_power_law_recovers_the_slope_and_the_naive_fit_would_not():
    rng = np.random.default_rng(3)
    n = 60
    x = np.exp(rng.uniform(math.log(20), math.log(200), n))
    t = np.exp(0.5 + 2.0 * np.log(x) + 0.3 * rng.standard_normal(n))
    times = _grid(t, 10, 20_000.0)
    assert 10 <= n - times.events <= 30  # a good share is censored
    exog = np.column_stack([np.ones(n), np.log(x)])
    fit = fits.censored_lognormal(times, exog, ["a", "b"], profile=["b"])
    lo, hi = fit.interval("b")
    assert lo < 2.0 < hi and hi - lo < 0.5
    assert abs(fit["a"] - 0.5) < 3 * fit.bse[0]
    assert fit.sigma == pytest.approx(0.3, rel=0.35)
    # the censored chains read as if they had grokked at the censoring time: biased low
    naive = Times(times.lower, np.where(times.observed, times.upper, times.lower))
    biased = fits.censored_lognormal(naive, exog, ["a", "b"], profile=["b"])
    assert biased.interval("b")[1] < 2.0


def test_nonlinear_decay_law_recovers_its_constant():
    rng = np.random.default_rng(4)
    n = 30
    tmem = rng.uniform(50, 250, n)
    drive = rng.uniform(2_000, 8_000, n)  # log(‖θ_mem‖/‖θ*‖) / (η·λ)
    t = (tmem + 0.7 * drive) * np.exp(0.1 * rng.standard_normal(n))
    times = _grid(t, 10, 1e9)

    def mean(beta, exog):
        return np.log(tmem + math.exp(beta[0]) * drive)

    fit = fits.censored_lognormal(
        times, np.ones((n, 1)), ["log_c"], mean=mean, start=[0.0, 0.0], profile=["log_c"]
    )
    lo, hi = fit.interval("log_c")
    assert lo < math.log(0.7) < hi


def test_eyring_slope_with_the_coldest_chains_censored_and_the_flat_law_rejected():
    rng = np.random.default_rng(5)
    tau = np.repeat([1.0, 0.7, 0.5, 0.35, 0.25], 6)
    t = np.exp(3.0 + 1.5 / tau + 0.25 * rng.standard_normal(len(tau)))
    times = _grid(t, 5, 3_000.0)
    assert times.events < len(tau)
    x = np.column_stack([np.ones(len(tau)), 1 / tau])
    arr = fits.censored_lognormal(times, x, ["a", "dF"], profile=["dF"], name="Eyring")
    flat = fits.censored_lognormal(times, x[:, :1], ["a"], name="flat")
    assert fits.contains(arr.interval("dF"), 1.5)
    assert fits.likelihood_ratio(flat, arr) < 1e-6
    assert arr.aic < flat.aic
    weights = fits.akaike_weights([arr, flat])
    assert weights[0] > 0.99 and sum(weights) == pytest.approx(1.0)


def test_aic_picks_the_exponential_law_when_the_data_are_exponential():
    rng = np.random.default_rng(6)
    f = np.repeat([0.3, 0.35, 0.4, 0.5, 0.6], 4)
    t = np.exp(9.0 - 8.0 * f + 0.1 * rng.standard_normal(len(f)))
    times = _grid(t, 10, 3_000.0)
    expo = fits.censored_lognormal(
        times, np.column_stack([np.ones(len(f)), f]), ["a", "b"], profile=["b"]
    )
    power = fits.censored_lognormal(
        times, np.column_stack([np.ones(len(f)), np.log(f)]), ["a", "k"]
    )
    assert fits.contains(expo.interval("b"), -8.0)
    assert expo.aic < power.aic


def test_too_few_observed_times_is_refused():
    times = Times(np.array([10.0, 10.0, 10.0]), np.array([math.inf, math.inf, 20.0]))
    with pytest.raises(fits.FitError, match="at least two"):
        fits.censored_lognormal(times, np.ones((3, 1)), ["a"])


def test_power_law_exponent_with_a_bootstrap_interval():
    rng = np.random.default_rng(7)
    x = np.arange(1, 41, dtype=float)
    noise = rng.lognormal(0.0, 0.05, (200, len(x)))

    def draw(r):
        return 3.0 * x**0.5 * noise[r.integers(0, 200)]

    law = fits.power_law(x, 3.0 * x**0.5 * noise[0], draw, resamples=200)
    assert law.exponent == pytest.approx(0.5, abs=0.05)
    assert law.low < 0.5 < law.high
    assert law(4.0) == pytest.approx(law.prefactor * 4.0**law.exponent)


def _walks(rng, replicas, groups, steps, dim, drift, noise):
    """Gram matrices (T, G, R, R) of R random walks per group with a common drift."""
    v = rng.standard_normal(dim)
    v *= drift / np.linalg.norm(v)
    inc = noise * rng.standard_normal((groups, replicas, steps, dim))
    d = np.cumsum(inc, axis=2) + v * np.arange(1, steps + 1)[None, None, :, None]
    return np.einsum("grtd,gstd->tgrs", d, d)


def test_replica_moments_separate_drift_from_diffusion():
    rng = np.random.default_rng(8)
    steps = np.arange(1, 61, dtype=float)
    window = np.ones(len(steps), dtype=bool)
    # pure diffusion: spread ∝ √s, and the mean does not move beyond its own noise
    grams = _walks(rng, 8, 3, 60, 400, drift=0.0, noise=0.1)
    drift, spread, fitted = drift_diffusion.exponents(steps, grams, window)
    s = fitted["spread"]
    assert s.low < 0.5 < s.high and abs(s.exponent - 0.5) < 0.05
    assert np.all(drift[10:] < 0.5 * spread[10:])
    # a strong common drift: the mean moves ∝ s, well beyond the spread
    grams = _walks(rng, 8, 3, 60, 400, drift=10.0, noise=0.1)
    drift, spread, fitted = drift_diffusion.exponents(steps, grams, window)
    d = fitted["drift"]
    assert d.low < 1.0 < d.high and abs(d.exponent - 1.0) < 0.05
    assert np.all(drift[5:] > 3 * spread[5:])


def test_replica_moments_are_unbiased_and_unit_weights_are_the_plain_estimators():
    rng = np.random.default_rng(9)
    r, dim = 5, 50
    draws = []
    for _ in range(400):
        d = rng.standard_normal((r, dim)) + 0.3  # mean 0.3 per coordinate, unit variance
        draws.append(drift_diffusion.replica_moments(d @ d.T))
    drift2, spread2 = np.mean(draws, axis=0)
    assert drift2 == pytest.approx(0.09 * dim, rel=0.1)  # ‖μ‖², not ‖μ‖² + tr Σ / R
    assert spread2 == pytest.approx(dim, rel=0.05)
    d = rng.standard_normal((r, dim))
    k = d @ d.T
    plain = (np.mean(np.sum((d - d.mean(0)) ** 2, 1)) * r / (r - 1), float(d.mean(0) @ d.mean(0)))
    drift2, spread2 = drift_diffusion.replica_moments(k, np.ones(r))
    assert spread2 == pytest.approx(plain[0])
    assert drift2 == pytest.approx(plain[1] - plain[0] / r)
    assert np.isnan(drift_diffusion.replica_moments(k, np.array([5, 0, 0, 0, 0]))[1])
