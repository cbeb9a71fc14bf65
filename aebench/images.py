"""Image grids for run directories, made with torchvision's grid utilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torchvision.utils import make_grid, save_image

from aebench import files

GENERATED_TILE = 96
"""Smallest tile height of ``aebench generate``'s grids (MNIST: 28 px shown at 4x, 112 px)."""


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images unchanged; floats in [0, 1] -> ``round(255 x)`` clamped, as uint8."""
    if images.dtype == torch.uint8:
        return images
    return images.detach().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8, min_tile: int = 0) -> None:
    """Save images in [0, 1] as one PNG grid (atomically). ``min_tile``: enlarge smaller
    images by an integer factor (nearest neighbour: pixels stay sharp) to at least this
    many pixels high, so that 28-pixel digits are readable on a screen."""
    images = images.detach().float().cpu().clamp(0, 1)
    if min_tile and images.shape[-2] < min_tile:
        factor = -(-min_tile // images.shape[-2])
        images = torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest")
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=1.0)
    files.save_with(path, lambda p: save_image(grid, str(p), format="png"))


def save_recon_grid(originals: torch.Tensor, recons: torch.Tensor, path: Path) -> None:
    """Originals in the top row, their reconstructions below."""
    save_grid(torch.cat([originals.cpu(), recons.cpu()]), path, nrow=len(originals))


@torch.no_grad()
def interpolation_pair(labels: torch.Tensor | None) -> tuple[int, int]:
    """Indices of two test images to interpolate between: the first two of different classes."""
    if labels is None or len(labels) < 2:
        return 0, min(1, len(labels) - 1 if labels is not None else 1)
    first = int(labels[0])
    other = (labels != first).nonzero()
    return 0, int(other[0]) if len(other) else 1


@torch.no_grad()
def save_interpolation(
    model: Any, test: Any, path: Path, device: torch.device, steps: int = 10
) -> None:
    """Decode a straight line between the latent means of two test images of different classes."""
    i, j = interpolation_pair(test.labels)
    x = test.batch(torch.tensor([i, j]), device)
    z = model.encode(x).mean
    t = torch.linspace(0, 1, steps, device=z.device).unsqueeze(1)
    line = (1 - t) * z[0] + t * z[1]
    decoded = model.decode(line).clamp(0, 1).cpu()
    save_grid(torch.cat([x[:1].cpu(), decoded, x[1:].cpu()]), path, nrow=steps + 2)


@torch.no_grad()
def save_run_images(
    model: Any, test: Any, writer: Any, device: torch.device, seed: int, n_recon: int = 10
) -> None:
    """A run's images: test reconstructions, 64 samples (generator seeded with ``seed``)
    and a latent interpolation, through the run store's ``writer``."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = test.batch(slice(0, n_recon), device)
    save_recon_grid(x, model.reconstruct(x).clamp(0, 1), writer.image_path("recon"))
    save_grid(model.sample(64, generator=gen).clamp(0, 1), writer.image_path("samples"), nrow=8)
    save_interpolation(model, test, writer.image_path("interp"), device)
