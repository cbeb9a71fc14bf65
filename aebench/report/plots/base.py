"""What every report figure shares: matplotlib settings, figure creation, small PNGs.

Uses :class:`matplotlib.figure.Figure` directly (no pyplot), so no global
backend or figure registry is touched. Every label that may come from a plugin
is drawn with mathtext parsing off, so a ``$`` in a model name cannot break a
plot.

Figures are sized in inches at the browser's 96 px per inch and saved at twice
that (:data:`SCALE`), so the page shows them sharp at their size in CSS pixels
(:func:`display_size`), and a 9 pt font reads as 12 px. Each model has one
colour on every figure of a site (:func:`model_colours`). :data:`AUDIT`, when
a list, collects the layout problems of every saved figure (labels outside the
figure or overlapping each other, :func:`layout_problems`): the tests use it.
"""

from __future__ import annotations

import io
import math
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

CSS_DPI = 96
SCALE = 2
DPI = CSS_DPI * SCALE
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
"""What reading a corrupt or truncated run artefact raises (PNG: PIL's
UnidentifiedImageError is an OSError; npz: BadZipFile, EOFError, a missing key): the
site is built without that artefact, and the run page says so."""


def read_latents(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``(z, y)`` of a stored latents npz (``y`` None without labels); raises one of
    :data:`UNREADABLE` when the file is corrupt."""
    with np.load(path) as data:
        z = np.asarray(data["z"])
        y = np.asarray(data["y"]) if "y" in data.files else None
    if z.ndim < 2:
        raise ValueError(f"latents of shape {z.shape}, expected (N, D) or (epochs, N, D)")
    return z, y


MAX_GIF_FRAMES = 60
MAX_PANELS_PER_ROW = 3
AUDIT: list[str] | None = None
"""When a list, :func:`save_figure` appends the layout problems of each figure it saves."""
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


def grid(n: int, per_row: int = MAX_PANELS_PER_ROW, width: float = 3.4, height: float = 2.8):
    """A figure of ``n`` panels, at most ``per_row`` a row (the rest hidden), and its
    first ``n`` axes."""
    ncols = max(1, min(n, per_row))
    nrows = -(-n // ncols)
    fig, axes = figure(ncols, nrows, width=width, height=height)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def model_colours(models: list[str] | set[str] | tuple[str, ...]) -> dict[str, str]:
    """One colour per model name (sorted): tab10, then tab20's light shades, then gray."""
    import matplotlib
    from matplotlib.colors import to_hex

    tab10 = [to_hex(c) for c in matplotlib.colormaps["tab10"].colors]  # type: ignore[attr-defined]
    tab20 = [to_hex(c) for c in matplotlib.colormaps["tab20"].colors]  # type: ignore[attr-defined]
    colours = tab10 + tab20[1::2]
    return {m: colours[i] if i < len(colours) else "#777777" for i, m in enumerate(sorted(models))}


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


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


def _extent(text: Any, renderer: Any) -> Any:
    return text.get_window_extent(renderer)


def _drawn_texts(fig: Any) -> list[Any]:
    """The visible, non-empty texts of ``fig``: titles, labels, tick labels drawn
    (inside the axis' view), legends, annotations and figure texts."""
    texts = [t for t in fig.texts]
    for legend in fig.legends:
        texts.extend(legend.get_texts())
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis._update_ticks():
                texts += [tick.label1, tick.label2]
        texts.extend(ax.texts)
        if ax.get_legend() is not None:
            texts.extend(ax.get_legend().get_texts())
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def layout_problems(fig: Any) -> list[str]:
    """Labels drawn outside the figure, or overlapping another label (by more than
    a pixel each way): what makes a figure unreadable."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    texts = _drawn_texts(fig)
    extents = [_extent(t, renderer) for t in texts]
    problems = []
    for t, e in zip(texts, extents, strict=True):
        if e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1:
            problems.append(f"clipped: {t.get_text()!r}")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = extents[i], extents[j]
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            if overlap_x > 1 and overlap_y > 1:
                problems.append(f"overlap: {texts[i].get_text()!r} / {texts[j].get_text()!r}")
    return problems


def display_size(path: Path) -> tuple[int, int] | None:
    """The size in CSS pixels to show a figure saved by :func:`save_figure` at."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
    except OSError:
        return None
    return round(w / SCALE), round(h / SCALE)


def save_figure(fig: Any, path: Path) -> Path:
    """Save ``fig`` as a small PNG: at :data:`SCALE` times the browser's resolution,
    then quantised to a 256-colour palette."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if AUDIT is not None:
        AUDIT.extend(f"{path.name}: {p}" for p in layout_problems(fig))
    fig.savefig(path, dpi=DPI, facecolor="white")
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path


def frame(fig: Any) -> Any:
    """``fig`` as a palette image, one frame of an animated GIF."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=CSS_DPI)
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
        with Image.open(src) as opened:
            opened.load()
            im: Image.Image = opened
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
