"""The latent space: test latent means coloured by class, and its evolution over epochs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aebench.report.plots import isolated
from aebench.report.plots.base import (
    cmap,
    figure,
    frame,
    grid,
    integer_ticks,
    rc,
    save_figure,
    save_gif,
    subsample,
)
from aebench.threads import single_threaded

MAX_LATENT_POINTS = 2000
TSNE_ITERATIONS = 500
TSNE_MIN_DISTINCT = 5
"""Fewer distinct latents than this: no t-SNE (too few to embed; identical ones crash it)."""


def _centred_unit(z: np.ndarray) -> np.ndarray | None:
    """``z`` centred and scaled to unit spread overall (one factor: the picture is the
    same), None when every row is the same point. t-SNE and PCA then see numbers of
    order 1, whatever the code's scale (1e-300 crashes t-SNE; 1e300 overflows)."""
    z = z - np.median(z, axis=0)
    peak = float(np.abs(z).max()) if z.size else 0.0
    if not np.isfinite(peak) or peak == 0.0:
        return None
    z = z / peak
    spread = float(z.std())
    return z / spread if spread > 0 else None


def embed(z: np.ndarray, method: str, seed: int) -> tuple[np.ndarray | None, str | None]:
    """``z`` projected to 2-D with ``"PCA"`` or ``"t-SNE"`` (fixed seed): ``(xy, None)``,
    or ``(None, why)`` when it cannot be (every latent equal, too few distinct ones,
    t-SNE failing or crashing: it runs in a helper process, :mod:`.isolated`)."""
    scaled = _centred_unit(np.asarray(z, dtype=np.float64))
    if scaled is None:
        return None, f"all {len(z)} latents are the same point: nothing to project"
    if method == "PCA":
        # One thread: OpenMP workers spin-waiting on a busy machine are 5-40x slower,
        # and report builds run beside training. LAPACK on finite numbers: safe here.
        from sklearn.decomposition import PCA

        with single_threaded():
            xy = PCA(n_components=2, random_state=seed).fit_transform(scaled)
    else:
        distinct = len(np.unique(scaled, axis=0))
        if distinct < TSNE_MIN_DISTINCT:
            return None, f"t-SNE skipped: only {distinct} distinct latents of {len(z)}"
        # 500 iterations are plenty for a picture (about 6 s for 2000 points).
        perplexity = float(min(30.0, max(2.0, (len(z) - 1) / 3)))
        options = {
            "n_components": 2,
            "perplexity": perplexity,
            "init": "pca",
            "random_state": seed,
            "learning_rate": "auto",
            "max_iter": TSNE_ITERATIONS,
        }
        xy, failed = isolated.call("sklearn.manifold:TSNE", options, "fit_transform", scaled)
        if failed is not None:
            return None, f"t-SNE {failed}"
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape != (len(z), 2) or not np.isfinite(xy).all():
        return None, f"{method} gave no finite projection"
    return xy, None


def _class_name(label: object, class_names: Sequence[str] | None) -> str:
    idx = int(label)  # type: ignore[call-overload]
    return str(class_names[idx]) if class_names and 0 <= idx < len(class_names) else str(label)


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)


def finite_rows(z: np.ndarray, notes: list[str] | None, what: str = "test latents") -> np.ndarray:
    """Which rows of ``z`` (n x ...) are finite; a note says how many are NaN or infinite."""
    keep = np.isfinite(z.reshape(len(z), -1)).all(axis=1)
    bad = int(len(z) - keep.sum())
    if bad == len(z):
        _note(notes, f"all {len(z)} {what} are NaN or infinite: nothing to plot")
    elif bad:
        _note(notes, f"{bad} of {len(z)} {what} are NaN or infinite, left out")
    return keep


