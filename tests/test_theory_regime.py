"""The regime's numbers and the null process with no loss (bench/theory/claims/regime.py):
known answers, a Monte Carlo check of the null's norm, and the null-ratio fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.theory import fits
from bench.theory.claims import regime
from bench.theory.fits import FitError, Times


def test_eta_eff_is_the_step_over_one_minus_the_momentum():
    assert regime.eta_eff("sgld", {"step_size": 30.0}) == 30.0
    assert regime.eta_eff("sgd", {"step_size": 3.0, "momentum": 0.9}) == pytest.approx(30.0)
    # SGHMC's friction α is 1 − μ
    assert regime.eta_eff("sghmc", {"step_size": 3.0, "friction": 0.1}) == pytest.approx(30.0)
    assert regime.temperature("sgd", {"step_size": 1.0}) == 0.0
    assert regime.temperature("sgld", {"step_size": 1.0, "temperature": 1e-7}) == 1e-7


def test_the_null_norm_matches_a_simulated_ornstein_uhlenbeck_process():
    """E‖θ_t‖² of θ ← a·θ + sqrt(2ητ)·ξ, against 400 simulated chains (4 standard errors)."""
    eta, lam, tau, dim, chains = 0.5, 0.01, 0.02, 50, 400
    rng = np.random.default_rng(0)
    theta = np.full((chains, dim), 3.0 / math.sqrt(dim) * 10)  # ‖θ_0‖ = 30
    norm0 = float(np.linalg.norm(theta[0]))
    a = 1 - eta * lam
    for t in range(1, 301):
        theta = a * theta + math.sqrt(2 * eta * tau) * rng.standard_normal(theta.shape)
        if t in (10, 100, 300):
            sq = (theta**2).sum(axis=1)
            se = sq.std(ddof=1) / math.sqrt(chains)
            expect = float(regime.null_norm(t, norm0, eta, lam, tau, dim)) ** 2
            assert abs(sq.mean() - expect) < 4 * se, (t, sq.mean(), expect, se)
    # its equilibrium is D·τ/λ up to the discretization's 1/(1 − ηλ/2)
    s2 = regime.stationary_sq(eta, lam, tau, dim)
    assert s2 == pytest.approx(dim * tau / lam / (1 - eta * lam / 2))


def test_the_null_time_inverts_the_null_norm_and_knows_its_edges():
    eta, lam, tau, dim = 30.0, 1e-4, 1e-8, 46_500
    t = regime.null_time(23.0, 15.0, eta, lam, tau, dim)
    assert float(regime.null_norm(t, 23.0, eta, lam, tau, dim)) == pytest.approx(15.0)
    # without noise it is the decay's log(‖θ_0‖/‖θ*‖)/(−log a)
    assert regime.null_time(23.0, 15.0, eta, lam, 0.0, dim) == pytest.approx(
        math.log(23 / 15) / -math.log(1 - eta * lam)
    )
    assert regime.null_time(15.0, 23.0, eta, lam, tau, dim) == 0.0  # already there
    assert regime.null_time(23.0, 15.0, eta, 0.0, 0.0, dim) == math.inf  # no decay
    hot = 15.0**2 * lam / dim * 4  # equilibrium norm twice the target
    assert regime.null_time(23.0, 15.0, eta, lam, hot, dim) == math.inf


def test_the_null_exponents_over_the_issue_window_are_those_the_issue_reports():
    """Issue 19: at η·λ = 3e-3 an Ornstein–Uhlenbeck process gives a drift exponent of 0.70 and
    a spread exponent of 0.26 over a 790-step window: what the drift-diffusion page measured."""
    s = np.arange(20.0, 800.0, 20.0)
    drift = fits.power_law(s, regime.null_drift(s, 23.0, 30.0, 1e-4)).exponent
    spread = fits.power_law(s, regime.null_spread(s, 30.0, 1e-4, 1e-7, 46_500)).exponent
    assert drift == pytest.approx(0.70, abs=0.01)
    assert spread == pytest.approx(0.26, abs=0.01)
    # without decay the spread is a diffusion's √s, exactly
    free = regime.null_spread(s, 30.0, 0.0, 1e-7, 46_500)
    assert fits.power_law(s, free).exponent == pytest.approx(0.5)


def test_the_null_ratio_recovers_a_known_ratio_and_keeps_censored_chains_censored():
    rng = np.random.default_rng(1)
    null = rng.uniform(200, 2000, 60)
    t = 2.0 * null * np.exp(0.2 * rng.standard_normal(60))
    censor = t > 3000
    times = Times(np.where(censor, 3000.0, t), np.where(censor, math.inf, t))
    fit = regime.null_ratio(times, null)
    lo, hi = fit.interval
    assert lo < 2.0 < hi and fit.ratio == pytest.approx(2.0, rel=0.1)
    assert fit.used == 60 and "slower than the null" in fit.phrase()
    # an unreachable null and an unknown one are left out and counted
    null2 = null.copy()
    null2[0], null2[1] = math.inf, math.nan
    fit2 = regime.null_ratio(times, null2)
    assert (fit2.used, fit2.unreachable, fit2.unknown) == (58, 1, 1)
    with pytest.raises(FitError):
        regime.null_ratio(times, np.full(60, math.nan))
