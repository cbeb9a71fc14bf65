"""Where runs execute: this process, worker processes, a Ray cluster, or SLURM.

Every executor calls the same unit, :func:`aebench.execute.execute_run` (a
plain, picklable function of a run config and the output folder), and every
run claims its cell in the run store first, so executors only decide *where*
and *when* cells run, never *whether* twice:

``local``
    In this process (``--workers 1``), or in a pool of worker processes
    (``--workers N``), each with its share of the CPU threads and its device
    (``--devices cuda:0,cuda:1``; several workers may share a GPU).
``ray``
    Ray tasks on a running cluster (``--ray-address``) or a local one; a task
    asks for ``--cpus-per-cell`` CPUs and ``--gpus-per-cell`` GPUs, which may
    be a fraction so several cells share a GPU. Optional extra: ``aebench[ray]``.
``slurm``
    A SLURM job array through submitit (partition, time, GPUs and CPUs per
    task, array parallelism). Optional extra: ``aebench[slurm]``.

With Ray and SLURM, ``--out`` must be a folder every node can read and write.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from aebench.errors import ConfigError, UnknownNameError, did_you_mean
from aebench.execute import Outcome, execute_run
from aebench.options import choice_error, convert, field_types
from aebench.plan import RunConfig
from aebench.progress import FromWorker, OnEvent
from aebench.store import LEASE_SECONDS

EXECUTORS = ("local", "ray", "slurm")


@dataclass
class ExecutionSettings:
    """How a benchmark's cells are executed (not part of any run's key).

    ``workers``: concurrent cells on this machine (``local``) or at most in
    flight (``ray``; SLURM: the job array's parallelism). ``threads``: torch
    CPU threads per cell (default: this machine's CPUs divided by
    ``workers``). ``devices``: accelerators cells are spread over (default:
    every visible GPU when the runs are on CUDA).
    """

    executor: str = "local"
    workers: int = 1
    threads: int | None = None
    devices: list[str] | None = None
    ray_address: str | None = None
    cpus_per_cell: float | None = None
    gpus_per_cell: float | None = None
    slurm_partition: str | None = None
    slurm_time: int = 60
    slurm_gpus_per_task: int | None = None
    slurm_cpus_per_task: int | None = None
    slurm_mem_gb: float | None = None
    slurm_cluster: str | None = None  # submitit's cluster; "local" runs the path on this machine
    slurm_extra: dict[str, Any] = field(default_factory=dict)

    def merged(self, over: dict[str, Any], source: str | None = None) -> ExecutionSettings:
        """A copy with the given (non-None) values; unknown keys are an error.

        Each value is converted to its field's type (TOML and API values may be text:
        ``threads = "2"``). ``source`` names where ``over`` came from (a suite's
        ``[execution]`` table): its values are also range-checked here, so an error names
        the key as written there; without it, errors name the command-line flag."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(over) - known)
        if unknown:
            hint = did_you_mean(unknown[0], known)
            where = source or "[execution]"
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}{hint}")
        types = field_types(ExecutionSettings)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in over.items():
            if value is None:
                continue
            label = f"{source} {key}" if source else _flag(key)
            values[key] = _typed(label, value, types[key])
            if source:
                _check_value(key, values[key], label)
        return ExecutionSettings(**values)

    def check(self) -> ExecutionSettings:
        """Validate (one-line errors naming the flag) and return self: values and their
        ranges, then what this machine can give a cell (GPUs, CPUs) and whether a Ray
        cluster at ``ray_address`` answers (a few seconds at most), so a cell that
        could never be scheduled fails here, before anything trains, not by hanging."""
        for f in fields(self):
            _check_value(f.name, getattr(self, f.name), _flag(f.name))
        self._check_resources()
        return self

    def _check_resources(self) -> None:
        """Resources no node has: a local cell (or a local Ray cluster's task) asking for
        more CPUs or GPUs than this machine has would wait forever. A running Ray cluster's
        nodes are checked when the executor has joined it (``executors.ray``)."""
        if self.executor == "slurm":
            return  # SLURM's own sbatch refuses what its partitions cannot give
        if self.executor == "ray" and self.ray_address:
            probe_ray_address(self.ray_address)
            return
        cpus = os.cpu_count() or 1
        if self.cpus_per_cell is not None and self.cpus_per_cell > cpus:
            raise ConfigError(
                f"--cpus-per-cell {self.cpus_per_cell:g}: this machine has {cpus} CPU(s)"
            )
        if self.executor == "ray" and self.cpus_per_cell is None and (self.threads or 1) > cpus:
            raise ConfigError(
                f"--threads {self.threads}: a Ray cell asks for --threads CPUs (unless "
                f"--cpus-per-cell) and this machine has {cpus} CPU(s)"
            )
        if self.gpus_per_cell:
            gpus = visible_gpus()
            if gpus == 0:
                raise ConfigError(
                    f"--gpus-per-cell {self.gpus_per_cell:g}: this machine has no GPU "
                    "(leave it out to run on the CPU)"
                )
            if self.gpus_per_cell > gpus:
                raise ConfigError(
                    f"--gpus-per-cell {self.gpus_per_cell:g}: this machine has {gpus} GPU(s)"
                )

    def threads_per_cell(self) -> int:
        """Torch threads each concurrent cell gets: its share of this machine's CPUs."""
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))


