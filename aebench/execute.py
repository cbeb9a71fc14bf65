"""Execute one run: train → evaluate → store.

:func:`execute_run` is a plain function of a run config and an output folder
(plus where the data is): everything it needs crosses a process boundary by
pickling, so a local loop, a process pool, Ray or SLURM can all call it. It
never raises for a failed run: the failure is recorded in the run store
(status ``failed``, reason, ``error.txt``) and returned. Only an interrupt
propagates (after marking the run ``interrupted``).
"""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata as md
import os
import platform
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aebench.catalog import create_model, model_spec
from aebench.data import DataCache, RunData, shared_cache
from aebench.images import save_grid, save_run_images
from aebench.metrics._util import encode_all
from aebench.metrics.context import EXPOST_FIT_IMAGES, EvalContext
from aebench.metrics.evaluate import evaluate
from aebench.models.base import AutoEncoder
from aebench.plan import RunConfig
from aebench.progress import Message, OnEvent, RunEnded, RunStarted, Stage, ignore
from aebench.store import RunStore, RunWriter
from aebench.train import ContractError, TrainSettings, fit

STORED_LATENT_IMAGES = 2000
"""Test images whose latent means are stored (latents.npz) for the report's plots."""
EPOCH_LATENT_IMAGES = 1000
"""Validation images whose latent means are stored after every epoch (latents_epochs.npz)."""


@dataclass(frozen=True)
class Outcome:
    run: RunConfig
    status: str  # done | failed | skipped
    reason: str | None = None
    seconds: float = 0.0


def versions() -> dict[str, str]:
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


def execute_run(
    run: RunConfig,
    out: str | Path,
    data_dir: str | None = None,
    on_event: OnEvent | None = None,
    *,
    data: DataCache | None = None,
    index: int = 1,
    total: int = 1,
    device: str | None = None,
    threads: int | None = None,
    redo: bool = False,
    wait_for_claim: float = 0.0,
) -> Outcome:
    """Train and evaluate ``run`` into the run store at ``out``; record how it ended.

    The cell is claimed first: if another live worker holds it, or (unless
    ``redo``) it is already finished, nothing runs and the outcome is
    ``skipped``. ``device`` picks the concrete device (``cuda:1``) for a run on
    ``run.device``; ``threads`` sets torch's CPU threads for this process;
    ``wait_for_claim``: seconds to wait for a cell another worker holds (a task
    rerun after its node died waits for the dead worker's lease to expire).
    """
    emit = on_event or ignore
    if threads:
        torch.set_num_threads(threads)
    store = RunStore(out)
    with store.claim(run.key, wait=wait_for_claim) as claim:
        if claim is None:
            emit(Message(f"{run.label}: skipped, running in another process"))
            return Outcome(run, "skipped", "running in another process")
        if not redo and store.is_done(run.key):
            return Outcome(run, "skipped", "already finished")
        data = data or shared_cache(data_dir)
        shape = data.published(run.dataset, run.dataset_options)[0].shape
        writer = store.start(run.run_id, {**run.to_dict(), "input_shape": list(shape)})
        emit(RunStarted(run.run_id, run.label, index, total))
        t0 = time.perf_counter()

        def ended(status: str, reason: str | None) -> Outcome:
            seconds = time.perf_counter() - t0
            emit(RunEnded(run.run_id, run.label, index, total, status, reason, seconds))
            return Outcome(run, status, reason, seconds)

        on = device or run.device
        try:
            train_and_evaluate(run, data.for_run(run), writer, emit, on)
        except KeyboardInterrupt:
            writer.status("interrupted", "interrupted by the user")
            raise
        except Exception as exc:
            reason = failure_reason(run, exc)
            writer.error(traceback.format_exc())
            writer.status("failed", reason)
            oom = out_of_memory(exc)
        else:
            writer.status("done")
            return ended("done", None)
        if oom:  # the failed run's tensors are garbage now: free them for the next cell
            release_memory(on)
        return ended("failed", reason)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says memory ran out: Python's or NumPy's ``MemoryError``, CUDA's
    ``OutOfMemoryError``, or the CPU allocator's ``RuntimeError`` ("can't allocate
    memory"), which has no type of its own."""
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text
    )


def failure_reason(run: RunConfig, exc: BaseException) -> str:
    """The one line a failed run's status gives: the exception's first line, after the
    model's name where the model is to blame (it breaks the contract, or it runs out
    of memory)."""
    lines = str(exc).strip().splitlines()
    cause = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    if out_of_memory(exc):
        return (
            f"{run.model} ran out of memory ({cause}); choose smaller model options or batch size"
        )
    if isinstance(exc, ContractError):
        return f"{run.model} breaks the model contract: {lines[0] if lines else cause}"
    return cause


