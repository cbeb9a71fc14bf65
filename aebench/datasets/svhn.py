"""``svhn``: Street View House Numbers, cropped digits, in torchvision's format.

Layout (torchvision's): ``<root>/SVHN/train_32x32.mat`` and ``test_32x32.mat``,
the original MATLAB files: ``X`` is ``(32, 32, 3, N)`` uint8 and ``y`` holds
labels 1..10, where 10 means the digit 0 (mapped to 0, as torchvision does).
Each file's MD5 is checked against ``torchvision.datasets.SVHN.split_list``
(opt out for a custom copy with ``AEBENCH_SKIP_CHECKSUMS=1`` or
``verify_checksums=False``); the decoded tensors are cached like MNIST's. The
``extra`` split (531k images) is not offered.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from aebench.datasets import cache, checksums
from aebench.datasets.base import ImageSet, hook
from aebench.datasets.fetching import download_file
from aebench.errors import ConfigError, DataError
from aebench.specs import DatasetSpec

NAME = "svhn"
FOLDER = "SVHN"
SPLIT_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
CLASS_NAMES = tuple(str(i) for i in range(10))


def torchvision_split_list() -> dict[str, tuple[str, str, str]]:
    """{split: (url, filename, md5)} from torchvision's SVHN class."""
    from torchvision.datasets import SVHN

    return {k: tuple(v) for k, v in SVHN.split_list.items()}


def decode_mat(raw: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64 in 0..9) from a ``.mat`` file's bytes."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(io.BytesIO(raw), variable_names=["X", "y"])
    except Exception as exc:  # truncated / not a MATLAB file / v7.3 (HDF5)
        raise DataError(
            f"dataset {NAME!r}: {path} is not a readable MATLAB .mat file "
            f"({type(exc).__name__}: {exc}); delete it and download it again"
        ) from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"dataset {NAME!r}: {path} lacks the variables 'X' and 'y'")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(
            f"dataset {NAME!r}: {path} has X of shape {x.shape}, expected (32, 32, 3, N)"
        )
    if x.dtype != np.uint8:
        raise DataError(f"dataset {NAME!r}: {path} has X of dtype {x.dtype}, expected uint8")
    if len(y) != x.shape[3]:
        raise DataError(f"dataset {NAME!r}: {path} has {x.shape[3]} images but {len(y)} labels")
    labels = y.astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() > 10):
        raise DataError(f"dataset {NAME!r}: {path} has labels outside 1..10")
    labels[labels == 10] = 0
    images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)))  # (N, C, H, W)
    return images, labels


def load(split: str, root: Path, verify_checksums: bool | None = None) -> ImageSet:
    verify = checksums.should_verify(verify_checksums)
    if split not in SPLIT_FILES:
        raise ConfigError(f"dataset {NAME!r} has no split {split!r}; splits: train, test")
    path = Path(root) / FOLDER / SPLIT_FILES[split]
    if not path.is_file():
        raise DataError(
            f"dataset {NAME!r} is not available: expected {SPLIT_FILES[split]} in "
            f"{path.parent}; run `aebench fetch {NAME}` or set --data-dir / AEBENCH_DATA_DIR"
        )
    slot = cache.slot_for(NAME, split, path.parent)
    key = {"dataset": NAME, "split": split, "files": cache.file_stamps([path])}
    entry = cache.load(slot, key)
    if entry is None or not (entry.get("verified") or not verify):
        raw = checksums.read_bytes(path, NAME)
        if verify:
            checksums.verify_md5(path, raw, torchvision_split_list()[split][2], NAME)
        images, labels = decode_mat(raw, path)
        del raw
        entry = {
            "images": torch.from_numpy(images),
            "labels": torch.from_numpy(labels),
            "verified": verify,
        }
        cache.save(slot, key, entry)
    return ImageSet(entry["images"], entry["labels"], CLASS_NAMES, NAME, split)


def fetch(root: Path) -> None:
    split_list = torchvision_split_list()
    for split, filename in SPLIT_FILES.items():
        url, _, md5 = split_list[split]
        download_file([url], Path(root) / FOLDER / filename, md5, NAME)


DATASET = DatasetSpec(
    name=NAME,
    load=load,
    shape=(3, 32, 32),
    splits=("train", "test"),
    num_classes=10,
    class_names=CLASS_NAMES,
    files=tuple(f"{FOLDER}/{f}" for f in SPLIT_FILES.values()),
    fetch=fetch,
    options=(checksums.VERIFY_OPTION,),
    description="SVHN cropped house-number digits, 32x32 RGB, 73k/26k",
)
register_datasets = hook(DATASET)
