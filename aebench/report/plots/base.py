"""What every report figure shares: matplotlib settings, figure creation, small PNGs.

Uses :class:`matplotlib.figure.Figure` directly (no pyplot), so no global
backend or figure registry is touched. Every label that may come from a plugin
is drawn with mathtext parsing off, so a ``$`` in a model name cannot break a
plot.
"""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

DPI = 72
MAX_GIF_FRAMES = 60
RC = {
    "text.parse_math": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.0):
    """A constrained-layout Figure of ``nrows x ncols`` panels, each ``width x height``
    inches, and its axes as a flat list."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def rc():
    """The report's matplotlib settings, as a context manager."""
    import matplotlib

    return matplotlib.rc_context(RC)


def cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def save_figure(fig: Any, path: Path) -> Path:
    """Save ``fig`` as a small PNG: DPI :data:`DPI`, then quantised to a 256-colour palette."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path


def frame(fig: Any) -> Any:
    """``fig`` as a palette image, one frame of an animated GIF."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB").quantize(colors=256)


def save_gif(images: list[Any], path: Path, ms_per_frame: int, **options: Any) -> None:
    """An endlessly looping GIF that holds its last frame (the final epoch) 4x longer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    durations = [ms_per_frame] * len(images)
    durations[-1] = ms_per_frame * 4
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        optimize=True,
        **options,
    )


def subsample(n: int, most: int = MAX_GIF_FRAMES) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` frames, evenly spaced, first and last kept."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def copy_image(src: Path, dst: Path) -> None:
    """Copy a PNG, re-encoding it smaller: gray RGB becomes 8-bit gray, optimised.

    torchvision's ``save_image`` writes 3-channel PNGs even for grayscale
    data; one channel is a third of the size. Anything unreadable is copied as is.
    """
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with Image.open(src) as im:
            im.load()
            if im.mode in ("RGB", "RGBA"):
                arr = np.asarray(im.convert("RGB"))
                if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
                    im = im.convert("L")
            im.save(dst, format="PNG", optimize=True)
    except (OSError, ValueError):
        shutil.copyfile(src, dst)
        return
    if dst.stat().st_size > src.stat().st_size:
        shutil.copyfile(src, dst)


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
