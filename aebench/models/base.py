"""The one contract every model follows, built-in or third-party.

A model is a :class:`torch.nn.Module` subclass of :class:`AutoEncoder` that can

* ``encode(x)``: an :class:`Encoding` (latent mean, and log-variance for
  stochastic encoders);
* ``decode(z)``: images in [0, 1] (the mean of the likelihood);
* ``loss_terms(x)``: per-image tensors in nats, ``total`` (what training
  minimises), ``recon`` (-log p(x|z)) and ``reg`` (the family's regulariser,
  named by ``regulariser``: ``"kl"`` for VAEs, ``"none"`` for a plain AE);
* ``reconstruct(x)`` and ``sample(n)``: images in [0, 1];
* ``fit_prior(latents)``: called once after training with the training-set
  latent means (a deterministic AE fits its sampling density here);
* ``log_likelihood(x, k)``: an importance-sampled lower bound on log p(x) per
  image, or ``None`` when the family has no such estimate.

The training loop only ever calls ``loss_terms(x)["total"].mean()``; it never
needs to know which family it trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from aebench.errors import ConfigError, did_you_mean
from aebench.options import convert, field_types, jsonable

LIKELIHOODS = ("bernoulli", "gaussian")


@dataclass
class ModelConfig:
    """Settings every family shares. Families subclass it and add only their own.

    ``likelihood``: ``"bernoulli"`` (binary cross-entropy, the usual choice for
    [0, 1] grayscale) or ``"gaussian"`` (squared error with fixed variance
    ``gaussian_var``; 0.5 makes the reconstruction term equal the summed
    squared error plus a constant, the "MSE + KL" objective of many VAE
    tutorials). ``hidden_dims``: ``None`` keeps the architecture's default
    (MLP ``(512, 256)``; CNN ``(32, 64, 128)``: two conv channel counts, then
    the dense width).
    """

    latent_dim: int = field(default=16, metadata={"help": "size of the latent code"})
    likelihood: str = field(
        default="bernoulli",
        metadata={"help": "reconstruction likelihood: bernoulli (BCE) or gaussian (MSE)"},
    )
    gaussian_var: float = field(
        default=0.5, metadata={"help": "fixed variance of the gaussian likelihood"}
    )
    hidden_dims: tuple[int, ...] | None = field(
        default=None,
        metadata={"help": "hidden sizes: MLP widths (512,256) or CNN (conv1,conv2,dense)"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.hidden_dims, list):
            self.hidden_dims = tuple(self.hidden_dims)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` with one line naming a bad value."""
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be a positive integer, got {self.latent_dim!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}"
            )
        if not self.gaussian_var > 0:
            raise ConfigError(f"gaussian_var must be > 0, got {self.gaussian_var!r}")
        if self.hidden_dims is not None and (
            not self.hidden_dims or any(int(h) < 1 for h in self.hidden_dims)
        ):
            raise ConfigError(f"hidden_dims must be positive integers, got {self.hidden_dims!r}")

    @classmethod
    def from_options(cls, **options: Any) -> ModelConfig:
        """Build from keyword options: text (``"0.5"``) or values, converted to each
        field's type; an unknown name is an error that suggests the closest one."""

        types = field_types(cls)
        values = {}
        for name, value in options.items():
            if name not in types:
                hint = did_you_mean(name, types)
                raise ConfigError(
                    f"{cls.__name__} has no option {name!r}{hint}; options: {', '.join(types)}"
                )
            values[name] = convert(name, value, types[name])
        return cls(**values)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-shaped (tuples as lists)."""

        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}


class Encoding(NamedTuple):
    """What ``encode`` returns: latent means and (for stochastic encoders) log-variances."""

    mean: torch.Tensor
    logvar: torch.Tensor | None = None


def recon_nats(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str, gaussian_var: float = 0.5
) -> torch.Tensor:
    """-log p(x | z) per image in nats, summed over pixels.

    ``logits`` are the decoder's pre-sigmoid outputs (any shape ``(B, ...)``).
    Bernoulli: binary cross-entropy with logits. Gaussian: the decoder mean is
    ``sigmoid(logits)``, variance fixed at ``gaussian_var``, and the
    normalising constant is included so the value is a true negative
    log-density.
    """
    b = x.shape[0]
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return nll.reshape(b, -1).sum(1)
    if likelihood == "gaussian":
        sq = (torch.sigmoid(logits) - x).pow(2).reshape(b, -1)
        d = sq.shape[1]
        return 0.5 * sq.sum(1) / gaussian_var + 0.5 * d * math.log(2 * math.pi * gaussian_var)
    raise ConfigError(f"unknown likelihood {likelihood!r}")


class AutoEncoder(nn.Module):
    """Base class of every model. Subclasses set ``family`` and ``regulariser``
    and implement ``encode``, ``decode_logits``, ``loss_terms`` and ``sample``."""

    family: ClassVar[str] = ""
    regulariser: ClassVar[str] = "none"
    has_prior: ClassVar[bool] = True
    """Whether ``sample`` draws from a prior the model was trained with (VAE: N(0, I));
    False when it draws from a density fitted after training (a plain AE)."""

    def __init__(self, config: ModelConfig, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        self.input_shape = cast("tuple[int, int, int]", tuple(int(s) for s in input_shape))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- the contract ---------------------------------------------------------
    def encode(self, x: torch.Tensor) -> Encoding:
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid decoder output, shape ``(B, C, H, W)``."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1]: the mean of the likelihood."""
        return torch.sigmoid(self.decode_logits(z))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image ``total``, ``recon`` and ``reg`` in nats, each of shape ``(B,)``."""
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the latent mean of ``x``: deterministic, in [0, 1]."""
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [0, 1] decoded from draws of the model's prior."""
        raise NotImplementedError

    def fit_prior(self, latents: torch.Tensor) -> None:
        """Fit a sampling density on training latent means (no-op when the prior is fixed)."""

    @property
    def prior_description(self) -> str:
        """How ``sample`` draws latents, recorded next to sample-based metrics."""
        return "N(0, I)"

    def log_likelihood(self, x: torch.Tensor, k: int = 100) -> torch.Tensor | None:
        """Importance-sampled lower bound on log p(x) per image (nats), or None."""
        return None

    def recon_nats(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return recon_nats(logits, x, self.config.likelihood, self.config.gaussian_var)
