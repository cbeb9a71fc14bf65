"""Helpers shared by the metrics and the training loop: eval mode, seeded global RNG,
latent encodings of a dataset, per-image loss terms of a dataset, fixed subsets."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from aebench.datasets.base import ImageSet
    from aebench.models.base import AutoEncoder

SUBSET_SEED = 0
"""Seed of the permutation every fixed evaluation subset is taken from."""


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Seed the global torch RNG (CPU, and CUDA when ``device`` is CUDA) inside
    the block, restoring the previous RNG state afterwards.

    Models draw their reparameterisation and importance-sampling noise from the
    global RNG (``torch.randn_like``); this makes those metrics deterministic
    given the seed without disturbing the caller's random stream.
    """
    dev = torch.device(device)
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def encode_all(
    model: AutoEncoder, data: Any, device: torch.device | str = "cpu", batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(latent means, log-variances or None) of every image of ``data``, float32, CPU."""
    means, logvars = [], []
    with eval_mode(model):
        for i in range(0, len(data), batch_size):
            enc = model.encode(data.batch(slice(i, i + batch_size), device))
            means.append(enc.mean.float().cpu())
            if enc.logvar is not None:
                logvars.append(enc.logvar.float().cpu())
    mean = torch.cat(means)
    return mean, (torch.cat(logvars) if len(logvars) == len(means) else None)


def fixed_indices(size: int, n: int | None) -> torch.Tensor | None:
    """The first ``n`` of a permutation of ``range(size)`` seeded with
    :data:`SUBSET_SEED`, sorted; None (all) when ``n`` is None or >= ``size``."""
    if n is None or n >= size:
        return None
    perm = torch.randperm(size, generator=torch.Generator().manual_seed(SUBSET_SEED))
    return perm[:n].sort().values


def fixed_subset(data: ImageSet, n: int | None) -> ImageSet:
    """The images of :func:`fixed_indices` (in index order); all of ``data`` when ``n``
    is None or >= its length. The same for every model and run seed."""
    index = fixed_indices(len(data), n)
    return data if index is None else data.subset(index)


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Convert nats per image to bits per dimension."""
    return nats_per_image / (dims * math.log(2))


@torch.no_grad()
def loss_metrics(
    model: AutoEncoder,
    data: ImageSet,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of each per-image term of ``model.loss_terms`` (nats) over ``data``, and
    ``bpd`` (bits/dim of the sum of the terms the model names as its ``bound``)
    when it has one. The terms are per image, so the batch size changes nothing."""
    sums: dict[str, float] = {}
    n = len(data)
    if n == 0:
        raise ValueError("loss_metrics needs a non-empty dataset")
    with eval_mode(model), seeded(seed, device):
        for i in range(0, n, batch_size):
            x = data.batch(slice(i, i + batch_size), device)
            terms = model.loss_terms(x)
            if "recon" not in terms:
                raise TypeError(f"{type(model).__name__}.loss_terms() must return 'recon'")
            for k, v in terms.items():
                if v.shape != (x.shape[0],):
                    raise TypeError(
                        f"{type(model).__name__}.loss_terms()[{k!r}] must have one value per "
                        f"image, shape ({x.shape[0]},), got {tuple(v.shape)}"
                    )
                sums[k] = sums.get(k, 0.0) + float(v.double().sum())
    out = {k: v / n for k, v in sums.items()}
    if model.bound:
        missing = [k for k in model.bound if k not in out]
        if missing:
            raise TypeError(
                f"{type(model).__name__}.bound names {', '.join(missing)}, "
                "which loss_terms() does not return"
            )
        nats = out[model.bound[0]]
        for k in model.bound[1:]:
            nats += out[k]
        out["bpd"] = bits_per_dim(nats, math.prod(data.shape))
    return out


@torch.no_grad()
def batch_term_metrics(
    model: AutoEncoder,
    data: ImageSet,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
    seed: int = 0,
) -> tuple[dict[str, float], int]:
    """(mean of each ``model.batch_terms`` value over the full batches of ``data``,
    the batch size used). Only full batches count, so every value is measured at
    one batch size: ``min(batch_size, len(data))``."""
    n = len(data)
    size = min(batch_size, n)
    sums: dict[str, float] = {}
    batches = 0
    with eval_mode(model), seeded(seed, device):
        for i in range(0, n - size + 1, size):
            values = model.batch_terms(data.batch(slice(i, i + size), device))
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v.double())
            batches += 1
    return {k: v / batches for k, v in sums.items()}, size
