"""Matplotlib/PIL figures for the report: PNGs at twice the screen resolution, palette-quantised.

One module per kind of figure: :mod:`.base` (shared setup and saving),
:mod:`.training` (loss and quality curves), :mod:`.latents` (latent scatter,
t-SNE and the latent GIF), :mod:`.animation` (reconstructions over epochs),
:mod:`.classes` (per-class bars), :mod:`.compare` (across runs) and
:mod:`.gallery` (reconstruction rows for the dataset gallery).
"""

from __future__ import annotations

from aebench.report.plots.animation import make_epoch_gif
from aebench.report.plots.base import copy_image, display_size, model_colours, save_figure
from aebench.report.plots.classes import plot_per_class, plot_per_class_compare
from aebench.report.plots.compare import (
    plot_metric_vs,
    plot_rate_distortion,
    plot_training_curves,
)
from aebench.report.plots.gallery import split_recon
from aebench.report.plots.latents import (
    make_latent_gif,
    plot_kl_per_dim,
    plot_latent_maps,
    plot_latents,
)
from aebench.report.plots.training import plot_losses, plot_quality

__all__ = [
    "copy_image",
    "display_size",
    "make_epoch_gif",
    "make_latent_gif",
    "model_colours",
    "plot_kl_per_dim",
    "plot_latent_maps",
    "plot_latents",
    "plot_losses",
    "plot_metric_vs",
    "plot_per_class",
    "plot_per_class_compare",
    "plot_quality",
    "plot_rate_distortion",
    "plot_training_curves",
    "save_figure",
    "split_recon",
]
