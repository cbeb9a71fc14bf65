"""Run a benchmark: plan, check everything, execute each pending cell, rebuild table and site.

This is the one place that assembles a benchmark: ``aebench run`` and
:func:`aebench.run` both call :func:`run_grids`. The parts, each its own
module: :mod:`aebench.plan` (options → cells),
:mod:`aebench.execute` (one run: train → evaluate → store),
:mod:`aebench.store` (run directories), :mod:`aebench.results` (the table)
and :mod:`aebench.report` (the site). Progress goes to an ``on_event``
callback (:mod:`aebench.progress`) the caller supplies.

The results table is rebuilt from run directories, so a benchmark killed at
any moment loses at most the run in progress, and rerunning the same command
skips finished runs (found by the key of their configuration).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aebench import results
from aebench.catalog import create_model, metric_specs
from aebench.data import DataCache, shared_cache
from aebench.errors import ConfigError, DataError
from aebench.execute import Outcome
from aebench.executors import ExecutionSettings, Job, get_executor, resolve_devices
from aebench.metrics.context import MetricSetup
from aebench.plan import Grid, RunConfig, load_suite, plan
from aebench.progress import BenchmarkStarted, Message, OnEvent, Stage, ignore
from aebench.report import build_site
from aebench.store import RunStore
from aebench.train import memory_shortfall

__all__ = ["Benchmark", "Outcome", "Summary", "check_runs", "run", "run_benchmark", "run_grids"]


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


META_HINT = (
    " (a constructor must only build layers: no .item(), float(t) or .tolist(); "
    "read values in on_train_start)"
)
"""Ends the line that refuses a model the meta device cannot build."""


def check_runs(runs: Iterable[RunConfig], data: DataCache) -> tuple[list[RunConfig], list[str]]:
    """Checks that need the data, before any training: datasets load, splits are big
    enough for the settings, every model can be built for its dataset's image
    shape, and every metric's own ``check`` step accepts its settings (the FID
    extractor can be built for the dataset).

    Returns the runs, with a batch size larger than the training set lowered to
    the training set's size (so what is recorded is what is used), and a note
    for each such change.
    """
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
            run = dataclasses.replace(run, batch_size=int(n_train))
        model_key = json.dumps([run.model, run.model_config, full_train.shape], default=str)
        if model_key not in built:
            shape = "x".join(map(str, full_train.shape))
            with torch.device("meta"):  # builds the layers without allocating weights
                try:
                    model = create_model(run.model, full_train.shape, **run.model_config)
                except (ConfigError, ValueError) as exc:
                    raise ConfigError(f"{exc} (for {run.dataset}'s {shape} images)") from None
                except Exception as exc:  # e.g. a constructor that reads a value (.item())
                    lines = str(exc).strip().splitlines()
                    cause = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
                    raise ConfigError(
                        f"model {run.model!r} cannot be built on PyTorch's meta device, where "
                        f"aebench checks every model before training (for {run.dataset}'s "
                        f"{shape} images): {cause}{META_HINT}"
                    ) from None
            # Counted on the meta model, so a size too big for the machine is refused
            # here, naming the options, not met as an allocator error mid-run.
            too_big = memory_shortfall(model, run.device)
            if too_big:
                given = ", ".join(f"{k}={run.model_config.get(k)}" for k in run.shown_options)
                raise ConfigError(
                    f"model {run.model!r} with {given} is too big (for {run.dataset}'s {shape} "
                    f"images): {too_big}; choose smaller values"
                )
            built.add(model_key)
        out.append(run)
    for spec, setup in _metric_setups(out, data, ignore):
        if spec.check is not None:
            spec.check(setup)
    return out, notes


def _metric_setups(
    runs: Iterable[RunConfig], data: DataCache, emit: OnEvent
) -> Iterable[tuple[Any, MetricSetup]]:
    """(metric spec, setup) for each metric with a ``check`` or ``prepare`` step and
    each distinct (dataset, dataset options, metric options) among ``runs``."""
    specs = [s for s in metric_specs() if s.check is not None or s.prepare is not None]
    seen: set[str] = set()
    for run in runs:
        key = json.dumps([run.dataset, run.dataset_options, run.metric_options], default=str)
        if not specs or key in seen:
            continue
        seen.add(key)
        train, test = data.published(run.dataset, run.dataset_options)
        setup = MetricSetup(run.dataset, train, test, dict(run.metric_options), emit)
        for spec in specs:
            yield spec, setup


def warm_shared(runs: Iterable[RunConfig], data: DataCache, emit: OnEvent) -> None:
    """Build what the cells share before any starts (so parallel cells do not each
    build it): every metric's ``prepare`` step (the offline FID extractor, trained
    once per dataset)."""
    for spec, setup in _metric_setups(runs, data, emit):
        if spec.prepare is not None:
            spec.prepare(setup)


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
        self.store.check_writable()
        self.runs, self.notes = check_runs(self.runs, self.data)
        for device in {r.device for r in self.runs}:
            resolve_devices(device, self.execution.devices)
        if self.execution.executor != "local":
            get_executor(self.execution.executor)  # a missing optional extra fails here
        warm_shared(self.pending(), self.data, on_event or ignore)

    def execute(self, on_event: OnEvent | None = None) -> Summary:
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
    out_dir: str | os.PathLike[str],
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
    out_dir = Path(out_dir)
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
            if on_event is not None:
                on_event(Stage("building the leaderboard"))
            summary.site = build_site(Path(out_dir), on_event=on_event)
        except Exception as exc:  # the runs are safe on disk; `aebench report` can retry
            summary.report_error = f"{type(exc).__name__}: {exc}"
    return summary


def run_grids(
    grids: Grid | list[Grid],
    out: str | os.PathLike[str] = "aebench-out",
    *,
    suite: str | os.PathLike[str] | None = None,
    execution: Mapping[str, Any] | None = None,
    device: str = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    report: bool = True,
    on_event: OnEvent | None = None,
) -> Summary:
    """Assemble a benchmark and run it: the grids (merged over a ``suite``'s grids,
    if given), planned into cells, executed where ``execution`` (merged over the
    suite's ``[execution]`` table) says, then the table and the site."""
    emit = on_event or ignore
    if not str(out).strip():
        raise ConfigError("--out is empty: give the folder to write runs, table and site to")
    grids = [grids] if isinstance(grids, Grid) else list(grids)
    where = ExecutionSettings()
    if suite:
        meta, suite_grids = load_suite(suite)
        grids = [g.merged(o) for g in suite_grids for o in (grids or [Grid()])]
        where = where.merged(meta.get("execution") or {}, f"--suite {suite}: [execution]")
        if meta.get("name"):
            emit(Message(f"suite {meta['name']}: {meta.get('description', '')}".strip()))
    where = where.merged(dict(execution or {})).check()
    runs = plan(grids, device=device)
    return run_benchmark(
        runs,
        out,
        data_dir=None if data_dir is None else str(data_dir),
        force=force,
        report=report,
        on_event=on_event,
        execution=where,
    )


def run(
    models: str | list[str] | None = None,
    datasets: str | list[str] | None = None,
    *,
    out: str | os.PathLike[str] = "aebench-out",
    model_options: Mapping[str, Any] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    metric_options: Mapping[str, Any] | None = None,
    suite: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    force: bool = False,
    report: bool = True,
    on_event: OnEvent | None = None,
    workers: int | None = None,
    executor: str | None = None,
    execution: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Summary:
    """Plan, train and evaluate a grid, as ``aebench run`` does; returns its summary.

    ``model_options`` maps a model-config field to one value or a list of values
    to sweep (``{"beta": [0.5, 4], "latent_dim": [2, 16]}``); ``dataset_options``
    maps an option (or a dataset name to its options) to a value;
    ``metric_options`` sets metric budgets (``{"fid_samples": 0}``).
    ``settings`` are the other :class:`aebench.plan.Grid` fields
    (``seeds``, ``epochs``, ``batch_size``, ``lr``, ``profile``, ...).
    ``suite``: a suite TOML file whose grids these settings override.
    ``on_event`` receives progress events (:mod:`aebench.progress`).
    ``workers``, ``executor`` and ``execution`` (any field of
    :class:`aebench.executors.ExecutionSettings`) say where cells run.
    """

    def as_list(value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)

    options = Grid(
        models=as_list(models),
        datasets=as_list(datasets),
        model_options={
            k: list(v) if isinstance(v, (list, tuple)) else [v]
            for k, v in (model_options or {}).items()
        }
        or None,
        dataset_options=dict(dataset_options) if dataset_options else None,
        metric_options=dict(metric_options) if metric_options else None,
        **settings,
    )
    return run_grids(
        options,
        out,
        suite=suite,
        execution={"workers": workers, "executor": executor, **(execution or {})},
        device=device,
        data_dir=data_dir,
        force=force,
        report=report,
        on_event=on_event,
    )
