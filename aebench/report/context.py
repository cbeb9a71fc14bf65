"""Turn run directories into the plain dicts the report templates receive.

Nothing here plots or renders: :func:`load_runs` reads run directories into
run records, :func:`leaderboard_context` aggregates them into per-dataset
leaderboards, and :func:`run_context` describes one run for its page. Keeping
this layer free of matplotlib and Jinja2 makes it cheap to unit-test.

A run record is a dict::

    {"dir": Path, "run_id": str, "slug": str, "config": dict, "status": str,
     "reason": str | None, "started": str | None, "finished": str | None,
     "metrics": dict | None, "history": list[dict], "images": {name: Path},
     "epoch_frames": [Path], "latents": Path | None, "problems": [str]}
"""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

MISSING = "—"

# The known metrics, in column order. direction: "min" (lower is better),
# "max" (higher is better) or None (informational, never marked best).
METRICS: list[dict[str, Any]] = [
    {
        "key": "test_total",
        "label": "Loss",
        "unit": "nats",
        "direction": "min",
        "title": "Test loss (reconstruction + regulariser) per image, in nats",
    },
    {
        "key": "test_recon",
        "label": "Recon.",
        "unit": "nats",
        "direction": "min",
        "title": "Test reconstruction term per image, in nats",
    },
    {
        "key": "test_reg",
        "label": "KL / reg.",
        "unit": "nats",
        # Not ranked: a smaller KL is not better in itself (a collapsed
        # posterior has KL 0, and a deterministic AE has no regulariser at all).
        "direction": None,
        "title": "Test regulariser term per image (KL for VAEs; 0 for a plain AE), in nats",
    },
    {
        "key": "test_bpd",
        "label": "Loss",
        "unit": "bits/dim",
        "direction": "min",
        "title": "Test loss in bits per dimension",
    },
    {
        "key": "test_mse",
        "label": "MSE",
        "unit": "per px",
        "direction": "min",
        "title": "Test mean squared error per pixel, pixels in [0, 1]",
    },
    {
        "key": "test_psnr",
        "label": "PSNR",
        "unit": "dB",
        "direction": "max",
        "title": "Test PSNR per image (data_range=1), averaged",
    },
    {
        "key": "test_ssim",
        "label": "SSIM",
        "unit": "",
        "direction": "max",
        "title": "Test SSIM per image (scikit-image defaults), averaged",
    },
    # FID columns are inserted here, one per (extractor, sample count).
    {
        "key": "nll",
        "label": "NLL",
        "unit": "nats",
        "direction": "min",
        "title": "Importance-weighted negative log-likelihood per image, in nats",
    },
    {
        "key": "nll_bpd",
        "label": "NLL",
        "unit": "bits/dim",
        "direction": "min",
        "title": "Importance-weighted negative log-likelihood in bits per dimension",
    },
    {
        "key": "probe_acc",
        "label": "Probe acc.",
        "unit": "0–1",
        "direction": "max",
        "title": "Accuracy of a linear probe on the latent means",
    },
]
FID_POSITION = 7  # index in METRICS before which the FID columns go
TRAIN_TIME = {
    "key": "train_seconds",
    "label": "Train time",
    "unit": "s",
    "direction": None,
    "title": "Training wall time in seconds (informational)",
}
# metrics.json keys that are not leaderboard columns of their own.
NON_COLUMN_KEYS = {
    "fid",
    "fid_extractor",
    "fid_extractor_detail",
    "fid_samples",
    "fid_reference",
    "fid_grayscale",
    "nll_k",
    "regulariser",
    "prior",
    "device",
    "versions",
    "per_class",
    "train_seconds",
    "eval_seconds",
}
ARROWS = {"min": "↓", "max": "↑", None: ""}
# config keys that do not make two runs different configurations.
NOT_CONFIG_KEYS = {"run_id", "seed", "description", "fid_extractor", "fid_samples", "plugin"}


