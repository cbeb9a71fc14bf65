"""Comparisons across runs of one dataset: metrics vs a model option, rate–distortion.

Colours name models (the same on every figure of a site, ``colours``); the
configurations of one model differ by line style and marker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aebench.report.plots.base import (
    LINESTYLES,
    MARKERS,
    _drawn_texts,
    figure,
    grid,
    rc,
    save_figure,
)

Cells = Mapping[str, Mapping[str, Any]]
"""A leaderboard row's cells: column key -> ``{"mean", "low", "high", ...}``."""


def _mean(cells: Cells, key: str) -> tuple[float | None, float | None, float | None]:
    """Mean and the interval's distances below and above it (0 without an interval)."""
    cell = cells.get(key) or {}
    mean = cell.get("mean")
    if mean is None:
        return None, None, None
    low, high = cell.get("low"), cell.get("high")
    if low is None or high is None:
        return mean, 0.0, 0.0
    return mean, mean - low, high - mean


def styles(
    names: Sequence[str], models: Mapping[str, str], colours: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Matplotlib style per series: its model's colour; line style and marker tell the
    series of one model apart."""
    seen: dict[str, int] = {}
    out = {}
    for name in names:
        model = models.get(name, name)
        k = seen.get(model, 0)
        seen[model] = k + 1
        out[name] = {
            "color": colours.get(model, f"C{(len(seen) - 1) % 10}"),
            "linestyle": LINESTYLES[k % len(LINESTYLES)],
            "marker": MARKERS[k % len(MARKERS)],
        }
    return out


def plot_metric_vs(
    series: Mapping[str, Sequence[tuple[float, Cells]]],
    columns: Sequence[Any],
    path: Path,
    x_label: str,
    models: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
) -> bool:
    """One panel per metric column: mean with its 95% interval over seeds vs an
    option's value, one line per series.

    ``series``: line name -> ``[(x, cells)]``, the configurations that share
    everything but the option. ``columns``: objects with ``key``, ``label``,
    ``arrow`` and ``sub``. ``models``: series name -> model (its colour in
    ``colours``). Drawn only when some line has two or more x values; returns
    whether a file was written.
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
    names = sorted(series)
    style = styles(names, models or {}, colours or {})
    with rc():
        fig, axes = grid(len(columns))
        for ax, col in zip(axes, columns, strict=True):
            for name in names:
                pts = sorted(
                    (x, *_mean(cells, col.key))
                    for x, cells in series[name]
                    if _mean(cells, col.key)[0] is not None
                )
                if not pts:
                    continue
                ax.errorbar(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    yerr=[[p[2] for p in pts], [p[3] for p in pts]],
                    markersize=4,
                    capsize=2,
                    label=name,
                    **style[name],
                )
            if min(xs_all) > 0:
                ax.set_xscale("log", base=2)
                ticks = sorted(set(xs_all))
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.minorticks_off()
            title = f"{col.label} {col.arrow}".strip()
            ax.set_title(title)
            if col.sub:
                ax.set_ylabel(col.sub)
            ax.set_xlabel(x_label)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)))
        save_figure(fig, path)
    return True


def plot_training_curves(
    curves: Sequence[dict[str, Any]],
    path: Path,
    colours: Mapping[str, str] | None = None,
    keys: Sequence[tuple[str, str]] = (
        ("val_total", "Validation loss (nats) ↓"),
        ("val_mse", "Validation MSE per px ↓"),
    ),
) -> bool:
    """Training curves of several configurations overlaid, one panel per history key.

    ``curves``: dicts with ``label``, ``model`` and ``histories`` (one list of
    history rows per seed); each line is the mean over seeds per epoch. Drawn
    when two or more configurations have a curve.
    """
    import numpy as np

    def mean_curve(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> tuple[list, list]:
        by_epoch: dict[float, list[float]] = {}
        for history in histories:
            for i, row in enumerate(history, start=1):
                if row.get(key) is not None:
                    by_epoch.setdefault(row.get("epoch") or i, []).append(row[key])
        xs = sorted(by_epoch)
        return xs, [float(np.mean(by_epoch[x])) for x in xs]

    panels = [
        (k, t) for k, t in keys if sum(bool(mean_curve(c["histories"], k)[0]) for c in curves) >= 2
    ]
    if not panels:
        return False
    names = [c["label"] for c in curves]
    style = styles(names, {c["label"]: c["model"] for c in curves}, colours or {})
    with rc():
        fig, axes = grid(len(panels), width=4.2, height=3.0)
        for ax, (key, title) in zip(axes, panels, strict=True):
            for c in curves:
                xs, ys = mean_curve(c["histories"], key)
                if xs:
                    st = style[c["label"]]
                    ax.plot(xs, ys, color=st["color"], linestyle=st["linestyle"], label=c["label"])
            ax.set_title(title)
            ax.set_xlabel("epoch")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)))
        save_figure(fig, path)
    return True


def drop_crowded_annotations(fig: Any, ax: Any) -> None:
    """Remove annotations that would overlap another label or leave the figure, so
    the ones kept stay readable (first come, first kept)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Annotation

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    notes = [t for t in ax.texts if isinstance(t, Annotation)]
    kept = [t.get_window_extent(renderer) for t in _drawn_texts(fig) if t not in notes]
    box = fig.bbox
    for note in notes:
        e = note.get_window_extent(renderer)
        inside = box.x0 <= e.x0 and e.x1 <= box.x1 and box.y0 <= e.y0 and e.y1 <= box.y1
        if not inside or any(e.overlaps(k) for k in kept):
            note.remove()
        else:
            kept.append(e)


def plot_rate_distortion(
    points: Sequence[dict[str, Any]], path: Path, colours: Mapping[str, str] | None = None
) -> bool:
    """Scatter of rate (KL, nats) vs distortion (reconstruction, nats), one point per run.

    ``points``: dicts with ``model``, ``short`` (an annotation, left out where it
    would cover another label), ``rate`` and ``distortion``.
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
                color=(colours or {}).get(model, f"C{i % 10}"),
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
        drop_crowded_annotations(fig, ax)
        save_figure(fig, path)
    return True
