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

from aebench.execute import Outcome
from aebench.executors import (
    ExecutionSettings,
    Job,
    Numbered,
    default_gpus,
    drain,
    execute_scheduled,
)
from aebench.plan import RunConfig
from aebench.progress import OnEvent, Stage

NEEDS: str | None = "ray"
"""The optional module this executor imports (the ``aebench[ray]`` extra)."""

MAX_RETRIES = 2


def execute(
    cells: list[Numbered], job: Job, settings: ExecutionSettings, emit: OnEvent
) -> Iterator[Outcome]:
    """Run ``cells`` as Ray tasks, at most ``settings.workers`` in flight (if above 1)."""
    import ray
    from ray.util.queue import Empty, Queue

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
        gpus = float(default_gpus(cells[0][1].device))
    cpus = settings.cpus_per_cell or threads
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=MAX_RETRIES)(_ray_cell)
    events = Queue()
    limit = settings.workers if settings.workers > 1 else len(cells)
    waiting = list(cells)
    running: dict[Any, RunConfig] = {}
    try:
        while waiting or running:
            while waiting and len(running) < limit:
                index, run = waiting.pop(0)
                running[task.remote(run, job, index, threads, events)] = run
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            drain(events, emit, Empty)
            for ref in ready:
                run = running.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # the task failed after its retries
                    reason = f"Ray task failed: {type(exc).__name__}: {exc}".splitlines()[0]
                    yield Outcome(run, "failed", reason)
        drain(events, emit, Empty)
    finally:
        for ref in running:
            ray.cancel(ref)
        if started:
            ray.shutdown()


def _ray_cell(run: RunConfig, job: Job, index: int, threads: int, events: Any) -> Outcome:
    """One cell inside a Ray worker; its events go back through the Ray queue ``events``."""
    return execute_scheduled(
        run, job, index, threads, lambda event: events.put_nowait((index, event))
    )
