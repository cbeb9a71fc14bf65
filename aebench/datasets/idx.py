"""Reading IDX files (the MNIST format) straight from their ``.gz``, without extracting.

The data root may be read-only, so nothing is unpacked next to the source
file: it is decompressed in memory and validated (magic number, number of
dimensions, exact byte length) before a single image is trusted.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from aebench.datasets.checksums import read_bytes
from aebench.errors import DataError

UBYTE = 0x08  # IDX type code for unsigned bytes, the only one MNIST uses


def gunzip(data: bytes, path: Path, dataset: str) -> bytes:
    """Decompress gzip ``data`` read from ``path``; bad or truncated gzip -> DataError."""
    try:
        return gzip.decompress(data)
    except EOFError:
        raise DataError(
            f"dataset {dataset!r}: {path} is truncated (the gzip stream ends early); "
            f"delete it and download it again"
        ) from None
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"dataset {dataset!r}: {path} is not a valid gzip file ({exc}); "
            f"delete it and download it again"
        ) from None


def decode_idx(data: bytes, path: Path, dataset: str, ndim: int) -> np.ndarray:
    """Parse uncompressed IDX bytes holding unsigned bytes in ``ndim`` dimensions."""
    expected_magic = (UBYTE << 8) | ndim
    if len(data) < 4:
        raise DataError(f"dataset {dataset!r}: {path} is too short for an IDX header")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise DataError(
            f"dataset {dataset!r}: {path} has a wrong IDX header: magic number {magic} "
            f"(0x{magic:08x}), expected {expected_magic} (0x{expected_magic:08x}, "
            f"{ndim}-dimensional unsigned bytes)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"dataset {dataset!r}: {path} is truncated inside its IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    want = math.prod(dims)
    got = len(data) - header
    if got != want:
        what = "truncated" if got < want else "longer than its header says"
        raise DataError(
            f"dataset {dataset!r}: {path} is {what}: {got} data bytes after the header, "
            f"expected {want} for dimensions {'x'.join(map(str, dims))}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx_gz(path: Path, dataset: str, ndim: int, raw: bytes | None = None) -> np.ndarray:
    """Read a gzipped IDX file (``raw`` if its bytes were already read) into a uint8 array."""
    if raw is None:
        raw = read_bytes(path, dataset)
    return decode_idx(gunzip(raw, path, dataset), path, dataset, ndim)
