"""Network bodies shared by every family: MLP and CNN encoders and decoders.

A family is "an encoder, a decoder and a loss"; swapping MLP for CNN is a swap
of these two modules, never a new model class. Third-party plugins reuse them::

    from aebench.models.nets import build_decoder, build_encoder

    encoder = build_encoder("cnn", (1, 28, 28), None, out_dim=2 * latent_dim)
    decoder = build_decoder("cnn", (1, 28, 28), None, latent_dim=latent_dim)

* ``build_encoder``: ``(B, C, H, W)`` images -> ``(B, out_dim)`` features.
* ``build_decoder``: ``(B, latent_dim)`` latents -> ``(B, C, H, W)`` *logits*
  (pre-sigmoid), exactly the input shape for any ``(C, H, W)``.

Architectures (``hidden_dims=None`` keeps the defaults):

* ``mlp``: flatten -> 512 -> 256 -> out, ReLU; the decoder mirrors it.
  ``hidden_dims`` lists the hidden widths, encoder order (any length >= 1).
* ``cnn``: Conv(c1, 3x3, stride 2, pad 1) -> Conv(c2, 3x3, stride 2, pad 1) ->
  flatten -> dense -> out, ReLU; ``hidden_dims = (c1, c2, dense)``, default
  ``(32, 64, 128)``. The decoder mirrors it with transposed convolutions whose
  ``output_padding`` is chosen per layer and per axis from the encoder's
  spatial sizes, so odd sizes (1x30x30, 3x17x23, 1x8x8) round-trip exactly
  without cropping.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

from torch import nn

from aebench.errors import ConfigError
from aebench.specs import ModelSpec

ARCHS: tuple[str, ...] = ("mlp", "cnn")
DEFAULT_HIDDEN: dict[str, tuple[int, ...]] = {"mlp": (512, 256), "cnn": (32, 64, 128)}
ARCH_SUMMARY: dict[str, str] = {"mlp": "MLP 512-256", "cnn": "CNN conv32-conv64-dense128"}

# The CNN's convolutions: 3x3 kernels, stride 2, padding 1.
KERNEL, STRIDE, PADDING = 3, 2, 1


def hidden_dims_for(arch: str, hidden_dims: tuple[int, ...] | None) -> tuple[int, ...]:
    """The hidden sizes ``arch`` uses: the defaults for ``None``, else validated ``hidden_dims``."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if hidden_dims is None:
        return DEFAULT_HIDDEN[arch]
    dims = tuple(int(h) for h in hidden_dims)
    if not dims or any(h < 1 for h in dims):
        raise ConfigError(f"hidden_dims must be positive integers, got {hidden_dims!r}")
    if arch == "cnn" and len(dims) != 3:
        raise ConfigError(
            f"cnn hidden_dims must be (conv1_channels, conv2_channels, dense_width), "
            f"got {hidden_dims!r}"
        )
    return dims


