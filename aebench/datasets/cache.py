"""aebench's cache of decoded dataset tensors.

Decoded splits are stored under ``cache_dir()/datasets`` as ``torch.save``
files of plain tensors (loaded back with ``weights_only=True``). An entry's
key holds the resolved path, size and ``mtime_ns`` of every source file, so a
replaced or edited source file is a cache miss and is decoded (and verified)
again. Entries are written atomically (temp file + ``os.replace``), so a killed
process or a concurrent reader never sees half an entry; a cache that cannot be
written only costs speed, never correctness.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from aebench import files
from aebench.datasets.base import cache_dir

FORMAT = 1  # bump when the layout of cached entries changes


def file_stamps(paths: Iterable[Path]) -> list[list[Any]]:
    """``[resolved path, size, mtime_ns]`` per file: what a cache key is made of."""
    stamps = []
    for p in paths:
        st = Path(p).stat()
        stamps.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    return stamps


def slot_for(name: str, split: str, folder: Path) -> str:
    """A cache slot per dataset, split and source folder: a newer entry replaces an
    older one of the same slot, while two data roots keep an entry each."""
    where = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:8]
    return f"{name}-{split}.{where}"


def _entry(slot: str, key: dict[str, Any]) -> tuple[Path, str]:
    text = json.dumps({"format": FORMAT, **key}, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    return cache_dir() / "datasets" / f"{slot}-{digest}.pt", text


def load(slot: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached entry for ``key``, or None (missing, stale or unreadable)."""
    path, text = _entry(slot, key)
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged entry is just a miss; it gets rewritten
        return None
    if not isinstance(entry, dict) or entry.get("__key__") != text:
        return None
    return entry


def save(slot: str, key: dict[str, Any], entry: dict[str, Any]) -> Path | None:
    """Write ``entry`` atomically and drop older entries of the same ``slot``."""
    path, text = _entry(slot, key)
    buffer = io.BytesIO()
    torch.save({**entry, "__key__": text}, buffer)
    try:
        # the umask's mode (0644/0664), not mkstemp's 0600: a group shares a cache folder
        files.write_bytes(path, buffer.getvalue())
    except OSError as exc:
        warnings.warn(
            f"aebench: could not write the dataset cache in {path.parent} ({exc}); "
            f"set AEBENCH_CACHE_DIR to a writable folder for faster loads",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    for old in path.parent.glob(f"{_glob_escape(slot)}-*.pt"):
        if old != path and old.name[len(slot) + 1 :].count("-") == 0:
            old.unlink(missing_ok=True)
    return path


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
