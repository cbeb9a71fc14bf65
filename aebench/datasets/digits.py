"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images).

Needs no download, so it is the offline quick demo and the tests' default.
The published data has no train/test split; aebench uses a fixed stratified
80/20 split (seed 0), so every machine gets the same test set.
"""

from __future__ import annotations

from pathlib import Path

import torch

from aebench.datasets.base import ImageSet
from aebench.hookspecs import hookimpl
from aebench.specs import DatasetSpec

CLASS_NAMES = tuple(str(i) for i in range(10))


def load(split: str, root: Path | None = None) -> ImageSet:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    # Pixel values are 0..16; scale to the full uint8 range like the other sets.
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round()).to(torch.uint8)
    images = images.unsqueeze(1).contiguous()
    labels = torch.from_numpy(bunch.target).long()
    idx = torch.arange(len(labels)).numpy()
    train_idx, test_idx = train_test_split(
        idx, test_size=0.2, random_state=0, stratify=bunch.target
    )
    chosen = sorted(train_idx if split == "train" else test_idx)
    index = torch.as_tensor(chosen)
    return ImageSet(images[index], labels[index], CLASS_NAMES, "digits", split)


@hookimpl
def register_datasets(register) -> None:
    register(
        DatasetSpec(
            name="digits",
            load=load,
            shape=(1, 8, 8),
            num_classes=10,
            class_names=CLASS_NAMES,
            description="scikit-learn's 8x8 handwritten digits; bundled, works offline",
        )
    )
