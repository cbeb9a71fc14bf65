"""Reconstruction quality per class: one run's bars, and configurations side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aebench.report.plots.base import figure, finite, rc, save_figure


def _class_ticks(ax: Any, names: Sequence[str]) -> None:
    ax.set_xticks(
        range(len(names)),
        names,
        rotation=45 if len(names) > 10 else 0,
        ha="right" if len(names) > 10 else "center",
    )


def plot_per_class(per_class: dict[str, dict[str, Any]], path: Path) -> bool:
    """Bar charts of per-class MSE and PSNR. False if there is nothing to plot."""
    names = list(per_class)
    panels: list[tuple[str, list[float]]] = []
    for key, title in (("mse", "MSE per px ↓"), ("psnr", "PSNR (dB) ↑")):
        values = [
            finite(per_class[n].get(key)) if isinstance(per_class[n], dict) else None for n in names
        ]
        if any(v is not None for v in values):
            panels.append((title, [float(v) if v is not None else 0.0 for v in values]))
    if not names or not panels:
        return False
    with rc():
        width = max(3.2, 0.35 * len(names) + 1.2)
        fig, axes = figure(len(panels), width=width, height=2.6)
        for ax, (title, heights) in zip(axes, panels, strict=True):
            ax.bar(range(len(names)), heights, color="C0")
            _class_ticks(ax, names)
            ax.set_title(title)
            ax.grid(axis="x", visible=False)
        save_figure(fig, path)
    return True


HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def plot_per_class_compare(
    rows: Sequence[dict[str, Any]],
    path: Path,
    key: str = "mse",
    max_rows: int = 10,
    colours: dict[str, str] | None = None,
) -> bool:
    """Grouped bars of per-class ``key`` (seed-averaged) for each configuration row.

    ``rows``: dicts with ``label``, ``model`` (its colour in ``colours``; the
    configurations of one model differ by hatching) and ``per_class``
    ({class: value}). Needs two or more rows; at most ``max_rows`` are drawn.
    """
    rows = [r for r in rows if r.get("per_class")][:max_rows]
    if len(rows) < 2:
        return False
    classes: list[str] = []
    for r in rows:
        classes.extend(c for c in r["per_class"] if c not in classes)
    width = 0.8 / len(rows)
    seen: dict[str, int] = {}
    with rc():
        fig, axes = figure(1, width=min(11.0, max(6.0, 0.7 * len(classes) + 2)), height=3.4)
        ax = axes[0]
        for i, r in enumerate(rows):
            values = [r["per_class"].get(c) for c in classes]
            model = r.get("model", r["label"])
            k = seen[model] = seen.get(model, -1) + 1
            ax.bar(
                np.arange(len(classes)) + (i - (len(rows) - 1) / 2) * width,
                [v if v is not None else 0.0 for v in values],
                width=width,
                label=r["label"],
                color=(colours or {}).get(model, f"C{i % 10}"),
                hatch=HATCHES[k % len(HATCHES)],
                edgecolor="white",
                linewidth=0.3,
            )
        _class_ticks(ax, classes)
        ax.set_title(f"Per-class test {key.upper()} {'↓' if key == 'mse' else '↑'}")
        ax.grid(axis="x", visible=False)
        fig.legend(loc="outside lower center", ncols=min(3, len(rows)))
        save_figure(fig, path)
    return True