# --------------------------------------------------------------------------- loading


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


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _number(value: Any) -> float | None:
    """A finite float, or None for null, NaN, infinities, booleans and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def read_history(path: Path) -> list[dict[str, float | None]]:
    """Rows of ``history.csv`` as dicts of floats (empty or unparsable cells become None)."""
    rows: list[dict[str, float | None]] = []
    with path.open(newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row: dict[str, float | None] = {}
            for key, text in raw.items():
                if key is None:
                    continue
                try:
                    row[key.strip()] = _number(float(text)) if text not in (None, "") else None
                except ValueError:
                    row[key.strip()] = None
            rows.append(row)
    return rows


def load_run(run_dir: Path, taken: set[str] | None = None) -> dict[str, Any]:
    """Read one run directory into a run record; never raises for bad files.

    Problems (unreadable JSON, a ``done`` run without ``metrics.json``) are
    recorded in ``problems``; a run that cannot be shown on the leaderboard
    gets a status other than ``done`` and a ``reason``.
    """
    run_dir = Path(run_dir)
    problems: list[str] = []
    config: dict[str, Any] = {}
    try:
        loaded = _read_json(run_dir / "config.json")
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
        config = loaded
    except (OSError, ValueError) as exc:
        problems.append(f"config.json unreadable: {exc}")

    status_info: dict[str, Any] = {}
    if (run_dir / "status.json").exists():
        try:
            loaded = _read_json(run_dir / "status.json")
            status_info = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as exc:
            problems.append(f"status.json unreadable: {exc}")

    metrics: dict[str, Any] | None = None
    if (run_dir / "metrics.json").exists():
        try:
            loaded = _read_json(run_dir / "metrics.json")
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            metrics = loaded
        except (OSError, ValueError) as exc:
            problems.append(f"metrics.json unreadable: {exc}")

    history: list[dict[str, float | None]] = []
    if (run_dir / "history.csv").exists():
        try:
            history = read_history(run_dir / "history.csv")
        except (OSError, ValueError, csv.Error) as exc:
            problems.append(f"history.csv unreadable: {exc}")

    status = str(status_info.get("status") or ("done" if metrics is not None else "unknown"))
    reason = status_info.get("reason")
    if status == "done" and metrics is None:
        status = "incomplete"
        reason = reason or "metrics.json missing or unreadable"
    if not config:
        status = "unreadable"
        reason = "; ".join(problems)

    images_dir = run_dir / "images"
    images = {
        name: images_dir / f"{name}.png"
        for name in ("recon", "samples", "interp")
        if (images_dir / f"{name}.png").is_file()
    }
    frames = sorted(images_dir.glob("recon_epoch_*.png")) if images_dir.is_dir() else []
    latents = run_dir / "latents.npz"
    latents_epochs = run_dir / "latents_epochs.npz"

    run_id = str(config.get("run_id") or run_dir.name)
    return {
        "dir": run_dir,
        "run_id": run_id,
        "slug": slugify(run_id, taken),
        "config": config,
        "status": status,
        "reason": None if reason is None else str(reason),
        "started": status_info.get("started"),
        "finished": status_info.get("finished"),
        "metrics": metrics,
        "history": history,
        "images": images,
        "epoch_frames": frames,
        "latents": latents if latents.is_file() else None,
        "latents_epochs": latents_epochs if latents_epochs.is_file() else None,
        "problems": problems,
    }


def find_run_dirs(out_dir: Path) -> list[Path]:
    """Run directories under a benchmark output dir.

    Accepts the output dir (``OUT/runs/<id>/``), the ``runs/`` dir itself, or a
    single run directory.
    """
    out_dir = Path(out_dir)
    if (out_dir / "runs").is_dir():
        base = out_dir / "runs"
    elif (out_dir / "config.json").is_file():
        return [out_dir]
    else:
        base = out_dir
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / "config.json").exists())


def load_runs(out_dir: Path) -> list[dict[str, Any]]:
    """Load every run directory under ``out_dir`` (see :func:`find_run_dirs`)."""
    taken: set[str] = set()
    return [load_run(d, taken) for d in find_run_dirs(out_dir)]


# --------------------------------------------------------------------------- formatting


def fmt_number(value: float | None) -> str:
    """Compact human formatting: 4 significant digits, no exponent for big values."""
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:.1f}"
    return f"{value:.4g}"


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


def aggregate(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean ± sample std (ddof=1) of the non-null values, with display text."""
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "n": 0, "text": MISSING, "sort": ""}
    mean = statistics.fmean(present)
    std = statistics.stdev(present) if len(present) > 1 else None
    text = fmt_number(mean) if std is None else f"{fmt_number(mean)} ± {fmt_std(std)}"
    return {"mean": mean, "std": std, "n": len(present), "text": text, "sort": repr(mean)}


