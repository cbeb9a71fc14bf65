"""Export runs to an experiment tracker (MLflow), so users keep the tracker they have.

``aebench export OUT --mlflow URI`` (or ``aebench run ... --mlflow URI``) copies
every finished run of the run store into an MLflow experiment: one MLflow run
per aebench run, with

* **params**: the run's settings (model, dataset, seed, epochs, batch size,
  learning rate, ...), every model option as ``model.<name>`` and every metric
  budget as ``metric.<name>``;
* **metrics**: every numeric metric of ``metrics.json``, and the per-epoch
  history (``train_total``, ``val_total``, ``val_ssim``, ...) as steps;
* **tags**: ``aebench.run_id``, ``aebench.key`` (the configuration's hash),
  ``aebench.version``, the model family and the plugin that provided it;
* **artifacts**: ``config.json``, ``metrics.json``, ``history.csv`` and the run's
  images (add the weights with ``weights=True``).

Exporting again skips runs already in the experiment (matched by
``aebench.key``), so it can follow every ``aebench run``. A local folder or a
``file:`` URI uses MLflow's file store, which works offline (recent MLflow asks
to opt in to it: aebench sets ``MLFLOW_ALLOW_FILE_STORE=true`` for such URIs).
Needs the optional extra ``aebench[mlflow]`` (``mlflow-skinny``); a database store
(``sqlite:///mlflow.db``) also needs SQLAlchemy and Alembic. :func:`check_mlflow`
checks the target before any work (a server must answer within a few seconds).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aebench._version import __version__
from aebench.errors import ConfigError
from aebench.store import RunRecord, RunStore

EXPERIMENT = "aebench"
PARAMS: tuple[str, ...] = ("model", "dataset", "seed", "epochs", "batch_size", "lr", "limit")
PARAMS += ("val_size", "profile", "device", "binarize", "deterministic", "compile")


@dataclass
class ExportSummary:
    uri: str
    experiment: str
    exported: list[str]
    skipped: list[str]


PROBE_SECONDS = 5.0
"""How long the check before any work waits for an MLflow server to answer."""

DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def check_mlflow(
    uri: str, experiment: str = EXPERIMENT, experiment_flag: str = "--experiment"
) -> str:
    """Check an export target before any work (``aebench run --mlflow`` checks it before
    training): the experiment name, the optional extra, and the target itself: a local
    folder that can be created and written, a database store MLflow can open, a server
    that answers within a few seconds (MLflow itself retries an unreachable server for
    minutes). Returns the tracking URI (a folder as a ``file:`` URI); one-line
    :class:`~aebench.errors.ConfigError` otherwise, naming the option."""
    if not str(experiment).strip():
        raise ConfigError(f"{experiment_flag} is empty: give the MLflow experiment's name")
    if not str(uri).strip():
        raise ConfigError("--mlflow is empty: give a tracking URI or a folder")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--mlflow needs the optional dependency 'mlflow-skinny': pip install 'aebench[mlflow]'"
        ) from None
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if not scheme or scheme == "file":
        return _check_folder(uri)
    if scheme in DATABASE_SCHEMES:
        _check_database(uri)
    elif scheme in ("http", "https"):
        _probe_server(uri)
    return uri


def _check_folder(uri: str) -> str:
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    text = url2pathname(urlsplit(uri).path) if uri.startswith("file:") else uri
    path = Path(text).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--mlflow {uri}: a file, not a folder (give a folder or a URI)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--mlflow {uri}: cannot create or write to this folder ({exc.strerror or exc})"
        ) from None
    return path.as_uri()


def _check_database(uri: str) -> None:
    """MLflow's database stores need SQLAlchemy and Alembic, which the ``aebench[mlflow]``
    extra (``mlflow-skinny``) leaves out."""
    import importlib.util

    missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"--mlflow {uri}: MLflow's database stores need {' and '.join(missing)} "
            f"(pip install {' '.join(missing)}); or give a folder, MLflow's file store"
        )


def _probe_server(uri: str, timeout: float = PROBE_SECONDS) -> None:
    """Any HTTP answer will do (the server's checks come with the first request)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            reason = f"no answer within {timeout:g} s"
        elif isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror
        raise ConfigError(f"--mlflow {uri}: no MLflow server answers there ({reason})") from None


def _client(uri: str, experiment: str) -> tuple[Any, str]:
    uri = check_mlflow(uri, experiment)
    from mlflow.tracking import MlflowClient

    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        return MlflowClient(uri), uri
    except Exception as exc:  # MlflowException: a URI MLflow cannot open
        raise ConfigError(f"--mlflow {uri}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def export_mlflow(
    out_dir: str | Path,
    uri: str,
    experiment: str = EXPERIMENT,
    weights: bool = False,
) -> ExportSummary:
    """Export the finished runs under ``out_dir`` to MLflow at ``uri`` (see the module doc)."""
    client, uri = _client(uri, experiment)
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else client.create_experiment(experiment)
    except MlflowException as exc:  # the store refused the experiment (its name, a bad store)
        raise ConfigError(f"--mlflow {uri}: {_first_line(exc)}") from None
    known = {
        r.data.tags.get("aebench.key")
        for r in client.search_runs([exp_id], max_results=50000)
        if r.data.tags.get("aebench.key")
    }
    summary = ExportSummary(uri, experiment, [], [])
    for record in RunStore(out_dir).records():
        if not record.done or record.key in known:
            summary.skipped.append(record.run_id)
            continue
        run = client.create_run(exp_id, run_name=record.run_id, tags=_tags(record))
        rid = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, _text(v)) for k, v in _params(record).items()]
        metrics = [Metric(k, v, now, 0) for k, v in _metrics(record).items()]
        for row in record.history:
            step = int(row.get("epoch") or 0)
            metrics += [
                Metric(k, float(v), now, step)
                for k, v in row.items()
                if k != "epoch" and v is not None
            ]
        for start in range(0, max(len(params), len(metrics)), 100):  # MLflow's batch limits
            client.log_batch(
                rid, params=params[start : start + 100], metrics=metrics[start : start + 100]
            )
        for name in ("config.json", "metrics.json", "history.csv"):
            if (path := record.file(name)) is not None:
                client.log_artifact(rid, str(path))
        for path in [*record.images.values(), *record.epoch_frames]:
            client.log_artifact(rid, str(path), artifact_path="images")
        if weights and (path := record.file("weights.safetensors")) is not None:
            client.log_artifact(rid, str(path))
        client.set_terminated(rid, "FINISHED")
        summary.exported.append(record.run_id)
    return summary


def _tags(record: RunRecord) -> dict[str, str]:

    config = record.config
    return {
        "aebench.run_id": record.run_id,
        "aebench.key": str(record.key),
        "aebench.version": __version__,
        "aebench.family": str(config.get("family", "")),
        "aebench.plugin": str(config.get("plugin", "")),
        "aebench.status": record.status,
        "mlflow.runName": record.run_id,
    }


def _params(record: RunRecord) -> dict[str, Any]:
    config = record.config
    out: dict[str, Any] = {k: config.get(k) for k in PARAMS if k in config}
    model = config.get("resolved_model_config") or config.get("model_config") or {}
    out.update({f"model.{k}": v for k, v in model.items()})
    out.update({f"metric.{k}": v for k, v in (config.get("metric_options") or {}).items()})
    out.update({f"data.{k}": v for k, v in (config.get("dataset_options") or {}).items()})
    return out


def _metrics(record: RunRecord) -> dict[str, float]:
    out = {}
    for key, value in (record.metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out[key] = float(value)
    return out


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:500]  # MLflow's limit for a param value
