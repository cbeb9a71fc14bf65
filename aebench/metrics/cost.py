"""What a run cost: training and evaluation wall times, written by the runner.

These columns are declared here like any metric's (so the results table, the
leaderboard and ``aebench metrics`` know their labels and units), but their
values come from the runner, which times the training loop and the evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

from aebench.hookspecs import hookimpl
from aebench.specs import MetricColumn, MetricSpec


@hookimpl
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    register(
        MetricSpec(
            name="cost",
            fn=None,
            order=1000,
            description="Wall times of the run (recorded by the runner; depend on the hardware)",
            columns=(
                MetricColumn(
                    "train_seconds",
                    "Train time",
                    "s",
                    None,
                    "Wall time of the training loop, validation included",
                    group="cost",
                ),
                MetricColumn(
                    "eval_seconds",
                    "Eval time",
                    "s",
                    None,
                    "Wall time of the evaluation (all metrics and run images)",
                    group="cost",
                ),
            ),
        )
    )
