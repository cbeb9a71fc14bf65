"""Statistics over seeds for the leaderboard, checked against scipy and known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aebench.report.format import aggregate, fmt_mean
from aebench.report.stats import paired_test, t_interval


def test_t_interval_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10):
        x = rng.normal(3.0, 0.7, size=n)
        got = t_interval(x.tolist())
        assert got is not None and got.n == n
        low, high = stats.t.interval(0.95, df=n - 1, loc=x.mean(), scale=stats.sem(x))
        assert (got.mean, got.low, got.high) == pytest.approx((x.mean(), low, high))
        assert got.std == pytest.approx(x.std(ddof=1))


def test_t_interval_known_case() -> None:
    # two seeds: half-width = t(0.975, 1) * s / sqrt(2) = 12.706 * sqrt(2) / sqrt(2)
    got = t_interval([1.0, 3.0])
    assert got is not None and got.half == pytest.approx(12.7062, abs=1e-4)


def test_t_interval_edge_cases() -> None:
    assert t_interval([]) is None
    one = t_interval([4.0])
    assert one is not None and one.n == 1 and one.half is None and one.low is None
    same = t_interval([2.0, 2.0, 2.0])
    assert same is not None and same.half == 0 and same.low == same.high == 2.0


def test_paired_test_matches_scipy_over_shared_seeds() -> None:
    a = {0: 1.0, 1: 2.5, 2: 3.0, 7: 100.0}  # seed 7 has no partner: left out
    b = {0: 0.0, 1: 1.0, 2: 2.0, 9: -5.0}
    got = paired_test(a, b)
    ref = stats.ttest_rel([1.0, 2.5, 3.0], [0.0, 1.0, 2.0])
    assert got is not None and got.n == 3
    assert got.statistic == pytest.approx(7.0)  # mean diff 7/6 over its standard error 1/6
    assert got.p == pytest.approx(ref.pvalue) and got.significant()
    assert got.diff == pytest.approx(7 / 6)


def test_paired_test_needs_two_shared_seeds_and_evidence() -> None:
    assert paired_test({0: 1.0}, {0: 2.0}) is None
    assert paired_test({0: 1.0, 1: 2.0}, {2: 1.0, 3: 2.0}) is None
    same = paired_test({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert same is not None and same.p == 1.0 and not same.significant()
    noisy = paired_test({0: 1.0, 1: 3.0, 2: 2.0}, {0: 2.0, 1: 1.0, 2: 2.5})
    assert noisy is not None and not noisy.significant()


def test_means_shown_to_the_precision_of_their_interval() -> None:
    assert fmt_mean(0.0123456, 0.00456) == "0.0123"
    assert fmt_mean(123.456, 12.3) == "123"
    assert fmt_mean(123.456, None) == "123.5"
    assert fmt_mean(5.0, None, integer=True) == "5"
    cell = aggregate([1.0, 3.0], seeds=[0, 1])
    assert cell["text"] == "2 ± 13" and cell["by_seed"] == {0: 1.0, 1: 3.0}
    assert "95% t-interval" in cell["interval_title"] and "2 seeds" in cell["interval_title"]
    assert math.isclose(cell["half"], 12.7062, abs_tol=1e-4)
