"""DIP-VAE-I and DIP-VAE-II, as ``dip-vae-i-mlp/cnn`` and ``dip-vae-ii-mlp/cnn``.

Kumar, Sattigeri & Balakrishnan, "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", ICLR 2018 (Eq. 6 and 7). A VAE whose
objective adds a penalty pulling a covariance matrix of the codes towards the
identity (disentangled, "decorrelated" inferred priors):

    penalty = λ_od · Σ_{i≠j} Cov_ij²  +  λ_d · Σ_i (Cov_ii - 1)²

* DIP-VAE-I: ``Cov = Cov_batch[μ(x)]``, the covariance of the batch's posterior means;
* DIP-VAE-II: ``Cov = Cov_batch[μ(x)] + E_batch[diag σ²(x)]``, the covariance of the
  aggregate posterior q(z) (the means' covariance plus the mean encoder variance).

The covariance is the biased batch estimate ``E[μμᵀ] - E[μ]E[μ]ᵀ``, as in
disentanglement_lib (``compute_covariance_z_mean``, ``regularize_diag_off_diag_dip``);
the objective is ``mean(recon) + mean(KL) + penalty``, its ``DIPVAE`` model's.

Defaults: ``lambda_od = 10`` and ``lambda_d = 10 · lambda_od = 100`` for DIP-VAE-I,
``lambda_d = lambda_od = 10`` for DIP-VAE-II: the paper's ratios (λ_d = 10·λ_od for
-I, λ_d = λ_od for -II), which disentanglement_lib fixes as ``lambda_d_factor`` 10
and 1, with λ_od = 10 from the middle of its sweep (1 ... 50) and its test
configuration.

The penalty couples the images of a batch, so it is no per-image term: the
per-image evaluation terms are ``recon`` (one reparameterised draw) and ``reg`` (the
analytic KL to N(0, I)), whose sum is the negative ELBO (``bound``); the penalty is
in ``objective`` and reported as the batch column ``test_dip_penalty`` (the weighted
penalty the objective adds, on the posterior means of a test batch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.hookspecs import hookimpl
from aebench.models.base import ModelConfig, StepInfo
from aebench.models.kernels import require_weight
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, VAEConfig, gaussian_kl
from aebench.specs import MetricColumn, ModelSpec

_LAMBDA_D_HELP = "λ_d, weight of the diagonal penalty (-I: 10·λ_od = 100; -II: λ_od = 10)"


@dataclass
class DIPVAEConfig(VAEConfig):
    """:class:`VAEConfig` plus the two weights of the covariance penalty (DIP-VAE-I's defaults)."""

    lambda_od: float = field(
        default=10.0,
        metadata={"help": "λ_od, weight of the off-diagonal covariance penalty (10)"},
    )
    lambda_d: float = field(
        default=100.0,
        metadata={"help": _LAMBDA_D_HELP},
    )

    def validate(self) -> None:
        super().validate()
        require_weight("lambda_od", self.lambda_od)
        require_weight("lambda_d", self.lambda_d)


@dataclass
class DIPVAEIIConfig(DIPVAEConfig):
    """DIP-VAE-II's defaults: λ_d = λ_od (the same options as DIP-VAE-I)."""

    lambda_d: float = field(
        default=10.0,
        metadata={"help": _LAMBDA_D_HELP},
    )


def covariance_of_means(mean: torch.Tensor) -> torch.Tensor:
    """Biased batch covariance ``E[μμᵀ] - E[μ]E[μ]ᵀ`` of ``mean`` ``(B, d)``: ``(d, d)``."""
    centred = mean - mean.mean(0, keepdim=True)
    return centred.T @ centred / mean.shape[0]


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """``λ_od · Σ_{i≠j} cov_ij² + λ_d · Σ_i (cov_ii - 1)²``: 0 for the identity."""
    diag = cov.diagonal()
    off = cov - torch.diag_embed(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1.0).pow(2).sum()


class DIPVAE(VAE):
    """DIP-VAE-I on an MLP or CNN body: a :class:`VAE` whose objective adds the
    covariance penalty of the batch's posterior means (:meth:`covariance`)."""

    objective_group: ClassVar[str | None] = "penalised"
    family: ClassVar[str] = "dip-vae-i"
    regulariser: ClassVar[str] = "kl"
    objective_name: ClassVar[str] = "ELBO + DIP-I covariance penalty"
    bound: ClassVar[tuple[str, ...]] = ("recon", "reg")  # the unpenalised -ELBO
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (
        MetricColumn(
            "test_dip_penalty",
            "DIP penalty",
            "",
            None,
            "The DIP-VAE covariance penalty λ_od·Σ_{i≠j}C_ij² + λ_d·Σ_i(C_ii-1)² of a test "
            "batch, as the objective adds it: C the covariance of the posterior means "
            "(DIP-VAE-I) or of the aggregate posterior, plus the mean encoder variance "
            "(DIP-VAE-II)",
        ),
    )

    @property
    def lambda_od(self) -> float:
        return float(getattr(self.config, "lambda_od", 10.0))

    @property
    def lambda_d(self) -> float:
        return float(getattr(self.config, "lambda_d", 100.0))

    def covariance(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """The covariance the penalty pulls towards I: DIP-VAE-I, that of the means."""
        return covariance_of_means(mean)

    def penalty(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """The weighted covariance penalty of a batch's posterior (a scalar)."""
        return dip_penalty(self.covariance(mean, logvar), self.lambda_od, self.lambda_d)

    def _draw(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, logvar, recon, KL) for one reparameterised draw per image."""
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return mean, logvar, self.recon_nats(self.decoder(z), x), gaussian_kl(mean, logvar)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        _, _, recon, kl = self._draw(x)
        return {"recon": recon, "reg": kl}

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mean, logvar, recon, kl = self._draw(x)
        penalty = self.penalty(mean, logvar)
        loss = recon.mean() + kl.mean() + penalty
        return loss, {"recon": recon.mean(), "reg": kl.mean(), "dip_penalty": penalty}

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, logvar = self.posterior(x)
        return {"dip_penalty": self.penalty(mean, logvar)}


class DIPVAEII(DIPVAE):
    """DIP-VAE-II: the penalty on the aggregate posterior's covariance,
    ``Cov[μ] + E[diag σ²]``."""

    objective_group: ClassVar[str | None] = "penalised"
    family: ClassVar[str] = "dip-vae-ii"
    objective_name: ClassVar[str] = "ELBO + DIP-II covariance penalty"

    @property
    def lambda_d(self) -> float:
        return float(getattr(self.config, "lambda_d", 10.0))

    def covariance(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return covariance_of_means(mean) + torch.diag_embed(logvar.exp().mean(0))


_VARIANTS: tuple[tuple[str, type[DIPVAE], type[ModelConfig], str], ...] = (
    ("dip-vae-i", DIPVAE, DIPVAEConfig, "Cov[μ] (λ_od 10, λ_d 100)"),
    ("dip-vae-ii", DIPVAEII, DIPVAEIIConfig, "Cov[μ] + E[diag σ²] (λ_od = λ_d = 10)"),
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``dip-vae-i-mlp/cnn`` and ``dip-vae-ii-mlp/cnn``."""
    for family, cls, config_cls, what in _VARIANTS:
        label = "DIP-VAE-I" if cls is DIPVAE else "DIP-VAE-II"
        for arch in ("mlp", "cnn"):
            register(
                make_spec(
                    f"{family}-{arch}",
                    family,
                    arch,
                    cls,
                    config_cls,
                    f"{label} (Kumar et al. 2018), {ARCH_SUMMARY[arch]}; VAE + batch "
                    f"covariance penalty towards I on {what}",
                    objective_options=(("lambda_od", "λ_od"), ("lambda_d", "λ_d")),
                )
            )
