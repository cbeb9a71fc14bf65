"""The images one run trains and is evaluated on, loaded once per process.

:class:`DataCache` loads each dataset's published splits once (per loader
options) and derives a run's :class:`RunData`: the deterministic validation
split carved from the published train split, the ``limit`` on training
images, the test split, and the full published train split (what the offline
FID extractor is trained on, so every run on a dataset shares one extractor).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import torch

from aebench.catalog import get_dataset
from aebench.datasets.base import ImageSet, validation_split


@dataclass(frozen=True)
class RunData:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    reference_train: ImageSet

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.train.shape


class DataCache:
    """Published splits by (dataset, options), loaded on first use."""

    def __init__(self, data_dir: str | None = None) -> None:
        self.data_dir = data_dir
        self._published: dict[tuple[str, str], tuple[ImageSet, ImageSet]] = {}

    def published(
        self, dataset: str, options: dict[str, Any] | None = None
    ) -> tuple[ImageSet, ImageSet]:
        """(train, test) as published, loaded with the dataset ``options``."""

        options = options or {}
        key = (dataset, json.dumps(options, sort_keys=True, default=str))
        if key not in self._published:
            self._published[key] = (
                get_dataset(dataset, "train", self.data_dir, **options),
                get_dataset(dataset, "test", self.data_dir, **options),
            )
        return self._published[key]

    def for_run(self, run: Any) -> RunData:
        """The data of one run (a :class:`aebench.plan.RunConfig`).

        With ``run.binarize == "dynamic"`` the validation and test images are
        binarised once, with a fixed seed (the same for every run, as in the
        literature), while training batches are binarised afresh by the loop.
        """
        full_train, test = self.published(run.dataset, run.dataset_options)
        train, val = validation_split(full_train, run.val_size)
        if run.limit is not None and run.limit < len(train):
            train = train.subset(slice(0, run.limit))
        if getattr(run, "binarize", None):
            val, test = binarized(val, 1), binarized(test, 2)
        return RunData(train, val, test, full_train)


def binarized(data: ImageSet, seed: int) -> ImageSet:
    """``data`` with each pixel drawn once from Bernoulli(intensity): 0 or 255, seeded."""
    gen = torch.Generator().manual_seed(seed)
    bits = torch.bernoulli(data.images.float().div(255.0), generator=gen)
    return replace(data, images=bits.mul(255).to(torch.uint8))


_shared: dict[str | None, DataCache] = {}


def shared_cache(data_dir: str | None = None) -> DataCache:
    """This process's cache for ``data_dir`` (worker processes keep theirs between runs)."""
    if data_dir not in _shared:
        _shared[data_dir] = DataCache(data_dir)
    return _shared[data_dir]
