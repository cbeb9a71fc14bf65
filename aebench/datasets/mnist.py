"""``mnist`` and ``fashion-mnist``: torchvision's files, read straight from the ``.gz``.

Layout (torchvision's): ``<root>/MNIST/raw/*.gz`` and ``<root>/FashionMNIST/raw/*.gz``,
the four original files each. They are decompressed in memory, never extracted
into the (possibly read-only) root; headers and byte lengths are validated and
each file's MD5 is checked against torchvision's published one (opt out for a
custom copy with ``AEBENCH_SKIP_CHECKSUMS=1`` or ``verify_checksums=False``).
The decoded uint8 tensors are cached in ``cache_dir()`` keyed on each source
file's path, size and mtime, so warm loads take a fraction of a second.

Mirrors, URLs and MD5s come from ``torchvision.datasets.MNIST``/``FashionMNIST``
at load/fetch time (torchvision is imported lazily: it is slow to import and
``aebench models`` should not pay for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from aebench.datasets import cache, checksums
from aebench.datasets.base import ImageSet
from aebench.datasets.fetching import download_file
from aebench.datasets.idx import read_idx_gz
from aebench.errors import ConfigError, DataError
from aebench.hookspecs import hookimpl
from aebench.specs import DatasetSpec

# The on-disk names, which every mirror shares. tests/test_datasets.py checks
# they equal torchvision's ``resources``, where the checksums come from.
_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_CLASSES = tuple(str(i) for i in range(10))
# FashionMNIST's class names (torchvision.datasets.FashionMNIST.classes), kept
# here so that registering the plugin does not import torchvision.
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class IdxDataset:
    """One MNIST-format dataset: its name, torchvision class and folder."""

    name: str
    torchvision_class: str  # "MNIST" / "FashionMNIST": also the folder under root
    class_names: tuple[str, ...]
    description: str

    @property
    def raw_dir(self) -> str:
        return f"{self.torchvision_class}/raw"

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"{self.raw_dir}/{f}" for pair in _SPLIT_FILES.values() for f in pair)

    def torchvision(self) -> tuple[list[str], dict[str, str]]:
        """(mirrors, {filename: md5}) from torchvision's class."""
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.torchvision_class)
        return list(cls.mirrors), dict(cls.resources)

    def load(self, split: str, root: Path, verify_checksums: bool | None = None) -> ImageSet:
        verify = checksums.should_verify(verify_checksums)
        if split not in _SPLIT_FILES:
            raise ConfigError(f"dataset {self.name!r} has no split {split!r}; splits: train, test")
        folder = Path(root) / self.raw_dir
        paths = [folder / f for f in _SPLIT_FILES[split]]
        for p in paths:
            if not p.is_file():
                raise DataError(
                    f"dataset {self.name!r} is not available: expected "
                    f"{', '.join(_SPLIT_FILES[split])} in {folder}; run "
                    f"`aebench fetch {self.name}` or set --data-dir / AEBENCH_DATA_DIR"
                )
        slot = cache.slot_for(self.name, split, folder)
        key = {"dataset": self.name, "split": split, "files": cache.file_stamps(paths)}
        entry = cache.load(slot, key)
        if entry is not None and (entry.get("verified") or not verify):
            return self._imageset(entry["images"], entry["labels"], split)

        expected = self.torchvision()[1] if verify else {}
        arrays = []
        for p, ndim in zip(paths, (3, 1), strict=True):
            raw = checksums.read_bytes(p, self.name)
            if verify:
                checksums.verify_md5(p, raw, expected[p.name], self.name)
            arrays.append(read_idx_gz(p, self.name, ndim, raw=raw))
        images, labels = arrays
        if images.shape[1:] != (28, 28):
            raise DataError(
                f"dataset {self.name!r}: {paths[0]} holds {images.shape[1]}x{images.shape[2]} "
                f"images, expected 28x28"
            )
        if len(images) != len(labels):
            raise DataError(
                f"dataset {self.name!r}: {paths[0]} has {len(images)} images but "
                f"{paths[1]} has {len(labels)} labels"
            )
        if len(labels) and int(labels.max()) >= len(self.class_names):
            raise DataError(
                f"dataset {self.name!r}: {paths[1]} has label {int(labels.max())}, "
                f"expected 0..{len(self.class_names) - 1}"
            )
        images_t = torch.from_numpy(images).unsqueeze(1).contiguous()
        labels_t = torch.from_numpy(labels.astype("int64"))
        cache.save(slot, key, {"images": images_t, "labels": labels_t, "verified": verify})
        return self._imageset(images_t, labels_t, split)

    def _imageset(self, images: torch.Tensor, labels: torch.Tensor, split: str) -> ImageSet:
        return ImageSet(images, labels, self.class_names, self.name, split)

    def fetch(self, root: Path) -> None:

        mirrors, md5s = self.torchvision()
        folder = Path(root) / self.raw_dir
        for filename, md5 in md5s.items():
            urls = [m.rstrip("/") + "/" + filename for m in mirrors]
            download_file(urls, folder / filename, md5, self.name)

    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            name=self.name,
            load=self.load,
            shape=(1, 28, 28),
            splits=("train", "test"),
            num_classes=len(self.class_names),
            class_names=self.class_names,
            files=self.files,
            fetch=self.fetch,
            description=self.description,
            options=(checksums.VERIFY_OPTION,),
        )


MNIST = IdxDataset("mnist", "MNIST", MNIST_CLASSES, "MNIST handwritten digits, 28x28 gray, 60k/10k")
FASHION_MNIST = IdxDataset(
    "fashion-mnist",
    "FashionMNIST",
    FASHION_CLASSES,
    "Fashion-MNIST clothing (Zalando), 28x28 gray, 60k/10k",
)


@hookimpl
def register_datasets(register) -> None:
    register(MNIST.spec())
    register(FASHION_MNIST.spec())
