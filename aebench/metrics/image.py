"""Per-image MSE, PSNR and SSIM, exactly as scikit-image defines them, batched in torch.

Conventions (ARCHITECTURE.md, "Metric conventions"): pixel values in [0, 1],
``data_range=1``; every metric is computed per image and then averaged.

* MSE: ``skimage.metrics.mean_squared_error``: mean over all pixels and channels.
* PSNR: ``skimage.metrics.peak_signal_noise_ratio(data_range=1)`` =
  ``10 log10(1 / MSE)``. scikit-image returns ``inf`` for a perfect
  reconstruction (MSE = 0). Here the per-image MSE is clamped at
  :data:`MSE_FLOOR` (1e-10) before the logarithm, so a perfect image scores
  :data:`PSNR_MAX` (100 dB) and the average stays finite and JSON-serialisable.
  For every image with MSE above the floor the value equals scikit-image's.
* SSIM: ``skimage.metrics.structural_similarity`` defaults: uniform 7x7
  window, K1=0.01, K2=0.03, sample covariance (``NP/(NP-1)``), mean of the SSIM
  map over the valid region (scikit-image crops ``(win-1)//2`` pixels at every
  border, which is exactly the set of positions where the window lies fully
  inside the image, so a "valid" box filter gives the same map). Colour images
  use ``channel_axis``: the mean over channels of the per-channel SSIM.
  Images with a side smaller than 7 (scikit-image refuses them with the
  default window) use ``win_size`` = the largest odd number <= the smaller
  side, which is what scikit-image requires you to pass explicitly; see
  :func:`ssim_win_size`. Sides below 3 are rejected (a 1-pixel window has no
  sample covariance).

scikit-image works on one image at a time in numpy (about 0.1 ms per 28x28
image plus Python overhead, so ~2 s for 10,000 test images and far more for
colour); the functions here are a hand-written batched torch version for
speed, computed in float64. ``tests/test_metrics_image.py`` proves they equal
scikit-image on random and real images, grayscale and RGB, including 8x8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

MSE_FLOOR = 1e-10
"""Per-image MSE is clamped at this value before computing PSNR."""
PSNR_MAX = 10.0 * math.log10(1.0 / MSE_FLOOR)
"""PSNR of a perfect reconstruction (100 dB) instead of scikit-image's ``inf``."""

SSIM_WIN = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 1.0


def ssim_win_size(height: int, width: int) -> int:
    """The SSIM window for an ``height x width`` image.

    scikit-image's default 7, or for smaller images the largest odd size that
    fits (what one must pass to scikit-image as ``win_size``). Raises
    :class:`ValueError` when a side is below 3.
    """
    side = min(height, width)
    if side < 3:
        raise ValueError(f"SSIM needs images at least 3x3, got {height}x{width}")
    win = min(SSIM_WIN, side)
    return win if win % 2 == 1 else win - 1


def _as_float64(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.to(torch.float64) / 255.0
    return x.to(torch.float64)


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"image batches differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dim() != 4:
        raise ValueError(f"expected image batches (N, C, H, W), got shape {tuple(x.shape)}")


def mse_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (mean over pixels and channels), float64 ``(N,)``.

    ``x``, ``y``: ``(N, C, H, W)`` floats in [0, 1] (uint8 is divided by 255).
    """
    _check(x, y)
    d = _as_float64(x) - _as_float64(y)
    return d.pow(2).flatten(1).mean(1)


def psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB for ``data_range=1``, with MSE clamped at :data:`MSE_FLOOR`."""
    return 10.0 * torch.log10(DATA_RANGE**2 / mse.clamp_min(MSE_FLOOR))


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR per image in dB (``data_range=1``), float64 ``(N,)``; see :data:`PSNR_MAX`."""
    return psnr_from_mse(mse_per_image(x, y))


def ssim_per_image(
    x: torch.Tensor, y: torch.Tensor, win_size: int | None = None, chunk: int = 1024
) -> torch.Tensor:
    """SSIM per image as ``skimage.metrics.structural_similarity`` defaults, float64 ``(N,)``.

    Colour images: mean over channels (scikit-image's ``channel_axis``).
    ``win_size`` defaults to :func:`ssim_win_size`. Works in chunks of
    ``chunk`` images to bound memory.
    """
    _check(x, y)
    n, c, h, w = x.shape
    win = ssim_win_size(h, w) if win_size is None else int(win_size)
    if win % 2 != 1 or win > min(h, w) or win < 3:
        raise ValueError(f"win_size must be odd, >= 3 and <= {min(h, w)}, got {win}")
    np_ = win * win
    cov_norm = np_ / (np_ - 1)
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    out = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, chunk):
        a = _as_float64(x[start : start + chunk]).reshape(-1, 1, h, w)
        b = _as_float64(y[start : start + chunk]).reshape(-1, 1, h, w)
        # one box filter pass over the five maps (stacked on the channel axis)
        maps = torch.cat([a, b, a * a, b * b, a * b], dim=1)
        ux, uy, uxx, uyy, uxy = F.avg_pool2d(maps, win, stride=1).unbind(1)
        vx = cov_norm * (uxx - ux * ux)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        per_channel = s.flatten(1).mean(1).reshape(-1, c)
        out[start : start + per_channel.shape[0]] = per_channel.mean(1).cpu()
    return out


def image_metrics_per_image(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"mse", "psnr", "ssim"}`` per image (float64 ``(N,)`` tensors on the CPU)."""
    mse = mse_per_image(x, y).cpu()
    return {"mse": mse, "psnr": psnr_from_mse(mse), "ssim": ssim_per_image(x, y)}


def average(per_image: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean of each per-image metric, as Python floats."""
    return {k: float(v.mean()) for k, v in per_image.items()}


def per_class(
    per_image: dict[str, torch.Tensor],
    labels: torch.Tensor,
    class_names: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Mean of each per-image metric for every label present, keyed by class name.

    Classes are ordered by label; the key is ``class_names[label]`` when given,
    else ``str(label)``.
    """
    labels = labels.cpu()
    out: dict[str, dict[str, float]] = {}
    for label in torch.unique(labels).tolist():
        mask = labels == label
        name = (
            class_names[label]
            if class_names is not None and label < len(class_names)
            else str(label)
        )
        out[str(name)] = {k: float(v[mask].mean()) for k, v in per_image.items()}
    return out
