"""Procedural dSprites-style shapes, rendered in memory with torch.

Every image holds one white shape on black. Its generative factors are drawn
independently and uniformly (continuous, unlike dSprites' discrete grid):

* ``shape``: square, ellipse or heart (the class label; classes are balanced);
* ``scale``: 0.5 to 1.0;
* ``rotation``: 0 to 2π radians;
* ``x``, ``y``: the centre, 0.25 to 0.75 of the frame (so that a shape at
  full scale and any rotation stays inside the image).

Edges are anti-aliased by 3×3 supersampling, so pixels take 10 grey levels.
The same ``(n, size, seed)`` always gives the same images, on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CLASS_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
FACTOR_NAMES: tuple[str, ...] = ("scale", "rotation", "x", "y")

SCALE_RANGE = (0.5, 1.0)
ROTATION_RANGE = (0.0, 2 * math.pi)
POSITION_RANGE = (0.25, 0.75)
# Radius (fraction of the frame) of the circle enclosing a shape at scale 1.
# Every shape is drawn inside the unit circle of its local coordinates.
RADIUS = 0.24
SUPERSAMPLE = 3
_CHUNK = 128


@dataclass(frozen=True)
class Shapes:
    """Generated images (uint8 ``(N, 1, size, size)``), labels and factors.

    ``factors`` is float32 ``(N, 4)``: scale, rotation, x, y (see
    :data:`FACTOR_NAMES`), for disentanglement metrics.
    """

    images: torch.Tensor
    labels: torch.Tensor
    factors: torch.Tensor


def _inside(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Which local points ``(u, v)`` (y up, unit circle) lie inside ``shape``."""
    if shape == 0:  # square, corners at radius 0.99
        return torch.maximum(u.abs(), v.abs()) <= 0.7
    if shape == 1:  # ellipse, 2:1
        return u.square() + (v / 0.5).square() <= 1.0
    # The classic heart curve (x²+y²-1)³ = x²y³ spans x ±1.14, y -1..1.25;
    # shift and shrink it into the unit circle.
    hx, hy = u * 1.35, v * 1.35 + 0.12
    hx2 = hx.square()
    return (hx2 + hy.square() - 1).pow(3) <= hx2 * hy.pow(3)


def render(shape: torch.Tensor, factors: torch.Tensor, size: int) -> torch.Tensor:
    """Render shapes with ``factors`` (``(N, 4)``: scale, rotation, x, y) as uint8 images."""
    n = shape.shape[0]
    fine = size * SUPERSAMPLE
    coords = (torch.arange(fine, dtype=torch.float32) + 0.5) / fine
    py, px = torch.meshgrid(coords, coords, indexing="ij")  # rows go down
    out = torch.empty(n, 1, size, size, dtype=torch.uint8)
    for k in range(len(CLASS_NAMES)):
        index = (shape == k).nonzero().flatten()
        for chunk in index.split(_CHUNK):
            scale, rot, cx, cy = (f.view(-1, 1, 1) for f in factors[chunk].unbind(1))
            radius = RADIUS * scale
            dx = (px - cx) / radius
            dy = (cy - py) / radius  # flip so that local y points up
            cos, sin = torch.cos(rot), torch.sin(rot)
            u = cos * dx + sin * dy
            v = cos * dy - sin * dx
            mask = _inside(k, u, v).unsqueeze(1).float()
            cover = torch.nn.functional.avg_pool2d(mask, SUPERSAMPLE)
            out[chunk] = cover.mul_(255).round_().to(torch.uint8)
    return out


def generate(n: int, size: int = 32, seed: int = 0) -> Shapes:
    """``n`` shape images of ``size``×``size`` pixels, deterministic in ``seed``.

    Labels are balanced: each class appears ``n // 3`` or ``n // 3 + 1`` times,
    in a shuffled order.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of images, got {n}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    g = torch.Generator().manual_seed(seed)
    k = len(CLASS_NAMES)
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    u = torch.rand(n, 4, generator=g)
    lows = torch.tensor([SCALE_RANGE[0], ROTATION_RANGE[0], POSITION_RANGE[0], POSITION_RANGE[0]])
    highs = torch.tensor([SCALE_RANGE[1], ROTATION_RANGE[1], POSITION_RANGE[1], POSITION_RANGE[1]])
    factors = lows + u * (highs - lows)
    return Shapes(render(labels, factors, size), labels.long(), factors)
