"""The batched torch MSE/PSNR/SSIM equal scikit-image, image by image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

import aebench
from aebench.metrics import image


def _skimage(
    x: torch.Tensor, y: torch.Tensor, win_size: int | None = None
) -> dict[str, np.ndarray]:
    """Reference: scikit-image one image at a time, (C, H, W) -> channel_axis=0 for colour."""
    mse, psnr, ssim = [], [], []
    for a, b in zip(x.numpy(), y.numpy(), strict=True):
        kw = {"data_range": 1.0}
        if a.shape[0] == 1:
            a, b = a[0], b[0]
        else:
            kw["channel_axis"] = 0
        mse.append(mean_squared_error(a, b))
        psnr.append(peak_signal_noise_ratio(a, b, data_range=1.0))
        ssim.append(structural_similarity(a, b, win_size=win_size, **kw))
    return {"mse": np.array(mse), "psnr": np.array(psnr), "ssim": np.array(ssim)}


def _pair(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.15 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize(
    "shape",
    [(6, 1, 28, 28), (5, 3, 32, 32), (4, 3, 9, 13), (3, 1, 7, 7)],
    ids=["gray28", "rgb32", "rgb9x13", "gray7"],
)
def test_equals_skimage_random(shape):
    x, y = _pair(shape, seed=shape[2])
    ours = image.image_metrics_per_image(y, x)
    ref = _skimage(x, y)
    for k in ("mse", "psnr", "ssim"):
        np.testing.assert_allclose(ours[k].numpy(), ref[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_equals_skimage_on_real_digits_8x8():
    test = aebench.get_dataset("digits", split="test")
    x = test.batch(slice(0, 40)).double()
    # a "reconstruction": blurred and shifted digits, so SSIM spans a wide range
    y = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    y = torch.roll(y, 1, dims=3)
    assert image.ssim_win_size(8, 8) == 7
    ours = image.image_metrics_per_image(y, x)
    ref = _skimage(x, y)  # default win 7 fits 8x8
    for k in ("mse", "psnr", "ssim"):
        np.testing.assert_allclose(ours[k].numpy(), ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
    assert ours["ssim"].std() > 0.05


@pytest.mark.parametrize(("side", "win"), [(6, 5), (5, 5), (4, 3), (3, 3)])
def test_small_images_use_largest_odd_window(side, win):
    x, y = _pair((3, 3, side, side), seed=side)
    assert image.ssim_win_size(side, side) == win
    with pytest.raises(ValueError, match="win_size"):
        structural_similarity(x[0, 0].numpy(), y[0, 0].numpy(), data_range=1.0)
    ours = image.ssim_per_image(y, x)
    ref = _skimage(x, y, win_size=win)["ssim"]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_too_small_images_rejected():
    x = torch.rand(1, 1, 2, 5)
    with pytest.raises(ValueError, match="at least 3x3"):
        image.ssim_per_image(x, x)


def test_float32_and_uint8_inputs():
    x, y = _pair((4, 1, 16, 16), seed=1)
    ref = image.image_metrics_per_image(y, x)
    ours32 = image.image_metrics_per_image(y.float(), x.float())
    for k in ref:
        np.testing.assert_allclose(ours32[k].numpy(), ref[k].numpy(), rtol=1e-5, atol=1e-6)
    u = (x * 255).round().to(torch.uint8)
    np.testing.assert_allclose(
        image.mse_per_image(u, y).numpy(), image.mse_per_image(u.double() / 255, y).numpy()
    )


def test_perfect_reconstruction_psnr_is_capped_not_inf():
    x, _ = _pair((2, 1, 8, 8), seed=3)
    with np.errstate(divide="ignore"):
        assert math.isinf(peak_signal_noise_ratio(x[0, 0].numpy(), x[0, 0].numpy(), data_range=1))
    per = image.image_metrics_per_image(x, x)
    assert per["psnr"].tolist() == [image.PSNR_MAX, image.PSNR_MAX]
    assert abs(image.PSNR_MAX - 100.0) < 1e-9
    assert per["ssim"].tolist() == pytest.approx([1.0, 1.0])
    assert per["mse"].tolist() == [0.0, 0.0]


def test_per_class_means_and_names():
    x, y = _pair((6, 1, 8, 8), seed=4)
    per = image.image_metrics_per_image(y, x)
    labels = torch.tensor([2, 0, 2, 0, 2, 0])
    classes = image.per_class(per, labels, class_names=("zero", "one", "two"))
    assert list(classes) == ["zero", "two"]
    assert classes["two"]["mse"] == pytest.approx(float(per["mse"][[0, 2, 4]].mean()))
    assert classes["zero"]["ssim"] == pytest.approx(float(per["ssim"][[1, 3, 5]].mean()))
    assert list(image.per_class(per, labels)) == ["0", "2"]


def test_shape_mismatch_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        image.mse_per_image(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 9))
