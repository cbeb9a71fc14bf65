"""The one training loop, for every model family.

The loop owns the epochs, batching, validation and the choice of the best
epoch; the model owns its optimisers (``configure_optimizers``, default one
Adam) and its step (``training_step``, default one step on ``objective``), see
:mod:`aebench.models.base`. Batches have a fixed shape: the ragged
last batch of each epoch is dropped (its images land in other epochs' batches,
since the order is reshuffled), because on CPU every new input shape makes
oneDNN plan again, which costs more than the few images are worth.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aebench import threads
from aebench.datasets.base import ImageSet
from aebench.metrics._util import eval_mode, loss_metrics, seeded
from aebench.metrics.image import average, image_metrics_per_image
from aebench.models.base import AutoEncoder, StepInfo, default_step, overrides
from aebench.progress import EpochEnded, EpochStarted, OnEvent, StepsDone, ignore
from aebench.threads import human_bytes

CHECK_EVERY = 10  # steps between loss read-backs (progress, divergence check)
BINARIZE_SEED = 104729  # offsets the run seed for the dynamic-binarisation stream


class DivergedError(RuntimeError):
    """The loss became NaN or infinite."""


class ContractError(TypeError):
    """A model returns something the model contract (:mod:`aebench.models.base`) rules
    out: a batch mean where one value per image is due, a missing term."""


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


@torch.no_grad()
def check_terms(model: AutoEncoder, x: torch.Tensor, seed: int = 0) -> None:
    """Raise :class:`ContractError` unless the evaluation terms of batch ``x`` keep the
    contract: ``loss_terms(x)`` a dict with ``recon``, the terms ``bound`` names and
    (with the default ``objective``) ``total``, each one value per image (shape
    ``(B,)``); ``batch_terms(x)`` single values. :func:`fit` checks its first batch,
    so a model that returns a batch mean fails before it trains instead of being
    validated, ranked and published on a wrong number. Runs in eval mode under its
    own seeded RNG: training neither perturbs nor depends on it."""
    where = "(see the model contract in aebench.models.base)"
    b = int(x.shape[0])
    with eval_mode(model), seeded(seed, x.device):
        terms = model.loss_terms(x)
        if not isinstance(terms, dict):
            raise ContractError(f"loss_terms() must return a dict, got {_shape(terms)} {where}")
        required = ["recon", *type(model).bound]
        if not overrides(model, "objective"):
            required.append("total")  # the default objective is its batch mean
        missing = [k for k in dict.fromkeys(required) if k not in terms]
        if missing:
            raise ContractError(
                f"loss_terms() must return {', '.join(map(repr, missing))}, got "
                f"{sorted(terms)} {where}"
            )
        for key, value in terms.items():
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != (b,):
                raise ContractError(
                    f"loss_terms()[{key!r}] must have one value per image, shape (B,) = "
                    f"({b},), got {_shape(value)} {where}"
                )
        if overrides(model, "batch_terms"):
            for key, value in model.batch_terms(x).items():
                if not isinstance(value, torch.Tensor) or value.numel() != 1:
                    raise ContractError(
                        f"batch_terms()[{key!r}] must be a single value for the batch, got "
                        f"{_shape(value)} {where}"
                    )


TRAINING_COPIES = 4
"""Copies of each trainable parameter that training holds at least: the weights, their
gradients and Adam's two moments (the default optimiser)."""


def training_bytes(model: nn.Module) -> int:
    """The least memory training ``model`` takes, in bytes: its parameters and buffers,
    plus a gradient and Adam's two moments for each trainable parameter (activations,
    data and the best epoch's copy of the weights come on top). Works on a model
    built on the meta device, which allocates nothing."""
    tensors = [*model.parameters(), *model.buffers()]
    weights = sum(t.numel() * t.element_size() for t in tensors)
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return weights + (TRAINING_COPIES - 1) * trainable


