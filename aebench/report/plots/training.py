"""How a run trained: loss terms and validation image quality per epoch (history.csv)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aebench.report.plots.base import figure, integer_ticks, rc, save_figure

History = Sequence[dict[str, float | None]]


def series(history: History, key: str) -> tuple[list, list]:
    """``(epochs, values)`` of column ``key``, skipping epochs without a value."""
    xs, ys = [], []
    for i, row in enumerate(history, start=1):
        value = row.get(key)
        if value is not None:
            xs.append(row.get("epoch") or i)
            ys.append(value)
    return xs, ys


def plot_losses(history: History, path: Path) -> bool:
    """Train/val total, reconstruction and regulariser per epoch. False if nothing to plot."""
    panels = [
        ("total", "Total loss (nats)"),
        ("recon", "Reconstruction (nats)"),
        ("reg", "Regulariser (nats)"),
    ]
    panels = [
        p
        for p in panels
        if series(history, f"train_{p[0]}")[0] or series(history, f"val_{p[0]}")[0]
    ]
    if not panels:
        return False
    with rc():
        fig, axes = figure(len(panels), width=3.3, height=2.6)
        for ax, (term, title) in zip(axes, panels, strict=True):
            for split, style in (("train", "-"), ("val", "--")):
                xs, ys = series(history, f"{split}_{term}")
                if xs:
                    ax.plot(xs, ys, style, marker="o", markersize=3, label=split)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(integer_ticks())
            ax.legend()
        save_figure(fig, path)
    return True


def plot_quality(history: History, path: Path) -> bool:
    """Validation MSE, SSIM and PSNR per epoch. False if nothing to plot."""
    panels = [
        ("val_mse", "Val MSE per px ↓"),
        ("val_ssim", "Val SSIM ↑"),
        ("val_psnr", "Val PSNR (dB) ↑"),
    ]
    panels = [p for p in panels if series(history, p[0])[0]]
    if not panels:
        return False
    with rc():
        fig, axes = figure(len(panels), width=3.3, height=2.6)
        for ax, (key, title) in zip(axes, panels, strict=True):
            xs, ys = series(history, key)
            ax.plot(xs, ys, marker="o", markersize=3, color="C2")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(integer_ticks())
        save_figure(fig, path)
    return True
