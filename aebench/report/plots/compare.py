"""Comparisons across runs of one dataset: metrics vs a model option, rate–distortion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aebench.report.plots.base import figure, rc, save_figure

Cells = Mapping[str, Mapping[str, Any]]
"""A leaderboard row's cells: column key -> ``{"mean", "std", ...}``."""


def _mean(cells: Cells, key: str) -> tuple[float | None, float | None]:
    cell = cells.get(key) or {}
    return cell.get("mean"), cell.get("std")


def plot_metric_vs(
    series: Mapping[str, Sequence[tuple[float, Cells]]],
    columns: Sequence[Any],
    path: Path,
    x_label: str,
) -> bool:
    """One panel per metric column: mean ± std vs an option's value, one line per series.

    ``series``: line name -> ``[(x, cells)]``, the configurations that share
    everything but the option. ``columns``: objects with ``key``, ``label``,
    ``arrow`` and ``sub``. Drawn only when some line has two or more x values;
    returns whether a file was written.
    """
    if not any(len({x for x, _ in s}) >= 2 for s in series.values()):
        return False
    columns = [
        c
        for c in columns
        if any(_mean(cells, c.key)[0] is not None for s in series.values() for _, cells in s)
    ]
    if not columns:
        return False
    xs_all = [x for s in series.values() for x, _ in s]
    with rc():
        fig, axes = figure(len(columns), width=3.3, height=2.8)
        for ax, col in zip(axes, columns, strict=True):
            for i, (name, members) in enumerate(sorted(series.items())):
                pts = sorted(
                    (x, *_mean(cells, col.key))
                    for x, cells in members
                    if _mean(cells, col.key)[0] is not None
                )
                if not pts:
                    continue
                ax.errorbar(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    yerr=[p[2] or 0.0 for p in pts],
                    marker="o",
                    markersize=3,
                    capsize=2,
                    label=name,
                    color=f"C{i % 10}",
                )
            if min(xs_all) > 0:
                ax.set_xscale("log", base=2)
                ticks = sorted(set(xs_all))
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.minorticks_off()
            title = f"{col.label} {col.arrow}".strip()
            if col.sub:
                title += f" ({col.sub})"
            ax.set_title(title)
            ax.set_xlabel(x_label)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
        save_figure(fig, path)
    return True


def plot_rate_distortion(points: Sequence[dict[str, Any]], path: Path) -> bool:
    """Scatter of rate (KL, nats) vs distortion (reconstruction, nats), one point per run.

    ``points``: dicts with ``model``, ``short`` (an annotation), ``rate`` and
    ``distortion``.
    """
    points = [p for p in points if p.get("rate") is not None and p.get("distortion") is not None]
    if not points:
        return False
    models = sorted({p["model"] for p in points})
    with rc():
        fig, axes = figure(1, width=5.2, height=3.6)
        ax = axes[0]
        for i, model in enumerate(models):
            mine = [p for p in points if p["model"] == model]
            ax.scatter(
                [p["rate"] for p in mine],
                [p["distortion"] for p in mine],
                s=22,
                color=f"C{i % 10}",
                label=model,
            )
            for p in mine:
                ax.annotate(
                    p.get("short", ""),
                    (p["rate"], p["distortion"]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                    alpha=0.8,
                )
        ax.set_xlabel("rate: KL (nats / image)")
        ax.set_ylabel("distortion: reconstruction (nats / image)")
        ax.set_title("Rate–distortion (test set)")
        ax.legend(loc="best")
        save_figure(fig, path)
    return True
