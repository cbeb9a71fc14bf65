"""Run a benchmark: load data, train each run, evaluate it, store it, summarise.

A run is a directory ``OUT/runs/<run_id>/`` (config, status, history, metrics,
weights, images, latents), written atomically. The results table is rebuilt
from run directories, so a benchmark killed at any moment loses at most the run
in progress, and rerunning the same command skips finished runs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from aebench import io as aio
from aebench.datasets.base import ImageSet, validation_split
from aebench.plan import RunConfig
from aebench.train import Progress, TrainSettings, fit

LATENT_POINTS = 2000  # test images whose latent means are stored for the plots
EPOCH_LATENT_POINTS = 1000  # validation images whose latent means are stored every epoch


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Outcome:
    run: RunConfig
    status: str  # done | failed | skipped
    reason: str | None = None
    seconds: float = 0.0


@dataclass
class Summary:
    out_dir: Path
    outcomes: list[Outcome] = field(default_factory=list)
    site: Path | None = None
    report_error: str | None = None

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def run_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        return aio.read_json(run_dir / "status.json")
    except (FileNotFoundError, ValueError):
        return None


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in (
        "aebench",
        "torch",
        "torchvision",
        "torch-fidelity",
        "scikit-image",
        "scikit-learn",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


class DataCache:
    """Each dataset's published splits, loaded once per benchmark, and its
    deterministic (train, val, test) split per validation size."""

    def __init__(self, data_dir: str | None) -> None:
        self.data_dir = data_dir
        self._published: dict[tuple[str, str], tuple[ImageSet, ImageSet]] = {}

    def published(
        self, dataset: str, options: dict[str, Any] | None = None
    ) -> tuple[ImageSet, ImageSet]:
        """(train, test) as published, loaded with the dataset ``options``."""
        from aebench.api import get_dataset

        options = options or {}
        key = (dataset, repr(sorted(options.items())))
        if key not in self._published:
            self._published[key] = (
                get_dataset(dataset, "train", self.data_dir, **options),
                get_dataset(dataset, "test", self.data_dir, **options),
            )
        return self._published[key]

    def get(
        self, dataset: str, val_size: float, options: dict[str, Any] | None = None
    ) -> tuple[ImageSet, ImageSet, ImageSet]:
        train, test = self.published(dataset, options)
        train, val = validation_split(train, val_size)
        return train, val, test


def preload(runs: Iterable[RunConfig], data: DataCache) -> None:
    """Load every dataset before any training: missing or corrupt files, and
    settings a dataset cannot support, fail up front."""
    from aebench.errors import ConfigError, DataError

    for run in runs:
        train, test = data.published(run.dataset, run.dataset_options)
        n_val = run.val_size if run.val_size >= 1 else round(run.val_size * len(train))
        if len(train) - n_val < 2 or n_val < 1 or len(test) < 1:
            raise DataError(
                f"dataset {run.dataset!r} has too few images for a validation split of "
                f"{run.val_size} ({len(train)} train, {len(test)} test)"
            )
        if run.fid_samples:
            from aebench.metrics.fid import resolve_extractor

            # An explicit inception-v3-compat without local weights fails here.
            if resolve_extractor(run.fid_extractor) == "classifier" and train.labels is None:
                raise ConfigError(
                    f"dataset {run.dataset!r} has no class labels, so the offline FID "
                    "extractor (a classifier) cannot be trained for it: use --no-fid, or "
                    "--fid-extractor inception-v3-compat with its weights on disk"
                )


def execute(run: RunConfig, run_dir: Path, data: DataCache, progress: Progress) -> None:
    """Train and evaluate one run into ``run_dir`` (raises on failure)."""
    from aebench.api import model_spec
    from aebench.images import save_grid, save_interpolation, save_recon_grid
    from aebench.metrics import evaluate
    from aebench.metrics.probe import latent_means
    from aebench.plugins import get_plugins

    device = torch.device(run.device)
    train, val, test = data.get(run.dataset, run.val_size, run.dataset_options)
    # The offline FID extractor is trained on the published train split, so every
    # run on a dataset shares one extractor whatever --limit or --val-size say.
    full_train = data.published(run.dataset, run.dataset_options)[0]
    if run.limit is not None and run.limit < len(train):
        train = train.subset(slice(0, run.limit))
    spec = model_spec(run.model)
    torch.manual_seed(run.seed)
    model = spec.factory(spec.config_cls.from_options(**run.model_config), train.shape)
    images_dir = run_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []

    # Latent means of a fixed validation subset after every epoch: the report
    # animates how the latent space organises itself during training.
    tracked = val.subset(slice(0, EPOCH_LATENT_POINTS))
    epoch_latents: list[torch.Tensor] = []

    def on_epoch(epoch: int, row: dict[str, float], snapshot: torch.Tensor) -> None:
        history.append(row)
        _write_history(run_dir / "history.csv", history)
        save_grid(snapshot, images_dir / f"recon_epoch_{epoch:03d}.png", nrow=len(snapshot))
        epoch_latents.append(latent_means(model, tracked, device))

    settings = TrainSettings(
        epochs=run.epochs, batch_size=run.batch_size, lr=run.lr, seed=run.seed, device=device
    )
    result = fit(model, train, val, settings, progress=progress, on_epoch=on_epoch)
    epochs_arrays = {"z": torch.stack(epoch_latents).numpy()}
    if tracked.labels is not None:
        epochs_arrays["y"] = tracked.labels.numpy()
    aio.save_with(run_dir / "latents_epochs.npz", lambda p: _save_npz(p, epochs_arrays))

    t0 = time.perf_counter()
    with torch.no_grad():
        model.fit_prior(latent_means(model, train.subset(slice(0, 10000)), device))
    aio.save_with(run_dir / "weights.safetensors", lambda p: _save_weights(model, p))

    gen = torch.Generator(device="cpu").manual_seed(run.seed)
    with torch.no_grad():
        x = test.batch(slice(0, 10), device)
        save_recon_grid(x, model.reconstruct(x).clamp(0, 1), images_dir / "recon.png")
        save_grid(model.sample(64, generator=gen).clamp(0, 1), images_dir / "samples.png", nrow=8)
        save_interpolation(model, test, images_dir / "interp.png", device)
        z = latent_means(model, test.subset(slice(0, LATENT_POINTS)), device)
    arrays = {"z": z.numpy()}
    if test.labels is not None:
        arrays["y"] = test.labels[: len(z)].numpy()
    aio.save_with(run_dir / "latents.npz", lambda p: _save_npz(p, arrays))

    metrics = evaluate(
        model,
        train,
        test,
        device=device,
        seed=run.seed,
        fid_extractor=run.fid_extractor,
        fid_samples=run.fid_samples,
        nll_k=run.nll_k,
        nll_samples=run.nll_samples,
        probe_samples=run.probe_samples,
        dataset=run.dataset,
        fid_train=full_train,
        extra_metrics=list(get_plugins().metrics),
    )
    metrics.update(
        regulariser=model.regulariser,
        prior=model.prior_description,
        best_epoch=result.best_epoch,
        train_seconds=result.seconds,
        eval_seconds=time.perf_counter() - t0,
        device=str(device)
        + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        threads=torch.get_num_threads(),
        versions=versions(),
    )
    aio.write_json(run_dir / "metrics.json", metrics)


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def _save_npz(path: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _write_history(path: Path, rows: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    aio.write_text(path, buf.getvalue())


def load_weights(model: torch.nn.Module, run_dir: Path) -> torch.nn.Module:
    """Load a run's stored weights into a freshly built model."""
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(run_dir / "weights.safetensors")))
    return model


