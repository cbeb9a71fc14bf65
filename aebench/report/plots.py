"""Matplotlib/PIL figures for the report: small PNGs (modest DPI, palette-quantised).

Uses :class:`matplotlib.figure.Figure` directly (no pyplot), so no global
backend or figure registry is touched. Every label that may come from a plugin
is drawn with mathtext parsing off, so a ``$`` in a model name cannot break a
plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DPI = 72
MAX_LATENT_POINTS = 2000
MAX_GIF_FRAMES = 60
TSNE_ITERATIONS = 500
_RC = {
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


def _figure(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def save_figure(fig: Any, path: Path) -> Path:
    """Save ``fig`` as a small PNG: DPI :data:`DPI`, then quantised to a 256-colour palette."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path


def copy_image(src: Path, dst: Path) -> None:
    """Copy a PNG, re-encoding it smaller: gray RGB becomes 8-bit gray, optimised.

    torchvision's ``save_image`` writes 3-channel PNGs even for grayscale
    data; one channel is a third of the size. Anything unreadable is copied as is.
    """
    import shutil

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


def _rc():
    import matplotlib

    return matplotlib.rc_context(_RC)


def _series(history: Sequence[dict[str, float | None]], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for i, row in enumerate(history, start=1):
        value = row.get(key)
        if value is not None:
            xs.append(row.get("epoch") or i)
            ys.append(value)
    return xs, ys


def plot_losses(history: Sequence[dict[str, float | None]], path: Path) -> bool:
    """Train/val total, reconstruction and regulariser per epoch. False if nothing to plot."""
    panels = [
        ("total", "Total loss (nats)"),
        ("recon", "Reconstruction (nats)"),
        ("reg", "Regulariser (nats)"),
    ]
    panels = [
        p
        for p in panels
        if _series(history, f"train_{p[0]}")[0] or _series(history, f"val_{p[0]}")[0]
    ]
    if not panels:
        return False
    with _rc():
        fig, axes = _figure(len(panels), width=3.3, height=2.6)
        for ax, (term, title) in zip(axes, panels, strict=True):
            for split, style in (("train", "-"), ("val", "--")):
                xs, ys = _series(history, f"{split}_{term}")
                if xs:
                    ax.plot(xs, ys, style, marker="o", markersize=3, label=split)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(_integer_ticks())
            ax.legend()
        save_figure(fig, path)
    return True


def plot_quality(history: Sequence[dict[str, float | None]], path: Path) -> bool:
    """Validation MSE, SSIM and PSNR per epoch. False if nothing to plot."""
    panels = [
        ("val_mse", "Val MSE per px ↓"),
        ("val_ssim", "Val SSIM ↑"),
        ("val_psnr", "Val PSNR (dB) ↑"),
    ]
    panels = [p for p in panels if _series(history, p[0])[0]]
    if not panels:
        return False
    with _rc():
        fig, axes = _figure(len(panels), width=3.3, height=2.6)
        for ax, (key, title) in zip(axes, panels, strict=True):
            xs, ys = _series(history, key)
            ax.plot(xs, ys, marker="o", markersize=3, color="C2")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(_integer_ticks())
        save_figure(fig, path)
    return True


def _embed(z: np.ndarray, method: str, seed: int) -> np.ndarray:
    # One thread: OpenMP workers spin-waiting on a busy machine make t-SNE 5-40x
    # slower, and report builds run beside training. 500 iterations are plenty
    # for a picture (about 6 s for 2000 points). The estimators are imported
    # before the limit is set, so threadpoolctl sees their OpenMP runtime.
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        if method == "PCA":
            return PCA(n_components=2, random_state=seed).fit_transform(z)
        perplexity = float(min(30.0, max(2.0, (len(z) - 1) / 3)))
        return TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            random_state=seed,
            learning_rate="auto",
            max_iter=TSNE_ITERATIONS,
        ).fit_transform(z)


