"""The results table: one row per run, rebuilt from run directories.

Columns: the run's config (``model``, ``dataset``, ``latent_dim``, ``beta``,
``seed``, ...), its ``status`` and failure ``reason``, and every scalar metric
from ``metrics.json`` (nested values such as ``per_class`` and ``versions`` are
kept as JSON strings). Saved as ``results.csv`` and ``results.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from aebench import io as aio

CONFIG_COLUMNS = (
    "run_id",
    "status",
    "reason",
    "dataset",
    "model",
    "family",
    "arch",
    "latent_dim",
    "beta",
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "limit",
    "likelihood",
    "profile",
    "plugin",
)


def read_run(run_dir: Path) -> dict[str, Any] | None:
    """One row for a run directory, or None if it has no readable config."""
    try:
        config = aio.read_json(run_dir / "config.json")
    except (FileNotFoundError, ValueError):
        return None
    try:
        status = aio.read_json(run_dir / "status.json")
    except (FileNotFoundError, ValueError):
        status = {"status": "running", "reason": None}
    row: dict[str, Any] = {k: config.get(k) for k in CONFIG_COLUMNS if k in config}
    row["run_id"] = config.get("run_id", run_dir.name)
    row["status"] = status.get("status")
    row["reason"] = status.get("reason")
    row["finished"] = status.get("finished")
    metrics_path = run_dir / "metrics.json"
    if row["status"] == "done" and metrics_path.is_file():
        for key, value in aio.read_json(metrics_path).items():
            row[key] = (
                json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            )
    return row


def collect(out_dir: str | Path) -> pd.DataFrame:
    """All runs under ``out_dir/runs`` as a DataFrame (sorted for stable output)."""
    runs = Path(out_dir) / "runs"
    rows = (
        [r for d in sorted(runs.iterdir()) if d.is_dir() and (r := read_run(d))]
        if runs.is_dir()
        else []
    )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(CONFIG_COLUMNS))
    return frame.sort_values(
        ["dataset", "model", "latent_dim", "run_id"], kind="stable", ignore_index=True
    )


def write(out_dir: str | Path) -> pd.DataFrame:
    """Rebuild ``results.csv`` and ``results.parquet`` from the run directories."""
    out_dir = Path(out_dir)
    frame = collect(out_dir)
    aio.save_with(out_dir / "results.csv", lambda p: frame.to_csv(p, index=False))
    aio.save_with(out_dir / "results.parquet", lambda p: _parquet(frame, p))
    return frame


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    # Mixed-type object columns (e.g. beta None/float) are fine for pyarrow;
    # anything else is stored as text rather than failing the whole table.
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object:
            kinds = {type(v) for v in safe[col].dropna()}
            if len(kinds) > 1:
                safe[col] = safe[col].map(lambda v: None if v is None else str(v))
    safe.to_parquet(path, index=False)


def load(out_dir: str | Path) -> pd.DataFrame:
    """Read the stored table (Parquet if present, else CSV)."""
    out_dir = Path(out_dir)
    if (out_dir / "results.parquet").is_file():
        return pd.read_parquet(out_dir / "results.parquet")
    return pd.read_csv(out_dir / "results.csv")
