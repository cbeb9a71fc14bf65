"""The in-memory image container, data-root resolution, the validation split, and the
``register_datasets`` hook of a dataset module (:func:`hook`).

Datasets live in memory as one uint8 tensor ``(N, C, H, W)``; batches are taken
by index and converted to float in [0, 1] on the fly. There is no per-item PIL
transform anywhere near the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from aebench.hookspecs import registering

if TYPE_CHECKING:
    from aebench.specs import DatasetSpec

ENV_DATA_DIR = "AEBENCH_DATA_DIR"
ENV_CACHE_DIR = "AEBENCH_CACHE_DIR"


@dataclass(frozen=True)
class ImageSet:
    """A split of a dataset: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``.

    Datasets that know how their images were generated also give ``factors``:
    float ``(N, K)``, the value of each of the ``factor_names`` for every image
    (the disentanglement metrics use them; ``None`` elsewhere). ``factor_kinds``
    says per factor whether it is ``"discrete"`` (a few values, e.g. a shape)
    or ``"continuous"``.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: tuple[str, ...] | None = None
    name: str = ""
    split: str = ""
    factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] | None = None
    factor_kinds: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"ImageSet.images must be a uint8 tensor (N, C, H, W), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError("ImageSet.labels must have one label per image")
        if self.factors is not None:
            k = self.factors.shape[1] if self.factors.dim() == 2 else -1
            if len(self.factors) != len(self.images) or k < 1:
                raise ValueError("ImageSet.factors must be (N, K): one row per image")
            for what, names in (
                ("factor_names", self.factor_names),
                ("factor_kinds", self.factor_kinds),
            ):
                if names is None or len(names) != k:
                    raise ValueError(f"ImageSet.{what} must name each of the {k} factors")
            if any(kind not in ("discrete", "continuous") for kind in self.factor_kinds or ()):
                raise ValueError("ImageSet.factor_kinds are 'discrete' or 'continuous'")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int | None:
        if self.class_names is not None:
            return len(self.class_names)
        if self.labels is None or len(self.labels) == 0:
            return None
        return int(self.labels.max()) + 1

    def batch(
        self, index: torch.Tensor | slice, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Images at ``index`` as float32 in [0, 1] on ``device``."""
        x = self.images[index].to(device, non_blocking=True)
        return x.float().div_(255.0)

    def subset(self, index: torch.Tensor | slice, split: str | None = None) -> ImageSet:
        return replace(
            self,
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            factors=None if self.factors is None else self.factors[index],
            split=self.split if split is None else split,
        )


def hook(*specs: DatasetSpec) -> Callable[[Callable[[DatasetSpec], None]], None]:
    """A ``register_datasets`` hook implementation registering ``specs``: a dataset
    module ends with ``register_datasets = hook(DATASET)``."""
    return registering("register_datasets", *specs)


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where dataset files are read: ``data_dir`` > ``$AEBENCH_DATA_DIR`` > user cache.

    The root may be read-only (a shared mount); aebench never writes into it
    except through ``aebench fetch``.
    """
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    return _user_cache() / "data"


def cache_dir() -> Path:
    """aebench's own writable cache (unpacked tensors, offline FID extractors)."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else _user_cache() / "cache"


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aebench"


def validation_split(
    train: ImageSet, size: int | float, seed: int = 0
) -> tuple[ImageSet, ImageSet]:
    """Carve a deterministic validation set out of ``train``.

    ``size`` is a count, or a fraction of ``train`` when below 1. The same
    ``(len(train), size, seed)`` always gives the same split, whatever the
    model or run seed.
    """
    n = len(train)
    n_val = round(size * n) if 0 < size < 1 else int(size)
    if not 0 < n_val < n:
        raise ValueError(f"validation size {size} must leave both splits non-empty (n={n})")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    return train.subset(train_idx, "train"), train.subset(val_idx, "val")
