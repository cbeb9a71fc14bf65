"""Reconstructions over training: the per-epoch snapshot PNGs as one labelled GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aebench.report.plots.base import UNREADABLE, save_gif, subsample


def make_epoch_gif(
    frames: Sequence[Path],
    path: Path,
    problems: list[str] | None = None,
    ms_per_frame: int = 500,
) -> bool:
    """An animated GIF of the per-epoch reconstruction PNGs, each labelled with its epoch.

    More than :data:`~aebench.report.plots.base.MAX_GIF_FRAMES` epochs are
    subsampled evenly (first and last kept). An unreadable frame is left out (and
    named in ``problems``); False when none is readable.
    """
    from PIL import Image, ImageDraw, ImageFont

    frames = list(frames)
    if not frames:
        return False
    frames = [frames[i] for i in subsample(len(frames))]
    images = []
    size = None
    font = ImageFont.load_default()
    for snapshot in frames:
        try:
            with Image.open(snapshot) as opened:
                im = opened.convert("RGB")
        except UNREADABLE as exc:
            if problems is not None:
                problems.append(f"{snapshot.name} unreadable: {type(exc).__name__}")
            continue
        size = size or im.size
        if im.size != size:
            im = im.resize(size)
        canvas = Image.new("RGB", (size[0], size[1] + 14), "white")
        canvas.paste(im, (0, 14))
        digits = "".join(ch for ch in snapshot.stem.rsplit("_", 1)[-1] if ch.isdigit())
        label = f"epoch {int(digits)}" if digits else snapshot.stem
        ImageDraw.Draw(canvas).text((2, 1), label, fill="black", font=font)
        images.append(canvas.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
    if not images:
        return False
    save_gif(images, path, ms_per_frame, disposal=1)
    return True
