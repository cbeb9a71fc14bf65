"""Regularised deterministic autoencoders RAE-L2 and RAE-GP, as ``rae-l2-mlp/cnn`` and
``rae-gp-mlp/cnn``.

Ghosh, Sajjadi, Vergari, Black & Schölkopf, "From Variational to Deterministic
Autoencoders", ICLR 2020. A deterministic encoder z = E(x), a decoder D(z), and

    L = recon + β · ½||z||² + λ · L_REG

per image, with ``recon`` -log p(x|z) in nats (the reconstruction cost), β the
``embedding_weight`` and λ the ``reg_weight`` of a decoder regulariser:

* RAE-L2: L_REG = ||θ_D||², weight decay on the **decoder's** parameters only,
  applied by the optimiser: ``configure_optimizers`` gives Adam two parameter
  groups, the decoder with ``weight_decay = λ`` and the rest without (pythae's
  coupled optimisers; Adam's ``weight_decay`` adds λ·θ to the gradient, the
  gradient of ½λ||θ||²). It is not part of the per-image terms.
* RAE-GP: L_REG = ||∇_z D(z)||², the gradient penalty on the decoder at the code,
  per image: the gradient with respect to z of the decoder's summed output image
  (its mean, in [0, 1]), squared and summed over latent dimensions. Training
  differentiates through it (double back-propagation).

Defaults β = 1e-4 and λ = 1e-7: pythae 0.1.2's ``RAE_L2`` / ``RAE_GP`` defaults and
the authors' MNIST RAE-L2 configuration (their MNIST RAE-GP used λ = 0.5e-7).

Samples come from a density fitted on the training codes after training (the
paper's ex-post density estimation; a 10-component full-covariance GMM by default):
:class:`aebench.models.ae.AE`'s ``fit_prior`` machinery, so ``has_prior`` is False.
The per-image terms are ``recon``, ``reg`` (the weighted per-image penalty,
β·½||z||², plus λ·||∇_z D(z)||² for RAE-GP) and ``total = recon + reg``, the
objective's per-image value; there is no likelihood bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.hookspecs import hookimpl
from aebench.models.ae import AE, AEConfig
from aebench.models.base import ModelConfig
from aebench.models.kernels import require_weight
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.specs import ModelSpec


@dataclass
class RAEConfig(AEConfig):
    """:class:`AEConfig` (the ex-post sampling density) plus β, the code penalty's weight."""

    embedding_weight: float = field(
        default=1e-4, metadata={"help": "β, weight of the code penalty ½||z||² (1e-4)"}
    )

    def validate(self) -> None:
        super().validate()
        require_weight("embedding_weight", self.embedding_weight)


@dataclass
class RAEL2Config(RAEConfig):
    """:class:`RAEConfig` plus λ, the weight decay of the decoder's parameters."""

    reg_weight: float = field(
        default=1e-7, metadata={"help": "λ, Adam weight decay of the decoder only (1e-7)"}
    )

    def validate(self) -> None:
        super().validate()
        require_weight("reg_weight", self.reg_weight)


@dataclass
class RAEGPConfig(RAEConfig):
    """:class:`RAEConfig` plus λ, the weight of the decoder's gradient penalty."""

    reg_weight: float = field(
        default=1e-7, metadata={"help": "λ, weight of the gradient penalty ||∇_z D(z)||² (1e-7)"}
    )

    def validate(self) -> None:
        super().validate()
        require_weight("reg_weight", self.reg_weight)


def embedding_penalty(z: torch.Tensor) -> torch.Tensor:
    """½||z||² per row of ``z`` ``(B, d)``."""
    return 0.5 * z.pow(2).sum(1)


