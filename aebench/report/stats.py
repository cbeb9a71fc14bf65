"""Statistics over seeds: t-intervals for a configuration's mean, paired tests between two.

Both come from :mod:`scipy.stats`; nothing here is hand-written statistics.

* :func:`t_interval`: mean and the two-sided 95% Student-t confidence interval
  over seeds (``scipy.stats.t``), ``None`` bounds with a single seed.
* :func:`paired_test`: the paired t-test (``scipy.stats.ttest_rel``) between
  two configurations over the seeds both ran, so seed-to-seed variation that
  both share (the data split, the initialisation) cancels.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
"""Confidence level of every interval the leaderboard shows."""
ALPHA = 0.05
"""A lead is significant when the paired test's two-sided p-value is below this."""


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values and its t-interval ``[low, high]`` (None below two values)."""

    mean: float
    n: int
    low: float | None = None
    high: float | None = None
    std: float | None = None

    @property
    def half(self) -> float | None:
        """Half the interval's width (the ``±`` shown), None without an interval."""
        return None if self.high is None else (self.high - self.low) / 2  # type: ignore[operator]


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval | None:
    """Mean and two-sided Student-t confidence interval of ``values`` (None when empty).

    With identical values the interval has zero width; with one value it has none.
    """
    import numpy as np
    from scipy import stats

    x = np.asarray([float(v) for v in values], dtype=np.float64)
    if x.size == 0:
        return None
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, 1)
    std = float(x.std(ddof=1))
    sem = std / math.sqrt(x.size)
    if sem == 0:
        return Interval(mean, int(x.size), mean, mean, 0.0)
    low, high = stats.t.interval(confidence, df=x.size - 1, loc=mean, scale=sem)
    return Interval(mean, int(x.size), float(low), float(high), std)


@dataclass(frozen=True)
class Paired:
    """A paired t-test over ``n`` shared seeds: ``p`` two-sided, ``diff`` mean of a - b."""

    n: int
    p: float
    statistic: float
    diff: float

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p < alpha


def paired_test(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> Paired | None:
    """Paired t-test of ``a`` against ``b`` (seed -> value) over the seeds both have.

    None with fewer than two shared seeds (nothing to test). When every paired
    difference is zero, scipy's p-value is undefined (NaN): no evidence, p = 1.
    """
    import warnings

    import numpy as np
    from scipy import stats

    seeds = [s for s in a if s in b]
    if len(seeds) < 2:
        return None
    x = np.asarray([float(a[s]) for s in seeds])
    y = np.asarray([float(b[s]) for s in seeds])
    diff = float((x - y).mean())
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly identical values
        result = stats.ttest_rel(x, y)
    statistic, p = float(result.statistic), float(result.pvalue)
    if math.isnan(p):
        p = 1.0
    return Paired(len(seeds), p, statistic, diff)
