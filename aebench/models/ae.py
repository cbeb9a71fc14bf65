"""The deterministic autoencoder, as ``ae-mlp`` and ``ae-cnn``.

It has no prior of its own. After training, :meth:`AE.fit_prior` fits a
density on the training latent means (a scikit-learn ``GaussianMixture`` with
full covariances, or a single full-covariance Gaussian) and copies its
weights, means and Cholesky factors into registered buffers. So the fitted
prior travels with ``state_dict()``, and sampling is pure torch (seeded by the
caller's generator). ``prior_description`` records which density was used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import AutoEncoder, Encoding, ModelConfig
from aebench.models.density import fit_gmm, sample_gmm
from aebench.models.nets import ARCH_SUMMARY, build_bodies, make_spec
from aebench.specs import ModelSpec

PRIORS = ("gmm", "gaussian")


@dataclass
class AEConfig(ModelConfig):
    """:class:`ModelConfig` plus the sampling density fitted on training latents.

    ``prior``: ``"gmm"`` (a Gaussian mixture of ``prior_components`` full-covariance
    components) or ``"gaussian"`` (one full-covariance Gaussian).
    """

    prior: str = field(
        default="gmm",
        metadata={"help": "sampling density fitted on training latents: gmm or gaussian"},
    )
    prior_components: int = field(
        default=10, metadata={"help": "Gaussian mixture components (prior=gmm)"}
    )

    def validate(self) -> None:
        super().validate()
        if self.prior not in PRIORS:
            raise ConfigError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        if (
            isinstance(self.prior_components, bool)
            or not isinstance(self.prior_components, int)
            or self.prior_components < 1
        ):
            raise ConfigError(
                f"prior_components must be a positive integer, got {self.prior_components!r}"
            )

    @property
    def n_components(self) -> int:
        """Mixture components actually fitted (1 for ``prior="gaussian"``)."""
        return 1 if self.prior == "gaussian" else self.prior_components


class AE(AutoEncoder):
    """Deterministic autoencoder on an MLP or CNN body; ``reg`` is identically zero."""

    family: ClassVar[str] = "ae"
    regulariser: ClassVar[str] = "none"
    objective_name: ClassVar[str] = "reconstruction"
    latent_kind: ClassVar[str] = "deterministic"  # no likelihood bound: bits/dim is n/a
    has_prior: ClassVar[bool] = False  # it samples from a density fitted after training

    prior_weights: torch.Tensor
    prior_means: torch.Tensor
    prior_scale_tril: torch.Tensor
    prior_fitted: torch.Tensor

    def __init__(
        self, config: ModelConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape)
        self.arch = arch
        self.encoder, self.decoder = build_bodies(arch, self.input_shape, config, config.latent_dim)
        k, d = self._n_components, config.latent_dim
        self.register_buffer("prior_weights", torch.full((k,), 1.0 / k))
        self.register_buffer("prior_means", torch.zeros(k, d))
        self.register_buffer("prior_scale_tril", torch.eye(d).expand(k, d, d).clone())
        self.register_buffer("prior_fitted", torch.tensor(False))

    @property
    def _n_components(self) -> int:
        return getattr(self.config, "n_components", 1)

    @property
    def _prior_kind(self) -> str:
        return getattr(self.config, "prior", "gaussian")

    def encode(self, x: torch.Tensor) -> Encoding:
        return Encoding(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        recon = self.recon_nats(self.decoder(self.encoder(x)), x)
        return {"total": recon, "recon": recon, "reg": torch.zeros_like(recon)}

    def fit_prior(self, latents: torch.Tensor) -> None:
        """Fit the sampling density on training latent means ``(N, latent_dim)``."""
        if latents.dim() != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(
                f"fit_prior expects latents of shape (N, {self.latent_dim}), "
                f"got {tuple(latents.shape)}"
            )
        try:
            weights, means, chol = fit_gmm(latents, self._n_components)
        except ValueError as exc:
            raise ValueError(f"fit_prior for {self.prior_description}: {exc}") from None
        like = self.prior_means
        self.prior_weights.copy_(weights.to(like.dtype))
        self.prior_means.copy_(means.to(like.dtype))
        self.prior_scale_tril.copy_(chol.to(like.dtype))
        self.prior_fitted.fill_(True)

    @property
    def prior_description(self) -> str:
        if self._prior_kind == "gaussian":
            return "Gaussian (full covariance) fitted on training latent means"
        return f"GaussianMixture({self._n_components}, full) fitted on training latent means"

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from the fitted density, ``(n, latent_dim)``."""
        if not bool(self.prior_fitted):
            raise RuntimeError(
                f"{type(self).__name__}.sample() needs a fitted prior: call "
                "fit_prior(training latent means) first (or load a state_dict that has one)"
            )
        return sample_gmm(self.prior_weights, self.prior_means, self.prior_scale_tril, n, generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.sample_latents(n, generator))


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``ae-mlp`` and ``ae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"ae-{arch}",
                "ae",
                arch,
                AE,
                AEConfig,
                f"deterministic autoencoder, {ARCH_SUMMARY[arch]}; samples from a density "
                "(GMM or Gaussian) fitted on training latents",
            )
        )
