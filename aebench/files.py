"""Atomic file writes: a reader (or a resumed benchmark) never sees half a file."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it: set, then restore
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
"""What ``open()`` would give a new file (read at import, before any thread starts)."""


@contextmanager
def atomic_path(path: str | os.PathLike[str]):
    """Yield a temp path beside ``path``; on success rename it over ``path``.

    The file gets the permissions of a file ``open()`` creates (0644 with the
    usual umask), not ``mkstemp``'s private 0600, so that colleagues sharing a
    results folder can read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temp file beside it, then ``os.replace``).

    The temp file is created as ``open()`` creates a file, mode 0666 less the umask
    *at the time of the call* (0644 under umask 022, 0664 under 002), so a group
    sharing a cache folder can read what each member writes; ``O_EXCL`` never
    follows a link planted under the temp name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


def save_with(path: str | os.PathLike[str], save: Callable[[Path], Any]) -> None:
    """Call ``save(tmp_path)`` and atomically move the result to ``path``."""
    with atomic_path(path) as tmp:
        save(tmp)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