PROBE_SECONDS = 5.0
"""How long a check waits for a Ray cluster (or any address) to answer."""


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _typed(label: str, value: Any, tp: Any) -> Any:
    """``value`` as the field type ``tp`` (see :func:`aebench.options.convert`); text
    fields take text only (``executor = 5`` is an error, not ``'5'``)."""
    if tp == dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: expected a table of SLURM parameters, got {value!r}")
        return dict(value)
    if tp in (str, str | None) and not isinstance(value, str):
        raise ConfigError(f"{label}: expected text, got {value!r}")
    typed = convert(label, value, tp)
    return list(typed) if isinstance(typed, tuple) else typed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "workers": (lambda v: _is_int(v) and v >= 1, "must be a positive integer"),
    "threads": (lambda v: _is_int(v) and v >= 1, "must be a positive integer"),
    "cpus_per_cell": (lambda v: _is_number(v) and v > 0, "must be > 0"),
    "gpus_per_cell": (lambda v: _is_number(v) and v > 0, "must be > 0"),
    "slurm_time": (lambda v: _is_int(v) and v >= 1, "must be >= 1 minute"),
    "slurm_gpus_per_task": (lambda v: _is_int(v) and v >= 0, "must be an integer >= 0"),
    "slurm_cpus_per_task": (lambda v: _is_int(v) and v >= 1, "must be a positive integer"),
    "slurm_mem_gb": (lambda v: _is_number(v) and v > 0, "must be > 0"),
    "ray_address": (lambda v: isinstance(v, str) and bool(v.strip()), "must not be empty"),
    "slurm_partition": (lambda v: isinstance(v, str) and bool(v.strip()), "must not be empty"),
    "devices": (
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(d, str) for d in v),
        "must be a non-empty list of devices",
    ),
    "slurm_extra": (lambda v: isinstance(v, dict), "must be a table"),
}


def _check_value(key: str, value: Any, label: str) -> None:
    """One setting's range (``None`` is its default, always fine), naming ``label``."""
    if key == "executor":
        if value in EXECUTORS:
            return
        if label == "--executor" and isinstance(value, str):
            raise UnknownNameError("executor", value, EXECUTORS, "use local, ray or slurm")
        raise choice_error(label, value, EXECUTORS)
    if value is None or key not in _RANGES:
        return
    ok, must = _RANGES[key]
    if not ok(value):
        raise ConfigError(f"{label} {must}, got {value!r}")


def visible_gpus() -> int:
    """CUDA GPUs this process can see."""
    import torch

    return torch.cuda.device_count()


def probe_ray_address(address: str, timeout: float = PROBE_SECONDS) -> None:
    """A one-line error naming ``--ray-address`` unless something answers at ``address``
    (``host:port``, ``ray://host[:port]``) within ``timeout`` seconds: Ray itself retries
    an unreachable address for ever. ``auto`` is left to Ray (it fails at once when no
    cluster runs on this machine)."""
    import socket
    from urllib.parse import urlsplit

    if address.strip() in ("auto", "local"):
        return
    client = address.startswith("ray://")
    rest = address.split("://", 1)[1] if "://" in address else address
    try:
        parts = urlsplit("//" + rest)
        host, port = parts.hostname, parts.port or (10001 if client else 6379)
    except ValueError as exc:
        raise ConfigError(f"--ray-address {address!r}: not host:port ({exc})") from None
    if not host:
        raise ConfigError(f"--ray-address {address!r}: expected host:port or ray://host:port")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else None
        raise ConfigError(
            f"--ray-address {address}: no Ray cluster answers at {host}:{port} "
            f"({why or exc.strerror or exc})"
        ) from None


