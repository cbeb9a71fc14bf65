"""``dsprites``: DeepMind's dSprites (Matthey et al. 2017), with its generative factors.

The published file: ``<root>/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``
(``aebench fetch dsprites`` downloads it from DeepMind's GitHub repository; offline,
copy the file there yourself and pass ``--data-dir``), a
NumPy archive of ``imgs`` (737,280 x 64 x 64 uint8, pixels 0 or 1),
``latents_values`` (737,280 x 6 float64: color, shape, scale, orientation,
posX, posY) and ``latents_classes`` (the same as integer indices), one image
for every combination of 1 colour x 3 shapes (square, ellipse, heart) x 6
scales x 40 orientations x 32 x 32 positions. The pickled ``metadata`` entry is
never read.

* **Images**: pixels 0/1 become 0/255 uint8, ``(N, 1, size, size)``. The
  ``size`` option (64, 32, 16 or 8) averages each block of ``64/size`` pixels
  (area downscaling, so edges get grey levels); ``size=32`` quarters the
  memory and compute of CPU runs.
* **Labels**: the shape (0 square, 1 ellipse, 2 heart).
* **Factors** (``ImageSet.factors``, for the disentanglement metrics): the
  values of shape (1, 2, 3), scale, orientation, posX and posY, all
  ``"discrete"`` (they lie on a grid; disentanglement_lib uses them as class
  indices too). Colour is left out: it takes a single value, and
  disentanglement_lib's ``dsprites_full`` leaves it out as well.
* **Split**: the data has no published split; aebench draws a fixed seeded
  subset of ``n`` images (default: all of them) and holds out a seeded random
  ``test_fraction`` (default 10%) of it as ``test``. The same file and options
  always give the same split, on every machine.

**Integrity.** DeepMind publishes no MD5 or SHA-256 for the file; what its
repository does record is the file's git blob id, :data:`GIT_BLOB`, read here
from the tree of deepmind/dsprites-dataset at commit :data:`COMMIT`, the
commit the download URLs pin. That id is the SHA-1 of ``b"blob <size>\\0"``
followed by the file's bytes, so it pins the exact published bytes and can be
recomputed from any copy (:func:`git_blob_sha1`; ``git hash-object FILE`` prints the
same). aebench checks it the first time a file is decoded and after every
download (opt out with ``AEBENCH_SKIP_CHECKSUMS=1`` or
``verify_checksums=False``, for a deliberate custom copy); a mismatch names
both values. The MD5 that several third-party loaders check
(``7da33b31...``) is deliberately *not* used: it could not be recomputed here
without the file, and a wrong checksum would refuse every user's good copy.
Checksum or not, the archive's structure is always validated (arrays, shapes,
dtypes, pixel values, shape classes, equal counts), each failure one line
naming the file. The ``imgs`` array (3 GB decompressed) is streamed out of the
archive in chunks, so only the chosen, downscaled images are ever held in
memory, and the decoded tensors are cached in ``cache_dir()`` keyed on the
file's path, size and mtime and the options.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from aebench.datasets import cache, checksums
from aebench.datasets.base import ImageSet, hook
from aebench.datasets.fetching import download_file, writable_dir
from aebench.errors import ConfigError, DataError
from aebench.specs import DatasetOption, DatasetSpec

NAME = "dsprites"
FOLDER = "dsprites"
FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
COMMIT = "fa310c66517cfc1939d77fe17c725154efc97127"
"""The commit of deepmind/dsprites-dataset that aebench downloads from."""
URLS = (
    f"https://github.com/deepmind/dsprites-dataset/raw/{COMMIT}/{FILENAME}",
    f"https://raw.githubusercontent.com/google-deepmind/dsprites-dataset/{COMMIT}/{FILENAME}",
)
"""Mirrors, tried in turn; both serve the bytes of the file at :data:`COMMIT`."""
GIT_BLOB = "d98996d3f8ee1550e06b9d4ed78d0beb478910d5"
"""The archive's git blob id in the tree of :data:`COMMIT` (``git ls-tree``): the checksum
aebench verifies (:func:`git_blob_sha1`)."""
N_IMAGES = 737_280
SIDE = 64
LATENT_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_KINDS = ("discrete",) * len(FACTOR_NAMES)
CLASS_NAMES = ("square", "ellipse", "heart")
SIZES = (64, 32, 16, 8)
DEFAULT_TEST_FRACTION = 0.1
DEFAULT_SPLIT_SEED = 0
_CHUNK = 8192  # images decompressed at a time (32 MiB at 64x64)


def parse_n(value: object) -> int | None:
    """The number of images to use, at least 2; None stays None (all)."""
    if value is None:
        return None
    try:
        n = int(str(value))
    except ValueError:
        raise ConfigError(f"option {NAME}:n: expected an integer, got {value!r}") from None
    if n < 2:
        raise ConfigError(f"option {NAME}:n must be at least 2 (one train, one test), got {n}")
    return n


def parse_fraction(value: object) -> float:
    """The held-out test fraction, strictly between 0 and 1."""
    try:
        fraction = float(str(value))
    except ValueError:
        raise ConfigError(
            f"option {NAME}:test_fraction: expected a number, got {value!r}"
        ) from None
    if not 0 < fraction < 1:
        raise ConfigError(f"option {NAME}:test_fraction={fraction} must be between 0 and 1")
    return fraction


OPTIONS = (
    DatasetOption(
        "size",
        int,
        SIDE,
        "image side: 64 (as published), or 32, 16, 8 (area downscaling, for CPU runs)",
        choices=SIZES,
    ),
    DatasetOption(
        "n",
        int,
        None,
        "images used, a fixed seeded random subset (default: all 737,280)",
        parse=parse_n,
    ),
    DatasetOption(
        "test_fraction",
        float,
        DEFAULT_TEST_FRACTION,
        "share of the images held out as the test split",
        parse=parse_fraction,
    ),
    DatasetOption("split_seed", int, DEFAULT_SPLIT_SEED, "seed of the subset and the split"),
    DatasetOption(
        "verify_checksums",
        bool,
        None,
        "check the file's git blob SHA-1 against DeepMind's repository "
        "(default: yes, unless AEBENCH_SKIP_CHECKSUMS=1)",
    ),
)


# -- reading the archive -----------------------------------------------------------------
def _member(archive: zipfile.ZipFile, name: str, path: Path) -> str:
    member = f"{name}.npy"
    if member not in archive.namelist():
        raise DataError(
            f"dataset {NAME!r}: {path} has no array {name!r} (it holds "
            f"{', '.join(sorted(archive.namelist()))}); delete it and run `aebench fetch {NAME}`"
        )
    return member


def _header(fp: IO[bytes], name: str, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``fp``, positioned at its data."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fp)
        if version == (1, 0):
            return npy.read_array_header_1_0(fp)
        return npy.read_array_header_2_0(fp)
    except ValueError as exc:
        raise DataError(
            f"dataset {NAME!r}: {path}: array {name!r} is not readable ({exc})"
        ) from None


def _read_array(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    with archive.open(_member(archive, name, path)) as fp:
        try:
            return np.lib.format.read_array(fp, allow_pickle=False)
        except ValueError as exc:
            raise DataError(
                f"dataset {NAME!r}: {path}: array {name!r} is not readable ({exc})"
            ) from None


def downscale(images: np.ndarray, size: int) -> np.ndarray:
    """0/1 images ``(n, 64, 64)`` -> uint8 ``(n, 1, size, size)``: each ``64/size``
    block's mean, times 255, rounded."""
    f = images.shape[-1] // size
    x = images.astype(np.float32)
    if f > 1:
        x = x.reshape(len(x), size, f, size, f).mean(axis=(2, 4))
    return np.rint(x * 255.0).astype(np.uint8)[:, None]


def read_images(
    path: Path, parts: Sequence[np.ndarray], size: int, total: int | None = None
) -> list[np.ndarray]:
    """For each array of sorted positions in ``parts``, the archive's ``imgs`` at those
    positions, downscaled to ``size`` (:func:`downscale`): ``(len(part), 1, size, size)``.
    ``imgs`` is streamed in chunks, so only the chosen images are ever held in memory;
    ``total`` (the number of latents), when given, must be the number of images."""
    outs = [np.empty((len(p), 1, size, size), dtype=np.uint8) for p in parts]
    done = [0] * len(parts)
    try:
        with zipfile.ZipFile(path) as archive, archive.open(_member(archive, "imgs", path)) as fp:
            shape, fortran, dtype = _header(fp, "imgs", path)
            if len(shape) != 3 or shape[1:] != (SIDE, SIDE) or dtype != np.uint8 or fortran:
                raise DataError(
                    f"dataset {NAME!r}: {path} has imgs of shape {shape} and dtype {dtype}, "
                    f"expected (N, 64, 64) uint8"
                )
            if total is not None and shape[0] != total:
                raise DataError(
                    f"dataset {NAME!r}: {path} has {shape[0]} images but {total} latents"
                )
            if any(len(p) and p[-1] >= shape[0] for p in parts):
                raise DataError(f"dataset {NAME!r}: {path} has {shape[0]} images but more latents")
            row = SIDE * SIDE
            for lo in range(0, shape[0], _CHUNK):
                if all(d == len(p) for d, p in zip(done, parts, strict=True)):
                    break
                hi = min(lo + _CHUNK, shape[0])
                stops = [int(np.searchsorted(p, hi)) for p in parts]
                if stops == done:
                    _skip(fp, (hi - lo) * row, path)
                    continue
                raw = fp.read((hi - lo) * row)
                if len(raw) != (hi - lo) * row:
                    raise DataError(f"dataset {NAME!r}: {path} is truncated (imgs)")
                chunk = np.frombuffer(raw, dtype=np.uint8).reshape(hi - lo, SIDE, SIDE)
                for k, (part, stop) in enumerate(zip(parts, stops, strict=True)):
                    picked = chunk[part[done[k] : stop] - lo]
                    if picked.size and picked.max() > 1:
                        raise DataError(
                            f"dataset {NAME!r}: {path} has pixel value {int(picked.max())}; "
                            f"dSprites pixels are 0 or 1"
                        )
                    outs[k][done[k] : stop] = downscale(picked, size)
                    done[k] = stop
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"dataset {NAME!r}: {path} is not a readable .npz archive ({exc}); "
            f"delete it and run `aebench fetch {NAME}`"
        ) from None
    return outs


