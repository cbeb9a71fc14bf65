"""The report's figures: latent plots, GIFs, gallery crops, 2x PNGs, model colours, label layout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from report_helpers import _dataset


def test_gif_is_animated(site: Path) -> None:
    from PIL import Image

    with Image.open(site / "runs" / "mnist-vae-cnn-d16-s0" / "recon_epochs.gif") as im:
        assert im.is_animated and im.n_frames == 3


def test_latent_projections(tmp_path: Path) -> None:
    from aebench.report.plots import plot_latents

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    assert plot_latents(rng.normal(size=(60, 2)), y, tmp_path / "a.png") == ["z (direct)"]
    assert plot_latents(rng.normal(size=(30, 6)), None, tmp_path / "b.png") == ["PCA", "t-SNE"]
    assert plot_latents(rng.normal(size=(1, 6)), None, tmp_path / "c.png") == []
    assert (tmp_path / "a.png").exists() and not (tmp_path / "c.png").exists()


def test_gallery_shows_shared_originals_reconstructions_and_labelled_samples(site: Path) -> None:
    from PIL import Image

    html = (site / "index.html").read_text(encoding="utf-8")
    mnist = html[html.index('id="ds-mnist"') :]
    gallery = mnist[mnist.index('<div class="gallery">') : mnist.index("<h3>Comparisons")]
    assert gallery.count('<div class="glabel">Test originals</div>') == 1
    assert gallery.count("Reconstructions by ") == 6  # one row per mnist configuration
    assert "samples: prior N(0, I)" in gallery and "samples: ex-post GMM" in gallery
    with Image.open(site / "runs" / "mnist-ae-cnn-d16-s0" / "recon.png") as full:
        w, h = full.size
    crops = site / "plots" / "mnist-gallery"
    with (
        Image.open(crops / "originals.png") as top,
        Image.open(crops / "mnist-ae-cnn-d16-s0-recon.png") as bottom,
    ):
        assert top.size == (w, h // 2) and bottom.size == (w, h - h // 2)
    with Image.open(crops / "mnist-ae-cnn-d16-s0-samples.png") as samples:
        assert samples.size == (242, 62)  # two rows of the 8 x 8 grid of 28-px tiles


def test_figures_are_2x_pngs_shown_at_their_size(site: Path) -> None:
    from PIL import Image

    html = (site / "index.html").read_text(encoding="utf-8")
    shown = re.findall(r'<img src="(plots/[^"]+)" width="(\d+)" height="(\d+)"', html)
    assert len(shown) >= 4
    for src, width, height in shown:
        with Image.open(site / src) as im:
            assert im.size == (2 * int(width), 2 * int(height)) or (
                abs(im.size[0] - 2 * int(width)) <= 1 and abs(im.size[1] - 2 * int(height)) <= 1
            )


def test_figures_have_no_clipped_or_overlapping_labels(ctx: dict[str, Any], tmp_path: Path) -> None:
    from aebench.report import plots
    from aebench.report.comparisons import dataset_figures
    from aebench.report.plots import base

    base.AUDIT = []
    try:
        ds = _dataset(ctx)
        drawn = [f.name for f in dataset_figures(ds) if f.draw(tmp_path / f"{f.name}.png")]
        assert {"training", "vs-latent_dim", "vs-beta", "per-class-mse"} <= set(drawn)
        assert plots.plot_kl_per_dim([0.5, 0.001] * 20, tmp_path / "kl.png")
        maps = [
            {"label": f"a-long-model-name-{i} latent_dim=2", "z": np.eye(2) * i, "y": None}
            for i in range(5)
        ]
        assert plots.plot_latent_maps(maps, tmp_path / "maps.png")
        assert base.AUDIT == []
        # the audit can fail: labels drawn on top of each other are found
        fig, (ax,) = base.figure()
        ax.text(0.5, 0.5, "one label")
        ax.text(0.5, 0.5, "another label")
        assert any("overlap" in p for p in base.layout_problems(fig))
    finally:
        base.AUDIT = None


def test_model_colours_are_one_per_model_across_the_site(ctx: dict[str, Any]) -> None:
    from aebench.report.plots import model_colours

    models = {row["model"] for ds in ctx["datasets"] for row in ds["rows"]}
    colours = model_colours(models)
    assert set(colours) == models and len(set(colours.values())) == len(models)
    assert model_colours(sorted(models)) == colours  # independent of order