def plot_latents(
    z: np.ndarray,
    y: np.ndarray | None,
    path: Path,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    notes: list[str] | None = None,
) -> list[str]:
    """Latent means coloured by class: direct for d ≤ 2, PCA and t-SNE for d > 2.

    At most :data:`MAX_LATENT_POINTS` points (a fixed-seed subset). Returns the
    projections drawn (e.g. ``["PCA", "t-SNE"]``); empty if there is nothing to
    plot. Degenerate latents (NaN or infinite rows, all equal, one image) draw less
    or nothing, and say why in ``notes``; a projection that fails is a panel saying
    why.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[1] < 1:
        _note(notes, f"latents of shape {z.shape}: nothing to plot")
        return []
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(z):
            y = None
    keep = finite_rows(z, notes)
    z = z[keep]
    y = y[keep] if y is not None else None
    if len(z) > MAX_LATENT_POINTS:
        pick = np.sort(np.random.default_rng(seed).choice(len(z), MAX_LATENT_POINTS, replace=False))
        z = z[pick]
        y = y[pick] if y is not None else None
    if len(z) < 2:
        if len(z) == 1:
            _note(notes, "only one test latent: nothing to project")
        elif keep.all():
            _note(notes, "no test latents stored: nothing to plot")
        return []

    d = z.shape[1]
    projections: list[tuple[str, np.ndarray | None, str | None]]
    if d == 1:
        projections = [("z (1-D)", np.column_stack([z[:, 0], np.zeros(len(z))]), None)]
    elif d == 2:
        projections = [("z (direct)", z, None)]
    else:
        methods = ["PCA", "t-SNE"] if len(z) >= 5 else ["PCA"]
        projections = [(m, *embed(z, m, seed)) for m in methods]
        if projections[0][1] is None:  # PCA failed: all equal, t-SNE has nothing either
            _note(notes, str(projections[0][2]))
            return []
    for _name, _, why in projections:
        if why:
            _note(notes, why)

    size = 6 if len(z) > 500 else 18
    with rc():
        fig, axes = figure(len(projections), width=3.6, height=3.4)
        for ax, (name, xy, why) in zip(axes, projections, strict=True):
            ax.set_title(f"{name}, d={d}, n={len(z)}")
            if xy is None:
                _empty_panel(ax, str(why))
                continue
            if y is None:
                ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, linewidths=0)
            else:
                labels = np.unique(y)
                colours = cmap("tab10" if len(labels) <= 10 else "tab20")
                _scatter_classes(ax, xy, y, labels, colours, class_names, size=4)
            if d > 2:  # projected axes have no meaningful units
                ax.set_xticks([])
                ax.set_yticks([])
        if y is not None and len(np.unique(y)) <= 20:
            _legend_right(axes, size)
        save_figure(fig, path)
    return [name for name, xy, _ in projections if xy is not None]


def _legend_right(axes: list[Any], size: float) -> None:
    """The class legend right of the last panel that has points (the last, normally)."""
    drawn = [ax for ax in axes if ax.get_legend_handles_labels()[0]]
    if drawn:
        drawn[-1].legend(
            loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2.5 if size < 10 else 1.5
        )


def _empty_panel(ax: Any, why: str) -> None:
    """A panel with no points: the reason, wrapped, in its middle."""
    import textwrap

    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.text(
        0.5,
        0.5,
        textwrap.fill(why, 28),
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.35",
    )


def make_latent_gif(
    z_epochs: np.ndarray,
    y: np.ndarray | None,
    path: Path,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    ms_per_frame: int = 500,
    notes: list[str] | None = None,
) -> bool:
    """An animated GIF of the latent space after each epoch (fixed validation images).

    ``z_epochs`` is ``(epochs, n, d)``. d ≤ 2 is drawn directly; for d > 2 one
    PCA, fitted on the last epoch, projects every epoch, and the axes are fixed
    across frames, so the motion shown is the latent space's own. Images whose
    latents are NaN or infinite in some epoch are left out (``notes`` says so).
    """
    z_epochs = np.asarray(z_epochs, dtype=np.float64)
    if z_epochs.ndim != 3 or z_epochs.shape[0] < 1 or z_epochs.shape[1] < 2:
        _note(notes, f"latents of shape {z_epochs.shape}: nothing to animate")
        return False
    epochs, n, d = z_epochs.shape
    if y is not None and len(np.asarray(y).reshape(-1)) != n:
        y = None
    keep = finite_rows(z_epochs.transpose(1, 0, 2), notes, "validation latents")
    if keep.sum() < 2:
        if keep.sum() > 0:
            _note(notes, "only one validation image has finite latents: nothing to animate")
        return False
    z_epochs = z_epochs[:, keep]
    labels = None if y is None else np.asarray(y).reshape(-1)[keep]
    if d == 1:
        xy = np.concatenate([z_epochs, np.zeros_like(z_epochs)], axis=2)
        name = "z (1-D)"
    elif d == 2:
        xy, name = z_epochs, "z (direct)"
    else:
        flat = _centred_unit(z_epochs.reshape(-1, d))
        if flat is None:
            _note(notes, "every epoch's latents are the same point: nothing to animate")
            return False
        scaled = flat.reshape(z_epochs.shape)
        last = scaled[-1] if np.ptp(scaled[-1], axis=0).max() > 0 else flat  # last collapsed
        from sklearn.decomposition import PCA

        with single_threaded():
            pca = PCA(n_components=2, random_state=seed).fit(last)
            xy = np.stack([pca.transform(z) for z in scaled])
        name = "PCA of the last epoch"
    lo, hi = np.percentile(xy.reshape(-1, 2), [0.5, 99.5], axis=0)
    pad = (hi - lo) * 0.05 + 1e-9
    images = []
    with rc():
        for e in subsample(epochs):
            fig, axes = figure(1, width=3.6, height=3.4)
            ax = axes[0]
            if labels is None:
                ax.scatter(xy[e, :, 0], xy[e, :, 1], s=5, alpha=0.6, linewidths=0)
            else:
                uniq = np.unique(labels)
                colours = cmap("tab10" if len(uniq) <= 10 else "tab20")
                _scatter_classes(ax, xy[e], labels, uniq, colours, None, size=5, named=False)
            ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
            ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
            ax.set_title(f"epoch {e + 1}/{epochs}: {name}, d={d}")
            images.append(frame(fig))
    save_gif(images, path, ms_per_frame)
    return True


def plot_latent_maps(
    maps: Sequence[dict[str, object]],
    path: Path,
    class_names: Sequence[str] | None = None,
    per_row: int = 4,
) -> bool:
    """2-D latent means of several configurations side by side, coloured by class.

    ``maps``: dicts with ``label``, ``z`` (n x 2) and ``y`` (labels or None).
    Drawn when two or more maps are given.
    """
    maps = [m for m in maps if np.asarray(m["z"]).ndim == 2 and np.asarray(m["z"]).shape[1] == 2]
    if len(maps) < 2:
        return False

    labels_all = np.unique(
        np.concatenate([np.asarray(m["y"]).reshape(-1) for m in maps if m.get("y") is not None])
        if any(m.get("y") is not None for m in maps)
        else np.array([])
    )
    colours = cmap("tab10" if len(labels_all) <= 10 else "tab20")
    with rc():
        fig, axes = grid(len(maps), per_row=per_row, width=2.9, height=2.7)
        for ax, m in zip(axes, maps, strict=True):
            z = np.asarray(m["z"], dtype=np.float64)[:MAX_LATENT_POINTS]
            y = None if m.get("y") is None else np.asarray(m["y"]).reshape(-1)[: len(z)]
            if y is None or len(y) != len(z):
                ax.scatter(z[:, 0], z[:, 1], s=3, alpha=0.6, linewidths=0, color="0.3")
            else:
                _scatter_classes(ax, z, y, labels_all, colours, class_names, size=3)
            ax.set_title(str(m["label"]), fontsize=9)
        handles, names = axes[0].get_legend_handles_labels()
        if handles and len(handles) <= 20:
            fig.legend(
                handles,
                names,
                loc="outside right center",
                markerscale=3,
                title="class",
            )
        save_figure(fig, path)
    return True


def plot_kl_per_dim(kl: Sequence[float], path: Path, threshold: float = 0.01) -> bool:
    """Bars of the KL per latent dimension (nats), sorted as stored, with the collapse
    threshold drawn; collapsed dimensions in gray."""
    values = [float(v) for v in kl if v is not None]
    if not values:
        return False
    with rc():
        width = min(9.0, max(3.4, 0.18 * len(values) + 1.5))
        fig, axes = figure(1, width=width, height=2.6)
        ax = axes[0]
        colours = ["0.65" if v < threshold else "C0" for v in values]
        ax.bar(range(len(values)), values, color=colours)
        ax.axhline(threshold, color="C3", linewidth=0.8, linestyle="--", label="collapse threshold")
        ax.set_xlabel("latent dimension")
        ax.set_ylabel("KL (nats)")
        ax.set_title("KL per latent dimension (test mean)")
        if len(values) <= 16:
            ax.set_xticks(range(len(values)), [str(i) for i in range(len(values))])
        else:
            ax.xaxis.set_major_locator(integer_ticks())
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper right")
        save_figure(fig, path)
    return True


def _scatter_classes(
    ax: Any,
    xy: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray,
    colours: Any,
    class_names: Sequence[str] | None,
    size: float,
    named: bool = True,
) -> None:
    """One scatter per class of ``labels`` (colour ``i`` of ``colours``), named for a legend
    unless ``named`` is False (a frame without a legend)."""
    for i, label in enumerate(labels):
        mask = y == label
        ax.scatter(
            xy[mask, 0],
            xy[mask, 1],
            s=size,
            alpha=0.7,
            linewidths=0,
            color=colours(i % colours.N),
            label=_class_name(label, class_names) if named else None,
        )