def conv_output_size(
    size: int, kernel: int = KERNEL, stride: int = STRIDE, padding: int = PADDING
) -> int:
    """Spatial size after a ``Conv2d`` along one axis."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ConfigError(f"input size {size} is too small for a {kernel}x{kernel} convolution")
    return out


def transpose_output_padding(
    in_size: int, target: int, kernel: int = KERNEL, stride: int = STRIDE, padding: int = PADDING
) -> int:
    """``output_padding`` that makes a ``ConvTranspose2d`` map ``in_size`` to ``target``.

    A transposed convolution gives ``(in - 1) * stride - 2 * padding + kernel
    + output_padding``; the padding must lie in ``[0, stride)``, which holds
    whenever ``in_size`` is what the matching convolution produced from ``target``.
    """
    base = (in_size - 1) * stride - 2 * padding + kernel
    pad = target - base
    if not 0 <= pad < stride:
        raise ValueError(
            f"no output_padding maps size {in_size} to {target} "
            f"(kernel {kernel}, stride {stride}, padding {padding})"
        )
    return pad


def _check_shape(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ConfigError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape!r}")
    return shape


def cnn_spatial_sizes(input_shape: tuple[int, int, int]) -> list[tuple[int, int]]:
    """(H, W) at the input and after each of the two encoder convolutions."""
    _, h, w = _check_shape(input_shape)
    sizes = [(h, w)]
    for _ in range(2):
        h, w = conv_output_size(h), conv_output_size(w)
        sizes.append((h, w))
    return sizes


def _mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers through ``widths`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def build_encoder(
    arch: str,
    input_shape: tuple[int, int, int],
    hidden_dims: tuple[int, ...] | None,
    out_dim: int,
) -> nn.Module:
    """Encoder body: ``(B, C, H, W)`` -> ``(B, out_dim)`` (no activation on the output)."""
    dims = hidden_dims_for(arch, hidden_dims)
    c, h, w = _check_shape(input_shape)
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), _mlp([c * h * w, *dims, int(out_dim)]))
    c1, c2, dense = dims
    (h2, w2) = cnn_spatial_sizes(input_shape)[-1]
    return nn.Sequential(
        nn.Conv2d(c, c1, KERNEL, STRIDE, PADDING),
        nn.ReLU(),
        nn.Conv2d(c1, c2, KERNEL, STRIDE, PADDING),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c2 * h2 * w2, dense),
        nn.ReLU(),
        nn.Linear(dense, int(out_dim)),
    )


def build_decoder(
    arch: str,
    input_shape: tuple[int, int, int],
    hidden_dims: tuple[int, ...] | None,
    latent_dim: int,
) -> nn.Module:
    """Decoder body: ``(B, latent_dim)`` -> logits ``(B, C, H, W)``, mirroring the encoder."""
    dims = hidden_dims_for(arch, hidden_dims)
    c, h, w = _check_shape(input_shape)
    if arch == "mlp":
        return nn.Sequential(
            _mlp([int(latent_dim), *reversed(dims), c * h * w]), nn.Unflatten(1, (c, h, w))
        )
    c1, c2, dense = dims
    (h0, w0), (h1, w1), (h2, w2) = cnn_spatial_sizes(input_shape)
    pad1 = (transpose_output_padding(h2, h1), transpose_output_padding(w2, w1))
    pad0 = (transpose_output_padding(h1, h0), transpose_output_padding(w1, w0))
    return nn.Sequential(
        nn.Linear(int(latent_dim), dense),
        nn.ReLU(),
        nn.Linear(dense, c2 * h2 * w2),
        nn.ReLU(),
        nn.Unflatten(1, (c2, h2, w2)),
        nn.ConvTranspose2d(c2, c1, KERNEL, STRIDE, PADDING, output_padding=pad1),
        nn.ReLU(),
        nn.ConvTranspose2d(c1, c, KERNEL, STRIDE, PADDING, output_padding=pad0),
    )


def build_bodies(
    arch: str, input_shape: tuple[int, int, int], config: Any, encoder_out: int
) -> tuple[nn.Module, nn.Module]:
    """Encoder (to ``encoder_out`` features) and decoder (from ``config.latent_dim``).

    ``config.hidden_dims`` is resolved in place to the sizes actually used (the
    architecture's defaults when it was None), so a run records what it built.
    """
    config.hidden_dims = hidden_dims_for(arch, config.hidden_dims)
    encoder = build_encoder(arch, input_shape, config.hidden_dims, encoder_out)
    decoder = build_decoder(arch, input_shape, config.hidden_dims, config.latent_dim)
    return encoder, decoder


def make_spec(
    name: str,
    family: str,
    arch: str,
    cls: Callable[..., Any],
    config_cls: type,
    what: str,
    objective_options: tuple[tuple[str, str], ...] = (),
) -> ModelSpec:
    """A :class:`ModelSpec` whose factory builds ``cls(config, input_shape, arch=arch)``."""
    return ModelSpec(
        name=name,
        family=family,
        arch=arch,
        config_cls=config_cls,
        factory=functools.partial(cls, arch=arch),
        description=what,
        objective_options=objective_options,
    )
