"""A test family whose training objective couples the images of a batch: a
deterministic autoencoder whose codes' batch moments are pulled towards N(0, I)
(a moment-matching penalty, in the spirit of DIP-VAE and the WAE).

Its per-image evaluation terms (``loss_terms``) are the reconstruction only; the
penalty is a batch-level column (``test_moments``). ``Broadcasting`` is the same
model written the way the old contract forced: the batch penalty copied onto
every image's ``total``, so the "per-image" values change with the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.hookspecs import hookimpl
from aebench.models.ae import AE, AEConfig
from aebench.models.base import StepInfo
from aebench.models.nets import make_spec
from aebench.specs import MetricColumn, ModelSpec


@dataclass
class CoupledConfig(AEConfig):
    moment_weight: float = field(default=10.0, metadata={"help": "weight of the penalty"})


def moment_penalty(z: torch.Tensor) -> torch.Tensor:
    """||mean(z)||² + ||cov(z) - I||²_F over the batch (0 for a batch of one)."""
    if z.shape[0] < 2:
        return z.sum() * 0.0
    centred = z - z.mean(0)
    cov = centred.T @ centred / (z.shape[0] - 1)
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return z.mean(0).pow(2).sum() + (cov - eye).pow(2).sum()


class Coupled(AE):
    family: ClassVar[str] = "coupled-test"
    objective_name: ClassVar[str] = "reconstruction + moment penalty"
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (
        MetricColumn("test_moments", "Moment penalty", "", None, "||mean||² + ||cov - I||²_F"),
    )

    @property
    def weight(self) -> float:
        return float(getattr(self.config, "moment_weight", 10.0))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"recon": self.recon_nats(self.decoder(self.encoder(x)), x)}

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = self.encoder(x)
        recon = self.recon_nats(self.decoder(z), x).mean()
        penalty = moment_penalty(z)
        return recon + self.weight * penalty, {"recon": recon, "moments": penalty}

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"moments": moment_penalty(self.encoder(x))}


class Broadcasting(Coupled):
    """The same model with its batch penalty copied onto each image (what the old
    contract forced): its evaluation "per-image" terms depend on the batch size."""

    family: ClassVar[str] = "broadcast-test"

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        recon = self.recon_nats(self.decoder(z), x)
        reg = moment_penalty(z).expand(x.shape[0])
        return {"total": recon + self.weight * reg, "recon": recon, "reg": reg}


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"coupled-test-{arch}",
                "coupled-test",
                arch,
                Coupled,
                CoupledConfig,
                "test family: deterministic AE + batch moment-matching penalty",
            )
        )
