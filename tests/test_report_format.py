"""Formatting of numbers, integers, durations and option values in the report."""

from __future__ import annotations


def test_format_helpers() -> None:
    from aebench.report.format import fmt_integer, fmt_number, fmt_option, fmt_seconds

    assert fmt_seconds(205) == "3 min 25 s" and fmt_seconds(12.34) == "12.3 s"
    assert fmt_seconds(3 * 3600 + 125) == "3 h 02 min"
    assert fmt_number(0.0123456) == "0.01235" and fmt_number(12345.678) == "12345.7"
    assert fmt_integer(12000.0) == "12000" and fmt_integer(2.5) == "2.5"
    assert fmt_option([512, 256]) == "512x256" and fmt_option(0.5) == "0.5"
