"""Benchmark profiles: named training budgets (``smoke``, ``quick``, ``full``).

Each metric declares its own sample budgets per profile (``MetricOption.profiles``,
listed by ``aebench metrics``); this module owns the training side and the names.
"""

from __future__ import annotations

from typing import Any

# Training budgets per profile; each metric declares its own sample budgets per
# profile (`aebench metrics`). `quick` is the default: on a 2-core CPU
# `--models vae,ae --datasets mnist` finishes in about six minutes.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 20, "limit": 2000},
    "quick": {"epochs": 10, "limit": None},
    "full": {"epochs": 30, "limit": None},
}
DEFAULT_PROFILE = "quick"
