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

    def merged(self, over: dict[str, Any]) -> ExecutionSettings:
        """A copy with the given (non-None) values; unknown keys are an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(over) - known)
        if unknown:
            hint = did_you_mean(unknown[0], known)
            raise ConfigError(f"[execution]: unknown key {unknown[0]!r}{hint}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in over.items() if v is not None})
        return ExecutionSettings(**values)

    def check(self) -> ExecutionSettings:
        """Validate (one-line errors) and return self."""
        if self.executor not in EXECUTORS:
            raise UnknownNameError("executor", self.executor, EXECUTORS, "use local, ray or slurm")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"--workers must be a positive integer, got {self.workers!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"--threads must be a positive integer, got {self.threads!r}")
        for name in ("cpus_per_cell", "gpus_per_cell"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be > 0, got {value!r}")
        if self.slurm_time is not None and self.slurm_time < 1:
            raise ConfigError(f"--slurm-time must be >= 1 minute, got {self.slurm_time!r}")
        return self

    def threads_per_cell(self) -> int:
        """Torch threads each concurrent cell gets: its share of this machine's CPUs."""
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))


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
