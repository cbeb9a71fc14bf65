"""One run's page: its settings, its metrics (from the registry) and per-class results.

:func:`run_context` describes a :class:`~aebench.store.RunRecord` as plain dicts;
the renderer adds the run's images and figures. Settings come in sections:
the run, every model option it was built with, training, metric budgets and
evaluation (how samples were drawn, times). The metrics table lists each
registered column the run stored, with its label, unit, direction arrow and
definition (tooltip); a value that does not apply to the model reads "—".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aebench.catalog import metric_specs
from aebench.report.columns import split_text, unknown_keys
from aebench.report.format import (
    MISSING,
    NOT_COMPUTED_TITLE,
    fmt_integer,
    fmt_option,
    fmt_seconds,
    fmt_value,
    not_applicable_title,
    number,
)
from aebench.report.leaderboard import UNKNOWN_DATASET, config_label, model_options
from aebench.store import RunRecord

RUN_SETTINGS = (
    ("run_id", "Run ID"),
    ("model", "Model"),
    ("family", "Family"),
    ("arch", "Architecture"),
    ("dataset", "Dataset"),
    ("input_shape", "Image shape (C, H, W)"),
    ("seed", "Seed"),
    ("profile", "Profile"),
    ("device", "Device requested"),
    ("plugin", "Plugin"),
)
TRAINING_SETTINGS = (
    ("epochs", "Epochs"),
    ("batch_size", "Batch size"),
    ("lr", "Learning rate"),
    ("limit", "Training-set limit"),
    ("val_size", "Validation fraction"),
)
NOT_SETTINGS = frozenset(
    {
        "key",
        "format_version",
        "description",
        "shown_options",
        "model_config",
        "resolved_model_config",
        "metric_options",
        "dataset_options",
    }
)
"""config.json keys shown elsewhere on the page (or not at all)."""
SHOWN_METRIC_VALUES = frozenset(
    {
        "not_applicable",
        "per_class",
        "versions",
        "regulariser",
        "objective",
        "latent_kind",
        "objective_group",
        "optimizers",
        "sampler",
        "device",
    }
)
"""metrics.json values the page shows in their own place."""


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def wall_seconds(record: RunRecord) -> float | None:
    """Seconds from the run's start to its finish, from status.json."""
    start, end = _parse_time(record.started), _parse_time(record.finished)
    if start is None or end is None:
        return None
    try:
        return (end - start).total_seconds()
    except TypeError:  # naive vs aware
        return None


def _rows(pairs: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in pairs]


def settings_sections(record: RunRecord) -> list[dict[str, Any]]:
    """The settings list: ``[{title, rows: [{name, value}]}]``, empty sections left out."""
    config, metrics = record.config, record.metrics or {}
    run: list[tuple[str, Any]] = [("Status", record.status)]
    run += [(label, config.get(key)) for key, label in RUN_SETTINGS if key in config]
    dataset_options = config.get("dataset_options")
    if isinstance(dataset_options, dict):
        run += [(f"Dataset option {k}", v) for k, v in dataset_options.items()]
    training = [(label, config.get(key)) for key, label in TRAINING_SETTINGS if key in config]
    known = {k for k, _ in RUN_SETTINGS} | {k for k, _ in TRAINING_SETTINGS} | NOT_SETTINGS
    training += [(k, v) for k, v in config.items() if k not in known]
    metric_options = config.get("metric_options")
    evaluation = [
        ("Objective", metrics.get("objective")),
        ("Objective group", metrics.get("objective_group")),
        ("Regulariser", metrics.get("regulariser")),
        ("Latent", metrics.get("latent_kind")),
        ("Optimisers", "; ".join(map(str, metrics.get("optimizers") or [])) or None),
        ("Samples decoded from", metrics.get("sampler")),
        ("Device", metrics.get("device")),
        ("Train time", fmt_seconds(number(metrics.get("train_seconds")))),
        ("Eval time", fmt_seconds(number(metrics.get("eval_seconds")))),
        ("Wall time (start → finish)", fmt_seconds(wall_seconds(record))),
        ("Started", record.started),
        ("Finished", record.finished),
    ]
    sections = [
        ("Run", run),
        ("Model options", list(model_options(config).items())),
        ("Training", training),
        (
            "Metric options",
            list(metric_options.items()) if isinstance(metric_options, dict) else [],
        ),
        ("Evaluation", evaluation if record.metrics is not None else evaluation[-2:]),
    ]
    return [
        {"title": title, "rows": _rows([(n, fmt_option(v)) for n, v in pairs])}
        for title, pairs in sections
        if pairs
    ]


