"""``folder:PATH``: your own directory of images.

Select it as ``folder:PATH`` (``folder:~/my-images``); the path may be relative
to the working directory and ``~`` is expanded. Layouts:

* one sub-folder per class (``PATH/cat/*.png``, ``PATH/dog/*.jpg``; nested
  folders inside a class count for that class): labels are the sorted
  sub-folder names (``class_names``), 0, 1, ...;
* a flat folder of images: no labels (``labels=None``).

Mixing images at the top level with class sub-folders is an error, as are an
empty folder and any unreadable image: never a silently partial dataset.
Hidden files and folders (``.name``) are skipped. Recognised extensions:
``.png .jpg .jpeg .bmp .gif .tif .tiff .webp .ppm .pgm .pbm`` (any case).

Options (declared in :data:`OPTIONS`, validated by aebench before the loader
runs; keyword arguments of ``get_dataset``/``load_splits``, strings accepted as
from a command line):

* ``size``: ``28`` (square) or ``"32x48"`` (height x width). Default: the size
  of the first image (in sorted path order). Every image is resized (bilinear,
  antialiased, aspect ratio not kept) to it.
* ``channels``: ``1`` (grayscale; also ``"L"``/``"gray"``) or ``3`` (``"RGB"``).
  Default: 1 if the first image is grayscale, else 3. Transparency is dropped
  (composited onto black).
* ``test_fraction`` (default 0.2) and ``split_seed`` (default 0): the folder
  has no published split, so aebench holds out a fixed, seeded random 20% of
  the images as ``test`` (stratified per class when there are classes). The
  same files and options always give the same split.

Images are decoded with PIL once, into one uint8 ``(N, C, H, W)`` tensor that
is cached in ``cache_dir()`` keyed on the file list, sizes, mtimes and the
options; nothing is ever written into PATH.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from aebench.datasets import cache
from aebench.datasets.base import ImageSet, hook
from aebench.errors import ConfigError, DataError
from aebench.specs import DatasetOption, DatasetSpec
from aebench.threads import available_memory, human_bytes

NAME = "folder"
EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")


def _visible(p: Path, top: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(top).parts)


def scan(directory: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...] | None]:
    """(image paths in a fixed order, labels or None, class names or None)."""
    if not directory.exists():
        raise DataError(f"dataset 'folder': directory {directory} does not exist")
    if not directory.is_dir():
        raise DataError(f"dataset 'folder': {directory} is not a directory")
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise DataError(f"dataset 'folder': cannot list {directory}: {exc.strerror}") from None
    top_images = [p for p in entries if p.is_file() and _is_image(p)]
    class_dirs = []
    for d in entries:
        if d.is_dir() and not d.name.startswith("."):
            files = sorted(
                p for p in d.rglob("*") if p.is_file() and _is_image(p) and _visible(p, d)
            )
            if files:
                class_dirs.append((d.name, files))
    if class_dirs and top_images:
        raise DataError(
            f"dataset 'folder': {directory} mixes images at the top level "
            f"(e.g. {top_images[0].name}) with class sub-folders "
            f"({', '.join(n for n, _ in class_dirs[:3])}); use one layout"
        )
    if class_dirs:
        paths = [p for _, files in class_dirs for p in files]
        labels = [i for i, (_, files) in enumerate(class_dirs) for _ in files]
        return paths, labels, tuple(n for n, _ in class_dirs)
    if not top_images:
        raise DataError(
            f"dataset 'folder': no images found in {directory} "
            f"(looked for {', '.join(sorted(EXTENSIONS))}, flat or one sub-folder per class)"
        )
    return top_images, None, None


MIN_SIDE = 3
"""The smallest image side aebench can measure (SSIM's smallest window is 3x3)."""


def parse_size(size: object) -> tuple[int, int] | None:
    """``28`` / ``"28"`` / ``"32x48"`` / ``(32, 48)`` -> (height, width); None stays None."""
    if size is None:
        return None
    try:
        if isinstance(size, (tuple, list)):
            h, w = (int(v) for v in size)
        elif isinstance(size, str) and "x" in size.lower():
            h, w = (int(v) for v in size.lower().split("x"))
        else:
            h = w = int(size)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(f"folder option size={size!r}: use 28 or HEIGHTxWIDTH") from None
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ConfigError(
            f"folder option size={size!r}: images must be at least {MIN_SIDE}x{MIN_SIDE} "
            "(SSIM's smallest window)"
        )
    return h, w


def parse_channels(channels: object) -> int | None:
    """1 / 3 / ``"L"`` / ``"gray"`` / ``"RGB"`` -> 1 or 3; None stays None."""
    if channels is None:
        return None
    text = str(channels).strip().lower()
    table = {"1": 1, "l": 1, "gray": 1, "grey": 1, "grayscale": 1, "3": 3, "rgb": 3}
    if text not in table:
        raise ConfigError(f"folder option channels={channels!r}: use 1 (grayscale) or 3 (RGB)")
    return table[text]


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"dataset 'folder': cannot read image {path}: {exc}") from None
    return img