def _skip(fp: IO[bytes], nbytes: int, path: Path) -> None:
    while nbytes > 0:
        got = len(fp.read(min(nbytes, 1 << 24)))
        if got == 0:
            raise DataError(f"dataset {NAME!r}: {path} is truncated (imgs)")
        nbytes -= got


def read_latents(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(``latents_values`` (N, 6) float64, ``latents_classes`` (N, 6) int64), checked."""
    try:
        with zipfile.ZipFile(path) as archive:
            values = _read_array(archive, "latents_values", path)
            classes = _read_array(archive, "latents_classes", path)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"dataset {NAME!r}: {path} is not a readable .npz archive ({exc}); "
            f"delete it and run `aebench fetch {NAME}`"
        ) from None
    for name, arr in (("latents_values", values), ("latents_classes", classes)):
        if arr.ndim != 2 or arr.shape[1] != len(LATENT_NAMES):
            raise DataError(
                f"dataset {NAME!r}: {path} has {name} of shape {arr.shape}, expected (N, 6)"
            )
    if len(values) != len(classes):
        raise DataError(f"dataset {NAME!r}: {path} has latents of different lengths")
    shapes = classes[:, 1]
    if len(shapes) and (shapes.min() < 0 or shapes.max() >= len(CLASS_NAMES)):
        raise DataError(f"dataset {NAME!r}: {path} has shape classes outside 0..2")
    return values.astype(np.float64), classes.astype(np.int64)


# -- the split -------------------------------------------------------------------------
def split_indices(
    total: int, n: int | None, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions in the archive, each sorted: a seeded random subset of
    ``n`` of ``total`` images (all when None), of which ``test_fraction`` is test."""
    n = total if n is None else n
    if total < 2:
        raise DataError(f"dataset {NAME!r} needs at least 2 images (one train, one test)")
    if n > total:
        raise ConfigError(f"option {NAME}:n={n} exceeds the {total} images of the file")
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].numpy()
    n_test = min(max(round(test_fraction * n), 1), n - 1)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