def metric_rows(record: RunRecord, specs: list[Any] | None = None) -> list[dict[str, Any]]:
    """The test metrics table: each registered column the run stored, then values
    no installed metric declares. ``[{key, label, unit, arrow, value, title, na}]``."""

    metrics = record.metrics or {}
    specs = list(metric_specs() if specs is None else specs)
    na = record.not_applicable
    rows = []
    for col in (c for s in specs for c in s.columns):
        if col.key not in metrics and col.key not in na:
            continue
        value = number(metrics.get(col.key))
        split = [(k, metrics.get(k)) for k in col.split_by]
        unit = ", ".join(t for t in (col.unit, split_text(split, short=False, column=col.key)) if t)
        rows.append(
            {
                "key": col.key,
                "label": col.label,
                "unit": unit,
                "arrow": col.arrow,
                "value": (fmt_integer if col.integer else fmt_value)(value),
                "definition": col.definition,
                "title": not_applicable_title(col.applies_text)
                if col.key in na
                else NOT_COMPUTED_TITLE
                if value is None
                else "",
                "na": col.key in na,
            }
        )
    keys, integers = unknown_keys([metrics], specs)
    for key in keys:
        value = number(metrics[key])
        rows.append(
            {
                "key": key,
                "label": key,
                "unit": "",
                "arrow": "",
                "value": (fmt_integer if key in integers else fmt_value)(value),
                "definition": f"Metric {key!r}, declared by no installed metric",
                "title": "",
                "na": False,
            }
        )
    return rows


def stored_values(record: RunRecord, shown: set[str]) -> list[dict[str, str]]:
    """Other values stored with the metrics (FID extractor, budgets used, counts,
    metric errors): every metrics.json key neither a table row nor shown elsewhere."""
    metrics = record.metrics or {}
    out = []
    for key, value in metrics.items():
        if key in shown or key in SHOWN_METRIC_VALUES:
            continue
        if isinstance(value, dict):
            text = ", ".join(f"{k}: {fmt_value(v)}" for k, v in value.items()) or MISSING
        else:
            text = fmt_value(value)
        out.append({"name": key, "value": text})
    return out


def is_expost(sampler: str) -> bool:
    """Whether a stored sampler description names a density fitted after training
    (``... fitted on training latent means``) rather than a prior trained with."""
    return "fitted" in sampler.lower()


def sampler_label(metrics: dict[str, Any]) -> str:
    """Short name of what a run's sample grid was decoded from: ``prior N(0, I)``,
    ``ex-post GMM``, ``ex-post Gaussian`` or, for discrete latents, ``codes: ...``."""
    sampler = str(metrics.get("sampler") or "")
    if not sampler:
        return "model samples"
    if is_expost(sampler):
        return "ex-post GMM" if "mixture" in sampler.lower() else "ex-post Gaussian"
    if metrics.get("latent_kind") == "discrete":
        return f"codes: {sampler}"
    return f"prior {sampler}"


def sampler_caption(metrics: dict[str, Any]) -> str:
    """The sample grid's caption: a prior the model trained with, or a density fitted
    on its training latents (a plain autoencoder has no prior)."""
    sampler = str(metrics.get("sampler") or "")
    if not sampler:
        return "Samples drawn from the model."
    if is_expost(sampler):
        return (
            f"Ex-post samples: latents drawn from a {sampler} after training (this model "
            "has no prior of its own), then decoded."
        )
    if metrics.get("latent_kind") == "discrete":
        return (
            f"Samples: discrete codes drawn from {sampler}, then decoded (its sample "
            "metrics use the code prior learned after training: the code prior columns)."
        )
    return (
        f"Prior samples: latents drawn from {sampler}, the prior the model was trained "
        "with, then decoded."
    )


def run_context(record: RunRecord, slug: str) -> dict[str, Any]:
    """Context for one run's page (without images; the renderer adds those)."""

    config, metrics = record.config, record.metrics or {}
    specs = metric_specs()
    table = metric_rows(record, specs) if record.metrics is not None else []

    per_class_rows = []
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict):
        for name, vals in per_class.items():
            vals = vals if isinstance(vals, dict) else {}
            per_class_rows.append(
                {
                    "name": str(name),
                    "mse": fmt_value(number(vals.get("mse"))),
                    "psnr": fmt_value(number(vals.get("psnr"))),
                    "ssim": fmt_value(number(vals.get("ssim"))),
                }
            )
    versions = metrics.get("versions")
    version_rows = (
        [{"name": str(k), "value": fmt_value(v)} for k, v in versions.items()]
        if isinstance(versions, dict)
        else []
    )
    sampler = metrics.get("sampler")
    return {
        "run_id": record.run_id,
        "slug": slug,
        "title": config_label(config) if config else record.run_id,
        "model": str(config.get("model", "?")),
        "dataset": str(config.get("dataset") or UNKNOWN_DATASET),
        "description": config.get("description"),
        "status": record.status,
        "reason": record.reason,
        "problems": list(record.problems),
        "settings": settings_sections(record),
        "metrics": table,
        "stored": stored_values(record, {r["key"] for r in table}),
        "per_class": per_class_rows,
        "versions": version_rows,
        "samples_caption": sampler_caption(metrics),
        "sampler": sampler_label(metrics) if sampler else "",
        "n_epochs": len(record.history),
    }
