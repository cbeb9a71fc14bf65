"""MD5 checks against torchvision's published checksums, with a documented opt-out.

Every file of ``mnist``, ``fashion-mnist`` and ``svhn`` is checked against the
MD5 that torchvision publishes for it, the first time it is decoded (the
decoded tensors are then cached, keyed on the file's path, size and mtime, so
warm loads do not re-hash). For a custom or re-packed copy whose bytes differ
from the original distribution, opt out with the environment variable
``AEBENCH_SKIP_CHECKSUMS=1`` or the loader option ``verify_checksums=False``.
Headers, sizes and gzip integrity are still validated when checksums are off.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from aebench.errors import DataError
from aebench.specs import DatasetOption

ENV_SKIP_CHECKSUMS = "AEBENCH_SKIP_CHECKSUMS"
_TRUE = {"1", "true", "yes", "on"}


VERIFY_OPTION = DatasetOption(
    "verify_checksums",
    bool,
    None,
    "check each file's MD5 against torchvision's (default: yes, unless AEBENCH_SKIP_CHECKSUMS=1)",
)


def should_verify(option: object = None) -> bool:
    """Whether to check MD5s: the ``verify_checksums`` option wins, else the env var."""
    if option is not None:
        if isinstance(option, str):
            return option.strip().lower() in _TRUE
        return bool(option)
    return os.environ.get(ENV_SKIP_CHECKSUMS, "").strip().lower() not in _TRUE


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def read_bytes(path: Path, dataset: str) -> bytes:
    """The whole file, or a one-line :class:`DataError` naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"dataset {dataset!r}: file {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"dataset {dataset!r}: cannot read {path}: {exc.strerror or exc}") from None


def verify_md5(path: Path, data: bytes, expected: str, dataset: str) -> str:
    """Raise a :class:`DataError` naming the file, both MD5s and the fixes, on mismatch."""
    actual = md5_bytes(data)
    if actual != expected:
        raise DataError(
            f"dataset {dataset!r}: {path} has md5 {actual}, expected {expected} "
            f"(torchvision's published checksum): the file is corrupt, truncated or not the "
            f"original; delete it and run `aebench fetch {dataset}`, or, for a deliberate "
            f"custom copy, set {ENV_SKIP_CHECKSUMS}=1 (or pass verify_checksums=False)"
        )
    return actual
