"""aebench's own cache of reference features and the values derived from them.

The sample metrics (:mod:`aebench.metrics.fid`, :mod:`aebench.metrics.samples`)
keep the features of fixed image sets (the test split, training images) and
what they derive from them (FID statistics, k-NN radii, a median distance) in
one file per value, so that every run on a dataset reuses them. The files are
safetensors: arrays and a string-to-string header, nothing that runs code
when read (a pickle, which torch-fidelity's own cache is, would). A file is
trusted no further than its content: one that is not a safetensors file of
this format, of the expected kind and key, or whose value fails the caller's
check (shape, keys) is ignored with a warning line naming it, and the value
is computed again and the file replaced.

A value is a tensor, a numpy array, a float, or a dict (``str`` or ``int``
keys) of tensors and arrays; it comes back with the same types, dtypes and
bits. The header records ``format`` (:data:`FORMAT`), ``version``, ``kind``
(what the value is, e.g. ``stat-fid``), ``key`` (the file's cache key) and
``layout`` (JSON: how the arrays rebuild the value).

Writes are atomic (:func:`aebench.files.write_bytes`), with the mode a new file
gets from the umask.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aebench.files import write_bytes

FORMAT = "aebench-feature-cache"
VERSION = "1"
SUFFIX = ".safetensors"

Warn = Callable[[str], None]
Check = Callable[[Any], None]
"""Raises ``ValueError`` (its message says why) when a value read back is not what
the caller expects."""


class InvalidCache(ValueError):
    """A cache file that is not a valid aebench feature cache of the expected content."""


def file_name(key: str) -> str:
    """``key`` made safe as a file name (letters, digits, ``-_.``), plus :data:`SUFFIX`."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)
    return safe.lstrip(".") + SUFFIX


# -- encoding -------------------------------------------------------------------------
def _array(value: Any) -> tuple[str, np.ndarray]:
    if isinstance(value, torch.Tensor):
        return "tensor", value.detach().cpu().contiguous().numpy()
    if isinstance(value, np.ndarray):
        return "ndarray", np.ascontiguousarray(value)
    raise TypeError(f"cannot cache a {type(value).__name__}")


def encode(value: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, layout)`` of a value (see the module docstring)."""
    if isinstance(value, float):
        return {"value": np.asarray(value, dtype=np.float64)}, {"type": "float"}
    if isinstance(value, dict):
        arrays, keys, types = {}, [], []
        for i, (k, v) in enumerate(value.items()):
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"cannot cache a dict with a {type(k).__name__} key")
            kind, arr = _array(v)
            arrays[f"item{i}"] = arr
            keys.append(k)
            types.append(kind)
        return arrays, {"type": "dict", "keys": keys, "types": types}
    kind, arr = _array(value)
    return {"value": arr}, {"type": kind}


def _rebuild(kind: Any, arr: np.ndarray) -> Any:
    if kind == "tensor":
        return torch.from_numpy(np.array(arr))  # a writable copy
    if kind == "ndarray":
        return np.array(arr)
    raise InvalidCache(f"unknown value type {kind!r}")


def decode(arrays: dict[str, np.ndarray], layout: Any) -> Any:
    """The value :func:`encode` made ``(arrays, layout)`` of; :class:`InvalidCache` when
    the two do not fit together."""
    if not isinstance(layout, dict):
        raise InvalidCache("no layout")
    kind = layout.get("type")
    if kind == "dict":
        keys, types = layout.get("keys"), layout.get("types")
        if not isinstance(keys, list) or not isinstance(types, list) or len(keys) != len(types):
            raise InvalidCache("a dict layout without matching keys and types")
        names = [f"item{i}" for i in range(len(keys))]
        if set(arrays) != set(names):
            raise InvalidCache(f"arrays {sorted(arrays)}, expected {names}")
        if any(not isinstance(k, (str, int)) or isinstance(k, bool) for k in keys):
            raise InvalidCache("a dict key that is not a string or an integer")
        if len(set(keys)) != len(keys):
            raise InvalidCache("repeated dict keys")
        return {k: _rebuild(t, arrays[n]) for k, t, n in zip(keys, types, names, strict=True)}
    if set(arrays) != {"value"}:
        raise InvalidCache(f"arrays {sorted(arrays)}, expected ['value']")
    if kind == "float":
        arr = arrays["value"]
        if arr.shape != () or arr.dtype != np.float64:
            raise InvalidCache(f"a float stored as {arr.dtype} {arr.shape}")
        return float(arr)
    return _rebuild(kind, arrays["value"])


# -- files ----------------------------------------------------------------------------
def save(path: Path, key: str, kind: str, value: Any) -> None:
    """Write ``value`` to ``path`` (atomically) under ``key`` and ``kind``."""
    from safetensors.numpy import save as to_bytes

    arrays, layout = encode(value)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "key": key,
        "layout": json.dumps(layout),
    }
    write_bytes(path, to_bytes(arrays, metadata=meta))


def load(path: Path, key: str, kind: str, check: Check | None = None) -> Any:
    """The value in ``path``; :class:`InvalidCache` (saying why) when the file is not a
    safetensors file of this format, ``key`` and ``kind``, or ``check`` refuses its
    value. Nothing in the file is executed: safetensors holds arrays and strings."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            arrays = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors' own error (a pickle, a truncated file)
        raise InvalidCache(f"not a safetensors file: {exc}") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise InvalidCache(f"format {meta.get('format')!r} v{meta.get('version')!r}")
    if meta.get("kind") != kind or meta.get("key") != key:
        raise InvalidCache(f"holds {meta.get('kind')!r} of {meta.get('key')!r}")
    try:
        layout = json.loads(meta.get("layout", ""))
    except ValueError:
        raise InvalidCache("an unreadable layout") from None
    value = decode(arrays, layout)
    if check is not None:
        try:
            check(value)
        except (TypeError, ValueError) as exc:
            raise InvalidCache(str(exc)) from None
    return value


