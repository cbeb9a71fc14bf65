"""The variational autoencoder (Kingma & Welling, 2014), as ``vae-mlp`` and ``vae-cnn``.

Gaussian encoder q(z|x) = N(mean, diag(exp(logvar))), standard normal prior,
Bernoulli or Gaussian decoder (``ModelConfig.likelihood``). The loss per image
is ``recon + beta * KL`` with the analytic KL; ``beta`` is 1 here and comes from
the config when it has one (:mod:`aebench.models.beta_vae` reuses this class).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from aebench.hookspecs import hookimpl
from aebench.models.base import AutoEncoder, Encoding, ModelConfig
from aebench.models.nets import ARCH_SUMMARY, build_bodies, make_spec
from aebench.specs import ModelSpec

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class VAEConfig(ModelConfig):
    """A VAE needs nothing beyond :class:`ModelConfig`; β-VAE subclasses it to add ``beta``."""


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per row, in nats (summed over latent dims)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def gaussian_log_density(
    z: torch.Tensor, mean: torch.Tensor | None = None, logvar: torch.Tensor | None = None
) -> torch.Tensor:
    """log N(z; mean, diag(exp(logvar))) summed over the last axis (standard normal if None)."""
    if mean is None or logvar is None:
        return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
    return -0.5 * ((z - mean).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


class VAE(AutoEncoder):
    """Gaussian-encoder VAE on an MLP or CNN body (``arch``).

    The encoder outputs ``2 * latent_dim`` features, split into mean and
    log-variance. ``loss_terms`` returns ``recon`` (-log p(x|z) for one
    reparameterised draw), ``reg`` (the analytic KL to N(0, I)) and
    ``total = recon + beta * reg``.
    """

    objective_group: ClassVar[str | None] = "likelihood"
    family: ClassVar[str] = "vae"
    regulariser: ClassVar[str] = "kl"
    objective_name: ClassVar[str] = "ELBO"
    bound: ClassVar[tuple[str, ...]] = ("recon", "reg")  # -ELBO = recon + KL
    latent_kind: ClassVar[str] = "gaussian"

    def __init__(
        self, config: ModelConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape)
        self.arch = arch
        self.encoder, self.decoder = build_bodies(
            arch, self.input_shape, config, 2 * config.latent_dim
        )

    @property
    def beta(self) -> float:
        """Weight of the KL term in ``total``: the config's ``beta``, else 1."""
        return float(getattr(self.config, "beta", 1.0))

    def encode(self, x: torch.Tensor) -> Encoding:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return Encoding(mean, logvar)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the diagonal Gaussian q(z|x) that ``encode`` returns."""
        enc = self.encode(x)
        mean, logvar = enc.mean, enc.logvar
        if logvar is None:
            raise TypeError(f"{type(self).__name__}.encode() must return a log-variance")
        return mean, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        recon = self.recon_nats(self.decoder(z), x)
        kl = gaussian_kl(mean, logvar)
        return {"total": recon + self.beta * kl, "recon": recon, "reg": kl}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # Draw on the generator's device, so a CPU-seeded generator gives the same
        # latents whichever device the model is on.
        where = generator.device if generator is not None else self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=where)
        return self.decode(z.to(self.device))

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, k: int = 100, max_batch: int = 4096
    ) -> torch.Tensor | None:
        """IWAE bound ``log 1/k sum_i p(x, z_i) / q(z_i | x)``, z_i ~ q(z|x), per image (nats).

        Uses the full likelihood density (the same one ``recon`` is the negative
        of) and the model's own prior ``log_prior`` (N(0, I) unless a family such
        as the VampPrior VAE overrides it). Draws are decoded ``max_batch`` images at
        a time to bound memory.
        k = 1 is an unbiased estimate of the ELBO; the bound tightens as k grows.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        b = x.shape[0]
        mean, logvar = self.posterior(x)
        std = torch.exp(0.5 * logvar)
        chunk = max(1, max_batch // max(b, 1))
        log_w: list[torch.Tensor] = []
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            z = mean + std * torch.randn((m, *mean.shape), device=mean.device, dtype=mean.dtype)
            logits = self.decoder(z.reshape(m * b, -1))
            x_rep = x.unsqueeze(0).expand(m, *x.shape).reshape(m * b, *x.shape[1:])
            log_px_z = -self.recon_nats(logits, x_rep).reshape(m, b)
            log_p = self.log_prior(z.reshape(m * b, -1)).reshape(m, b)  # the model's own prior
            log_w.append(log_px_z + log_p - gaussian_log_density(z, mean, logvar))
        return torch.logsumexp(torch.cat(log_w, 0), dim=0) - math.log(k)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``vae-mlp`` and ``vae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"vae-{arch}",
                "vae",
                arch,
                VAE,
                VAEConfig,
                f"VAE (Kingma & Welling 2014), {ARCH_SUMMARY[arch]}; Gaussian encoder, "
                "N(0, I) prior, "
                "analytic KL; IWAE log-likelihood",
            )
        )
