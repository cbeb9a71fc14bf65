"""AnnealedVAE (β-VAE with a controlled capacity), as ``annealed-vae-mlp`` and
``annealed-vae-cnn``.

Reference: Christopher P. Burgess, Irina Higgins, Arka Pal, Loic Matthey, Nick
Watters, Guillaume Desjardins and Alexander Lerchner (2018), "Understanding
disentangling in β-VAE", arXiv:1804.03599 (NIPS 2017 workshop).

The loss per image is (the paper's eq. 8)::

    recon + γ · |KL(q(z|x) || p(z)) - C|

where the capacity C grows linearly from 0 to ``c_max`` nats over the first T
optimisation steps and then stays there: C(step) = min(c_max, c_max · step / T).
The paper trains dSprites with γ = 1000 and C_max = 25 nats (the defaults here),
C reaching C_max after T = 100,000 iterations; disentanglement_lib uses the same
γ and T (C_max swept 5-100) in runs of 300,000 steps, so C reaches C_max a third
of the way through training.

By default T is the paper's absolute count, ``iteration_threshold`` = 100,000.
aebench's runs are usually far shorter (a smoke run on ``digits`` is a few
hundred steps): C then stays near 0, the model trains as a VAE with its KL
weighted γ = 1000, and it is evaluated against C = c_max, which it never
approached (``test_total`` ≈ γ·c_max). ``anneal_fraction`` makes T a fraction of
the run's own steps (``StepInfo.total_steps``): ``anneal_fraction=0.333`` is
disentanglement_lib's proportion (C_max reached a third of the way through).
With either, the training loss rises whenever C grows faster than the KL
follows: it is not monotone by design.

``capacity_mode``: ``image`` (default) applies |KL - C| to each image, as the
paper writes it; ``batch`` applies it to the batch-mean KL, as disentanglement_lib
does (``gamma * abs(mean KL - c)``), which couples the images of a batch, so then
there is no per-image ``total``.

Evaluation (``step=None``, and ``loss_terms``'s ``total``) uses the final capacity
C = c_max. ``reg`` is the exact per-image KL, so ``bound`` is the ELBO. The
objective logs ``capacity``, the C it used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import StepInfo
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, VAEConfig, gaussian_kl
from aebench.options import choice_error
from aebench.specs import ModelSpec

CAPACITY_MODES = ("image", "batch")


def _finite(name: str, value: object, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not value >= low or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= {low:g}, got {value!r}")
    return float(value)


@dataclass
class AnnealedVAEConfig(VAEConfig):
    """:class:`VAEConfig` plus γ, the capacity target and its schedule."""

    gamma: float = field(
        default=1000.0,
        metadata={"help": "weight of |KL - C| (Burgess et al. 2018: 1000)"},
    )
    c_max: float = field(
        default=25.0,
        metadata={"help": "final capacity C in nats (Burgess et al. 2018: 25)"},
    )
    iteration_threshold: int = field(
        default=100_000,
        metadata={"help": "steps over which C grows from 0 to c_max (Burgess et al. 2018: 100000)"},
    )
    anneal_fraction: float | None = field(
        default=None,
        metadata={
            "help": "if set, C reaches c_max after this fraction of the run's steps instead "
            "(disentanglement_lib's proportion: 0.333)"
        },
    )
    capacity_mode: str = field(
        default="image",
        metadata={
            "help": "image: |KL - C| per image (the paper); batch: on the batch-mean KL "
            "(disentanglement_lib)"
        },
    )

    def validate(self) -> None:
        super().validate()
        _finite("gamma", self.gamma)
        _finite("c_max", self.c_max)
        steps = self.iteration_threshold
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"iteration_threshold must be a positive integer, got {steps!r}")
        if self.anneal_fraction is not None:
            fraction = _finite("anneal_fraction", self.anneal_fraction)
            if not 0 < fraction <= 1:
                raise ConfigError(
                    f"anneal_fraction must lie in (0, 1] (or be none), got {fraction!r}"
                )
        if self.capacity_mode not in CAPACITY_MODES:
            raise choice_error("capacity_mode", self.capacity_mode, CAPACITY_MODES)


def annealed_capacity(c_max: float, step: int, iteration_threshold: float) -> float:
    """C = min(c_max, c_max · step / iteration_threshold): linear from 0, then flat."""
    return min(float(c_max), float(c_max) * step / float(iteration_threshold))


class AnnealedVAE(VAE):
    """A :class:`VAE` whose KL is pulled towards an annealed capacity C (see the module)."""

    objective_group: ClassVar[str | None] = "penalised"
    family: ClassVar[str] = "annealed-vae"
    objective_name: ClassVar[str] = "AnnealedVAE: recon + γ·|KL − C|"
    bound: ClassVar[tuple[str, ...]] = ("recon", "reg")  # reg: the exact per-image KL

    def _option(self, name: str, default: float) -> float:
        return float(getattr(self.config, name, default))

    @property
    def capacity_mode(self) -> str:
        return str(getattr(self.config, "capacity_mode", "image"))

    def capacity(self, step: StepInfo | None) -> float:
        """C in nats at ``step``: linear from 0 to ``c_max`` over ``iteration_threshold``
        steps (or ``anneal_fraction`` of the run's steps when set); ``c_max`` when ``step``
        is None."""
        c_max = self._option("c_max", 25.0)
        if step is None:
            return c_max
        fraction = getattr(self.config, "anneal_fraction", None)
        if fraction is None:
            threshold = self._option("iteration_threshold", 100_000)
        else:
            threshold = float(fraction) * step.total_steps
        if threshold <= 0:
            return c_max
        return annealed_capacity(c_max, step.step, threshold)

    def _recon_kl(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.recon_nats(self.decoder(z), x), gaussian_kl(mean, logvar)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``recon``, ``reg`` (KL) and, with ``capacity_mode=image``, ``total`` =
        recon + γ·|KL - c_max| (the final objective), per image."""
        recon, kl = self._recon_kl(x)
        terms = {"recon": recon, "reg": kl}
        if self.capacity_mode == "image":
            gamma, c_max = self._option("gamma", 1000.0), self._option("c_max", 25.0)
            terms["total"] = recon + gamma * (kl - c_max).abs()
        return terms

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """recon + γ·|KL - C(step)|, batch mean; the absolute value per image or on the
        batch-mean KL (``capacity_mode``)."""
        recon, kl = self._recon_kl(x)
        c = self.capacity(step)
        per_image = self.capacity_mode == "image"
        penalty = (kl - c).abs().mean() if per_image else (kl.mean() - c).abs()
        loss = recon.mean() + self._option("gamma", 1000.0) * penalty
        logs = {"recon": recon.mean(), "reg": kl.mean(), "capacity": kl.new_tensor(c)}
        return loss, logs


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``annealed-vae-mlp`` and ``annealed-vae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"annealed-vae-{arch}",
                "annealed-vae",
                arch,
                AnnealedVAE,
                AnnealedVAEConfig,
                f"AnnealedVAE (Burgess et al. 2018), {ARCH_SUMMARY[arch]}; recon + "
                "γ·|KL − C| (γ 1000) with the capacity C annealed from 0 to c_max (25 nats) "
                "over iteration_threshold steps (100000) or a fraction of the run",
                objective_options=(
                    ("gamma", "γ"),
                    ("c_max", "C_max"),
                    ("capacity_mode", "capacity"),
                ),
            )
        )
