"""Kernels and the maximum mean discrepancy (MMD) between latent codes and prior draws.

A helper of the MMD-regularised families: WAE-MMD (Tolstikhin, Bousquet, Gelly &
Schölkopf 2018, "Wasserstein Auto-Encoders") and InfoVAE-MMD (Zhao, Song & Ermon
2019, "InfoVAE: Balancing Learning and Inference in Variational Autoencoders").
The definitions follow those papers and pythae 0.1.2's ``WAE_MMD`` / ``INFOVAE_MMD``
(written here independently):

* ``imq``: the inverse multiquadratic kernel summed over scales ``s``,
  ``k(a, b) = sum_s C_s / (C_s + ||a - b||²)`` with ``C_s = 2 · d · σ² · s``
  (``d`` the latent size, ``σ`` the bandwidth, the prior's standard deviation),
  over :data:`DEFAULT_SCALES` as in the WAE authors' code and pythae;
* ``rbf``: the Gaussian kernel ``k(a, b) = exp(-||a - b||² / C)``, ``C = 2 · d · σ²``
  (one scale, pythae's convention).

:func:`mmd` is the unbiased U-statistic estimate of MMD²(Q, P) between ``n`` codes
and ``m`` prior draws: within-sample kernel sums skip the diagonal and divide by
``n(n-1)`` (``m(m-1)``), the cross term divides by ``n·m``. It is a batch-level
quantity (it couples the images of a batch), near 0 of either sign when both
samples come from one distribution.

:class:`MMDKernelConfig` declares the kernel options once, so ``-o kernel=rbf``
means the same thing for every family that uses them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from aebench.errors import ConfigError
from aebench.models.base import ModelConfig
from aebench.specs import MetricColumn

KERNELS: tuple[str, ...] = ("imq", "rbf")
DEFAULT_SCALES: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
"""Scales of the multi-scale IMQ kernel (WAE authors' code, pythae's default)."""
EVAL_PRIOR_SEED = 0
"""Seed of the prior draws compared with the codes in eval mode (reproducible
validation losses and ``batch_terms``); training draws from the global RNG."""

MMD_COLUMN = MetricColumn(
    "test_mmd",
    "MMD²",
    "",
    None,
    "Unbiased MMD² estimate between a batch's latent codes and as many N(0, I) draws, "
    "with the model's kernel: the penalty of WAE-MMD and InfoVAE-MMD (a kernel "
    "discrepancy, not a log-density; may dip slightly below zero)",
)


@dataclass
class MMDKernelConfig(ModelConfig):
    """:class:`ModelConfig` plus the kernel of an MMD penalty: ``kernel`` (``imq`` or
    ``rbf``) and ``kernel_bandwidth`` (σ in the constants above; 1 matches the N(0, I)
    prior). Families subclass it (and may change the defaults, not the meaning)."""

    kernel: str = field(
        default="imq",
        metadata={"help": "MMD kernel: imq (multi-scale inverse multiquadratic) or rbf (Gaussian)"},
    )
    kernel_bandwidth: float = field(
        default=1.0,
        metadata={"help": "kernel bandwidth σ: C = 2·latent_dim·σ² (1 for the N(0, I) prior)"},
    )

    def validate(self) -> None:
        super().validate()
        if self.kernel not in KERNELS:
            raise ConfigError(f"kernel must be one of {', '.join(KERNELS)}, got {self.kernel!r}")
        require_weight("kernel_bandwidth", self.kernel_bandwidth, positive=True)


def require_weight(name: str, value: object, positive: bool = False) -> None:
    """A :class:`ConfigError` unless ``value`` is a finite number ``>= 0`` (``> 0``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and isinstance(value, int | float):
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i - b_j||²`` as an ``(len(a), len(b))`` matrix.

    Written out rather than ``torch.cdist``, whose gradient is NaN at distance 0
    (the diagonal of ``k(z, z)``)."""
    sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2.0 * a @ b.T
    return sq.clamp_min(0.0)


def imq_kernel(
    a: torch.Tensor,
    b: torch.Tensor,
    bandwidth: float = 1.0,
    scales: Sequence[float] = DEFAULT_SCALES,
) -> torch.Tensor:
    """Multi-scale inverse multiquadratic kernel matrix ``(len(a), len(b))``."""
    sq = squared_distances(a, b)
    base = 2.0 * a.shape[1] * bandwidth**2
    out = torch.zeros_like(sq)
    for s in scales:
        out = out + (base * s) / (base * s + sq)
    return out


def rbf_kernel(a: torch.Tensor, b: torch.Tensor, bandwidth: float = 1.0) -> torch.Tensor:
    """Gaussian kernel matrix ``exp(-||a - b||² / (2 · d · σ²))``, ``(len(a), len(b))``."""
    return torch.exp(-squared_distances(a, b) / (2.0 * a.shape[1] * bandwidth**2))


def kernel_matrix(
    a: torch.Tensor,
    b: torch.Tensor,
    kernel: str = "imq",
    bandwidth: float = 1.0,
    scales: Sequence[float] = DEFAULT_SCALES,
) -> torch.Tensor:
    """The ``kernel`` (one of :data:`KERNELS`) matrix between the rows of ``a`` and ``b``."""
    if kernel == "imq":
        return imq_kernel(a, b, bandwidth, scales)
    if kernel == "rbf":
        return rbf_kernel(a, b, bandwidth)
    raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")


def mmd(
    z: torch.Tensor,
    z_prior: torch.Tensor,
    kernel: str = "imq",
    bandwidth: float = 1.0,
    scales: Sequence[float] = DEFAULT_SCALES,
) -> torch.Tensor:
    """Unbiased estimate of MMD² between samples ``z`` ``(n, d)`` and ``z_prior`` ``(m, d)``.

    A scalar; needs at least two rows on each side (see :func:`batch_mmd` for a
    version that gives 0 for a batch of one)."""
    n, m = z.shape[0], z_prior.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples on each side, got {n} and {m}")
    k_zz = kernel_matrix(z, z, kernel, bandwidth, scales)
    k_pp = kernel_matrix(z_prior, z_prior, kernel, bandwidth, scales)
    k_zp = kernel_matrix(z, z_prior, kernel, bandwidth, scales)
    within_z = (k_zz.sum() - k_zz.diagonal().sum()) / (n * (n - 1))
    within_p = (k_pp.sum() - k_pp.diagonal().sum()) / (m * (m - 1))
    return within_z + within_p - 2.0 * k_zp.mean()


def prior_draws(like: torch.Tensor, training: bool) -> torch.Tensor:
    """As many N(0, I) draws as rows of ``like`` (its shape, dtype and device): from the
    global RNG when ``training``, else from a generator seeded with :data:`EVAL_PRIOR_SEED`
    (drawn on the CPU, then moved, so every device gets the same draws)."""
    if training:
        return torch.randn_like(like)
    gen = torch.Generator().manual_seed(EVAL_PRIOR_SEED)
    return torch.randn(like.shape, generator=gen, dtype=like.dtype).to(like.device)


def batch_mmd(
    z: torch.Tensor,
    training: bool,
    kernel: str = "imq",
    bandwidth: float = 1.0,
    scales: Sequence[float] = DEFAULT_SCALES,
) -> torch.Tensor:
    """:func:`mmd` between the codes ``z`` and as many :func:`prior_draws`; 0 (still
    attached to ``z``'s graph) for a batch of one, where the estimate is undefined."""
    if z.shape[0] < 2:
        return z.sum() * 0.0
    return mmd(z, prior_draws(z, training), kernel, bandwidth, scales)
