"""The SLURM executor: cells as a job array, submitted with submitit.

``--executor slurm`` submits one array job whose tasks each run one cell
(:func:`aebench.execute.execute_run`) and write into the run store at
``--out``, which must be on a file system the compute nodes share. Settings:
``--slurm-partition``, ``--slurm-time`` (minutes per cell),
``--slurm-gpus-per-task``, ``--slurm-cpus-per-task``, and ``--workers`` as the
array's parallelism (``%N``). submitit's logs go to ``OUT/.slurm/``. A task
that died without a result (its node failed, it was preempted) is submitted
once more; the rerun waits for the dead task's claim to expire, so a cell is
rerun, never run twice at once.

``slurm_cluster = "local"`` in a suite's ``[execution]`` table runs the same
path with submitit's local executor (subprocesses on this machine): that is
how the tests exercise it without a cluster.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

from aebench.errors import ConfigError
from aebench.execute import Outcome
from aebench.executors import ExecutionSettings, Job, Numbered, default_gpus, execute_scheduled
from aebench.plan import RunConfig
from aebench.progress import Message, OnEvent, RunEnded, RunStarted, Stage

NEEDS: str | None = "submitit"
"""The optional module this executor imports (the ``aebench[slurm]`` extra)."""

POLL_SECONDS = 2.0
RESUBMITS = 1


def execute(
    cells: list[Numbered], job: Job, settings: ExecutionSettings, emit: OnEvent
) -> Iterator[Outcome]:
    """Run ``cells`` as a SLURM job array, resubmitting a task that died once."""
    import submitit

    cluster = settings.slurm_cluster
    if cluster is None and shutil.which("sbatch") is None:
        raise ConfigError(
            "--executor slurm: sbatch was not found; run aebench on a SLURM login node "
            "(or use --executor local/ray)"
        )
    executor = submitit.AutoExecutor(folder=job.out_dir / ".slurm", cluster=cluster)
    gpus = settings.slurm_gpus_per_task
    if gpus is None:
        gpus = default_gpus(cells[0][1].device)
    threads = settings.slurm_cpus_per_task or settings.threads or 1
    params: dict[str, Any] = {
        "name": "aebench",
        "timeout_min": settings.slurm_time,
        "cpus_per_task": threads,
        "slurm_array_parallelism": settings.workers,
    }
    if gpus:
        params["gpus_per_node"] = gpus
    if settings.slurm_partition:
        params["slurm_partition"] = settings.slurm_partition
    if settings.slurm_mem_gb:
        params["mem_gb"] = settings.slurm_mem_gb
    params.update(settings.slurm_extra)
    executor.update_parameters(**params)

    indexed = cells
    tries = dict.fromkeys((run.key for _, run in cells), 0)
    while indexed:
        jobs = executor.map_array(
            execute_scheduled,  # SLURM has set CUDA_VISIBLE_DEVICES for the task's GPUs
            [run for _, run in indexed],
            [job] * len(indexed),
            [i for i, _ in indexed],
            [threads] * len(indexed),
        )
        emit(Stage(f"submitted {len(jobs)} cell(s) as SLURM job array {jobs[0].job_id}"))
        retry: list[tuple[int, RunConfig]] = []
        for (index, run), outcome in _collect(jobs, indexed, job, emit):
            if outcome is None and tries[run.key] < RESUBMITS:
                tries[run.key] += 1
                emit(Message(f"{run.label}: its SLURM task died; submitting it again"))
                retry.append((index, run))
            else:
                if outcome is None:
                    outcome = Outcome(run, "failed", "its SLURM task died twice without a result")
                emit(
                    RunEnded(
                        run.run_id,
                        run.label,
                        index,
                        job.total,
                        outcome.status,
                        outcome.reason,
                        outcome.seconds,
                    )
                )
                yield outcome
        indexed = retry


def _collect(
    jobs: list[Any], indexed: list[tuple[int, RunConfig]], job: Job, emit: OnEvent
) -> Iterator[tuple[tuple[int, RunConfig], Outcome | None]]:
    """Outcomes as the array's tasks finish; None for a task that died without one."""
    import submitit

    waiting = dict(zip(range(len(jobs)), jobs, strict=True))
    started: set[int] = set()
    while waiting:
        for i, sjob in list(waiting.items()):
            index, run = indexed[i]
            if i not in started and sjob.state in ("RUNNING", "COMPLETED"):
                started.add(i)
                emit(RunStarted(run.run_id, run.label, index, job.total))
            if not sjob.done():
                continue
            del waiting[i]
            try:
                yield indexed[i], sjob.result()
            except submitit.core.utils.UncompletedJobError:
                yield indexed[i], None
            except Exception as exc:  # the task raised outside execute_run
                yield (
                    indexed[i],
                    Outcome(run, "failed", f"SLURM task failed: {exc}".splitlines()[0]),
                )
        if waiting:
            time.sleep(POLL_SECONDS)