def release_memory(device: str | None) -> None:
    """Collect garbage and hand cached CUDA blocks back, after a run ran out of memory."""
    gc.collect()
    if device and torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def train_and_evaluate(
    run: RunConfig, data: RunData, writer: RunWriter, emit: OnEvent, device: str | None = None
) -> None:
    """The body of a run, on ``device`` (default ``run.device``); raises on failure."""
    on = torch.device(device or run.device)
    if on.type == "cuda":
        deterministic_cuda(run.deterministic)
    torch.manual_seed(run.seed)
    model = create_model(run.model, data.shape, **run.model_config)
    writer.update_config(resolved_model_config=model.config.to_dict())
    history: list[dict[str, float]] = []

    # Latent means of a fixed validation subset after every epoch: the report
    # animates how the latent space organises itself during training.
    tracked = data.val.subset(slice(0, EPOCH_LATENT_IMAGES))
    epoch_latents: list[torch.Tensor] = []

    def on_epoch(epoch: int, row: dict[str, float], snapshot: torch.Tensor) -> None:
        history.append(row)
        writer.history(history)
        save_grid(snapshot, writer.image_path(f"recon_epoch_{epoch:03d}"), nrow=len(snapshot))
        epoch_latents.append(_means(model, tracked, on))

    settings = TrainSettings(
        epochs=run.epochs,
        batch_size=run.batch_size,
        lr=run.lr,
        seed=run.seed,
        device=on,
        compile=run.compile,
        binarize=run.binarize == "dynamic",
    )
    result = fit(model, data.train, data.val, settings, on_event=emit, on_epoch=on_epoch)
    writer.arrays("latents_epochs", **_labelled(torch.stack(epoch_latents), tracked))

    t0 = time.perf_counter()
    emit(Stage("fitting the sampling density" if _fits_prior(model) else "saving weights"))
    with torch.no_grad():
        model.fit_prior(_means(model, data.train.subset(slice(0, EXPOST_FIT_IMAGES)), on))
    writer.weights(model)

    emit(Stage("drawing reconstructions, samples and latents"))
    save_run_images(model, data.test, writer, on, seed=run.seed)
    test_subset = data.test.subset(slice(0, STORED_LATENT_IMAGES))
    writer.arrays("latents", **_labelled(_means(model, test_subset, on), test_subset))

    ctx = EvalContext(
        model,
        data.train,
        data.test,
        device=on,
        seed=run.seed,
        dataset=run.dataset,
        options=dict(run.metric_options),
        reference_train=data.reference_train,
        on_event=emit,
    )
    metrics = evaluate(ctx)
    metrics.update(
        regulariser=model.regulariser,
        objective=objective_text(run.model, model),
        latent_kind=model.latent_kind,
        objective_group=model.group(),
        sampler=model.prior_description,
        best_epoch=result.best_epoch,
        optimizers=result.optimizers,
        train_seconds=result.seconds,
        eval_seconds=time.perf_counter() - t0,
        device=str(on) + (f" ({torch.cuda.get_device_name()})" if on.type == "cuda" else ""),
        threads=torch.get_num_threads(),
        versions=versions(),
    )
    writer.metrics(metrics)


def objective_text(name: str, model: AutoEncoder) -> str:
    """The objective the model trains, with the values of the options its spec names
    as changing it: ``"β-ELBO, β=4.0"``. Stored, so that the leaderboard keeps
    objectives apart even when the plugin that defined them is gone."""
    text = model.objective_label()
    options = model.config.to_dict()
    for option, label in model_spec(name).objective_options:
        if option in options:
            text += f", {label}={options[option]}"
    return text


def deterministic_cuda(on: bool) -> None:
    """Make CUDA kernels repeatable (or not): deterministic algorithms, cuDNN without
    autotuning, and the cuBLAS workspace setting PyTorch documents for that."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on


def _means(model: AutoEncoder, data: Any, device: torch.device) -> torch.Tensor:
    return encode_all(model, data, device)[0]


def _fits_prior(model: Any) -> bool:
    return type(model).fit_prior is not AutoEncoder.fit_prior


def _labelled(z: torch.Tensor, data: Any) -> dict[str, Any]:
    """``{"z": latents}`` plus ``"y"``, the labels of the images they encode, if any."""
    arrays = {"z": z.numpy()}
    if data.labels is not None:
        arrays["y"] = data.labels[: z.shape[-2]].numpy()
    return arrays
