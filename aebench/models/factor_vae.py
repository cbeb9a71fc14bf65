"""FactorVAE, as ``factor-vae-mlp`` and ``factor-vae-cnn``.

Reference: Hyunjik Kim and Andriy Mnih (2018), "Disentangling by Factorising",
ICML 2018 (arXiv:1802.05983).

A VAE whose loss adds ``gamma`` times the total correlation TC(z) = KL(q(z) ||
Π_j q(z_j)) of its codes (the paper's eq. 2), estimated by the density-ratio
trick: a discriminator D tells codes z ~ q(z) from codes whose dimensions were
shuffled independently across a batch (draws from Π_j q(z_j)), and
TC ≈ E_q(z)[log D(z) / (1 - D(z))]. D outputs two logits, class 0 "a code of
q(z)", so the log-odds is ``logits[:, 0] - logits[:, 1]`` (as in pythae and
disentanglement_lib).

As in the paper's Algorithm 1:

* the discriminator is the paper's MLP: 6 linear layers, 1000 hidden units,
  LeakyReLU(0.2) (``discriminator_hidden`` makes it narrower, e.g. for tests);
* it has its own Adam, lr 1e-4 and betas (0.5, 0.9) (``discriminator_lr``), the
  VAE the run's Adam at ``--lr`` (the paper: 1e-4, betas (0.9, 0.999));
* the two are trained alternately in ``training_step``: the batch is split at
  random into two halves (as pythae does); the first half gives the VAE step
  (recon + KL + γ·log-odds, the log-odds back-propagated through the encoder
  only, since the VAE's optimiser does not hold D), and the dimension-permuted
  codes of the second, independent half are the discriminator's "product of
  marginals" samples, against the first half's codes. (The paper uses a second
  batch; disentanglement_lib instead permutes the codes of the same batch and
  updates both at once.)

Per image (``loss_terms``): ``recon``, ``reg`` (the exact KL, so ``bound`` is the
ELBO), ``disc_tc`` (D's log-odds at the image's code) and ``total`` = recon + KL
+ γ·disc_tc, all per image. Batch-level column: ``test_disc_accuracy``, D's
accuracy on a test batch's codes against their dimension-permuted copies.

Checked against pythae 0.1.2's ``FactorVAE`` (``tests/test_family_disentanglement.py``):
the same losses for the same weights, batch and random draws.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import StepInfo
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, VAEConfig, gaussian_kl
from aebench.specs import MetricColumn, ModelSpec

DISCRIMINATOR_LAYERS = 6
"""Linear layers of the discriminator (Kim & Mnih 2018: 6, LeakyReLU(0.2) between)."""
DISCRIMINATOR_BETAS = (0.5, 0.9)
"""Adam betas of the discriminator's optimiser (Kim & Mnih 2018)."""
LEAKY_SLOPE = 0.2


@dataclass
class FactorVAEConfig(VAEConfig):
    """:class:`VAEConfig` plus γ and the discriminator's width and learning rate."""

    gamma: float = field(
        default=6.4,
        metadata={
            "help": "weight of the total correlation (Kim & Mnih 2018: 6.4 for 3D Shapes "
            "and CelebA; disentanglement_lib sweeps 10-100)"
        },
    )
    discriminator_hidden: int = field(
        default=1000,
        metadata={"help": "hidden units per discriminator layer (Kim & Mnih 2018: 1000)"},
    )
    discriminator_lr: float = field(
        default=1e-4,
        metadata={"help": "learning rate of the discriminator's Adam (Kim & Mnih 2018: 1e-4)"},
    )

    def validate(self) -> None:
        super().validate()
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)):
            raise ConfigError(f"gamma must be a number, got {self.gamma!r}")
        if not self.gamma >= 0 or self.gamma == float("inf"):
            raise ConfigError(f"gamma must be a finite number >= 0, got {self.gamma!r}")
        hidden = self.discriminator_hidden
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ConfigError(f"discriminator_hidden must be a positive integer, got {hidden!r}")
        lr = self.discriminator_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
            raise ConfigError(f"discriminator_lr must be a finite number > 0, got {lr!r}")