def load_run(run_dir: Path) -> Any:
    """Rebuild a finished run's model from its config and weights (eval mode)."""
    from aebench.api import model_spec
    from aebench.errors import ConfigError

    status = run_status(run_dir)
    if not status or status.get("status") != "done":
        state = status.get("status") if status else "missing"
        raise ConfigError(f"{run_dir}: not a finished run (status: {state})")
    config = aio.read_json(run_dir / "config.json")
    spec = model_spec(config["model"])
    shape = tuple(config["input_shape"])
    model = spec.factory(spec.config_cls.from_options(**config["model_config"]), shape)
    return load_weights(model, run_dir).eval()


class Benchmark:
    """A planned benchmark bound to an output directory."""

    def __init__(
        self,
        runs: list[RunConfig],
        out_dir: str | Path,
        data_dir: str | None = None,
        force: bool = False,
    ) -> None:
        self.runs = runs
        self.out_dir = Path(out_dir)
        self.data = DataCache(data_dir)
        self.force = force

    def run_dir(self, run: RunConfig) -> Path:
        return self.out_dir / "runs" / run.run_id

    def pending(self) -> list[RunConfig]:
        return [r for r in self.runs if self.force or not self.is_done(r)]

    def is_done(self, run: RunConfig) -> bool:
        status = run_status(self.run_dir(run))
        return bool(status and status.get("status") == "done")

    def prepare(self) -> None:
        """Checks that need the disk: output dir writable, data present and readable."""
        from aebench.errors import ConfigError

        try:
            (self.out_dir / "runs").mkdir(parents=True, exist_ok=True)
            probe = self.out_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"--out {self.out_dir}: cannot write there ({exc.strerror})"
            ) from None
        preload(self.pending(), self.data)

    def execute(self, progress: RunProgress) -> Summary:
        summary = Summary(self.out_dir)
        pending = self.pending()
        progress.begin(len(self.runs), len(self.runs) - len(pending))
        for run in self.runs:
            if run not in pending:
                summary.outcomes.append(Outcome(run, "skipped"))
                continue
            summary.outcomes.append(self._one(run, progress))
        return summary

    def _one(self, run: RunConfig, progress: RunProgress) -> Outcome:
        run_dir = self.run_dir(run)
        if run_dir.exists():  # a failed, interrupted or forced run starts clean
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        train_shape = self.data.published(run.dataset, run.dataset_options)[0].shape
        aio.write_json(run_dir / "config.json", {**run.to_dict(), "input_shape": list(train_shape)})
        started = now()
        aio.write_json(
            run_dir / "status.json",
            {"status": "running", "reason": None, "started": started, "finished": None},
        )
        t0 = time.perf_counter()
        progress.start_run(run)
        try:
            execute(run, run_dir, self.data, progress)
        except KeyboardInterrupt:
            aio.write_json(
                run_dir / "status.json",
                {
                    "status": "interrupted",
                    "reason": "interrupted by the user",
                    "started": started,
                    "finished": now(),
                },
            )
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            aio.write_text(run_dir / "error.txt", traceback.format_exc())
            aio.write_json(
                run_dir / "status.json",
                {"status": "failed", "reason": reason, "started": started, "finished": now()},
            )
            progress.end_run(run, "failed", reason)
            return Outcome(run, "failed", reason, time.perf_counter() - t0)
        aio.write_json(
            run_dir / "status.json",
            {"status": "done", "reason": None, "started": started, "finished": now()},
        )
        progress.end_run(run, "done", None)
        return Outcome(run, "done", None, time.perf_counter() - t0)


