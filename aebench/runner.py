"""Run a benchmark: check everything, execute each pending run, rebuild table and site.

The parts, each its own module: :mod:`aebench.plan` (options → runs),
:mod:`aebench.execute` (one run: train → evaluate → store),
:mod:`aebench.store` (run directories), :mod:`aebench.results` (the table)
and :mod:`aebench.report` (the site). Progress goes to an ``on_event``
callback (:mod:`aebench.progress`) the caller supplies.

The results table is rebuilt from run directories, so a benchmark killed at
any moment loses at most the run in progress, and rerunning the same command
skips finished runs (found by the key of their configuration).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aebench.data import DataCache, shared_cache
from aebench.errors import ConfigError, DataError
from aebench.execute import Outcome
from aebench.executors import ExecutionSettings
from aebench.plan import RunConfig
from aebench.progress import BenchmarkStarted, Message, OnEvent, Stage, ignore
from aebench.store import RunStore

__all__ = ["Benchmark", "Outcome", "Summary", "check_runs", "run_benchmark"]


@dataclass
class Summary:
    out_dir: Path
    outcomes: list[Outcome] = field(default_factory=list)
    site: Path | None = None
    report_error: str | None = None
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (run id, why)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def check_runs(runs: Iterable[RunConfig], data: DataCache) -> tuple[list[RunConfig], list[str]]:
    """Checks that need the data, before any training: datasets load, splits are big
    enough for the settings, the FID extractor can be built, and every model can
    be built for its dataset's image shape.

    Returns the runs, with a batch size larger than the training set lowered to
    the training set's size (so what is recorded is what is used), and a note
    for each such change.
    """
    import dataclasses

    import torch

    from aebench.api import create_model

    built: set[str] = set()
    out: list[RunConfig] = []
    notes: list[str] = []
    for run in runs:
        full_train, test = data.published(run.dataset, run.dataset_options)
        n_val = run.val_size if run.val_size >= 1 else round(run.val_size * len(full_train))
        if len(full_train) - n_val < 2 or n_val < 1 or len(test) < 1:
            raise DataError(
                f"dataset {run.dataset!r} has too few images for a validation split of "
                f"{run.val_size} ({len(full_train)} train, {len(test)} test)"
            )
        n_train = len(full_train) - n_val
        if run.limit is not None:
            n_train = min(n_train, run.limit)
        if run.batch_size > n_train:
            note = (
                f"batch size {run.batch_size} is larger than the {n_train} training images of "
                f"{run.dataset}: using batches of {n_train}"
            )
            if note not in notes:
                notes.append(note)
            run = dataclasses.replace(run, batch_size=n_train)
        if run.metric_options.get("fid_samples"):
            from aebench.metrics.fid import CLASSIFIER, resolve_extractor

            # An explicit inception-v3-compat without local weights fails here.
            kind = resolve_extractor(run.metric_options.get("fid_extractor", "auto"))
            if kind == CLASSIFIER and full_train.labels is None:
                raise ConfigError(
                    f"dataset {run.dataset!r} has no class labels, so the offline FID "
                    "extractor (a classifier) cannot be trained for it: use --no-fid, or "
                    "--fid-extractor inception-v3-compat with its weights on disk"
                )
        model_key = json.dumps([run.model, run.model_config, full_train.shape], default=str)
        if model_key not in built:
            with torch.device("meta"):  # builds the layers without allocating weights
                try:
                    create_model(run.model, full_train.shape, **run.model_config)
                except (ConfigError, ValueError) as exc:
                    shape = "x".join(map(str, full_train.shape))
                    raise ConfigError(f"{exc} (for {run.dataset}'s {shape} images)") from None
            built.add(model_key)
        out.append(run)
    return out, notes


def warm_shared(runs: Iterable[RunConfig], data: DataCache, emit: OnEvent) -> None:
    """Build what every run of a dataset shares before cells start (so parallel cells
    do not each build it): the offline FID extractor, trained once per dataset."""
    from aebench.metrics.fid import (
        CLASSIFIER,
        classifier_cached,
        ensure_classifier,
        resolve_extractor,
    )

    seen: set[str] = set()
    for run in runs:
        if not run.metric_options.get("fid_samples"):
            continue
        if resolve_extractor(run.metric_options.get("fid_extractor", "auto")) != CLASSIFIER:
            continue
        train, test = data.published(run.dataset, run.dataset_options)
        if run.dataset in seen or classifier_cached(train):
            continue
        seen.add(run.dataset)
        what = f"training the offline FID extractor for {run.dataset} (once; cached)"
        emit(Stage(what))

        def progress(step: int, steps: int, what: str = what) -> None:
            emit(Stage(f"{what}: step {step}/{steps}"))

        info = ensure_classifier(train, test, on_progress=progress)
        acc = "n/a" if info.test_accuracy is None else f"{info.test_accuracy:.3f}"
        emit(Message(f"offline FID extractor for {run.dataset}: test accuracy {acc}"))


class Benchmark:
    """A planned benchmark bound to an output directory (its run store)."""

    def __init__(
        self,
        runs: list[RunConfig],
        out_dir: str | Path,
        data_dir: str | None = None,
        force: bool = False,
        execution: ExecutionSettings | None = None,
    ) -> None:
        self.runs = runs
        self.out_dir = Path(out_dir)
        self.store = RunStore(self.out_dir)
        self.data_dir = data_dir
        self.data = shared_cache(data_dir)
        self.force = force
        self.execution = (execution or ExecutionSettings()).check()
        self.notes: list[str] = []

    def pending(self) -> list[RunConfig]:
        return [r for r in self.runs if self.force or not self.store.is_done(r.key)]

    def prepare(self, on_event: OnEvent | None = None) -> None:
        """Everything that can be checked before training: output writable, data, shapes;
        then what the runs share is built once."""
        from aebench.executors import resolve_devices

        self.store.check_writable()
        self.runs, self.notes = check_runs(self.runs, self.data)
        for device in {r.device for r in self.runs}:
            resolve_devices(device, self.execution.devices)
        if self.execution.executor != "local":
            from aebench.executors import get_executor

            get_executor(self.execution.executor)  # a missing optional extra fails here
        warm_shared(self.pending(), self.data, on_event or ignore)

    def execute(self, on_event: OnEvent | None = None) -> Summary:
        from aebench.executors import Job, get_executor

        emit = on_event or ignore
        for note in self.notes:
            emit(Message(f"note: {note}"))
        pending = self.pending()
        skipped = len(self.runs) - len(pending)
        emit(BenchmarkStarted(len(self.runs), skipped))
        job = Job(self.out_dir, self.data_dir, len(self.runs), redo=self.force)
        run = get_executor(self.execution.executor)
        outcomes = {o.run.key: o for o in run(pending, job, self.execution, emit, skipped)}
        summary = Summary(self.out_dir)
        for cell in self.runs:
            summary.outcomes.append(outcomes.get(cell.key) or Outcome(cell, "skipped"))
        return summary


def run_benchmark(
    runs: list[RunConfig],
    out_dir: str | Path,
    data_dir: str | None = None,
    force: bool = False,
    report: bool = True,
    on_event: OnEvent | None = None,
    execution: ExecutionSettings | None = None,
) -> Summary:
    """Train and evaluate ``runs`` into ``out_dir``; rebuild the table and the site.

    Finished runs are skipped unless ``force``. ``execution`` says where cells
    run (:class:`aebench.executors.ExecutionSettings`; default: one after
    another in this process). The results table is rebuilt even when the
    benchmark is interrupted, from whatever runs finished.
    """
    from aebench import results

    bench = Benchmark(runs, out_dir, data_dir, force, execution)
    bench.prepare(on_event)
    summary = Summary(Path(out_dir))
    try:
        summary = bench.execute(on_event)
    finally:
        table = results.write(out_dir)
        summary.corrupt = table.attrs.get("corrupt", [])
    if report:
        try:
            from aebench.report import build_site

            if on_event is not None:
                on_event(Stage("building the leaderboard"))
            summary.site = build_site(Path(out_dir), on_event=on_event)
        except Exception as exc:  # the runs are safe on disk; `aebench report` can retry
            summary.report_error = f"{type(exc).__name__}: {exc}"
    return summary
