"""β-TCVAE, as ``beta-tcvae-mlp`` and ``beta-tcvae-cnn``.

Reference: Ricky T. Q. Chen, Xuechen Li, Roger Grosse and David Duvenaud (2018),
"Isolating Sources of Disentanglement in Variational Autoencoders", NeurIPS 2018
(arXiv:1802.04942); the authors' code is ``rtqichen/beta-tcvae``.

The KL term of the ELBO, averaged over the data, splits into three parts (the
paper's Section 2), with n the index of a training image and q(z) = 1/N Σ_n q(z|n)
the aggregate posterior::

    E_n KL(q(z|n) || p(z)) = I_q(z; n)                  index-code mutual information
                           + KL(q(z) || Π_j q(z_j))     total correlation (TC)
                           + Σ_j KL(q(z_j) || p(z_j))   dimension-wise KL

and β-TCVAE weights them ``alpha``, ``beta`` and ``gamma`` (Section 4; the paper
trains with α = γ = 1 and β > 1, its experiments and the authors' README with
β = 6). Each part is estimated on one reparameterised draw z_i ~ q(z|x_i) per
image from log q(z_i|x_i), log p(z_i), log q(z_i) and log Π_j q(z_ij), where the
aggregate-posterior densities come from the batch itself, a minibatch estimate
that needs the training-set size N (``on_train_start``; stored in the
``dataset_size`` buffer, so evaluation and a reloaded model use the N it was
trained with):

* ``mss`` (the default), minibatch stratified sampling (the paper's Appendix
  C.2; pythae's default): image i's own posterior weighted 1/N, one other image
  of the batch (N - M)/(N M) and the remaining M - 1 images 1/M, with M = B - 1.
  The weights sum to one, so a batch of identical posteriors gives exactly
  q(z) = q(z|x) and MI = TC = 0;
* ``mws``, minibatch weighted sampling (Section 4 and Appendix C.1, the default
  of the authors' code): log q(z_i) ≈ log Σ_j q(z_i|x_j) - log(N B), a lower
  bound that counts no mass from the images outside the batch: for overlapping
  posteriors (a fresh encoder) its TC estimate is about (d - 1)·log N nats,
  which β multiplies.

N is taken as at least the batch size (a batch cannot hold more distinct images
than the set it was drawn from; this also covers a model evaluated before it was
trained). The same weights give each log q(z_ij) from the per-dimension densities.

The objective couples the images of a batch, so it has no per-image total:
``loss_terms`` gives ``recon`` and ``reg``, the exact per-image KL(q(z|x) || N(0, I))
(so ``bound`` is the ELBO, comparable with the VAE's); ``objective`` is the batch
mean of recon + α·MI + β·TC + γ·dim-wise KL; ``batch_terms`` reports the three
estimates (``test_tc``, ``test_mi``, ``test_dwkl``) at the recorded batch size.

Checked against pythae 0.1.2's ``BetaTCVAE`` (``tests/test_family_disentanglement.py``):
identical for MWS. pythae's MSS weight matrix (copied from the authors' code)
puts the 1/N weight in column 0 and the stratum weight in column 1 of (almost)
every row, instead of on each image's own column and the next one
(rtqichen/beta-tcvae pull request #1); aebench implements Appendix C.2 as
written, and the test checks it against the formula written out independently
and against pythae given the corrected matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import StepInfo
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, VAEConfig, gaussian_kl, gaussian_log_density
from aebench.options import choice_error
from aebench.specs import MetricColumn, ModelSpec

ESTIMATORS = ("mws", "mss")
_LOG_2PI = math.log(2 * math.pi)


def _check_weight(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """:class:`VAEConfig` plus the weights of the three KL parts and the estimator."""

    alpha: float = field(
        default=1.0,
        metadata={"help": "weight of the index-code mutual information (Chen et al. 2018: 1)"},
    )
    beta: float = field(
        default=6.0,
        metadata={"help": "weight of the total correlation (Chen et al. 2018 experiments: 6)"},
    )
    gamma: float = field(
        default=1.0,
        metadata={"help": "weight of the dimension-wise KL (Chen et al. 2018: 1)"},
    )
    estimator: str = field(
        default="mss",
        metadata={
            "help": "minibatch estimator of log q(z): mss (stratified, pythae's default) "
            "or mws (weighted, the authors' code's default)"
        },
    )

    def validate(self) -> None:
        super().validate()
        for name in ("alpha", "beta", "gamma"):
            _check_weight(name, getattr(self, name))
        if self.estimator not in ESTIMATORS:
            raise choice_error("estimator", self.estimator, ESTIMATORS)


def log_importance_weights(
    batch: int, dataset_size: int, estimator: str, like: torch.Tensor
) -> torch.Tensor:
    """``(B, B)`` log-weights w with log q(z_i) ≈ logsumexp_j (w_ij + log q(z_i | x_j)).

    ``mws``: every w_ij = -log(N B). ``mss``: w_ii = -log N, w_i,(i+1) mod B =
    log((N - M) / (N M)) and the others -log M, M = B - 1 (a batch of one falls back
    to MWS). N is taken as at least B. ``like`` gives the dtype and device.
    """
    n = float(max(int(dataset_size), batch))
    if estimator == "mws" or batch < 2:
        return like.new_full((batch, batch), -math.log(n * batch))
    if estimator != "mss":
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    m = batch - 1
    weights = like.new_full((batch, batch), -math.log(m))
    rows = torch.arange(batch, device=like.device)
    weights[rows, rows] = -math.log(n)
    weights[rows, (rows + 1) % batch] = math.log((n - m) / (n * m))
    return weights


def tc_decomposition(
    z: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    log_pz: torch.Tensor,
    dataset_size: int,
    estimator: str = "mss",
) -> dict[str, torch.Tensor]:
    """Minibatch estimates, one per image of the batch ``(B,)``, of the three KL parts.

    ``z`` ``(B, d)``: one draw per image from q(z|x) = N(mean, exp(logvar));
    ``log_pz``: log p(z_i) under the prior. Returns ``mi`` = log q(z_i|x_i) - log q(z_i),
    ``tc`` = log q(z_i) - log Π_j q(z_ij) and ``dwkl`` = log Π_j q(z_ij) - log p(z_i);
    they sum to log q(z_i|x_i) - log p(z_i), a one-draw estimate of the KL.
    """
    b = z.shape[0]
    # log q(z_i,k | x_j) for every pair (i, j) and dimension k: (B, B, d)
    pairs = -0.5 * (
        (z.unsqueeze(1) - mean.unsqueeze(0)).pow(2) * torch.exp(-logvar.unsqueeze(0))
        + logvar.unsqueeze(0)
        + _LOG_2PI
    )
    log_w = log_importance_weights(b, dataset_size, estimator, z)
    log_qz = torch.logsumexp(log_w + pairs.sum(2), dim=1)
    log_prod_qz = torch.logsumexp(log_w.unsqueeze(2) + pairs, dim=1).sum(1)
    log_qz_x = gaussian_log_density(z, mean, logvar)
    return {
        "mi": log_qz_x - log_qz,
        "tc": log_qz - log_prod_qz,
        "dwkl": log_prod_qz - log_pz,
    }


class BetaTCVAE(VAE):
    """A :class:`VAE` trained on the β-TC decomposition of its KL (see the module)."""

    objective_group: ClassVar[str | None] = "penalised"
    family: ClassVar[str] = "beta-tcvae"
    objective_name: ClassVar[str] = "β-TC ELBO"
    bound: ClassVar[tuple[str, ...]] = ("recon", "reg")  # reg: the exact per-image KL
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (
        MetricColumn(
            "test_tc",
            "Total correlation",
            "nats",
            None,
            "β-TCVAE's minibatch estimate of KL(q(z) || Π_j q(z_j)) (its estimator, the "
            "training-set N), averaged over test batches",
        ),
        MetricColumn(
            "test_mi",
            "Index-code MI",
            "nats",
            None,
            "β-TCVAE's minibatch estimate of the mutual information I(z; n) between code "
            "and image index",
        ),
        MetricColumn(
            "test_dwkl",
            "Dimension-wise KL",
            "nats",
            None,
            "β-TCVAE's minibatch estimate of Σ_j KL(q(z_j) || p(z_j))",
        ),
    )

    dataset_size: torch.Tensor

    def __init__(
        self, config: VAEConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape, arch)
        # N, set by on_train_start; a buffer so evaluation and a reloaded model use it.
        self.register_buffer("dataset_size", torch.zeros((), dtype=torch.long))

    def _weight(self, name: str, default: float) -> float:
        return float(getattr(self.config, name, default))

    @property
    def estimator(self) -> str:
        return str(getattr(self.config, "estimator", "mss"))

    def on_train_start(self, train_size: int, first_batch: torch.Tensor) -> None:
        self.dataset_size.fill_(int(train_size))

    def _n(self, step: StepInfo | None) -> int:
        """N: the step's training-set size in training, the stored one otherwise."""
        return int(step.train_size) if step is not None else int(self.dataset_size)

    def _draw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.posterior(x)
        return mean, logvar, mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``recon`` (one draw) and ``reg``, the exact KL(q(z|x) || N(0, I)); no
        ``total``: the objective is batch-level."""
        mean, logvar, z = self._draw(x)
        return {"recon": self.recon_nats(self.decoder(z), x), "reg": gaussian_kl(mean, logvar)}

    def decomposed_terms(self, x: torch.Tensor, dataset_size: int) -> dict[str, torch.Tensor]:
        """Per image of the batch ``(B,)``: ``recon``, ``reg`` (analytic KL) and the
        batch-coupled ``mi``, ``tc``, ``dwkl`` (:func:`tc_decomposition`), one draw."""
        mean, logvar, z = self._draw(x)
        recon = self.recon_nats(self.decoder(z), x)
        parts = tc_decomposition(z, mean, logvar, self.log_prior(z), dataset_size, self.estimator)
        return {"recon": recon, "reg": gaussian_kl(mean, logvar), **parts}

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Batch mean of recon + α·MI + β·TC + γ·dim-wise KL (the β-TCVAE objective)."""
        t = self.decomposed_terms(x, self._n(step))
        per_image = (
            t["recon"]
            + self._weight("alpha", 1.0) * t["mi"]
            + self._weight("beta", 6.0) * t["tc"]
            + self._weight("gamma", 1.0) * t["dwkl"]
        )
        return per_image.mean(), {k: v.mean() for k, v in t.items()}

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``tc``, ``mi`` and ``dwkl`` on this batch with the stored N and the estimator."""
        mean, logvar, z = self._draw(x)
        parts = tc_decomposition(
            z, mean, logvar, self.log_prior(z), int(self.dataset_size), self.estimator
        )
        return {k: parts[k].mean() for k in ("tc", "mi", "dwkl")}


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``beta-tcvae-mlp`` and ``beta-tcvae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"beta-tcvae-{arch}",
                "beta-tcvae",
                arch,
                BetaTCVAE,
                BetaTCVAEConfig,
                f"β-TCVAE (Chen et al. 2018), {ARCH_SUMMARY[arch]}; the KL split into "
                "index-code MI, total correlation and dimension-wise KL, weighted α, β "
                "(default 6), γ; minibatch-weighted or -stratified estimates",
                objective_options=(
                    ("alpha", "α"),
                    ("beta", "β"),
                    ("gamma", "γ"),
                    ("estimator", "estimator"),
                ),
            )
        )
