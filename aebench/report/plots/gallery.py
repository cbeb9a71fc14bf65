"""The dataset gallery: each run's reconstruction grid split into its two rows.

The runner's ``recon.png`` is a torchvision grid (padding 2) with the test
originals in its top row and their reconstructions below; the gallery shows
the originals once and every configuration's reconstructions under them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def split_recon(src: Path, originals: Path | None, recons: Path) -> bool:
    """Write the top row of ``src`` to ``originals`` (when given) and the bottom row to
    ``recons`` (gray images as 8-bit gray). False when ``src`` is not a two-row grid."""
    import numpy as np

    rgb = _open_rgb(src)
    if rgb is None:
        return False
    w, h = rgb.size
    if h < 8 or w < 8:
        return False
    arr = np.asarray(rgb)
    gray = bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())
    image = rgb.convert("L") if gray else rgb
    half = h // 2
    for target, box in ((originals, (0, 0, w, half)), (recons, (0, half, w, h))):
        if target is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        image.crop(box).save(target, format="PNG", optimize=True)
    return True


def crop_grid_rows(src: Path, dst: Path, rows: int = 2, ncols: int = 8, padding: int = 2) -> bool:
    """The first ``rows`` rows of a torchvision grid of square tiles, ``ncols`` a row
    (the runner's 8 x 8 sample grid), written to ``dst``. False if ``src`` is unreadable
    or smaller than that."""
    image = _open_rgb(src)
    if image is None:
        return False
    w, h = image.size
    tile = (w - padding * (ncols + 1)) // ncols
    height = padding + rows * (tile + padding)
    if tile < 1 or height > h:
        return False
    gray = image.convert("L")
    same = image.convert("RGB") == gray.convert("RGB")
    dst.parent.mkdir(parents=True, exist_ok=True)
    (gray if same else image).crop((0, 0, w, height)).save(dst, format="PNG", optimize=True)
    return True


def tile_scale(src: Path, rows: int = 2, padding: int = 2, target: int = 28) -> int:
    """The integer factor that shows a grid's tiles at least ``target`` CSS px high."""
    from PIL import Image

    try:
        with Image.open(src) as im:
            h = im.size[1]
    except OSError:
        return 1
    tile = max(1, (h - padding * (rows + 1)) // rows)
    return max(1, -(-target // tile))


def _open_rgb(src: Path) -> Any:
    """``src`` as an RGB PIL image, None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(src) as im:
            im.load()
            return im.convert("RGB")
    except OSError:
        return None
