"""Censoring-aware statistics against cases checked by hand.

The hand-checked case: six chains, four grok at 3, 5, 7 and 9 (gradient evaluations), two are
censored at 6 and 10 (they had not grokked when their budget ran out). Kaplan–Meier multiplies,
at each event, the fraction of the chains still at risk that survive it:

    t = 3:  6 at risk, 1 event   S = 5/6                     = 0.8333
    t = 5:  5 at risk, 1 event   S = 5/6 · 4/5               = 0.6667
    t = 6:  censored (4 at risk afterwards; S unchanged)
    t = 7:  3 at risk, 1 event   S = 4/6 · 2/3               = 0.4444
    t = 9:  2 at risk, 1 event   S = 0.4444 · 1/2            = 0.2222
    t = 10: censored

The median is where S first falls to ½: t = 7. Counting the censored chains as the budget
(say 10) would give the median of {3, 5, 7, 9, 10, 10} = 8; dropping them, the median of
{3, 5, 7, 9} = 6; both are wrong.

The log-log band at t = 3: Greenwood's sum is 1/(6·5) = 1/30; the standard error of
log(−log S) is sqrt(1/30) / |log(5/6)| = 0.18257 / 0.18232 = 1.00137, so the band is
S^exp(±1.95996·1.00137) = (5/6)^7.117 .. (5/6)^0.1405 = 0.2731 .. 0.9747. The lower curve is
already below ½ at t = 3, so the interval of the median starts at 3. The upper curve at t = 9,
its lowest point, is 0.2222^exp(−z·se) with se = sqrt(1/30 + 1/20 + 1/6 + 1/2) / |log 0.2222|
= 0.8660 / 1.5041 = 0.5758, i.e. 0.2222^0.3235 = 0.6147 > ½: it never falls below ½, so the
interval is (3, ∞).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import metrics

TIMES = [3, 5, None, 7, 9, None]
CENSORED_AT = [3, 5, 6, 7, 9, 10]


def test_kaplan_meier_hand_checked_case():
    s = metrics.kaplan_meier(TIMES, CENSORED_AT)
    assert s.n == 6 and s.events == 4
    assert list(s.times) == [3, 5, 6, 7, 9, 10]
    expected = [5 / 6, 4 / 6, 4 / 6, 4 / 9, 2 / 9, 2 / 9]
    assert s.sf == pytest.approx(expected, abs=1e-12)
    assert s.median == 7
    assert s.low[0] == pytest.approx(0.2731, abs=1e-4)
    assert s.high[0] == pytest.approx(0.9747, abs=1e-4)
    assert s.high[4] == pytest.approx(0.6147, abs=1e-4)
    assert s.median_low == 3
    assert s.median_high is None  # the band never falls below ½: unbounded above
    assert s.rate == pytest.approx(4 / 6)


def test_censored_chains_are_neither_dropped_nor_counted_as_the_budget():
    s = metrics.kaplan_meier(TIMES, CENSORED_AT)
    dropped = sorted(t for t in TIMES if t is not None)
    as_budget = sorted(t if t is not None else 10 for t in TIMES)
    assert s.median != (dropped[1] + dropped[2]) / 2  # 6
    assert s.median != (as_budget[2] + as_budget[3]) / 2  # 8
    # most chains censored: the median is "not reached", not the budget
    s = metrics.kaplan_meier([100, None, None], [100, 1000, 1000])
    assert s.median is None
    assert s.last == 1000


def test_uncensored_median_is_the_sample_median_by_the_midpoint_rule():
    assert metrics.kaplan_meier([1, 2, 3, 4], [1, 2, 3, 4]).median == 2.5
    assert metrics.kaplan_meier([4, 1, 3], [4, 1, 3]).median == 3
    # S sits at ½ from t = 1 to the last follow-up at 2 (R: the midpoint of the flat)
    assert metrics.kaplan_meier([1, None], [1, 2]).median == 1.5


def test_ties_on_the_evaluation_grid_bound_the_median():
    # Eight chains all seen grokked at the evaluation of step 100: S drops from 1 to 0 there,
    # where the log-log band is 0/0. The exact binomial bound for 0 survivors of 8 at risk,
    # 1 - 0.025^(1/8) = 0.3694 < 1/2, puts the whole interval at 100.
    s = metrics.kaplan_meier([100] * 8, [100] * 8)
    assert s.high[-1] == pytest.approx(1 - 0.025 ** (1 / 8))
    assert (s.median, s.median_low, s.median_high) == (100, 100, 100)
    # a single chain says little: the interval stays open above
    assert metrics.kaplan_meier([7], [7]).high[-1] == pytest.approx(0.975)


def test_no_events_and_single_chain():
    s = metrics.kaplan_meier([None, None], [50, 50])
    assert s.events == 0 and s.median is None and s.median_low is None
    assert list(s.sf) == [1.0]
    s = metrics.kaplan_meier([7], [7])
    assert s.median == 7 and s.median_high is None
    with pytest.raises(ValueError):
        metrics.kaplan_meier([], [])
    with pytest.raises(ValueError):
        metrics.kaplan_meier([1, 2], [1])


def test_interval_brackets_the_median_for_larger_samples():
    times = list(range(10, 170, 10))  # 16 chains, all grok
    s = metrics.kaplan_meier(times, times)
    assert s.median == 85
    assert s.median_low is not None and s.median_high is not None
    assert s.median_low < s.median < s.median_high


def test_speedup_ratio_of_medians_with_bootstrap_interval():
    fast = ([10, 10, 10, 10], [10, 10, 10, 10])
    slow = ([20, 20, 20, 20], [20, 20, 20, 20])
    r = metrics.speedup(fast, slow, resamples=200)
    assert (r.value, r.low, r.high) == (2.0, 2.0, 2.0)
    never = ([None, None, None], [100, 100, 100])
    r = metrics.speedup(never, slow, resamples=200)
    assert r.value == 0.0 and r.high == 0.0  # the sampler's median is not reached: ratio 0
    r = metrics.speedup(fast, never, resamples=200)
    assert math.isinf(r.value)
    assert metrics.speedup(never, never, resamples=50).value is None
    # reproducible: fixed bootstrap seed
    mixed = ([10, 30, None, 12, 50], [10, 30, 60, 12, 50])
    assert metrics.speedup(mixed, slow, resamples=300) == metrics.speedup(
        mixed, slow, resamples=300
    )


def test_logrank_separates_clearly_different_groups():
    early = ([1, 2, 3, 4, 5, 6, 7, 8], [8] * 8)
    late = ([None] * 8, [100] * 8)
    assert metrics.logrank_p(early, late) < 1e-3
    assert metrics.logrank_p(early, early) == pytest.approx(1.0)
    assert metrics.logrank_p(late, late) is None


def test_the_bootstrap_median_equals_the_kaplan_meier_median():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        times = rng.choice([100.0, 200.0, 300.0, 400.0, 500.0], size=n)
        observed = rng.random(n) < 0.6
        slow = metrics.kaplan_meier(
            [float(t) if o else None for t, o in zip(times, observed, strict=True)], list(times)
        ).median
        fast = metrics.km_median_of_arrays(times, observed)
        assert (slow is None and math.isinf(fast)) or fast == slow


# -- restricted mean survival time -------------------------------------------------------------
def test_rmst_uncensored_is_the_mean_of_the_truncated_times():
    times = [1, 4, 2, 8, 5, 7]
    r = metrics.rmst(times, times, horizon=6)
    truncated = np.minimum(times, 6)
    assert r.value == pytest.approx(truncated.mean())  # 4.0
    # uncensored, Greenwood's variance of the mean is the plug-in variance over n
    assert r.se == pytest.approx(math.sqrt(truncated.var() / len(times)))
    assert r.low == pytest.approx(4.0 - 1.959964 * r.se) and r.high == pytest.approx(
        4.0 + 1.959964 * r.se
    )
    assert r.horizon == 6.0
    # past every event the mean is the plain mean, and the curve is 0 past the last one
    assert metrics.rmst(times, times, horizon=100).value == pytest.approx(np.mean(times))


def test_rmst_hand_checked_censored_case():
    """The module's six chains to τ = 10: the area under S (1, 5/6, 4/6, 4/9, 2/9 on [0,3),
    [3,5), [5,7), [7,9), [9,10)) is 3 + 5/3 + 4/3 + 8/9 + 2/9 = 64/9. The areas after each
    event, A = 37/9, 22/9, 10/9, 2/9 at t = 3, 5, 7, 9, with (Y, d) = (6,1), (5,1), (3,1),
    (2,1), give Var = Σ A²·d/(Y(Y−d)) = (37/9)²/30 + (22/9)²/20 + (10/9)²/6 + (2/9)²/2
    = 5310/4860."""
    r = metrics.rmst(TIMES, CENSORED_AT, horizon=10)
    assert r.value == pytest.approx(64 / 9)
    assert r.se == pytest.approx(math.sqrt(5310 / 4860))
    assert r.low < r.value < r.high <= 10
    # to τ = 6 only the events at 3 and 5 count: 3 + 5/3 + 4/6; A = 7/3 at 3, 2/3 at 5
    r = metrics.rmst(TIMES, CENSORED_AT, horizon=6)
    assert r.value == pytest.approx(3 + 5 / 3 + 4 / 6)
    assert r.se == pytest.approx(math.sqrt((7 / 3) ** 2 / 30 + (2 / 3) ** 2 / 20))
    assert r.high == 6.0  # clipped: the mean cannot pass the horizon


def test_rmst_when_no_chain_reaches_the_target_is_the_horizon():
    r = metrics.rmst([None, None, None], [100, 100, 100], horizon=100)
    assert (r.value, r.se, r.low, r.high) == (100.0, 0.0, 100.0, 100.0)
    # where the median is not reached the mean still ranks: one chain of four at 20
    r = metrics.rmst([20, None, None, None], [20, 100, 100, 100], horizon=100)
    assert metrics.kaplan_meier([20, None, None, None], [20, 100, 100, 100]).median is None
    assert r.value == pytest.approx(20 + 80 * 3 / 4)


def test_rmst_refuses_a_horizon_it_cannot_see():
    with pytest.raises(ValueError, match="past the last follow-up"):
        metrics.rmst([5, None], [5, 10], horizon=20)
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="horizon"):
            metrics.rmst([5], [5], horizon=bad)


# -- paired ratio of medians -------------------------------------------------------------------
def test_paired_speedup_identical_arms_is_one():
    times = [10.0, 30.0, None, 12.0, 50.0, 25.0]
    cens = [10, 30, 60, 12, 50, 25]
    r = metrics.paired_speedup(times, cens, times, cens, resamples=300)
    assert r.value == 1.0 and r.low <= 1.0 <= r.high
    # paired, every resample sees the same chains in both arms: exactly 1
    assert (r.low, r.high) == (1.0, 1.0)
    unpaired = metrics.speedup((times, cens), (times, cens), resamples=300)
    assert unpaired.low < 1.0 < unpaired.high  # independent resamples do not know that


def test_paired_speedup_direction_and_scale():
    """``a`` with the factor, ``b`` without: b twice as slow at every checkpoint is a speed-up
    of 2 from the factor, known exactly since every resample keeps the pairs."""
    a = [10.0, 30.0, None, 12.0, 50.0, 25.0, 40.0]
    a_cens = [10, 30, 60, 12, 50, 25, 40]
    b = [None if t is None else 2 * t for t in a]
    b_cens = [2 * c for c in a_cens]
    r = metrics.paired_speedup(a, a_cens, b, b_cens, resamples=300)
    assert (r.value, r.low, r.high) == (2.0, 2.0, 2.0)
    r = metrics.paired_speedup(b, b_cens, a, a_cens, resamples=300)
    assert (r.value, r.low, r.high) == (0.5, 0.5, 0.5)  # the factor slows it down


def test_pairing_narrows_the_interval_of_a_shared_checkpoint_effect():
    """Checkpoints that differ a lot (times 10…1000) and a factor that speeds every one of them
    by 1.5 ± 10%: the paired interval is narrow around 1.5, the unpaired one wide."""
    rng = np.random.default_rng(3)
    base = 10 ** rng.uniform(1, 3, 12)
    a = list(base)
    b = list(base * 1.5 * rng.uniform(0.9, 1.1, 12))
    paired = metrics.paired_speedup(a, a, b, b, resamples=500)
    unpaired = metrics.speedup((a, a), (b, b), resamples=500)
    assert paired.low <= paired.value <= paired.high
    assert paired.low > 1.2 and paired.high < 1.8
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 3


def test_paired_speedup_with_unreached_medians():
    reached = ([10.0, 20.0, 30.0], [10, 20, 30])
    never = ([None, None, None], [100, 100, 100])
    r = metrics.paired_speedup(*never, *reached, resamples=200)
    assert r.value == 0.0 and r.high == 0.0  # with the factor nothing reaches the target
    r = metrics.paired_speedup(*reached, *never, resamples=200)
    assert math.isinf(r.value) and math.isinf(r.low)  # without it nothing does
    r = metrics.paired_speedup(*never, *never, resamples=50)
    assert (r.value, r.low, r.high) == (None, None, None)
    with pytest.raises(ValueError, match="one chain each per checkpoint"):
        metrics.paired_speedup([1.0], [1], [1.0, 2.0], [1, 2])
    with pytest.raises(ValueError, match="at least one checkpoint"):
        metrics.paired_speedup([], [], [], [])
    # reproducible: a fixed bootstrap seed
    mixed = ([10.0, 30.0, None, 12.0, 50.0], [10, 30, 60, 12, 50])
    other = ([20.0, None, 40.0, 11.0, 70.0], [20, 80, 40, 11, 70])
    assert metrics.paired_speedup(*mixed, *other, resamples=300) == metrics.paired_speedup(
        *mixed, *other, resamples=300
    )