def cached(
    path: Path,
    key: str,
    kind: str,
    compute: Callable[[], Any],
    *,
    check: Check | None = None,
    warn: Warn,
) -> Any:
    """The value in ``path`` (see :func:`load`), else ``compute()``, written there.

    A file that is there but not valid is named in a ``warn`` line
    (``aebench: warning: ignoring <path>: not a valid aebench feature cache (why)``)
    and replaced; one that cannot be written is named in a ``warn`` line too (the
    value is still returned)."""
    if path.is_file():
        try:
            return load(path, key, kind, check)
        except InvalidCache as exc:
            warn(f"aebench: warning: ignoring {path}: not a valid aebench feature cache ({exc})")
    value = compute()
    try:
        save(path, key, kind, value)
    except OSError as exc:
        warn(f"aebench: warning: could not write the feature cache {path} ({exc})")
    return value


# -- checks ---------------------------------------------------------------------------
def check_features(n: int) -> Check:
    """A check of features: a float32 ``(n, D)`` tensor, finite."""

    def check(value: Any) -> None:
        if not isinstance(value, torch.Tensor) or value.dtype != torch.float32:
            raise ValueError(f"features of type {_describe(value)}, expected float32")
        if value.dim() != 2 or value.shape[0] != n or value.shape[1] == 0:
            raise ValueError(f"features of shape {tuple(value.shape)}, expected ({n}, D)")
        if not torch.isfinite(value).all():
            raise ValueError("features that are not finite")

    return check


def check_statistics(value: Any) -> None:
    """A check of FID statistics: ``mu`` (D,) and ``sigma`` (D, D) numpy arrays."""
    if not isinstance(value, dict) or set(value) != {"mu", "sigma"}:
        raise ValueError(f"statistics with keys {_keys(value)}, expected ['mu', 'sigma']")
    mu, sigma = value["mu"], value["sigma"]
    if not isinstance(mu, np.ndarray) or not isinstance(sigma, np.ndarray):
        raise ValueError("statistics that are not numpy arrays")
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} do not fit")


def check_vectors(keys: set[Any], n: int) -> Check:
    """A check of a dict with exactly ``keys``, each a float ``(n,)`` tensor."""

    def check(value: Any) -> None:
        if not isinstance(value, dict) or set(value) != keys:
            raise ValueError(f"keys {_keys(value)}, expected {sorted(keys)}")
        for k, v in value.items():
            if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.shape != (n,):
                raise ValueError(f"{k!r} is a {_describe(v)}, expected ({n},) floats")

    return check


def check_float(value: Any) -> None:
    """A check of a finite float."""
    if not isinstance(value, float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")


def _keys(value: Any) -> list[str]:
    return sorted(map(str, value)) if isinstance(value, dict) else [type(value).__name__]


def _describe(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"{type(value).__name__} {value.dtype} {tuple(value.shape)}"
    return type(value).__name__
