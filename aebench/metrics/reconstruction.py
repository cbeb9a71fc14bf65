"""Reconstruction quality on the test split: MSE, PSNR and SSIM, overall and per class.

``model.reconstruct(x)`` (the decoded latent mean) is compared with ``x`` image
by image with :mod:`aebench.metrics.image` (equal to scikit-image's
``mean_squared_error``, ``peak_signal_noise_ratio`` and
``structural_similarity`` with ``data_range=1``), then averaged over images,
and over the images of each class (``per_class``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from aebench.datasets.base import ImageSet
from aebench.metrics import image
from aebench.metrics._util import eval_mode
from aebench.metrics.context import hook
from aebench.models.base import AutoEncoder
from aebench.specs import MetricColumn, MetricSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext


@torch.no_grad()
def reconstruction_metrics(
    model: AutoEncoder,
    data: ImageSet,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
) -> tuple[dict[str, float], dict[str, dict[str, float]] | None]:
    """Mean MSE/PSNR/SSIM of ``model.reconstruct`` over ``data``, and the same per class.

    Returns ``({"mse", "psnr", "ssim"}, {class_name: {...}} or None without labels)``.
    """
    parts: dict[str, list[torch.Tensor]] = {"mse": [], "psnr": [], "ssim": []}
    with eval_mode(model):
        for i in range(0, len(data), batch_size):
            x = data.batch(slice(i, i + batch_size), device)
            per = image.image_metrics_per_image(model.reconstruct(x), x)
            for k, v in per.items():
                parts[k].append(v)
    per_image = {k: torch.cat(v) for k, v in parts.items()}
    classes = (
        None if data.labels is None else image.per_class(per_image, data.labels, data.class_names)
    )
    return image.average(per_image), classes


def compute(ctx: EvalContext) -> dict[str, Any]:
    means, classes = reconstruction_metrics(
        ctx.model, ctx.test, device=ctx.device, batch_size=ctx.batch_size
    )
    return {
        "n_test": len(ctx.test),
        **{f"test_{k}": v for k, v in means.items()},
        "per_class": classes,
    }


METRIC = MetricSpec(
    "reconstruction",
    compute,
    description="Test reconstructions vs originals as scikit-image defines the metrics "
    "(data_range=1): per image, averaged, and per class",
    group="reconstruction",
    order=20,
    details=("n_test", "per_class"),
    columns=(
        MetricColumn("test_mse", "MSE", "per pixel", "min", "Mean squared error per pixel"),
        MetricColumn("test_psnr", "PSNR", "dB", "max", "10 log10(1 / MSE), capped at 100 dB"),
        MetricColumn("test_ssim", "SSIM", "", "max", "Structural similarity, 7x7 window"),
    ),
)
register_metrics = hook(METRIC)
