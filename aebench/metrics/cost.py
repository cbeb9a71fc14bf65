"""What a run cost: training and evaluation wall times, written by the runner.

These columns are declared here like any metric's (so the results table, the
leaderboard and ``aebench metrics`` know their labels and units), but their
values come from the runner, which times the training loop and the evaluation.
"""

from __future__ import annotations

from aebench.metrics.context import hook
from aebench.specs import MetricColumn, MetricSpec

METRIC = MetricSpec(
    "cost",
    None,
    description="Wall times of the run (recorded by the runner; they depend on the hardware)",
    group="cost",
    order=1000,
    # what the runner stores beside them (see aebench/execute.py)
    details=(
        "best_epoch",
        "threads",
        "device",
        "versions",
        "regulariser",
        "sampler",
        "eval_timings",
    ),
    columns=(
        MetricColumn("train_seconds", "Train time", "s", None, "Training loop with validation"),
        MetricColumn("eval_seconds", "Eval time", "s", None, "Evaluation, run images included"),
    ),
)
register_metrics = hook(METRIC)