def mark_best(rows: list[dict[str, Any]], columns: list[dict[str, Any]]) -> None:
    """Set ``best`` on the cell(s) with the best mean of each directed column.

    Columns without a direction are never marked; a column with fewer than two
    values has nothing to compare and is not marked either. Ties for best are
    all marked, unless every value ties.
    """
    for col in columns:
        direction = col.get("direction")
        cells = [row["cells"][col["key"]] for row in rows]
        for cell in cells:
            cell["best"] = False
        if direction not in ("min", "max"):
            continue
        present = [c for c in cells if c.get("mean") is not None]
        if len(present) < 2:
            continue
        pick = min if direction == "min" else max
        best = pick(c["mean"] for c in present)
        winners = [c for c in present if math.isclose(c["mean"], best, rel_tol=1e-9, abs_tol=1e-12)]
        if len(winners) == len(present):  # everyone ties: nothing stands out
            continue
        for cell in winners:
            cell["best"] = True


# --------------------------------------------------------------------------- leaderboard


def fid_key(metrics: dict[str, Any]) -> str | None:
    """The column key for a run's FID: one column per (extractor, sample count)."""
    if _number(metrics.get("fid")) is None:
        return None
    return f"fid:{metrics.get('fid_extractor') or 'unknown'}:{metrics.get('fid_samples')}"


