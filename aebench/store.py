"""The run store: the one owner of run directories.

A benchmark output folder ``OUT`` holds one directory per run under
``OUT/runs/<run_id>/``::

    config.json          the run's configuration, its key and the store format version
    status.json          running | done | failed | interrupted, reason, start/finish times
    history.csv          one row per epoch (train/validation loss terms, image metrics)
    metrics.json         every metric of the finished run (see `aebench metrics`)
    weights.safetensors  the trained weights (best validation epoch)
    latents.npz          test latent means (z) and labels (y)
    latents_epochs.npz   validation latent means after every epoch
    images/*.png         reconstructions, samples, interpolation, per-epoch snapshots
    error.txt            the traceback of a failed run

Everything is written through :class:`RunWriter` (atomically, file by file)
and read through :class:`RunStore` (:meth:`RunStore.read`,
:meth:`RunStore.records`), which never raises for a damaged run: it returns a
:class:`RunRecord` whose ``corrupt`` says what is wrong, so listings, the
results table and the report skip that run by name and go on with the others.

Cells are claimed before they run (:meth:`RunStore.claim`): a claim is a file
``OUT/.claims/<key>.claim`` created atomically (``O_EXCL``) and renewed by a
heartbeat while the run trains, so two processes, workers, Ray tasks or SLURM
jobs sharing one output folder never train the same cell twice, and a cell
whose worker died (its claim not renewed for :data:`LEASE_SECONDS`, or its
process gone on this host) is taken over by the next one that asks.

Format versions: 1 is aebench 0.1.0 (no version recorded; read and upgraded in
memory), 2 is this one. A run written by a newer aebench is reported, not
guessed at.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aebench import files
from aebench.errors import ConfigError, DataError

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
STATUSES = ("running", "done", "failed", "interrupted")
RUNS = "runs"
CLAIMS = ".claims"
LEASE_SECONDS = 120.0
"""A claim not renewed for this long is stale: its worker is presumed dead."""
IMAGE_NAMES = ("recon", "samples", "interp", "generated")
REQUIRED_CONFIG = ("model", "dataset", "seed", "model_config")
MAX_SEED = 2**32 - 1
"""The largest seed: the generators aebench seeds (NumPy's, scikit-learn's, torch's
CUDA one) use 32 bits, so larger seeds would alias smaller ones."""
INT64 = 2**63
"""JSON integers at or beyond this magnitude fit no column type (pandas, Parquet, torch)."""


class RunFormatError(DataError):
    """A run directory cannot be used: corrupt files or an unknown format version."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """One run as read from disk. ``corrupt`` is None for a usable run, else why not."""

    path: Path
    run_id: str
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "incomplete"
    reason: str | None = None
    started: str | None = None
    finished: str | None = None
    metrics: dict[str, Any] | None = None
    history: list[dict[str, float | None]] = field(default_factory=list)
    format_version: int | None = None
    corrupt: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status == "done" and self.corrupt is None and self.metrics is not None

    @property
    def key(self) -> str | None:
        return self.config.get("key")

    @property
    def images(self) -> dict[str, Path]:
        folder = self.path / "images"
        return {n: folder / f"{n}.png" for n in IMAGE_NAMES if (folder / f"{n}.png").is_file()}

    @property
    def epoch_frames(self) -> list[Path]:
        folder = self.path / "images"
        return sorted(folder.glob("recon_epoch_*.png")) if folder.is_dir() else []

    def file(self, name: str) -> Path | None:
        """``path / name`` if that file exists (``latents.npz``, ``weights.safetensors``)."""
        p = self.path / name
        return p if p.is_file() else None

    @property
    def not_applicable(self) -> set[str]:
        return set((self.metrics or {}).get("not_applicable") or ())


class RunWriter:
    """Writes one run's files, each atomically. Obtained from :meth:`RunStore.start`."""

    def __init__(self, path: Path, started: str) -> None:
        self.path = path
        self.started = started
        self.images = path / "images"

    def history(self, rows: list[dict[str, float]]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        files.write_text(self.path / "history.csv", buf.getvalue())

    def update_config(self, **values: Any) -> None:
        """Add facts known only once the run started (``resolved_model_config``)."""
        config = files.read_json(self.path / "config.json")
        files.write_json(self.path / "config.json", {**config, **values})

    def image_path(self, name: str) -> Path:
        """Where image ``name`` (``recon``, ``recon_epoch_003``) goes; write it atomically."""
        return self.images / f"{name}.png"

    def arrays(self, name: str, **arrays: Any) -> None:
        """``name.npz`` (compressed numpy arrays)."""
        import numpy as np

        def save(p: Path) -> None:
            with open(p, "wb") as fh:
                np.savez_compressed(fh, **arrays)

        files.save_with(self.path / f"{name}.npz", save)

    def weights(self, model: Any) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        files.save_with(self.path / "weights.safetensors", lambda p: save_file(state, str(p)))

    def metrics(self, metrics: dict[str, Any]) -> None:
        files.write_json(self.path / "metrics.json", metrics)

    def error(self, text: str) -> None:
        files.write_text(self.path / "error.txt", text)

    def status(self, status: str, reason: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        files.write_json(
            self.path / "status.json",
            {
                "status": status,
                "reason": reason,
                "started": self.started,
                "finished": None if status == "running" else now(),
            },
        )


class RunStore:
    """The runs under one benchmark output folder (``root/runs/<run_id>/``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / RUNS

    @classmethod
    def locate(cls, path: str | Path) -> tuple[RunStore, str | None]:
        """The store holding ``path``: an output folder, its ``runs/`` folder, or one run
        directory (then also that run's id). Raises a one-line DataError otherwise."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"{str(path)!r} does not exist")
        if (path / "config.json").is_file() or (
            path.parent.name == RUNS and path.parent.is_dir() and path.is_dir()
        ):
            return cls(path.parent.parent), path.name
        if path.name == RUNS and path.is_dir():
            return cls(path.parent), None
        if (path / RUNS).is_dir():
            return cls(path), None
        raise DataError(
            f"{str(path)!r} is not an aebench output folder (expected {path / RUNS}/<run_id>/) "
            "nor a run directory"
        )

    # -- listing and reading ---------------------------------------------------
    def path(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.runs_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and any(p.iterdir())
        )

    def records(self, history: bool = True) -> list[RunRecord]:
        """Every run, usable or not (check ``corrupt``), in run-id order."""
        return [self.read(run_id, history=history) for run_id in self.run_ids()]

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.records())

    def find(self, key: str) -> RunRecord | None:
        """The run whose configuration hashes to ``key`` (its id ends with ``_<key>``)."""
        if not self.runs_dir.is_dir():
            return None
        for p in sorted(self.runs_dir.glob(f"*_{key}")):
            if p.is_dir():
                return self.read(p.name, history=False)
        return None

    def is_done(self, key: str) -> bool:
        record = self.find(key)
        return record is not None and record.done

    def read(self, run_id: str, history: bool = True) -> RunRecord:
        """Read one run; damaged files make ``corrupt`` say which and why, never raise."""
        path = self.path(run_id)
        record = RunRecord(path=path, run_id=run_id)
        try:
            _read_into(record, history)
        except _Corrupt as exc:
            record.corrupt = str(exc)
            record.status = "corrupt"
            record.reason = str(exc)
        return record

    def get(self, run_id: str) -> RunRecord:
        """A usable, finished run, or a one-line RunFormatError saying why not."""
        record = self.read(run_id, history=False)
        if record.corrupt:
            raise RunFormatError(f"run {run_id!r} is corrupt: {record.corrupt}")
        if not record.done:
            raise RunFormatError(
                f"run {run_id!r} is not a finished run (status: {record.status}"
                + (f", {record.reason}" if record.reason else "")
                + ")"
            )
        return record

    # -- writing ---------------------------------------------------------------
    def start(self, run_id: str, config: dict[str, Any]) -> RunWriter:
        """Begin (or redo) run ``run_id``: a clean directory, its config and status ``running``."""
        path = self.path(run_id)
        key = config.get("key")
        stale = [path] + (list(self.runs_dir.glob(f"*_{key}")) if key else [])
        for old in stale:  # a failed, interrupted or redone run starts clean, under one name
            if old.is_dir():
                shutil.rmtree(old)
        (path / "images").mkdir(parents=True)
        files.write_json(path / "config.json", {"format_version": FORMAT_VERSION, **config})
        writer = RunWriter(path, now())
        writer.status("running")
        return writer

    def check_writable(self) -> None:
        """Raise a one-line error when runs cannot be written under ``root``."""
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"--out {self.root}: cannot write there ({exc.strerror})") from None

    # -- claims ----------------------------------------------------------------
    @contextlib.contextmanager
    def claim(
        self, key: str, lease: float = LEASE_SECONDS, wait: float = 0.0
    ) -> Iterator[Claim | None]:
        """Claim cell ``key`` for this process: yields a :class:`Claim` (renewed in the
        background until the block ends, then released), or None when a live worker
        holds it. ``wait``: seconds to keep trying while another worker holds it (a
        rerun of a cell whose node died waits until that worker's lease runs out)."""
        path = self.root / CLAIMS / f"{key}.claim"
        deadline = time.monotonic() + wait
        claim = Claim.acquire(path, lease)
        while claim is None and time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
            claim = Claim.acquire(path, lease)
        if claim is None:
            yield None
            return
        try:
            yield claim
        finally:
            claim.release()

    def claimed(self, key: str, lease: float = LEASE_SECONDS) -> bool:
        """Whether a live worker holds cell ``key`` now."""
        path = self.root / CLAIMS / f"{key}.claim"
        return path.exists() and not Claim.is_stale(path, lease)


class Claim:
    """A held claim on one cell: a file holding its owner, renewed by a heartbeat thread."""

    def __init__(self, path: Path, token: str, lease: float) -> None:
        self.path = path
        self.token = token
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="aebench-claim")
        self._thread.start()

    @staticmethod
    def owner() -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex}

    @classmethod
    def acquire(cls, path: Path, lease: float) -> Claim | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            me = cls.owner()
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not cls.is_stale(path, lease):
                    return None
                cls._break(path)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({**me, "claimed": now()}, fh)
            return cls(path, me["token"], lease)
        return None

    @staticmethod
    def read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @classmethod
    def is_stale(cls, path: Path, lease: float) -> bool:
        """Not renewed within ``lease`` seconds, or held by a process of this host that
        no longer exists. (A claim being written is not stale.)"""
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        if age > lease:
            return True
        holder = cls.read(path)
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            try:
                os.kill(holder["pid"], 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    @staticmethod
    def _break(path: Path) -> None:
        """Move a stale claim aside (atomic: of several successors one wins the rename)."""
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(f"{path.name}.stale-{uuid.uuid4().hex[:8]}"))
        for old in path.parent.glob(f"{path.name}.stale-*"):
            with contextlib.suppress(FileNotFoundError):
                old.unlink()

    def _beat(self) -> None:
        while not self._stop.wait(min(30.0, self.lease / 4)):
            if self.read(self.path).get("token") != self.token:
                return  # taken over (we were presumed dead): stop renewing
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self.read(self.path).get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


