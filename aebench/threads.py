"""One BLAS/OpenMP thread for the small NumPy and scikit-learn fits of a run.

A Gaussian mixture on 10,000 16-d latents, a logistic-regression probe or a
t-SNE of 2,000 points is made of many small matrix products. With OpenBLAS's
own threads on top of torch's OpenMP threads (which spin-wait after every
torch operation) they fight over the cores: on a 2-core CPU the mixture fit
took 1.3 s instead of 0.3 s. threadpoolctl (a scikit-learn dependency) limits
the native thread pools for the duration of a ``with`` block.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any


def single_threaded() -> AbstractContextManager[Any]:
    """A context in which BLAS and OpenMP pools (NumPy, SciPy, scikit-learn) use one
    thread. Import the estimators before entering it, so that threadpoolctl sees
    their OpenMP runtime."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping: Linux's
    ``MemAvailable`` (``/proc/meminfo``), else free physical pages; None where
    neither is known. (psutil would do this too; it is not a dependency.)"""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def human_bytes(n: float) -> str:
    """``n`` bytes as ``"640 bytes"``, ``"1.2 TB"`` (decimal units)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover
