"""The results table: one row per run, rebuilt from the run store.

Columns, in order: the run (``run_id``, ``status``, ``reason``, ``finished``,
``dataset``, ``model``, ``family``, ``arch``); its model options (``latent_dim``
and ``likelihood`` always, plus every option that varies between runs or that
a run set, such as ``beta``); its training settings (``seed``, ``epochs``,
``batch_size``, ``lr``, ``limit``, ``val_size``, ``profile``, ``plugin``,
``dataset_options``, ``binarize``, ``deterministic``, ``compile``); then
every metric column in the order the metrics registry declares them
(``aebench metrics``), then the other values the metrics stored (FID
extractor, sample counts, ...). Nested values (``per_class``, ``versions``)
are JSON strings. Metrics that do not apply to a
run are empty. Corrupt runs are left out and listed in ``frame.attrs["corrupt"]``.
Saved as ``results.csv`` and ``results.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from aebench import files
from aebench.catalog import column_specs
from aebench.store import RunRecord, RunStore

RUN_COLUMNS = ("run_id", "status", "reason", "finished", "dataset", "model", "family", "arch")
ALWAYS_OPTIONS = ("latent_dim", "likelihood")
SETTING_COLUMNS = (
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "limit",
    "val_size",
    "profile",
    "plugin",
    "dataset_options",
    "binarize",
    "deterministic",
    "compile",
)
SORT = ["dataset", "model", "latent_dim", "run_id"]


def option_columns(records: list[RunRecord]) -> list[str]:
    """Model options that get a column: always-shown ones, varied ones, and set ones."""
    names: list[str] = list(ALWAYS_OPTIONS)
    seen: dict[str, set[str]] = {}
    for r in records:
        for name in r.config.get("model_config", {}):
            seen.setdefault(name, set())
        for name in r.config.get("shown_options") or ():
            if name not in names:
                names.append(name)
    for name, values in seen.items():
        for r in records:
            values.add(json.dumps(r.config.get("model_config", {}).get(name), sort_keys=True))
        if len(values) > 1 and name not in names:
            names.append(name)
    return names


def _column_name(option: str, taken: set[str]) -> str:
    return f"model.{option}" if option in taken else option


def row(record: RunRecord, options: list[str], reserved: set[str]) -> dict[str, Any]:
    """One run as a flat dict (see the module docstring for the columns)."""
    config = record.config
    out: dict[str, Any] = {k: config.get(k) for k in RUN_COLUMNS}
    out.update(
        run_id=record.run_id, status=record.status, reason=record.reason, finished=record.finished
    )
    model_config = config.get("model_config", {})
    for name in options:
        value = model_config.get(name)
        out[_column_name(name, reserved)] = (
            json.dumps(value) if isinstance(value, (list, dict)) else value
        )
    for key in SETTING_COLUMNS:
        value = config.get(key)
        out[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
    if record.done:
        for key, value in (record.metrics or {}).items():
            if key == "not_applicable":
                continue
            out[key] = (
                json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            )
    return out


def collect(out_dir: str | Path) -> pd.DataFrame:
    """All readable runs under ``out_dir`` as a DataFrame (sorted for stable output)."""

    records = RunStore(out_dir).records(history=False)
    good = [r for r in records if r.corrupt is None]
    corrupt = [(r.run_id, r.corrupt) for r in records if r.corrupt is not None]
    options = option_columns(good)
    metric_keys = [c.key for c in column_specs()]
    stored = {k for r in good for k in (r.metrics or {})}
    reserved = set(RUN_COLUMNS) | set(SETTING_COLUMNS) | set(metric_keys) | stored
    frame = pd.DataFrame([row(r, options, reserved) for r in good])
    option_names = [_column_name(o, reserved) for o in options]
    order = [*RUN_COLUMNS, *option_names, *SETTING_COLUMNS]
    if frame.empty:
        frame = pd.DataFrame(columns=order)
    else:
        metrics_first = [k for k in metric_keys if k in frame.columns]
        rest = [c for c in frame.columns if c not in order and c not in metrics_first]
        frame = frame[[*order, *metrics_first, *rest]]
        frame = frame.sort_values(SORT, kind="stable", ignore_index=True)
    frame.attrs["corrupt"] = corrupt
    return frame


def write(out_dir: str | Path) -> pd.DataFrame:
    """Rebuild ``results.csv`` and ``results.parquet`` from the run directories."""
    out_dir = Path(out_dir)
    frame = collect(out_dir)
    files.save_with(out_dir / "results.csv", lambda p: frame.to_csv(p, index=False))
    files.save_with(out_dir / "results.parquet", lambda p: _parquet(frame, p))
    return frame


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    # Mixed-type object columns (e.g. beta None/float) are fine for pyarrow;
    # anything else is stored as text rather than failing the whole table.
    safe = frame.copy()
    safe.attrs = {}
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
