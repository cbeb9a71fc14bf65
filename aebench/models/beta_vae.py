"""β-VAE (Higgins et al., 2017), as ``beta-vae-mlp`` and ``beta-vae-cnn``.

The same model as :class:`aebench.models.vae.VAE`; only the configuration
differs: ``beta`` multiplies exactly the KL term of the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, VAEConfig
from aebench.specs import ModelSpec


@dataclass
class BetaVAEConfig(VAEConfig):
    """:class:`VAEConfig` plus ``beta``, the weight of the KL term (default 4.0)."""

    beta: float = field(default=4.0, metadata={"help": "weight of the KL term in the loss"})

    def validate(self) -> None:
        super().validate()
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)):
            raise ConfigError(f"beta must be a number, got {self.beta!r}")
        if not self.beta >= 0 or self.beta == float("inf"):
            raise ConfigError(f"beta must be a finite number >= 0, got {self.beta!r}")


class BetaVAE(VAE):
    """A :class:`VAE` whose KL weight comes from ``BetaVAEConfig.beta``; no new logic."""

    objective_group: ClassVar[str | None] = "penalised"
    family: ClassVar[str] = "beta-vae"
    objective_name: ClassVar[str] = "β-ELBO"  # the bound stays the unweighted ELBO


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``beta-vae-mlp`` and ``beta-vae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"beta-vae-{arch}",
                "beta-vae",
                arch,
                BetaVAE,
                BetaVAEConfig,
                f"β-VAE (Higgins et al. 2017), {ARCH_SUMMARY[arch]}; VAE loss with the KL "
                "weighted by beta (default 4)",
                objective_options=(("beta", "β"),),
            )
        )
