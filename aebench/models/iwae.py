"""The importance weighted autoencoder, as ``iwae-mlp`` and ``iwae-cnn``.

Reference: Y. Burda, R. Grosse and R. Salakhutdinov (2016), "Importance Weighted
Autoencoders", ICLR 2016.

The model is the VAE's (Gaussian encoder, N(0, I) prior, Bernoulli or Gaussian
decoder); only the objective differs. For ``k`` draws ``z_i ~ q(z|x)`` with
importance weights ``w_i = p(x|z_i) p(z_i) / q(z_i|x)``, each image's loss is the
negative k-sample bound

    L_k(x) = -log (1/k sum_i w_i)

(the paper's k-sample bound L_k), whose gradient weights each draw's gradient by its
normalised weight. ``k = 1`` is the VAE's single-sample ELBO; the bound tightens
as ``k`` grows. ``k`` defaults to 5, the middle of the paper's k in {1, 5, 50}
(pythae's ``number_samples`` defaults to 10).

Per-image evaluation terms (:meth:`IWAE.loss_terms`): ``iwae`` and ``total``, the
negative k-bound above (the objective, so ``bound = ("iwae",)`` and bits/dim are
the k-sample bound's); ``recon``, -log p(x|z) for the first of the k draws (one
posterior draw, as the VAE reports it, so reconstruction columns compare across
families); ``reg``, the analytic KL(q(z|x) || N(0, I)) (rate, comparable with the
VAE's). Note that ``recon + reg`` is then the single-draw negative ELBO, not the
training objective. ``log_likelihood(x, k)`` is the VAE's, for any evaluation k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, VAEConfig, gaussian_kl
from aebench.specs import ModelSpec

DEFAULT_K = 5
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class IWAEConfig(VAEConfig):
    """:class:`VAEConfig` plus ``k``, the number of importance samples per image."""

    k: int = field(
        default=DEFAULT_K,
        metadata={
            "help": "importance samples per image in the training bound (Burda et al. 2016 "
            "train with k = 1, 5, 50; default 5)"
        },
    )

    def validate(self) -> None:
        super().validate()
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"k must be a positive integer, got {self.k!r}")


def iwae_log_weights(
    log_px_z: torch.Tensor, z: torch.Tensor, eps: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log w = log p(x|z) + log N(z; 0, I) - log q(z|x) per draw, ``(B, k)``.

    ``z = mean + exp(logvar / 2) * eps`` are the ``(B, k, d)`` draws; log q uses
    ``eps`` directly (``(z - mean)^2 / var = eps^2``)."""
    log_p = -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
    log_q = -0.5 * (eps.pow(2) + logvar.unsqueeze(1) + _LOG_2PI).sum(-1)
    return log_px_z + log_p - log_q


class IWAE(VAE):
    """A :class:`VAE` trained on the negative k-sample importance weighted bound."""

    objective_group: ClassVar[str | None] = "likelihood"
    family: ClassVar[str] = "iwae"
    regulariser: ClassVar[str] = "kl"
    objective_name: ClassVar[str] = "IWAE k-sample bound"
    bound: ClassVar[tuple[str, ...]] = ("iwae",)  # -log p(x) <= -L_k: bits/dim from it

    @property
    def k(self) -> int:
        return int(getattr(self.config, "k", DEFAULT_K))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, k = x.shape[0], self.k
        mean, logvar = self.posterior(x)
        # One draw of (B, k, d): each image's noise is contiguous, so its draws do
        # not depend on the images around it in the batch.
        eps = torch.randn((b, k, mean.shape[1]), device=mean.device, dtype=mean.dtype)
        z = mean.unsqueeze(1) + torch.exp(0.5 * logvar).unsqueeze(1) * eps
        logits = self.decoder(z.reshape(b * k, -1))
        x_rep = x.unsqueeze(1).expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])
        recon_all = self.recon_nats(logits, x_rep).reshape(b, k)
        log_w = iwae_log_weights(-recon_all, z, eps, logvar)
        bound = -(torch.logsumexp(log_w, dim=1) - math.log(k))
        kl = gaussian_kl(mean, logvar)
        return {"total": bound, "recon": recon_all[:, 0], "reg": kl, "iwae": bound}


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``iwae-mlp`` and ``iwae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"iwae-{arch}",
                "iwae",
                arch,
                IWAE,
                IWAEConfig,
                f"IWAE (Burda et al. 2016), {ARCH_SUMMARY[arch]}; VAE trained on the "
                "k-sample importance weighted bound (k=5)",
                objective_options=(("k", "k"),),
            )
        )
