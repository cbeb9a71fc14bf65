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
from aebench.models.base import AutoEncoder, Encoding, ModelConfig, StepInfo
from aebench.models.nets import build_bodies
from aebench.specs import MetricColumn
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

    The objective couples the images of a batch, so the model splits it as the
    contract asks:

    * ``loss_terms(x)``, per image: ``recon``, -log p(x|z) in nats at the
      deterministic code z = encoder(x). Nothing else is per image.
    * ``batch_terms(x)``: ``mmd``, the batch's MMD² estimate between the codes
      and as many draws from N(0, I), a kernel discrepancy, not a log-density
      (dimensionless, and may dip slightly below zero); declared as the
      ``test_mmd`` column, so aebench measures it at one recorded batch size.
    * ``objective(x)``: ``mean(recon) + mmd_weight * mmd``, the paper's objective
      with the reconstruction cost in nats (batches of one image: MMD is 0,
      since it needs two codes).

    In training mode the prior draws come from the global torch RNG; in eval
    mode from a fixed seed, so validation losses are reproducible.
    """

    family: ClassVar[str] = "wae"
    regulariser: ClassVar[str] = "mmd"
    objective_name: ClassVar[str] = "WAE-MMD"
    latent_kind: ClassVar[str] = "deterministic"
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (
        MetricColumn(
            "test_mmd",
            "MMD²",
            "",
            None,
            "MMD² (inverse multiquadratic kernels) between a batch's codes and as many "
            "N(0, I) draws: the WAE's penalty",
        ),
    )

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
        return {"recon": self.recon_nats(self.decoder(self.encoder(x)), x)}

    def _penalty(self, z: torch.Tensor) -> torch.Tensor:
        return mmd(z, self.prior_draws(z)) if z.shape[0] > 1 else z.sum() * 0.0

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mmd": self._penalty(self.encoder(x))}

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = self.encoder(x)
        recon = self.recon_nats(self.decoder(z), x)
        penalty = self._penalty(z)
        loss = (recon + self.mmd_weight * penalty).mean()
        return loss, {"recon": recon.mean(), "reg": penalty}

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