# -- loading ---------------------------------------------------------------------------
def load(
    split: str,
    root: Path,
    *,
    size: int = SIDE,
    n: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    split_seed: int = DEFAULT_SPLIT_SEED,
    verify_checksums: bool | None = None,
) -> ImageSet:
    """One split of dSprites; options as :data:`OPTIONS`."""
    if split not in ("train", "test"):
        raise ConfigError(f"dataset {NAME!r} has no split {split!r}; splits: train, test")
    verify = checksums.should_verify(verify_checksums)
    path = Path(root) / FOLDER / FILENAME
    if not path.is_file():
        raise DataError(
            f"dataset {NAME!r} is not available: expected {FILENAME} in {path.parent}; run "
            f"`aebench fetch {NAME}` (needs network), or download {URLS[0]} into that "
            f"folder yourself, or point --data-dir / AEBENCH_DATA_DIR at a root whose "
            f"{FOLDER}/ folder has it"
        )
    options = {"size": size, "n": n, "test_fraction": test_fraction, "split_seed": split_seed}
    key = {"dataset": NAME, "files": cache.file_stamps([path]), **options}
    slots = {s: cache.slot_for(NAME, s, path.parent) for s in ("train", "test")}
    entry = cache.load(slots[split], {**key, "split": split})
    if entry is None or not (entry.get("verified") or not verify):
        entries = _decode(path, verify, size, n, test_fraction, split_seed)
        for s, e in entries.items():
            cache.save(slots[s], {**key, "split": s}, e)
        entry = entries[split]
    return ImageSet(
        entry["images"],
        entry["labels"],
        CLASS_NAMES,
        NAME,
        split,
        factors=entry["factors"],
        factor_names=FACTOR_NAMES,
        factor_kinds=FACTOR_KINDS,
    )


def _decode(
    path: Path, verify: bool, size: int, n: int | None, test_fraction: float, seed: int
) -> dict[str, dict[str, Any]]:
    if verify:
        verify_file(path)
    values, classes = read_latents(path)
    train_idx, test_idx = split_indices(len(values), n, test_fraction, seed)
    images = read_images(path, [train_idx, test_idx], size, total=len(values))
    out = {}
    for split, idx, imgs in (("train", train_idx, images[0]), ("test", test_idx, images[1])):
        out[split] = {
            "images": torch.from_numpy(imgs),
            "labels": torch.from_numpy(classes[idx, 1].copy()),
            "factors": torch.from_numpy(values[idx, 1:].astype(np.float32)),
            "verified": verify,
        }
    return out


def git_blob_sha1(path: Path) -> str:
    """The git blob id of the file at ``path`` (what ``git hash-object`` prints): the
    SHA-1 of ``b"blob <size>\\0"`` and the file's bytes, read in 16 MiB blocks."""
    digest = hashlib.sha1(usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            digest.update(b"blob %d\0" % os.fstat(fh.fileno()).st_size)
            while block := fh.read(1 << 24):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"dataset {NAME!r}: cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def verify_file(path: Path) -> None:
    """Raise a one-line :class:`DataError` unless ``path`` has the published git blob id."""
    actual = git_blob_sha1(path)
    if actual != GIT_BLOB:
        raise DataError(
            f"dataset {NAME!r}: {path} has git blob id {actual}, expected {GIT_BLOB} "
            f"(deepmind/dsprites-dataset at {COMMIT[:7]}): the file is corrupt, truncated or "
            f"not the original; delete it and run `aebench fetch {NAME}`, or, for a deliberate "
            f"custom copy, set {checksums.ENV_SKIP_CHECKSUMS}=1 (or pass verify_checksums=False)"
        )


def fetch(root: Path) -> None:
    """Download the archive into ``root/dsprites`` (a no-op when a verified copy is there):
    through :func:`aebench.datasets.fetching.download_file` (torchvision's downloader,
    mirrors in turn) into a temporary folder, verified (:func:`verify_file`), then moved
    into place, so a failed or wrong download never lands where :func:`load` looks."""

    dest = Path(root) / FOLDER / FILENAME
    if dest.is_file():
        try:
            verify_file(dest)
            return
        except DataError:
            pass  # a damaged or partial copy: download it again
    writable_dir(dest.parent, NAME)
    tmp = Path(tempfile.mkdtemp(prefix=".aebench-dsprites-", dir=dest.parent))
    try:
        try:
            download_file(list(URLS), tmp / FILENAME, None, NAME)
        except DataError as exc:  # name where the file goes, not the temporary folder
            raise DataError(str(exc).replace(str(tmp / FILENAME), str(dest))) from None
        verify_file(tmp / FILENAME)
        os.replace(tmp / FILENAME, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


DATASET = DatasetSpec(
    name=NAME,
    load=load,
    shape=(1, SIDE, SIDE),
    splits=("train", "test"),
    num_classes=len(CLASS_NAMES),
    class_names=CLASS_NAMES,
    files=(f"{FOLDER}/{FILENAME}",),
    fetch=fetch,
    options=OPTIONS,
    factor_names=FACTOR_NAMES,
    description="DeepMind dSprites: 2D shapes with 5 known factors (shape, scale, "
    "orientation, x, y), 64x64 binary, 737k; seeded 90/10 split",
)
register_datasets = hook(DATASET)