def plot_latents(
    z: np.ndarray,
    y: np.ndarray | None,
    path: Path,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> list[str]:
    """Latent means coloured by class: direct for d ≤ 2, PCA and t-SNE for d > 2.

    At most :data:`MAX_LATENT_POINTS` points (a fixed-seed subset). Returns the
    projections drawn (e.g. ``["PCA", "t-SNE"]``); empty if there is nothing to plot.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or len(z) < 2 or z.shape[1] < 1:
        return []
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(z):
            y = None
    finite = np.isfinite(z).all(axis=1)
    z = z[finite]
    y = y[finite] if y is not None else None
    if len(z) > MAX_LATENT_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(z), MAX_LATENT_POINTS, replace=False))
        z = z[keep]
        y = y[keep] if y is not None else None
    if len(z) < 2:
        return []

    d = z.shape[1]
    if d == 1:
        projections = [("z (1-D)", np.column_stack([z[:, 0], np.zeros(len(z))]))]
    elif d == 2:
        projections = [("z (direct)", z)]
    else:
        methods = ["PCA", "t-SNE"] if len(z) >= 5 else ["PCA"]
        projections = [(m, _embed(z, m, seed)) for m in methods]

    size = 6 if len(z) > 500 else 18
    with _rc():
        fig, axes = _figure(len(projections), width=3.6, height=3.4)
        for ax, (name, xy) in zip(axes, projections, strict=True):
            if y is None:
                ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, linewidths=0)
            else:
                labels = np.unique(y)
                cmap = "tab10" if len(labels) <= 10 else "tab20"
                for i, label in enumerate(labels):
                    mask = y == label
                    idx = int(label)
                    text = (
                        str(class_names[idx])
                        if class_names and 0 <= idx < len(class_names)
                        else str(label)
                    )
                    ax.scatter(
                        xy[mask, 0],
                        xy[mask, 1],
                        s=4,
                        alpha=0.7,
                        linewidths=0,
                        color=_cmap(cmap)(i % _cmap(cmap).N),
                        label=text,
                    )
            ax.set_title(f"{name}, d={d}, n={len(z)}")
            if d > 2:  # projected axes have no meaningful units
                ax.set_xticks([])
                ax.set_yticks([])
        if y is not None and len(np.unique(y)) <= 20:
            axes[-1].legend(
                loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2.5 if size < 10 else 1.5
            )
        save_figure(fig, path)
    return [name for name, _ in projections]


def make_latent_gif(
    z_epochs: np.ndarray,
    y: np.ndarray | None,
    path: Path,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    ms_per_frame: int = 500,
) -> bool:
    """An animated GIF of the latent space after each epoch (fixed validation images).

    ``z_epochs`` is ``(epochs, n, d)``. d ≤ 2 is drawn directly; for d > 2 one
    PCA, fitted on the last epoch, projects every epoch, and the axes are fixed
    across frames, so the motion shown is the latent space's own.
    """
    import io

    from PIL import Image

    z_epochs = np.asarray(z_epochs, dtype=np.float64)
    if z_epochs.ndim != 3 or z_epochs.shape[0] < 1 or z_epochs.shape[1] < 2:
        return False
    epochs, n, d = z_epochs.shape
    if y is not None and len(np.asarray(y).reshape(-1)) != n:
        y = None
    if d == 1:
        xy = np.concatenate([z_epochs, np.zeros_like(z_epochs)], axis=2)
        name = "z (1-D)"
    elif d == 2:
        xy, name = z_epochs, "z (direct)"
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(z_epochs[-1])
        xy = np.stack([pca.transform(z) for z in z_epochs])
        name = "PCA of the last epoch"
    finite = np.isfinite(xy).all(axis=(0, 2))
    if finite.sum() < 2:
        return False
    xy = xy[:, finite]
    labels = None if y is None else np.asarray(y).reshape(-1)[finite]
    lo, hi = np.percentile(xy.reshape(-1, 2), [0.5, 99.5], axis=0)
    pad = (hi - lo) * 0.05 + 1e-9
    frames_idx = np.arange(epochs)
    if epochs > MAX_GIF_FRAMES:
        frames_idx = np.unique(np.linspace(0, epochs - 1, MAX_GIF_FRAMES).round().astype(int))
    images = []
    with _rc():
        for e in frames_idx:
            fig, axes = _figure(1, width=3.6, height=3.4)
            ax = axes[0]
            if labels is None:
                ax.scatter(xy[e, :, 0], xy[e, :, 1], s=5, alpha=0.6, linewidths=0)
            else:
                uniq = np.unique(labels)
                cmap = _cmap("tab10" if len(uniq) <= 10 else "tab20")
                for i, label in enumerate(uniq):
                    mask = labels == label
                    ax.scatter(
                        xy[e, mask, 0],
                        xy[e, mask, 1],
                        s=5,
                        alpha=0.7,
                        linewidths=0,
                        color=cmap(i % cmap.N),
                    )
            ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
            ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
            ax.set_title(f"epoch {e + 1}/{epochs}: {name}, d={d}")
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=72)
            import matplotlib.pyplot as plt

            plt.close(fig)
            buf.seek(0)
            with Image.open(buf) as im:
                images.append(im.convert("RGB").quantize(colors=256))
    path.parent.mkdir(parents=True, exist_ok=True)
    durations = [ms_per_frame] * len(images)
    durations[-1] = ms_per_frame * 4  # hold the final epoch
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=True
    )
    return True


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def plot_per_class(per_class: dict[str, dict[str, Any]], path: Path) -> bool:
    """Bar charts of per-class MSE and PSNR. False if there is nothing to plot."""
    names = list(per_class)
    panels = []
    for key, title in (("mse", "MSE per px ↓"), ("psnr", "PSNR (dB) ↑")):
        values = [_float(per_class[n], key) for n in names]
        if any(v is not None for v in values):
            panels.append((title, [v if v is not None else 0.0 for v in values]))
    if not names or not panels:
        return False
    with _rc():
        width = max(3.2, 0.35 * len(names) + 1.2)
        fig, axes = _figure(len(panels), width=width, height=2.6)
        for ax, (title, values) in zip(axes, panels, strict=True):
            ax.bar(range(len(names)), values, color="C0")
            ax.set_xticks(
                range(len(names)),
                names,
                rotation=45 if len(names) > 10 else 0,
                ha="right" if len(names) > 10 else "center",
            )
            ax.set_title(title)
            ax.grid(axis="x", visible=False)
        save_figure(fig, path)
    return True


def _float(values: Any, key: str) -> float | None:
    if not isinstance(values, dict):
        return None
    v = values.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def make_epoch_gif(frames: Sequence[Path], path: Path, ms_per_frame: int = 500) -> bool:
    """An animated GIF of the per-epoch reconstruction PNGs, each labelled with its epoch.

    More than :data:`MAX_GIF_FRAMES` epochs are subsampled evenly (first and last kept).
    """
    from PIL import Image, ImageDraw, ImageFont

    frames = list(frames)
    if not frames:
        return False
    if len(frames) > MAX_GIF_FRAMES:
        pick = np.unique(np.linspace(0, len(frames) - 1, MAX_GIF_FRAMES).round().astype(int))
        frames = [frames[i] for i in pick]
    images = []
    size = None
    font = ImageFont.load_default()
    for frame in frames:
        with Image.open(frame) as im:
            im = im.convert("RGB")
            size = size or im.size
            if im.size != size:
                im = im.resize(size)
            canvas = Image.new("RGB", (size[0], size[1] + 14), "white")
            canvas.paste(im, (0, 14))
            digits = "".join(ch for ch in frame.stem.rsplit("_", 1)[-1] if ch.isdigit())
            label = f"epoch {int(digits)}" if digits else frame.stem
            ImageDraw.Draw(canvas).text((2, 1), label, fill="black", font=font)
            images.append(canvas.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
    path.parent.mkdir(parents=True, exist_ok=True)
    durations = [ms_per_frame] * len(images)
    durations[-1] = ms_per_frame * 4  # hold the final epoch
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        optimize=True,
        disposal=1,
    )
    return True


# --------------------------------------------------------------------------- comparisons


def _mean(row: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    cell = row["cells"].get(key) or {}
    return cell.get("mean"), cell.get("std")


def plot_metric_vs(
    rows: Sequence[dict[str, Any]],
    x_key: str,
    columns: Sequence[dict[str, Any]],
    path: Path,
    x_label: str,
) -> bool:
    """One panel per metric column: mean ± std vs ``x_key``, one line per other setting.

    Lines are the configurations that share everything but ``x_key``. Drawn only
    when some line has two or more x values; returns whether a file was written.
    """
    other = "beta" if x_key == "latent_dim" else "latent_dim"
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        x = row.get(x_key)
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            continue
        name = row["model"]
        if row.get(other) is not None:
            name += f" {'β' if other == 'beta' else 'd'}={row.get(other)}"
        if row.get("variant"):
            name += f" ({row['variant']})"
        series.setdefault(name, []).append(row)
    if not any(len({r[x_key] for r in s}) >= 2 for s in series.values()):
        return False
    columns = [
        c
        for c in columns
        if any(_mean(r, c["key"])[0] is not None for s in series.values() for r in s)
    ]
    if not columns:
        return False
    xs_all = [r[x_key] for s in series.values() for r in s]
    with _rc():
        fig, axes = _figure(len(columns), width=3.3, height=2.8)
        for ax, col in zip(axes, columns, strict=True):
            for i, (name, members) in enumerate(sorted(series.items())):
                pts = sorted(
                    (r[x_key], *_mean(r, col["key"]))
                    for r in members
                    if _mean(r, col["key"])[0] is not None
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
            title = f"{col['label']} {col['arrow']}"
            if col.get("sub"):
                title += f" ({col['sub']})"
            ax.set_title(title)
            ax.set_xlabel(x_label)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
        save_figure(fig, path)
    return True


def plot_rate_distortion(points: Sequence[dict[str, Any]], path: Path) -> bool:
    """Scatter of rate (KL, nats) vs distortion (reconstruction, nats), one point per run.

    ``points``: dicts with ``model``, ``label``, ``rate`` and ``distortion``.
    """
    points = [p for p in points if p.get("rate") is not None and p.get("distortion") is not None]
    if not points:
        return False
    models = sorted({p["model"] for p in points})
    with _rc():
        fig, axes = _figure(1, width=5.2, height=3.6)
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


def plot_per_class_compare(
    rows: Sequence[dict[str, Any]], path: Path, key: str = "mse", max_rows: int = 10
) -> bool:
    """Grouped bars of per-class ``key`` (seed-averaged) for each configuration row.

    ``rows``: dicts with ``label`` and ``per_class`` ({class: value}). Needs two
    or more rows; at most ``max_rows`` are drawn.
    """
    rows = [r for r in rows if r.get("per_class")][:max_rows]
    if len(rows) < 2:
        return False
    classes: list[str] = []
    for r in rows:
        classes.extend(c for c in r["per_class"] if c not in classes)
    width = 0.8 / len(rows)
    with _rc():
        fig, axes = _figure(1, width=max(5.0, 0.6 * len(classes) + 2), height=3.2)
        ax = axes[0]
        for i, r in enumerate(rows):
            values = [r["per_class"].get(c) for c in classes]
            ax.bar(
                np.arange(len(classes)) + (i - (len(rows) - 1) / 2) * width,
                [v if v is not None else 0.0 for v in values],
                width=width,
                label=r["label"],
                color=f"C{i % 10}",
            )
        ax.set_xticks(
            range(len(classes)),
            classes,
            rotation=45 if len(classes) > 10 else 0,
            ha="right" if len(classes) > 10 else "center",
        )
        ax.set_title(f"Per-class test {key.upper()} {'↓' if key == 'mse' else '↑'}")
        ax.grid(axis="x", visible=False)
        fig.legend(loc="outside right center")
        save_figure(fig, path)
    return True