def _fid_column(key: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    # The extractor id may itself contain ':' (aebench-classifier:<dataset>:v1:<hash>).
    extractor, samples = key.removeprefix("fid:").rsplit(":", 1)
    short = extractor.split(":")[0]
    details = sorted(
        {
            str(r["metrics"].get("fid_extractor_detail"))
            for r in runs
            if fid_key(r["metrics"]) == key and r["metrics"].get("fid_extractor_detail")
        }
    )
    grayscale = sorted(
        {
            str(r["metrics"].get("fid_grayscale"))
            for r in runs
            if fid_key(r["metrics"]) == key and r["metrics"].get("fid_grayscale")
        }
    )
    n_text = f"n={samples}" if samples not in ("None", "") else "n=?"
    title = f"FID of generated samples vs the test split; extractor {extractor}, {n_text}"
    if details:
        title += f" ({'; '.join(details)})"
    if grayscale:
        title += f"; grayscale→RGB: {', '.join(grayscale)}"
    return {
        "key": key,
        "label": "FID",
        "unit": "",
        "direction": "min",
        "title": title,
        "sub": f"{short}, {n_text}",
        "extractor": extractor,
        "samples": samples,
    }


def _config_key(config: dict[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in config.items() if k not in NOT_CONFIG_KEYS}, sort_keys=True, default=str
    )


def _sort_value(value: Any) -> tuple:
    return (value is None, value if isinstance(value, (int, float)) else str(value))


def _extra_keys(runs: Iterable[dict[str, Any]]) -> list[str]:
    known = {m["key"] for m in METRICS} | NON_COLUMN_KEYS
    extra: list[str] = []
    for run in runs:
        for key, value in run["metrics"].items():
            if key not in known and key not in extra and _number(value) is not None:
                extra.append(key)
    return sorted(extra)


def config_label(config: dict[str, Any]) -> str:
    """Short text naming a configuration, e.g. ``vae-cnn d=16 β=4``."""
    text = f"{config.get('model', '?')} d={config.get('latent_dim', '?')}"
    if config.get("beta") is not None:
        text += f" β={fmt_value(config['beta'])}"
    return text


def _columns_for(done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    present = {k for r in done for k, v in r["metrics"].items() if _number(v) is not None}
    columns = [dict(m) for m in METRICS if m["key"] in present]
    fid_keys = sorted({k for r in done if (k := fid_key(r["metrics"]))})
    fid_cols = [_fid_column(k, done) for k in fid_keys]
    before = {m["key"] for m in METRICS[:FID_POSITION]}
    n_before = sum(1 for c in columns if c["key"] in before)
    columns[n_before:n_before] = fid_cols
    for key in _extra_keys(done):
        columns.append(
            {
                "key": key,
                "label": key,
                "unit": "",
                "direction": None,
                "title": f"Plugin metric {key!r} (direction unknown, not ranked)",
            }
        )
    if "train_seconds" in present:
        columns.append(dict(TRAIN_TIME))
    for col in columns:
        col.setdefault("sub", col["unit"])
        col["arrow"] = ARROWS[col["direction"]]
        col["first"] = "descending" if col["direction"] == "max" else "ascending"
    return columns


def _metric_of(run: dict[str, Any], key: str) -> float | None:
    if key.startswith("fid:"):
        return _number(run["metrics"].get("fid")) if fid_key(run["metrics"]) == key else None
    return _number(run["metrics"].get(key))


def dataset_leaderboard(
    name: str, runs: list[dict[str, Any]], run_href: str = "runs/{slug}.html"
) -> dict[str, Any]:
    """The leaderboard of one dataset: columns, one row per configuration, other runs."""
    done = [r for r in runs if r["status"] == "done" and r["metrics"] is not None]
    columns = _columns_for(done)

    groups: dict[str, list[dict[str, Any]]] = {}
    for run in done:
        groups.setdefault(_config_key(run["config"]), []).append(run)

    rows: list[dict[str, Any]] = []
    for members in groups.values():
        members.sort(key=lambda r: _sort_value(r["config"].get("seed")))
        config = members[0]["config"]
        cells = {
            col["key"]: aggregate([_metric_of(r, col["key"]) for r in members]) for col in columns
        }
        descriptions = sorted(
            {str(r["config"]["description"]) for r in members if r["config"].get("description")}
        )
        rows.append(
            {
                "model": str(config.get("model", "?")),
                "family": config.get("family"),
                "latent_dim": config.get("latent_dim"),
                "beta": config.get("beta"),
                "beta_text": fmt_value(config.get("beta")),
                "label": config_label(config),
                "config": config,
                "description": " / ".join(descriptions),
                "variant": "",
                "n_seeds": len(members),
                "runs": [
                    {
                        "seed": r["config"].get("seed"),
                        "run_id": r["run_id"],
                        "href": run_href.format(slug=r["slug"]),
                    }
                    for r in members
                ],
                "cells": cells,
                "members": members,
            }
        )

    # Rows sharing (model, latent_dim, beta) but differing in other settings:
    # name the settings that differ, so they cannot be mistaken for each other.
    by_name: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        by_name.setdefault((row["model"], str(row["latent_dim"]), str(row["beta"])), []).append(row)
    for same in by_name.values():
        if len(same) < 2:
            continue
        keys = sorted({k for row in same for k in row["config"]} - NOT_CONFIG_KEYS)
        differing = [
            k
            for k in keys
            if len({json.dumps(row["config"].get(k), sort_keys=True, default=str) for row in same})
            > 1
        ]
        for row in same:
            row["variant"] = ", ".join(f"{k}={fmt_value(row['config'].get(k))}" for k in differing)

    rows.sort(
        key=lambda r: (
            r["model"],
            _sort_value(r["latent_dim"]),
            _sort_value(r["beta"]),
            r["variant"],
        )
    )
    for i, row in enumerate(rows):
        row["index"] = i
    mark_best(rows, columns)

    done_ids = {id(r) for r in done}
    others = [
        {
            "run_id": r["run_id"],
            "href": run_href.format(slug=r["slug"]),
            "model": str(r["config"].get("model", "?")),
            "label": config_label(r["config"]) if r["config"] else r["dir"].name,
            "seed": r["config"].get("seed"),
            "status": r["status"],
            "reason": r["reason"] or MISSING,
        }
        for r in runs
        if id(r) not in done_ids
    ]
    others.sort(key=lambda o: o["run_id"])
    return {
        "name": name,
        "slug": slugify(name),
        "columns": columns,
        "rows": rows,
        "others": others,
        "n_runs": len(runs),
        "n_done": len(done),
    }


def leaderboard_context(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Context for ``index.html``: one leaderboard per dataset (sorted by name)."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        name = str(run["config"].get("dataset") or "(unknown dataset)")
        by_dataset.setdefault(name, []).append(run)
    datasets = [dataset_leaderboard(name, by_dataset[name]) for name in sorted(by_dataset)]
    taken: set[str] = set()
    for ds in datasets:
        ds["slug"] = slugify(ds["name"], taken)
    return {
        "datasets": datasets,
        "n_runs": len(runs),
        "n_done": sum(ds["n_done"] for ds in datasets),
        "n_not_done": sum(len(ds["others"]) for ds in datasets),
    }


# --------------------------------------------------------------------------- run page


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _wall_seconds(run: dict[str, Any]) -> float | None:
    start, end = _parse_time(run.get("started")), _parse_time(run.get("finished"))
    if start is None or end is None:
        return None
    try:
        return (end - start).total_seconds()
    except TypeError:  # naive vs aware
        return None


def run_context(run: dict[str, Any]) -> dict[str, Any]:
    """Context for one run's page (without image paths; the renderer adds those)."""
    config, metrics = run["config"], run["metrics"] or {}
    fid_detail = metrics.get("fid_extractor")
    if metrics.get("fid_extractor_detail"):
        fid_detail = f"{fid_detail} ({metrics['fid_extractor_detail']})"
    settings = [
        ("Run ID", run["run_id"]),
        ("Status", run["status"]),
        ("Model", config.get("model")),
        ("Family", config.get("family")),
        ("Architecture", config.get("arch")),
        ("Dataset", config.get("dataset")),
        ("Latent dim", config.get("latent_dim")),
        ("β", config.get("beta")),
        ("Seed", config.get("seed")),
        ("Epochs", config.get("epochs")),
        ("Batch size", config.get("batch_size")),
        ("Learning rate", config.get("lr")),
        ("Training-set limit", config.get("limit")),
        ("Likelihood", config.get("likelihood")),
        ("Regulariser", metrics.get("regulariser")),
        ("Prior", metrics.get("prior")),
        ("Profile", config.get("profile")),
        ("FID extractor", fid_detail or config.get("fid_extractor")),
        ("FID samples", metrics.get("fid_samples", config.get("fid_samples"))),
        ("FID reference", metrics.get("fid_reference")),
        ("FID grayscale→RGB", metrics.get("fid_grayscale")),
        ("NLL importance samples (k)", metrics.get("nll_k")),
        ("Device", metrics.get("device")),
        ("Train time", fmt_seconds(_number(metrics.get("train_seconds")))),
        ("Eval time", fmt_seconds(_number(metrics.get("eval_seconds")))),
        ("Wall time (start → finish)", fmt_seconds(_wall_seconds(run))),
        ("Started", run.get("started")),
        ("Finished", run.get("finished")),
        ("Plugin", config.get("plugin")),
    ]
    settings_rows = [{"name": k, "value": fmt_value(v)} for k, v in settings]

    metric_rows = []
    if metrics:
        defs = [
            *METRICS[:FID_POSITION],
            {"key": "fid", "label": "FID", "unit": "", "direction": "min", "title": "FID"},
            *METRICS[FID_POSITION:],
        ]
        for m in defs:
            if m["key"] in metrics:
                unit = m["unit"]
                if m["key"] == "fid":
                    unit = (
                        f"{metrics.get('fid_extractor') or 'unknown'}, "
                        f"n={metrics.get('fid_samples')}"
                    )
                metric_rows.append(
                    {
                        "label": m["label"],
                        "unit": unit,
                        "arrow": ARROWS[m["direction"]],
                        "value": fmt_value(_number(metrics[m["key"]])),
                    }
                )
        for key in _extra_keys([{"metrics": metrics}]):
            metric_rows.append(
                {"label": key, "unit": "", "arrow": "", "value": fmt_value(_number(metrics[key]))}
            )

    per_class_rows = []
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict):
        for name, vals in per_class.items():
            vals = vals if isinstance(vals, dict) else {}
            per_class_rows.append(
                {
                    "name": str(name),
                    "mse": fmt_value(_number(vals.get("mse"))),
                    "psnr": fmt_value(_number(vals.get("psnr"))),
                    "ssim": fmt_value(_number(vals.get("ssim"))),
                }
            )

    versions = metrics.get("versions")
    version_rows = (
        [{"name": str(k), "value": fmt_value(v)} for k, v in versions.items()]
        if isinstance(versions, dict)
        else []
    )
    model_config = config.get("model_config")
    return {
        "run_id": run["run_id"],
        "slug": run["slug"],
        "title": config_label(config) if config else run["run_id"],
        "model": str(config.get("model", "?")),
        "dataset": str(config.get("dataset") or "(unknown dataset)"),
        "description": config.get("description"),
        "status": run["status"],
        "reason": run["reason"],
        "problems": run["problems"],
        "settings": settings_rows,
        "metrics": metric_rows,
        "per_class": per_class_rows,
        "versions": version_rows,
        "model_config": (
            json.dumps(model_config, indent=2, sort_keys=True, default=str)
            if model_config
            else None
        ),
        "n_epochs": len(run["history"]),
    }
