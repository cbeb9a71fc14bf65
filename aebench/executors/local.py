"""The local executor: cells in this process, or in a pool of worker processes.

``--workers 1`` runs cells one after another here. ``--workers N`` starts N
worker processes (``spawn``: a clean interpreter each, safe with torch's
threads and CUDA) from :mod:`concurrent.futures`; each worker sets its torch
threads to its share of the CPUs, takes a device from ``devices`` (round
robin, so several workers may share a GPU), keeps its decoded datasets between
cells, and forwards its progress events to this process through a queue.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from aebench.execute import Outcome, execute_run
from aebench.executors import (
    ExecutionSettings,
    Job,
    Numbered,
    die_with_parent,
    drain,
    resolve_devices,
)
from aebench.metrics.evaluate import import_libraries
from aebench.plan import RunConfig
from aebench.progress import OnEvent

NEEDS: str | None = None
"""Nothing to install: worker processes come with Python."""

_worker: dict[str, Any] = {}


def execute(
    cells: list[Numbered], job: Job, settings: ExecutionSettings, emit: OnEvent
) -> Iterator[Outcome]:
    """Run ``cells``: serially when ``settings.workers == 1``, else in worker processes."""
    devices = resolve_devices(cells[0][1].device, settings.devices)
    if settings.workers == 1 or len(cells) == 1:
        import_libraries()  # once per process, not inside the first run's eval_seconds
        threads = settings.threads
        for i, run in cells:
            yield execute_run(
                run,
                job.out_dir,
                job.data_dir,
                emit,
                index=i,
                total=job.total,
                device=devices[0],
                threads=threads,
                redo=job.redo,
            )
        return
    yield from _pool(cells, job, settings, emit, devices)


def _pool(
    cells: list[Numbered],
    job: Job,
    settings: ExecutionSettings,
    emit: OnEvent,
    devices: list[str],
) -> Iterator[Outcome]:
    ctx = _context()
    events = ctx.Queue()
    counter = ctx.Value("i", 0)
    workers = min(settings.workers, len(cells))
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(events, counter, devices, settings.threads_per_cell()),
    )
    pending: dict[Future, RunConfig] = {}
    try:
        for i, run in cells:
            future = pool.submit(_run_cell, run, job, i)
            pending[future] = run
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            drain(events, emit, queue_module.Empty)
            for future in done:
                run = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    yield Outcome(run, "failed", "its worker process died (killed or crashed)")
        drain(events, emit, queue_module.Empty)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        drain(events, emit, queue_module.Empty)
        _stop_fork_server()


def _stop_fork_server() -> None:
    """End the fork server once the pool is done (it would otherwise wait for this
    process to exit, and outlive it when something else holds its pipe open)."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if callable(stop):
        stop()


PRELOAD = ("aebench.executors._preload",)


def _context() -> Any:
    """``forkserver`` where the platform has it (workers fork from a clean server that
    has imported torch and aebench once), else ``spawn``. Never plain ``fork``: this
    process may already run torch's thread pools or CUDA."""
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:
        return multiprocessing.get_context("spawn")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def _init_worker(events: Any, counter: Any, devices: list[str], threads: int) -> None:
    """In each worker: its number, device and CPU threads, and where events go. A worker
    ends with the fork server that forked it (which ends with ``aebench run``), even
    when ``aebench run`` is killed with SIGKILL."""
    import torch

    die_with_parent()

    with counter.get_lock():
        counter.value += 1
        slot = counter.value
    torch.set_num_threads(threads)
    _worker.update(slot=slot, device=devices[(slot - 1) % len(devices)], events=events)


def _run_cell(run: RunConfig, job: Job, index: int) -> Outcome:
    slot, events = _worker["slot"], _worker["events"]
    return execute_run(
        run,
        job.out_dir,
        job.data_dir,
        lambda event: events.put((slot, event)),
        index=index,
        total=job.total,
        device=_worker["device"],
        redo=job.redo,
    )
