"""Display text for the report: numbers, durations, option values, slugs, seed aggregates.

Every number the site shows goes through :func:`fmt_number` (or
:func:`fmt_seconds` for durations), so a value reads the same in the
leaderboard, on a run page and in a figure's title.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from typing import Any

MISSING = "—"
NOT_APPLICABLE_TITLE = "not applicable to this model"
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


def fmt_std(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.2g}"


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
        from aebench.options import short_value

        return short_value(value)
    return fmt_value(value)


def sort_value(value: Any) -> tuple:
    """A key that sorts numbers numerically, None last, anything else as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return (value is None, 1, 0.0, json.dumps(value, sort_keys=True, default=str))
    return (False, 0, float(value), "")


def aggregate(values: Sequence[float | None], integer: bool = False) -> dict[str, Any]:
    """Mean ± sample std (ddof=1) of the non-null values, with display text.

    ``integer``: a count, shown without decimals when the mean is a whole number.
    """
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "n": 0, "text": MISSING, "sort": ""}
    mean = statistics.fmean(present)
    std = statistics.stdev(present) if len(present) > 1 else None
    shown = fmt_integer(mean) if integer else fmt_number(mean)
    text = shown if std is None else f"{shown} ± {fmt_std(std)}"
    return {"mean": mean, "std": std, "n": len(present), "text": text, "sort": repr(mean)}
