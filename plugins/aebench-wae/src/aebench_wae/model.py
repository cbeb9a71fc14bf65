"""The Wasserstein autoencoder with an MMD penalty (WAE-MMD), MLP and CNN bodies.

Tolstikhin, Bousquet, Gelly & Schölkopf, "Wasserstein Auto-Encoders", ICLR 2018.
A deterministic encoder maps x to a code z; instead of a per-image KL, the
*aggregate* distribution of codes is pulled towards the prior N(0, I) by an MMD
penalty (:mod:`aebench_wae.mmd`) between each batch of codes and as many prior
draws. Samples decode draws of that same prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.models.base import AutoEncoder, Encoding, ModelConfig
from aebench.models.nets import build_bodies
from aebench_wae.mmd import mmd

EVAL_PRIOR_SEED = 0
"""Seed of the prior draws ``loss_terms`` compares codes with in eval mode."""


@dataclass
class WAEConfig(ModelConfig):
    """:class:`aebench.ModelConfig` plus the MMD weight λ (``mmd_weight``).

    λ = 10 is the paper's choice for MNIST with the MMD penalty.
    """

    mmd_weight: float = field(
        default=10.0, metadata={"help": "weight λ of the MMD penalty (10 in the paper)"}
    )

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.mmd_weight, int | float) or not self.mmd_weight >= 0:
            raise ConfigError(f"mmd_weight must be a number >= 0, got {self.mmd_weight!r}")


class WAE(AutoEncoder):
    """WAE-MMD on an MLP or CNN body (``arch``), built from :mod:`aebench.models.nets`.

    ``loss_terms(x)`` returns per image:

    * ``recon``: -log p(x|z) in nats at the deterministic code z = encoder(x);
    * ``reg``: the batch's MMD² estimate between the codes and as many draws
      from N(0, I), *broadcast to every image of the batch*: it is a property
      of the batch, not of an image, so each image carries the whole value and
      ``reg.mean()`` is exactly the batch penalty. It is a kernel discrepancy,
      not a log-density (dimensionless, and may dip slightly below zero);
      batches of one image get ``reg = 0``, since MMD needs two codes;
    * ``total``: ``recon + mmd_weight * reg``, so ``total.mean()`` is the
      paper's objective with the reconstruction cost measured in nats.

    In training mode the prior draws come from the global torch RNG; in eval
    mode from a fixed seed, so validation losses are reproducible.
    """

    family: ClassVar[str] = "wae"
    regulariser: ClassVar[str] = "mmd"

    def __init__(
        self, config: WAEConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape)
        self.arch = arch
        self.encoder, self.decoder = build_bodies(arch, self.input_shape, config, config.latent_dim)

    @property
    def mmd_weight(self) -> float:
        return float(getattr(self.config, "mmd_weight", 10.0))

    def encode(self, x: torch.Tensor) -> Encoding:
        return Encoding(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def prior_draws(self, like: torch.Tensor) -> torch.Tensor:
        """As many N(0, I) draws as codes in ``like`` (fixed seed in eval mode)."""
        if self.training:
            return torch.randn_like(like)
        gen = torch.Generator().manual_seed(EVAL_PRIOR_SEED)
        return torch.randn(like.shape, generator=gen, dtype=like.dtype).to(like.device)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        recon = self.recon_nats(self.decoder(z), x)
        b = x.shape[0]
        penalty = mmd(z, self.prior_draws(z)) if b > 1 else z.sum() * 0.0
        reg = penalty.repeat(b)
        return {"total": recon + self.mmd_weight * reg, "recon": recon, "reg": reg}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # Draw on the generator's own device, then move: a CPU generator also
        # works for a model on the GPU.
        where = generator.device if generator is not None else self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=where)
        return self.decode(z.to(self.device))

    @property
    def prior_description(self) -> str:
        return "N(0, I) (the WAE's fixed prior, matched by the MMD penalty)"
