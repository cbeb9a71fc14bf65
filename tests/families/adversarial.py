"""A test family with two optimisers: a VAE whose total correlation is estimated by a
discriminator trained alternately with it (the FactorVAE scheme, Kim & Mnih 2018),
small enough for the test suite.

It exercises the parts of the model contract the built-in families leave at their
defaults: ``configure_optimizers`` (the VAE's Adam at the run's ``--lr``, and the
discriminator's own Adam, lr 1e-4, betas (0.5, 0.9)), ``training_step`` (a VAE
step, then a discriminator step on the detached codes), ``on_train_start`` (it
records N), a per-image evaluation ``total`` that includes a per-image TC
estimate, and a batch-level column (the discriminator's accuracy, which needs a
batch to permute).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from aebench.hookspecs import hookimpl
from aebench.models.base import StepInfo
from aebench.models.nets import make_spec
from aebench.models.vae import VAE, VAEConfig, gaussian_kl
from aebench.specs import MetricColumn, ModelSpec

DISCRIMINATOR_LR = 1e-4
DISCRIMINATOR_BETAS = (0.5, 0.9)


@dataclass
class AdversarialConfig(VAEConfig):
    gamma: float = field(default=6.4, metadata={"help": "weight of the TC estimate"})


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each latent dimension shuffled independently across the batch: draws from the
    product of the marginals of ``z``'s batch."""
    cols = [
        z[torch.randperm(z.shape[0], generator=generator, device="cpu").to(z.device), j]
        for j in range(z.shape[1])
    ]
    return torch.stack(cols, dim=1)


class AdversarialVAE(VAE):
    family: ClassVar[str] = "adv-test"
    objective_name: ClassVar[str] = "ELBO + γ·TC (discriminator)"
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (
        MetricColumn(
            "test_disc_accuracy",
            "Discriminator accuracy",
            "share",
            None,
            "Accuracy of the TC discriminator telling codes from dimension-permuted codes",
        ),
    )

    def __init__(
        self, config: AdversarialConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape, arch)
        d = config.latent_dim
        self.discriminator = nn.Sequential(nn.Linear(d, 64), nn.LeakyReLU(0.2), nn.Linear(64, 2))
        self.train_size = 0

    @property
    def gamma(self) -> float:
        return float(getattr(self.config, "gamma", 6.4))

    def _tc(self, z: torch.Tensor) -> torch.Tensor:
        """Per-image TC estimate: the discriminator's log-odds that z is a joint draw."""
        logits = self.discriminator(z)
        return logits[:, 0] - logits[:, 1]

    def _vae_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        recon = self.recon_nats(self.decoder(z), x)
        kl = gaussian_kl(mean, logvar)
        tc = self._tc(z)
        terms = {"total": recon + kl + self.gamma * tc, "recon": recon, "reg": kl, "tc": tc}
        return terms, z

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._vae_terms(x)[0]

    def configure_optimizers(self, lr: float) -> Sequence[torch.optim.Optimizer]:
        own = [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]
        return [
            torch.optim.Adam(own, lr=lr),
            torch.optim.Adam(
                self.discriminator.parameters(), lr=DISCRIMINATOR_LR, betas=DISCRIMINATOR_BETAS
            ),
        ]

    def on_train_start(self, train_size: int, first_batch: torch.Tensor) -> None:
        self.train_size = train_size

    def _discriminator_loss(self, z: torch.Tensor) -> torch.Tensor:
        joint = self.discriminator(z)
        product = self.discriminator(permute_dims(z))
        ones = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return 0.5 * (F.cross_entropy(joint, ones) + F.cross_entropy(product, ones + 1))

    def training_step(
        self, x: torch.Tensor, step: StepInfo, optimizers: Sequence[torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        vae_opt, disc_opt = optimizers
        vae_opt.zero_grad(set_to_none=True)
        terms, z = self._vae_terms(x)
        loss = terms["total"].mean()
        loss.backward()
        vae_opt.step()
        disc_opt.zero_grad(set_to_none=True)
        d_loss = self._discriminator_loss(z.detach())
        d_loss.backward()
        disc_opt.step()
        logs = {k: v.detach().mean() for k, v in terms.items()}
        return {**logs, "total": loss.detach(), "disc_loss": d_loss.detach()}

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x).mean
        joint = self.discriminator(z).argmax(1) == 0
        product = self.discriminator(permute_dims(z)).argmax(1) == 1
        return {"disc_accuracy": torch.cat([joint, product]).float().mean()}


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"adv-test-{arch}",
                "adv-test",
                arch,
                AdversarialVAE,
                AdversarialConfig,
                "test family: VAE + TC discriminator trained alternately (two optimisers)",
                objective_options=(("gamma", "γ"),),
            )
        )