class RunProgress(Progress):
    """Progress for the whole benchmark: rich bars on a terminal, log lines otherwise."""

    def __init__(self, console: Any = None, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal and not quiet
        self.quiet = quiet
        self._bar = None
        self.index = 0
        self.total = 0

    # benchmark level
    def begin(self, total: int, skipped: int) -> None:
        self.total = total
        self.index = skipped
        if skipped:
            self.log(
                f"{skipped} of {total} runs already finished: skipping them (use --force to redo)"
            )
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._runs = self._bar.add_task("runs", total=total, completed=skipped, info="")
            self._steps = self._bar.add_task("epoch", total=1, info="", visible=False)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def log(self, message: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr, flush=True)

    def start_run(self, run: RunConfig) -> None:
        self.index += 1
        self.current = run
        self.log(f"[{self.index}/{self.total}] {run.label}")

    def end_run(self, run: RunConfig, status: str, reason: str | None) -> None:
        msg = f"[{self.index}/{self.total}] {run.label}: {status}"
        self.log(msg + (f" ({reason})" if reason else ""))
        if self._bar is not None:
            self._bar.advance(self._runs)

    # epoch level (called by the training loop)
    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self._epoch = (epoch, epochs)
        if self._bar is not None:
            self._bar.reset(
                self._steps,
                total=steps,
                visible=True,
                description=f"epoch {epoch}/{epochs}",
                info="",
            )

    def step(self, loss: float, advance: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(self._steps, advance=advance, info=f"loss {loss:.2f}")

    def end_epoch(self, row: dict[str, float]) -> None:
        epoch, epochs = self._epoch
        self.log(
            f"    epoch {epoch}/{epochs}: train {row['train_total']:.2f}  "
            f"val {row['val_total']:.2f} nats/img  val SSIM {row.get('val_ssim', float('nan')):.3f}"
            f"  ({row['seconds']:.1f} s)"
        )


def run_benchmark(
    runs: list[RunConfig],
    out_dir: str | Path,
    data_dir: str | None = None,
    force: bool = False,
    report: bool = True,
    progress: RunProgress | None = None,
) -> Summary:
    """Train and evaluate ``runs`` into ``out_dir``; rebuild the table and the site.

    Finished runs are skipped unless ``force``. The results table is rebuilt
    even when the benchmark is interrupted, from whatever runs finished.
    """
    from aebench import results

    bench = Benchmark(runs, out_dir, data_dir, force)
    bench.prepare()
    progress = progress or RunProgress()
    try:
        summary = bench.execute(progress)
    finally:
        progress.finish()
        results.write(out_dir)
    if report:
        try:
            from aebench.report import build_site

            summary.site = build_site(Path(out_dir))
        except Exception as exc:  # the runs are safe on disk; `aebench report` can retry
            summary.report_error = f"{type(exc).__name__}: {exc}"
    return summary
