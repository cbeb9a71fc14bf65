"""InfoVAE with the MMD divergence (InfoVAE-MMD), as ``info-vae-mlp`` and ``info-vae-cnn``.

Zhao, Song & Ermon, "InfoVAE: Balancing Learning and Inference in Variational
Autoencoders", AAAI 2019 (arXiv 1706.02262). The objective to minimise, per batch:

    mean(recon) + (1 - α) · mean(KL(q(z|x) || p(z))) + (α + λ - 1) · MMD²(q(z), p(z))

``recon`` is -log p(x|z) for one reparameterised draw z ~ q(z|x) per image, the KL
is analytic and MMD² (:func:`aebench.models.kernels.mmd`) compares the batch's
draws z with as many N(0, I) draws, as pythae 0.1.2's ``INFOVAE_MMD`` does.

Defaults (the paper's): ``alpha = 0`` and ``lbd = 1000`` (λ; ``lambda`` is a Python
keyword, ``lbd`` is pythae's name), the setting of the paper's experiments, so the
objective is ELBO + 999·MMD²; and the Gaussian (``rbf``) kernel the paper uses,
with pythae's bandwidth convention ``C = 2·d·σ²`` (``kernel_bandwidth`` σ = 1).
pythae's own defaults differ: ``alpha = 0`` with ``lbd = 1e-3`` puts a *negative*
weight (α + λ - 1 = -0.999) on the MMD, which this module refuses (both weights must
be >= 0), and its kernel is the multi-scale ``imq`` (``-o kernel=imq``).

The MMD couples the images of a batch: the per-image evaluation terms are ``recon``
and ``reg`` (the KL), whose sum is the negative ELBO under N(0, I) (``bound``); the
MMD is in ``objective`` and reported as the batch column ``test_mmd``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import StepInfo
from aebench.models.kernels import MMD_COLUMN, MMDKernelConfig, batch_mmd, require_weight
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, gaussian_kl
from aebench.specs import MetricColumn, ModelSpec


@dataclass
class InfoVAEConfig(MMDKernelConfig):
    """:class:`MMDKernelConfig` plus InfoVAE's α and λ (``lbd``); the Gaussian kernel."""

    kernel: str = field(
        default="rbf",
        metadata={"help": "MMD kernel: imq (multi-scale inverse multiquadratic) or rbf (Gaussian)"},
    )
    alpha: float = field(
        default=0.0,
        metadata={"help": "α: the KL weighs 1-α, the MMD α+λ-1 (0, the paper's)"},
    )
    lbd: float = field(
        default=1000.0,
        metadata={"help": "λ (pythae's lbd): the MMD weighs α+λ-1 (1000, the paper's)"},
    )

    def validate(self) -> None:
        super().validate()
        require_weight("lbd", self.lbd)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float):
            raise ConfigError(f"alpha must be a number, got {self.alpha!r}")
        if not (math.isfinite(self.alpha) and self.alpha <= 1.0):
            raise ConfigError(
                f"alpha must be finite and <= 1 (the KL weighs 1 - alpha), got {self.alpha!r}"
            )
        if not self.alpha + self.lbd - 1.0 >= 0:
            raise ConfigError(
                f"alpha + lbd must be >= 1 (the MMD weighs alpha + lbd - 1 = "
                f"{self.alpha + self.lbd - 1.0:g}; a negative weight rewards a mismatch "
                "between q(z) and the prior)"
            )


class InfoVAE(VAE):
    """InfoVAE-MMD on an MLP or CNN body: a Gaussian-encoder :class:`VAE` trained on
    ``recon + (1-α)·KL + (α+λ-1)·MMD²``."""

    objective_group: ClassVar[str | None] = "penalised"
    family: ClassVar[str] = "info-vae"
    regulariser: ClassVar[str] = "kl"
    objective_name: ClassVar[str] = "InfoVAE-MMD"
    bound: ClassVar[tuple[str, ...]] = ("recon", "reg")  # the unweighted -ELBO
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (MMD_COLUMN,)

    @property
    def alpha(self) -> float:
        return float(getattr(self.config, "alpha", 0.0))

    @property
    def lbd(self) -> float:
        return float(getattr(self.config, "lbd", 1000.0))

    @property
    def kl_weight(self) -> float:
        """1 - α."""
        return 1.0 - self.alpha

    @property
    def mmd_weight(self) -> float:
        """α + λ - 1."""
        return self.alpha + self.lbd - 1.0

    def _draw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, recon, KL) for one reparameterised draw z ~ q(z|x) per image."""
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return z, self.recon_nats(self.decoder(z), x), gaussian_kl(mean, logvar)

    def mmd(self, z: torch.Tensor) -> torch.Tensor:
        """MMD² between codes ``z`` and as many N(0, I) draws (0 for a batch of one)."""
        bandwidth = float(getattr(self.config, "kernel_bandwidth", 1.0))
        kernel = str(getattr(self.config, "kernel", "rbf"))
        return batch_mmd(z, self.training, kernel, bandwidth)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        _, recon, kl = self._draw(x)
        return {"recon": recon, "reg": kl}

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, recon, kl = self._draw(x)
        penalty = self.mmd(z)
        loss = recon.mean() + self.kl_weight * kl.mean() + self.mmd_weight * penalty
        return loss, {"recon": recon.mean(), "reg": kl.mean(), "mmd": penalty}

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z, _, _ = self._draw(x)
        return {"mmd": self.mmd(z)}


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``info-vae-mlp`` and ``info-vae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"info-vae-{arch}",
                "info-vae",
                arch,
                InfoVAE,
                InfoVAEConfig,
                f"InfoVAE-MMD (Zhao et al. 2019), {ARCH_SUMMARY[arch]}; recon + (1-α)·KL + "
                "(α+λ-1)·MMD² to N(0, I) (α 0, λ 1000, Gaussian kernel)",
                objective_options=(
                    ("alpha", "α"),
                    ("lbd", "λ"),
                    ("kernel", "kernel"),
                    ("kernel_bandwidth", "σ"),
                ),
            )
        )