def _convert(img, channels: int):
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def decode(paths: list[Path], size: tuple[int, int] | None, channels: int | None) -> torch.Tensor:
    """Decode ``paths`` with PIL into one uint8 (N, C, H, W) tensor."""
    from PIL import Image

    first = _open(paths[0])
    if size is None:
        size = (first.height, first.width)
    if channels is None:
        channels = 1 if first.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    h, w = size
    if h < MIN_SIDE or w < MIN_SIDE:
        raise DataError(
            f"dataset 'folder': {paths[0]} is {w}x{h} pixels; images must be at least "
            f"{MIN_SIDE}x{MIN_SIDE} (resize them with --dataset-options size=...)"
        )
    _check_memory(len(paths), h, w, channels)
    out = np.empty((len(paths), h, w, channels), dtype=np.uint8)
    for i, path in enumerate(paths):
        img = first if i == 0 else _open(path)
        img = _convert(img, channels)
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        out[i] = arr.reshape(h, w, channels)
        img.close()
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _check_memory(n: int, h: int, w: int, channels: int) -> None:
    """Refuse, naming the size, a decode that cannot fit: the uint8 images and a float32
    copy of them (5 bytes a value), with a byte to spare."""
    need = n * h * w * channels * 6
    free = available_memory()
    if free is not None and need > free:
        raise ConfigError(
            f"dataset 'folder': {n} images of {h}x{w}x{channels} need about {human_bytes(need)} of "
            f"memory, {human_bytes(free)} is available: give a smaller --dataset-options size=..."
        )


def split_indices(
    labels: list[int] | None, n: int, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices, sorted: a seeded random ``fraction`` per class held out."""
    if n < 2:
        raise DataError("dataset 'folder' needs at least 2 images (one train, one test)")
    gen = torch.Generator().manual_seed(seed)
    groups = [torch.arange(n)]
    if labels is not None:
        lab = torch.as_tensor(labels)
        groups = [torch.nonzero(lab == c).flatten() for c in lab.unique(sorted=True)]
    test: list[torch.Tensor] = []
    for g in groups:
        perm = g[torch.randperm(len(g), generator=gen)]
        test.append(perm[: round(fraction * len(g))])
    test_idx = torch.cat(test)
    if len(test_idx) == 0:  # tiny folder: hold out one image anyway
        test_idx = torch.randperm(n, generator=gen)[:1]
    if len(test_idx) == n:
        test_idx = test_idx[:-1]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[test_idx] = True
    return torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()


def parse_fraction(value: object) -> float:
    """The held-out test fraction, strictly between 0 and 1."""
    try:
        fraction = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"folder option test_fraction={value!r} must be a number") from None
    if not 0 < fraction < 1:
        raise ConfigError(f"folder option test_fraction={fraction} must be between 0 and 1")
    return fraction


OPTIONS = (
    DatasetOption(
        "size",
        str,
        None,
        "resize every image to 28 (square) or HEIGHTxWIDTH (default: the first image's size)",
        parse=parse_size,
    ),
    DatasetOption(
        "channels",
        int,
        None,
        "1 (grayscale; also L, gray) or 3 (RGB) (default: 1 if the first image is grayscale)",
        parse=parse_channels,
    ),
    DatasetOption(
        "test_fraction",
        float,
        DEFAULT_TEST_FRACTION,
        "share of the images held out as the test split (per class)",
        parse=parse_fraction,
    ),
    DatasetOption("split_seed", int, DEFAULT_SPLIT_SEED, "seed of the random train/test split"),
)


def load(
    split: str,
    root: Path | None = None,
    *,
    argument: str | None = None,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    split_seed: int = DEFAULT_SPLIT_SEED,
) -> ImageSet:
    """One split of ``folder:PATH`` (``argument`` is PATH); options as :data:`OPTIONS`."""
    if not argument:
        raise ConfigError("dataset 'folder' needs a path: use folder:PATH")
    if split not in ("train", "test"):
        raise ConfigError(f"dataset 'folder' has no split {split!r}; splits: train, test")

    directory = Path(os.path.expanduser(str(argument))).resolve()
    paths, labels, class_names = scan(directory)
    try:
        stamps = cache.file_stamps(paths)
    except OSError as exc:
        raise DataError(f"dataset 'folder': cannot stat {exc.filename}: {exc.strerror}") from None
    key = {
        "dataset": NAME,
        "directory": str(directory),
        "files": stamps,
        "labels": labels,
        "size": size,
        "channels": channels,
    }
    slot_id = hashlib.sha256(f"{directory}|{size}|{channels}".encode()).hexdigest()[:12]
    slot = f"folder.{slot_id}"
    entry = cache.load(slot, key)
    if entry is None:
        images = decode(paths, size, channels)
        entry = {"images": images}
        if labels is not None:
            entry["labels"] = torch.as_tensor(labels, dtype=torch.int64)
        cache.save(slot, key, entry)
    images = entry["images"]
    label_t = entry.get("labels")
    train_idx, test_idx = split_indices(labels, len(images), test_fraction, split_seed)
    index = train_idx if split == "train" else test_idx
    return ImageSet(
        images[index].contiguous(),
        None if label_t is None else label_t[index],
        class_names,
        f"{NAME}:{argument}",
        split,
    )


DATASET = DatasetSpec(
    name=NAME,
    load=load,
    shape=None,
    splits=("train", "test"),
    takes_argument=True,
    options=OPTIONS,
    description="your own images (class sub-folders or flat)",
)
register_datasets = hook(DATASET)
