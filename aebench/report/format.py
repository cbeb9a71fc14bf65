"""Display text for the report: numbers, durations, option values, slugs, seed aggregates.

Every number the site shows goes through :func:`fmt_number` (or
:func:`fmt_seconds` for durations), so a value reads the same in the
leaderboard, on a run page and in a figure's title.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from aebench.options import short_value
from aebench.report.stats import CONFIDENCE, t_interval

MISSING = "—"
NOT_APPLICABLE_TITLE = "not applicable to this model"


def not_applicable_title(applies: str = "") -> str:
    """Why a value is "n/a": :data:`NOT_APPLICABLE_TITLE`, and to which runs the
    column applies when its metric says (``MetricColumn.applies_text``)."""
    return f"{NOT_APPLICABLE_TITLE}: it applies to {applies}" if applies else NOT_APPLICABLE_TITLE


NOT_COMPUTED_TITLE = "not computed"


def slugify(text: str, taken: set[str] | None = None) -> str:
    """A file-name and URL-safe version of ``text``, unique within ``taken``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "run"
    slug = slug[:120]
    if taken is not None:
        base, i = slug, 2
        while slug.lower() in taken:
            slug = f"{base}-{i}"
            i += 1
        taken.add(slug.lower())
    return slug


def number(value: Any) -> float | None:
    """A finite float, or None for null, NaN, infinities, booleans and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fmt_number(value: float | None) -> str:
    """Compact human formatting: 4 significant digits, no exponent for big values."""
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:.1f}"
    return f"{value:.4g}"


def fmt_integer(value: float | None) -> str:
    """A count: without decimals when it is a whole number, else as :func:`fmt_number`."""
    if value is None:
        return MISSING
    return f"{value:.0f}" if float(value).is_integer() else fmt_number(value)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_value(value: Any) -> str:
    """Any config/metric value as display text (the template escapes it)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_number(value) if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def fmt_option(value: Any) -> str:
    """A model/metric option value: sequences compact (``512x256``), the rest as
    :func:`fmt_value`."""
    if isinstance(value, (list, tuple)):
        return short_value(value)
    return fmt_value(value)


def sort_value(value: Any) -> tuple:
    """A key that sorts numbers numerically, None last, anything else as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return (value is None, 1, 0.0, json.dumps(value, sort_keys=True, default=str))
    return (False, 0, float(value), "")


def decimals_for(half: float) -> int:
    """Decimals that show ``half`` (an interval's half-width) to two significant digits."""
    return max(0, 1 - math.floor(math.log10(abs(half)))) if half else 0


def fmt_mean(mean: float | None, half: float | None = None, integer: bool = False) -> str:
    """A mean to the precision its interval supports: ``half`` (the ± shown) to two
    significant digits and the mean to the same decimals; without an interval as
    :func:`fmt_number` (a count: as :func:`fmt_integer`)."""
    if mean is None:
        return MISSING
    if half is None or half == 0 or not math.isfinite(half):
        return fmt_integer(mean) if integer else fmt_number(mean)
    digits = min(decimals_for(half), 8)
    return f"{mean:.{digits}f}"


def fmt_half(half: float) -> str:
    """An interval's half-width, two significant digits (no exponent)."""
    if half == 0:
        return "0"
    return f"{half:.{min(decimals_for(half), 8)}f}"


def aggregate(
    values: Sequence[float | None],
    integer: bool = False,
    seeds: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Mean and 95% t-interval over seeds of the non-null values, with display text.

    ``text`` is the mean (to the interval's precision), ``pm`` the ``± half-width``
    (empty with one value), ``std`` the sample standard deviation (ddof=1), ``n``
    how many values stand behind it. ``seeds`` (one per value) gives ``by_seed``,
    ``{seed: value}``, for paired tests between configurations.
    ``integer``: a count, shown without decimals when the mean is a whole number.
    """
    present = [v for v in values if v is not None]
    by_seed = (
        {s: v for s, v in zip(seeds, values, strict=True) if v is not None}
        if seeds is not None
        else {}
    )
    interval = t_interval(present)
    if interval is None:
        return {
            "mean": None,
            "std": None,
            "half": None,
            "low": None,
            "high": None,
            "n": 0,
            "text": MISSING,
            "mean_text": MISSING,
            "pm": "",
            "sort": "",
            "by_seed": by_seed,
            "interval_title": "",
        }
    half = interval.half
    shown = fmt_mean(interval.mean, half, integer)
    pm = f"± {fmt_half(half)}" if half is not None else ""
    return {
        "mean": interval.mean,
        "std": interval.std,
        "half": half,
        "low": interval.low,
        "high": interval.high,
        "n": interval.n,
        "text": f"{shown} {pm}".strip(),
        "mean_text": shown,
        "pm": pm,
        "sort": repr(interval.mean),
        "by_seed": by_seed,
        "interval_title": (
            f"mean of {interval.n} seeds; {CONFIDENCE:.0%} t-interval "
            f"[{fmt_number(interval.low)}, {fmt_number(interval.high)}]"
            if half is not None
            else "1 seed"
        ),
    }