# -- reading helpers ------------------------------------------------------------------
class _Corrupt(Exception):
    pass


def _json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        data = files.read_json(path)
    except FileNotFoundError:
        raise _Corrupt(f"{what} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _Corrupt(f"{what} is not valid JSON ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise _Corrupt(f"{what} is not a JSON object")
    return data


def _check_ints(value: Any, what: str, where: str = "") -> None:
    """Refuse integers no table column can hold (``1e20`` written as an integer)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_ints(v, what, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_ints(v, what, f"{where}[{i}]")
    elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        raise _Corrupt(f"{what} has an out-of-range integer {value} at {where or 'the top'}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_into(record: RunRecord, history: bool) -> None:
    path = record.path
    config = _json_object(path / "config.json", "config.json")
    version = config.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise _Corrupt(f"config.json has an invalid format_version {version!r}")
    if version not in READABLE_FORMATS:
        raise _Corrupt(
            f"written in run format {version}, which this aebench (reads formats "
            f"{READABLE_FORMATS[0]}-{READABLE_FORMATS[-1]}) does not know: upgrade aebench"
        )
    missing = [k for k in REQUIRED_CONFIG if k not in config]
    if missing:
        raise _Corrupt(f"config.json lacks {', '.join(missing)}")
    if not isinstance(config["model_config"], dict):
        raise _Corrupt("config.json's model_config is not an object")
    seed = config["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise _Corrupt(f"config.json has an invalid seed {seed!r} (expected 0 to {MAX_SEED})")
    _check_ints(config, "config.json")
    record.format_version = version
    record.config = upgrade_config(config) if version == 1 else config
    record.run_id = str(config.get("run_id") or path.name)

    status_path = path / "status.json"
    if status_path.exists():
        status = _json_object(status_path, "status.json")
        if status.get("status") not in STATUSES:
            raise _Corrupt(f"status.json has an unknown status {status.get('status')!r}")
        record.status = status["status"]
        record.reason = None if status.get("reason") is None else str(status["reason"])
        record.started, record.finished = status.get("started"), status.get("finished")
    else:
        record.status = "incomplete"
        record.reason = "no status.json: the run stopped before it was written"

    metrics_path = path / "metrics.json"
    if record.status == "done" or metrics_path.exists():
        metrics = _json_object(metrics_path, "metrics.json")
        _check_ints(metrics, "metrics.json")
        record.metrics = upgrade_metrics(metrics, record.config) if version == 1 else metrics

    history_path = path / "history.csv"
    if history_path.exists():
        rows = read_history(history_path)  # validates even when not kept
        if history:
            record.history = rows
    elif record.status == "done":
        record.problems.append("history.csv is missing")


def read_history(path: Path) -> list[dict[str, float | None]]:
    """``history.csv`` as one dict of floats per epoch (empty cells None, inf/nan None)."""
    try:
        text = path.read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _Corrupt(f"history.csv is unreadable ({_first_line(exc)})") from None
    out: list[dict[str, float | None]] = []
    for i, raw in enumerate(rows, start=2):
        if None in raw or "epoch" not in raw:
            raise _Corrupt(f"history.csv is malformed (line {i} does not match its header)")
        row: dict[str, float | None] = {}
        for key, cell in raw.items():
            if cell in (None, ""):
                row[key.strip()] = None
                continue
            try:
                value = float(cell)
            except ValueError:
                raise _Corrupt(
                    f"history.csv line {i}: {key.strip()!r} is not a number ({cell[:20]!r})"
                ) from None
            row[key.strip()] = value if math.isfinite(value) else None
        out.append(row)
    return out


# -- format 1 (aebench 0.1.0) ---------------------------------------------------
_V1_METRIC_OPTIONS = ("fid_extractor", "fid_samples", "nll_k", "nll_samples", "probe_samples")


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A format-1 config.json in this version's shape (in memory; the file is untouched)."""
    out = dict(config)
    out["metric_options"] = {k: out.pop(k) for k in _V1_METRIC_OPTIONS if k in out}
    beta = out.pop("beta", None)
    out.pop("latent_dim", None)
    out.pop("likelihood", None)
    out["shown_options"] = ["latent_dim"] + (["beta"] if beta is not None else [])
    out.setdefault("dataset_options", {})
    return out


def upgrade_metrics(metrics: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Format 1 stored 0 for an AE's KL and None for its NLL: mark both not applicable;
    its ``prior`` (how samples are drawn) is now ``sampler``."""
    out = dict(metrics)
    if "prior" in out:  # how samples were drawn: renamed in format 2
        out["sampler"] = out.pop("prior")
    na = list(out.get("not_applicable") or [])
    if out.get("regulariser") == "none":
        for key in ("test_reg", "nll", "nll_bpd"):
            out[key] = None
            if key not in na:
                na.append(key)
    out["not_applicable"] = na
    return out


def records_by_status(records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """Records grouped: ``done``, ``corrupt`` and ``other`` (failed, running, ...)."""
    out: dict[str, list[RunRecord]] = {"done": [], "corrupt": [], "other": []}
    for r in records:
        out["done" if r.done else "corrupt" if r.corrupt else "other"].append(r)
    return out