def available_memory(device: torch.device | str) -> int | None:
    """Bytes free for a run on ``device``: on CUDA the device's free memory; on CPU the
    memory available to new allocations (:func:`aebench.threads.available_memory`).
    None when it cannot be told (another device type, a platform without either)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return None
        return int(torch.cuda.mem_get_info(dev)[0])
    if dev.type != "cpu":
        return None
    return threads.available_memory()


def memory_shortfall(model: nn.Module, device: torch.device | str) -> str | None:
    """Why ``model`` cannot train on ``device`` (``"its 1,234 parameters need at least
    ..."``), or None when :func:`training_bytes` fits :func:`available_memory` (or
    that cannot be told)."""
    need, have = training_bytes(model), available_memory(device)
    if have is None or need <= have:
        return None
    n = sum(p.numel() for p in model.parameters())
    return (
        f"its {n:,} parameters need at least {human_bytes(need)} to train (weights, gradients "
        f"and Adam's two moments), more than the {human_bytes(have)} of memory available on "
        f"{torch.device(device).type}"
    )


def train_step(
    model: AutoEncoder,
    optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    x: torch.Tensor,
    step: StepInfo | None = None,
    objective: Callable[..., Any] | None = None,
) -> dict[str, torch.Tensor]:
    """One optimisation step on batch ``x``: the model's ``training_step``; returns the
    detached scalars it logs (``"total"`` first).

    ``objective`` replaces ``model.objective`` (a compiled version of it) in the
    default step; a model with its own ``training_step`` ignores it."""
    opts = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
    step = step or StepInfo(0, 1, 1, 1, int(x.shape[0]))
    if objective is None or overrides(model, "training_step"):
        logs = model.training_step(x, step, opts)
    else:
        logs = default_step(objective, x, step, opts[0])
    if "total" not in logs:
        raise TypeError(f"{type(model).__name__}.training_step() must log a 'total'")
    return logs


@dataclass
class TrainSettings:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    metric_images: int = 1000  # fixed subset for per-epoch MSE/SSIM/PSNR
    snapshot_images: int = 10  # fixed validation images reconstructed every epoch
    compile: bool = False  # torch.compile the training loss (CUDA graphs on CUDA)
    binarize: bool = False  # dynamic binarisation: every batch x ~ Bernoulli(pixel intensity)


def compiled_loss(model: AutoEncoder, device: torch.device) -> Callable[..., Any]:
    """``model.objective`` through ``torch.compile``: fused kernels, and on CUDA the
    fixed-shape step captured as CUDA graphs (``mode="reduce-overhead"``). Batches
    have one shape (the ragged last batch is dropped), so it compiles once."""
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    return torch.compile(model.objective, mode=mode, dynamic=False, fullgraph=False)


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float
    optimizers: list[str] = field(default_factory=list)
    """Each optimiser the model configured, in words (:func:`describe_optimizer`)."""


def describe_optimizer(optimizer: torch.optim.Optimizer) -> str:
    """``"Adam(lr=0.001, betas=(0.9, 0.999)) over 12,345 parameters"``: its class, the
    settings of its first parameter group that a paper would name, and its size."""
    group = optimizer.param_groups[0] if optimizer.param_groups else {}
    settings = ", ".join(
        f"{k}={tuple(group[k]) if isinstance(group[k], list) else group[k]}"
        for k in ("lr", "betas", "momentum", "weight_decay")
        if k in group and (group[k] or k == "lr")  # zero momentum / decay: not worth a word
    )
    size = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    return f"{type(optimizer).__name__}({settings}) over {size:,} parameters"


@torch.no_grad()
def objective_value(
    model: AutoEncoder, data: ImageSet, *, device: torch.device, batch_size: int, seed: int
) -> float:
    """The model's batch-level ``objective`` (final form: ``step=None``) over ``data``
    in batches of ``batch_size``, in eval mode under a seeded RNG, weighted by
    batch size (the ragged last batch counts for its images)."""
    total, n = 0.0, len(data)
    with eval_mode(model), seeded(seed, device):
        for i in range(0, n, batch_size):
            x = data.batch(slice(i, i + batch_size), device)
            loss, _ = model.objective(x, None)
            total += float(loss.double()) * x.shape[0]
    return total / n


def _image_metrics(model: AutoEncoder, x: torch.Tensor, prefix: str) -> dict[str, float]:
    with torch.no_grad():
        recon = model.reconstruct(x).clamp_(0, 1)
    return {f"{prefix}_{k}": v for k, v in average(image_metrics_per_image(recon, x)).items()}


def fit(
    model: AutoEncoder,
    train: ImageSet,
    val: ImageSet,
    settings: TrainSettings,
    on_event: OnEvent | None = None,
    on_epoch: Callable[[int, dict[str, float], torch.Tensor], Any] | None = None,
) -> TrainResult:
    """Train ``model`` and keep the weights of the epoch with the best validation loss.

    ``on_event`` receives progress events (:mod:`aebench.progress`).
    ``on_epoch(epoch, row, snapshot)`` receives each history row and the
    reconstructions of the fixed snapshot images (for the report's animation).
    Deterministic given ``settings.seed`` (and the model's own initial weights).
    """
    device = settings.device
    emit = on_event or ignore
    model.to(device)
    optimizers = list(model.configure_optimizers(settings.lr))
    n = len(train)
    batch_size = min(settings.batch_size, n)
    steps = n // batch_size
    generator = torch.Generator().manual_seed(settings.seed)
    # Whole datasets are uint8 tensors; on an accelerator move them once.
    images = train.images if device.type == "cpu" else train.images.to(device)
    loss_terms = compiled_loss(model, device) if settings.compile else None
    # Dynamic binarisation draws from its own generator (on the data's device), so it
    # neither perturbs nor depends on the model's noise.
    bits = torch.Generator(device=images.device).manual_seed(settings.seed + BINARIZE_SEED)
    n_metric = min(settings.metric_images, len(val), n)
    val_fixed = val.batch(slice(0, n_metric), device)
    train_fixed = train.batch(slice(0, n_metric), device)
    snapshot = val_fixed[: settings.snapshot_images]

    history: list[dict[str, float]] = []
    best_total, best_epoch, best_state = math.inf, 0, None
    started = time.perf_counter()
    done = 0
    for epoch in range(1, settings.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        emit(EpochStarted(epoch, settings.epochs, steps))
        perm = torch.randperm(n, generator=generator).to(images.device)
        keys: list[str] = []
        sums = torch.zeros(0, device=device)
        for s in range(steps):
            x = images[perm[s * batch_size : (s + 1) * batch_size]].float().div_(255.0)
            if settings.binarize:
                x = torch.bernoulli(x, generator=bits)
            if done == 0:
                model.on_train_start(n, x)
                check_terms(model, x, settings.seed)
            info = StepInfo(done, epoch, steps, settings.epochs, n)
            logs = train_step(model, optimizers, x, info, loss_terms)
            done += 1
            if not keys:
                keys = list(logs)
                sums = torch.zeros(len(keys), device=device)
            batch = torch.stack([logs[k].float().mean() for k in keys])
            sums += batch
            # Reading the loss back syncs an accelerator with the host: do it only
            # every few steps (a NaN stays NaN, so divergence is still caught).
            if (s + 1) % CHECK_EVERY == 0 or s + 1 == steps:
                loss = float(batch[0])
                if not math.isfinite(loss):
                    raise DivergedError(f"loss became {loss} at epoch {epoch}, step {s + 1}")
                emit(StepsDone(loss, advance=(s % CHECK_EVERY) + 1))
        row: dict[str, float] = {"epoch": epoch}
        row.update({f"train_{k}": float(v) / steps for k, v in zip(keys, sums, strict=True)})
        # Validation under its own seeded RNG, so it neither perturbs nor depends on
        # the training stream; same batch size as training (shapes already planned).
        val_terms = loss_metrics(
            model, val, device=device, batch_size=batch_size, seed=settings.seed
        )
        val_terms.pop("bpd", None)
        if "total" not in val_terms:  # a batch-level objective: its value on val batches
            val_terms["total"] = objective_value(
                model, val, device=device, batch_size=batch_size, seed=settings.seed
            )
        if not math.isfinite(val_terms["total"]):
            raise DivergedError(f"validation loss became {val_terms['total']} at epoch {epoch}")
        row.update({f"val_{k}": v for k, v in val_terms.items()})
        model.eval()
        row.update(_image_metrics(model, train_fixed, "train"))
        row.update(_image_metrics(model, val_fixed, "val"))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if val_terms["total"] < best_total:
            best_total, best_epoch = val_terms["total"], epoch
            best_state = copy.deepcopy(model.state_dict())
        with torch.no_grad():
            snap = model.reconstruct(snapshot).clamp_(0, 1).cpu()
        emit(EpochEnded(row))
        if on_epoch is not None:
            on_epoch(epoch, row, snap)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    described = [describe_optimizer(o) for o in optimizers]
    return TrainResult(history, best_epoch, time.perf_counter() - started, described)