def build_discriminator(
    latent_dim: int, hidden: int = 1000, layers: int = DISCRIMINATOR_LAYERS
) -> nn.Sequential:
    """The paper's discriminator: ``layers`` linear layers (latent_dim -> hidden -> ... ->
    2 logits) with LeakyReLU(0.2) between them."""
    widths = [int(latent_dim), *[int(hidden)] * (layers - 1), 2]
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        modules.append(nn.Linear(a, b))
        if i < layers - 1:
            modules.append(nn.LeakyReLU(LEAKY_SLOPE))
    return nn.Sequential(*modules)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each latent dimension of ``z`` ``(B, d)`` shuffled independently across the batch:
    draws from the product of the batch's marginals. The permutations are drawn on the
    CPU (one ``randperm`` per dimension, in order), so a seed gives the same codes on
    every device."""
    b, d = z.shape
    index = torch.stack([torch.randperm(b, generator=generator) for _ in range(d)], dim=1)
    return z.gather(0, index.to(z.device))


class FactorVAE(VAE):
    """A :class:`VAE` plus a TC discriminator with its own optimiser (see the module)."""

    objective_group: ClassVar[str | None] = "penalised"
    family: ClassVar[str] = "factor-vae"
    objective_name: ClassVar[str] = "FactorVAE: ELBO + γ·TC (discriminator)"
    bound: ClassVar[tuple[str, ...]] = ("recon", "reg")  # reg: the exact per-image KL
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (
        MetricColumn(
            "test_disc_accuracy",
            "Discriminator accuracy",
            "share",
            None,
            "Accuracy of FactorVAE's TC discriminator telling a test batch's codes from "
            "their dimension-permuted copies (0.5: it cannot tell them apart)",
        ),
    )

    def __init__(
        self, config: VAEConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape, arch)
        hidden = int(getattr(config, "discriminator_hidden", 1000))
        self.discriminator = build_discriminator(config.latent_dim, hidden)

    @property
    def gamma(self) -> float:
        return float(getattr(self.config, "gamma", 6.4))

    def log_odds(self, z: torch.Tensor) -> torch.Tensor:
        """log D(z) / (1 - D(z)) per code: the discriminator's per-image TC estimate."""
        logits = self.discriminator(z)
        return logits[:, 0] - logits[:, 1]

    def _draw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.posterior(x)
        return mean, logvar, mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def _terms(
        self, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        recon = self.recon_nats(self.decoder(z), x)
        kl = gaussian_kl(mean, logvar)
        tc = self.log_odds(z)
        return {"total": recon + kl + self.gamma * tc, "recon": recon, "reg": kl, "disc_tc": tc}

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per image: ``recon``, ``reg`` (KL), ``disc_tc`` (D's log-odds) and
        ``total`` = recon + KL + γ·disc_tc, for one draw z ~ q(z|x)."""
        mean, logvar, z = self._draw(x)
        return self._terms(x, mean, logvar, z)

    def discriminator_loss(self, z_joint: torch.Tensor, z_permuted: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of D, class 0 for codes of q(z), class 1 for permuted codes,
        averaged over the two sets (the paper's discriminator objective, negated)."""
        joint = self.discriminator(z_joint)
        product = self.discriminator(z_permuted)
        zeros = torch.zeros(joint.shape[0], dtype=torch.long, device=joint.device)
        ones = torch.ones(product.shape[0], dtype=torch.long, device=product.device)
        return 0.5 * (F.cross_entropy(joint, zeros) + F.cross_entropy(product, ones))

    def configure_optimizers(self, lr: float) -> Sequence[torch.optim.Optimizer]:
        """The VAE's Adam at ``lr`` (encoder and decoder), then the discriminator's Adam
        (``discriminator_lr``, betas (0.5, 0.9))."""
        own = [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]
        d_lr = float(getattr(self.config, "discriminator_lr", 1e-4))
        return [
            torch.optim.Adam(own, lr=lr),
            torch.optim.Adam(self.discriminator.parameters(), lr=d_lr, betas=DISCRIMINATOR_BETAS),
        ]

    def training_step(
        self, x: torch.Tensor, step: StepInfo, optimizers: Sequence[torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """A VAE step on a random half of ``x``, then a discriminator step: that half's
        codes against the dimension-permuted codes of the other half. Logs the VAE
        loss as ``total`` and the discriminator's as ``disc_loss`` (both before the
        updates)."""
        vae_opt, disc_opt = optimizers
        b = int(x.shape[0])
        if b < 2:
            raise ValueError("FactorVAE trains on batches of at least 2 images (it splits them)")
        order = torch.randperm(b).to(x.device)
        half = b // 2
        x_vae, x_disc = x[order[half:]], x[order[:half]]
        mean, logvar, z = self._draw(x_vae)
        terms = self._terms(x_vae, mean, logvar, z)
        with torch.no_grad():
            z_permuted = permute_dims(self._draw(x_disc)[2])
        loss = terms["total"].mean()
        vae_opt.zero_grad(set_to_none=True)
        loss.backward()
        vae_opt.step()
        disc_opt.zero_grad(set_to_none=True)  # drops the VAE loss's gradient on D
        d_loss = self.discriminator_loss(z.detach(), z_permuted)
        d_loss.backward()
        disc_opt.step()
        logs = {k: v.detach().mean() for k, v in terms.items() if k != "total"}
        return {"total": loss.detach(), **logs, "disc_loss": d_loss.detach()}

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``disc_accuracy``: D's accuracy on the batch's codes (one draw each) and on
        their dimension-permuted copies, 2B decisions."""
        z = self._draw(x)[2]
        joint = self.discriminator(z).argmax(1) == 0
        product = self.discriminator(permute_dims(z)).argmax(1) == 1
        return {"disc_accuracy": torch.cat([joint, product]).float().mean()}


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``factor-vae-mlp`` and ``factor-vae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"factor-vae-{arch}",
                "factor-vae",
                arch,
                FactorVAE,
                FactorVAEConfig,
                f"FactorVAE (Kim & Mnih 2018), {ARCH_SUMMARY[arch]}; VAE + γ·TC (default "
                "6.4) estimated by an MLP discriminator trained alternately with its own Adam",
                objective_options=(("gamma", "γ"),),
            )
        )
