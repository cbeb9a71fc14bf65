"""The Ray executor: each cell is a Ray task on a local or running cluster.

``--executor ray`` starts a local Ray instance, or joins the cluster at
``--ray-address`` (``auto``, ``ray://head:10001``). Each task asks Ray for
``--cpus-per-cell`` CPUs and ``--gpus-per-cell`` GPUs; a fractional GPU
(``0.25``) lets Ray pack four cells on one GPU. Tasks write into the run store
at ``--out``, which must be a folder every node can reach. Ray retries a task
whose worker or node died (``max_retries``); the retry waits for the dead
worker's claim to expire and reruns the cell, and the claim keeps a live cell
from running twice. Progress events come back through a Ray queue.

An address nothing answers at (``--ray-address``) and a cell no node can hold
(more CPUs or GPUs than the largest node has) are one-line errors before any cell
is queued: Ray would wait for them for ever. A local instance is Ray's own: its GCS,
raylet and workers share the driver's fate (Ray sets ``PR_SET_PDEATHSIG``), so they
end with ``aebench run`` even after SIGKILL; its dashboard and runtime-env agents
notice that the raylet is gone by themselves, within a minute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from aebench.errors import ConfigError
from aebench.execute import Outcome
from aebench.executors import (
    ExecutionSettings,
    Job,
    Numbered,
    default_gpus,
    drain,
    execute_scheduled,
    probe_ray_address,
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
        _start(ray, settings)
    running: dict[Any, RunConfig] = {}
    try:
        emit(Stage(f"Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs available"))
        threads = settings.threads_per_cell()
        gpus = settings.gpus_per_cell
        if gpus is None:
            gpus = float(default_gpus(cells[0][1].device))
        cpus = settings.cpus_per_cell or threads
        check_fits(ray.nodes(), cpus, gpus, settings)  # before any cell is queued
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=MAX_RETRIES)(_ray_cell)
        events = Queue()
        limit = settings.workers if settings.workers > 1 else len(cells)
        waiting = list(cells)
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


def _start(ray: Any, settings: ExecutionSettings) -> None:
    """Join the cluster at ``--ray-address`` (checked to answer first: Ray itself waits for
    an unreachable one for ever), or start a local one, which Ray ties to this process:
    its processes end with it, also when it is killed."""
    if settings.ray_address:
        probe_ray_address(settings.ray_address)
        try:
            ray.init(address=settings.ray_address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"--ray-address {settings.ray_address}: cannot join a Ray cluster there ({why})"
            ) from None
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)


def check_fits(
    nodes: list[dict[str, Any]], cpus: float, gpus: float, settings: ExecutionSettings
) -> None:
    """A one-line error naming the option when no live node of the cluster has ``cpus``
    CPUs and ``gpus`` GPUs (Ray would keep such a task pending for ever)."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", n.get("alive", True))]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return
    most_cpus = max((r.get("CPU", 0) for r in alive), default=0)
    most_gpus = max((r.get("GPU", 0) for r in alive), default=0)
    if gpus and most_gpus < gpus:
        flag = "--gpus-per-cell" if settings.gpus_per_cell is not None else "--device"
        has = f"{most_gpus:g} GPU(s)" if most_gpus else "no GPU"
        raise ConfigError(
            f"{flag}: a cell asks for {gpus:g} GPU(s); the largest Ray node has {has}"
        )
    flag = "--cpus-per-cell" if settings.cpus_per_cell is not None else "--threads"
    raise ConfigError(
        f"{flag}: a cell asks for {cpus:g} CPU(s) (and {gpus:g} GPU(s)); no Ray node has "
        f"that (the largest has {most_cpus:g} CPU(s))"
    )


def _ray_cell(run: RunConfig, job: Job, index: int, threads: int, events: Any) -> Outcome:
    """One cell inside a Ray worker; its events go back through the Ray queue ``events``."""
    return execute_scheduled(
        run, job, index, threads, lambda event: events.put_nowait((index, event))
    )