class RAE(AE):
    """RAE-L2: a deterministic :class:`AE` with the code penalty β·½||z||² in its loss
    and weight decay λ on its decoder (:meth:`configure_optimizers`)."""

    family: ClassVar[str] = "rae-l2"
    regulariser: ClassVar[str] = "code-l2"
    objective_name: ClassVar[str] = "RAE-L2"

    @property
    def embedding_weight(self) -> float:
        return float(getattr(self.config, "embedding_weight", 1e-4))

    @property
    def reg_weight(self) -> float:
        return float(getattr(self.config, "reg_weight", 1e-7))

    def penalty(self, z: torch.Tensor) -> torch.Tensor:
        """The weighted per-image penalty in the loss: β·½||z||²."""
        return self.embedding_weight * embedding_penalty(z)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        recon = self.recon_nats(self.decoder(z), x)
        reg = self.penalty(z)
        return {"total": recon + reg, "recon": recon, "reg": reg}

    def configure_optimizers(self, lr: float) -> Sequence[torch.optim.Optimizer]:
        """One Adam, two parameter groups: the decoder with ``weight_decay = λ``, the
        rest (the encoder) without."""
        decoder = list(self.decoder.parameters())
        ids = {id(p) for p in decoder}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [
            torch.optim.Adam(
                [
                    {"params": rest, "weight_decay": 0.0},
                    {"params": decoder, "weight_decay": self.reg_weight},
                ],
                lr=lr,
            )
        ]


def decoder_gradient_penalty(
    decode: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor
) -> torch.Tensor:
    """``||∇_z sum(decode(z))||²`` per row of ``z`` ``(B, d)``: the squared norm of the
    gradient of each image's summed decoder output with respect to its own code.

    Rows are independent (the decoder maps each code alone), so one backward pass of
    the batch's sum gives every row's gradient. While gradients are enabled the
    result stays differentiable (``create_graph``: training back-propagates through
    it); under ``torch.no_grad`` (evaluation) it is computed on a detached copy of
    ``z`` and returned without a graph.
    """
    if torch.is_grad_enabled() and z.requires_grad:
        (grad,) = torch.autograd.grad(decode(z).sum(), z, create_graph=True)
        return grad.pow(2).sum(1)
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(decode(leaf).sum(), leaf)
    return grad.pow(2).sum(1).detach()


class RAEGP(RAE):
    """RAE-GP: a deterministic :class:`AE` whose per-image loss adds the gradient penalty
    λ·||∇_z D(z)||² to β·½||z||²; one plain Adam (no weight decay)."""

    family: ClassVar[str] = "rae-gp"
    regulariser: ClassVar[str] = "code-l2+gp"
    objective_name: ClassVar[str] = "RAE-GP"

    def penalty(self, z: torch.Tensor) -> torch.Tensor:
        """β·½||z||² + λ·||∇_z D(z)||², per image."""
        gp = decoder_gradient_penalty(self.decode, z)
        return self.embedding_weight * embedding_penalty(z) + self.reg_weight * gp

    def configure_optimizers(self, lr: float) -> Sequence[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr)]


_VARIANTS: tuple[tuple[str, type[RAE], type[ModelConfig], str], ...] = (
    ("rae-l2", RAE, RAEL2Config, "decoder weight decay λ 1e-7"),
    ("rae-gp", RAEGP, RAEGPConfig, "decoder gradient penalty λ·||∇_z D(z)||², λ 1e-7"),
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``rae-l2-mlp/cnn`` and ``rae-gp-mlp/cnn``."""
    for family, cls, config_cls, what in _VARIANTS:
        for arch in ("mlp", "cnn"):
            register(
                make_spec(
                    f"{family}-{arch}",
                    family,
                    arch,
                    cls,
                    config_cls,
                    f"{cls.objective_name} (Ghosh et al. 2020), {ARCH_SUMMARY[arch]}; "
                    f"deterministic AE + β·½||z||² (β 1e-4) + {what}; samples from a GMM "
                    "fitted on training codes",
                    objective_options=(("embedding_weight", "β"), ("reg_weight", "λ")),
                )
            )
