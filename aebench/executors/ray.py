"""The Ray executor: each cell is a Ray task on a local or running cluster.

``--executor ray`` starts a local Ray instance, or joins the cluster at
``--ray-address`` (``auto``, ``ray://head:10001``). Each task asks Ray for
``--cpus-per-cell`` CPUs and ``--gpus-per-cell`` GPUs; a fractional GPU
(``0.25``) lets Ray pack four cells on one GPU. Tasks write into the run store
at ``--out``, which must be a folder every node can reach. Ray retries a task
whose worker or node died (``max_retries``); the retry waits for the dead
worker's claim to expire and reruns the cell, and the claim keeps a live cell
from running twice. Progress events come back through a Ray queue.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from aebench.execute import Outcome, execute_run
from aebench.executors import ExecutionSettings, Job, require_module
from aebench.plan import RunConfig
from aebench.progress import FromWorker, OnEvent, Stage
from aebench.store import LEASE_SECONDS

MAX_RETRIES = 2


def require() -> None:
    require_module("ray", "ray")


def execute(
    cells: list[RunConfig],
    job: Job,
    settings: ExecutionSettings,
    emit: OnEvent,
    first_index: int = 0,
) -> Iterator[Outcome]:
    import ray
    from ray.util.queue import Empty, Queue

    if not cells:
        return
    started = not ray.is_initialized()
    if started:
        if settings.ray_address:
            ray.init(address=settings.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    emit(Stage(f"Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs available"))
    threads = settings.threads_per_cell()
    gpus = settings.gpus_per_cell
    if gpus is None:
        gpus = 1.0 if cells[0].device == "cuda" else 0.0
    cpus = settings.cpus_per_cell or threads
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=MAX_RETRIES)(_ray_cell)
    events = Queue()
    limit = settings.workers if settings.workers > 1 else len(cells)
    waiting = list(enumerate(cells, start=first_index + 1))
    running: dict[Any, RunConfig] = {}
    try:
        while waiting or running:
            while waiting and len(running) < limit:
                index, run = waiting.pop(0)
                running[task.remote(run, job, index, threads, events)] = run
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            _drain(events, emit, Empty)
            for ref in ready:
                run = running.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # the task failed after its retries
                    reason = f"Ray task failed: {type(exc).__name__}: {exc}".splitlines()[0]
                    yield Outcome(run, "failed", reason)
        _drain(events, emit, Empty)
    finally:
        for ref in running:
            ray.cancel(ref)
        if started:
            ray.shutdown()


def _drain(events: Any, emit: OnEvent, empty: type[Exception]) -> None:
    while True:
        try:
            index, event = events.get_nowait()
        except empty:
            return
        emit(FromWorker(index, event))


def _ray_cell(run: RunConfig, job: Job, index: int, threads: int, events: Any) -> Outcome:
    """One cell inside a Ray worker (Ray has set CUDA_VISIBLE_DEVICES for its GPUs)."""
    return execute_run(
        run,
        job.out_dir,
        job.data_dir,
        lambda event: events.put_nowait((index, event)),
        index=index,
        total=job.total,
        threads=threads,
        redo=job.redo,
        wait_for_claim=1.5 * LEASE_SECONDS,
    )
