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