def die_with_parent(sig: int | None = None) -> None:
    """Linux: have the kernel send this process ``sig`` (SIGKILL) when its parent ends,
    even when the parent was killed with SIGKILL and had no chance to clean up (the
    worker pool's fork server and its workers call this, so no worker outlives
    ``aebench run``). Elsewhere (no ``prctl``) a no-op."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes

    sig = signal.SIGKILL if sig is None else sig
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, int(sig), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the call above
        os.kill(os.getpid(), sig)


@dataclass(frozen=True)
class Job:
    """What every cell of one benchmark shares: where results go and where data is."""

    out_dir: Path
    data_dir: str | None
    total: int
    redo: bool = False  # --force: run even cells the store has as done


Executor = Callable[[list[RunConfig], Job, ExecutionSettings, OnEvent, int], Iterator[Outcome]]
"""``executor(cells, job, settings, emit, first_index)`` yields one Outcome per cell."""

Numbered = tuple[int, RunConfig]
"""A cell and its number in the benchmark's progress (``first_index + 1`` onwards)."""


def missing_extra(package: str, extra: str) -> ConfigError:
    return ConfigError(
        f"--executor {extra} needs the optional dependency {package!r}: "
        f"pip install 'aebench[{extra}]'"
    )


def require_module(module: str, extra: str) -> None:
    """Import ``module`` or raise the one-line :func:`missing_extra` error for ``extra``."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise missing_extra(module, extra) from None


def get_executor(name: str) -> Executor:
    """The executor function for ``name``; a missing optional extra is a one-line error
    here, before anything runs (Ray and submitit are imported only when chosen).

    Each executor module declares ``NEEDS`` (the optional module it imports, or None)
    and ``execute(cells, job, settings, emit)``, which gets the cells numbered and
    never empty: the protocol's ``first_index`` and empty grids are handled here, once.
    """
    import importlib

    if name not in EXECUTORS:
        raise UnknownNameError("executor", name, EXECUTORS)
    module = importlib.import_module(f"aebench.executors.{name}")
    if module.NEEDS is not None:
        require_module(module.NEEDS, name)

    def execute(
        cells: list[RunConfig],
        job: Job,
        settings: ExecutionSettings,
        emit: OnEvent,
        first_index: int = 0,
    ) -> Iterator[Outcome]:
        if cells:
            numbered = list(enumerate(cells, start=first_index + 1))
            yield from module.execute(numbered, job, settings, emit)

    return execute


def drain(events: Any, emit: OnEvent, empty: type[Exception]) -> None:
    """Emit every ``(worker, event)`` waiting in the queue ``events`` as a
    :class:`~aebench.progress.FromWorker`; ``empty`` is what the queue raises when empty."""
    while True:
        try:
            worker, event = events.get_nowait()
        except empty:
            return
        emit(FromWorker(worker, event))


def default_gpus(device: str) -> int:
    """GPUs a cell asks a scheduler (Ray, SLURM) for unless told: one on CUDA, else none."""
    return 1 if device == "cuda" else 0


def execute_scheduled(
    run: RunConfig, job: Job, index: int, threads: int, on_event: OnEvent | None = None
) -> Outcome:
    """One cell inside a task a scheduler started (a Ray task, a SLURM array task), which
    has set CUDA_VISIBLE_DEVICES for its GPUs. A scheduler reruns a task whose worker or
    node died, so the rerun waits for the dead attempt's claim to expire (1.5 leases)."""
    return execute_run(
        run,
        job.out_dir,
        job.data_dir,
        on_event,
        index=index,
        total=job.total,
        threads=threads,
        redo=job.redo,
        wait_for_claim=1.5 * LEASE_SECONDS,
    )


def resolve_devices(device: str, requested: list[str] | None) -> list[str]:
    """Concrete devices for cells on ``device`` (a run's device type): ``--devices``
    checked against what this machine has, else every visible GPU, else ``[device]``."""
    import torch

    if requested:
        for d in requested:
            try:
                dev = torch.device(d)
            except RuntimeError:
                raise ConfigError(f"--devices: {d!r} is not a device (e.g. cuda:0, cpu)") from None
            if dev.type != device:
                raise ConfigError(f"--devices {d}: the runs are on {device} (see --device)")
            if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
                raise ConfigError(
                    f"--devices {d}: this machine has {torch.cuda.device_count()} CUDA device(s)"
                )
        return list(requested)
    if device == "cuda":
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cuda"]
    return [device]
