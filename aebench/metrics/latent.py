"""Latent health: how many latent dimensions a model uses, and posterior collapse.

* **Active units** (Burda et al. 2016, "Importance Weighted Autoencoders",
  section 5.2): dimension ``j`` is active when the variance over the test set
  of its posterior mean, ``Var_x[E_q(z|x)[z_j]]``, exceeds 0.01. Defined for
  every model (a deterministic AE's code is its "posterior mean").
* **KL per latent dimension** (models with a Gaussian encoder):
  ``KL_j = mean_x 0.5 (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)`` in nats, the
  split of the KL term over dimensions; stored as ``kl_per_dim`` (a list) for
  the run page's plot. Its sum is the test KL of a VAE with an N(0, I) prior.
* **Posterior collapse**: ``collapsed_fraction`` is the share of dimensions
  whose KL is below 0.01 nats: their posterior equals the prior for every
  image, so the decoder ignores them. :data:`COLLAPSE_FLAG` and above is
  flagged as posterior collapse. Same models as the KL per dimension.

Discrete latents (``latent_kind == "discrete"``) have neither: their codes are
indices, and the vectors the decoder reads are codebook entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from aebench.metrics.context import hook
from aebench.models.base import overrides
from aebench.specs import ColumnFlag, MetricColumn, MetricSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext

ACTIVE_THRESHOLD = 0.01
"""Variance of a dimension's posterior mean above which it counts as active."""
KL_THRESHOLD = 0.01
"""KL (nats) below which a dimension counts as collapsed onto the prior."""
COLLAPSE_FLAG = 0.5
"""Share of collapsed dimensions from which a run is flagged as posterior collapse."""


def active_units(means: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of dimensions whose posterior mean varies (variance > ``threshold``) over images."""
    if len(means) < 2:
        return 0
    return int((means.double().var(dim=0) > threshold).sum())


def kl_per_dim(means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """Mean over images of each dimension's KL(N(mu, sigma^2) || N(0, 1)), nats, float64."""
    mu, logvar = means.double(), logvars.double()
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0)


def standard_gaussian(ctx: EvalContext) -> bool:
    """Whether the run's model has a Gaussian encoder and the N(0, I) prior."""
    return (
        ctx.model.latent_kind == "gaussian"
        and not overrides(ctx.model, "log_prior")
        and ctx.encodings("test")[1] is not None
    )


def continuous(ctx: EvalContext) -> bool:
    return ctx.model.latent_kind != "discrete"


def compute(ctx: EvalContext) -> dict[str, Any]:
    means, logvars = ctx.encodings("test")
    finite = torch.isfinite(means).all(dim=1)
    if logvars is not None:
        finite &= torch.isfinite(logvars).all(dim=1)
    if not bool(finite.all()):  # the run page shows this as latent_error; the columns n/a
        raise ValueError(
            f"{int((~finite).sum())} of {len(means)} test latent codes are NaN or infinite"
        )
    out: dict[str, Any] = {
        "active_units": active_units(means),
        "latent_variance": [round(v, 6) for v in means.double().var(dim=0).tolist()],
    }
    if logvars is not None and standard_gaussian(ctx):
        per_dim = kl_per_dim(means, logvars)
        out["kl_per_dim"] = [round(v, 6) for v in per_dim.tolist()]
        out["collapsed_fraction"] = float((per_dim < KL_THRESHOLD).double().mean())
    return out


METRIC = MetricSpec(
    "latent",
    compute,
    description="Latent health on the test split: active units (Burda et al. 2016), KL per "
    "latent dimension, and the share of dimensions collapsed onto the prior",
    group="representation",
    order=45,
    details=("kl_per_dim", "latent_variance"),
    columns=(
        MetricColumn(
            "active_units",
            "Active units",
            "dims",
            None,
            "Latent dimensions whose posterior mean varies over the test set (variance > 0.01)",
            integer=True,
            applies_to=continuous,
            applies_text="models with continuous latents (not discrete codes)",
        ),
        MetricColumn(
            "collapsed_fraction",
            "Collapsed",
            "share of dims",
            None,
            "Share of latent dimensions with KL < 0.01 nats (posterior = prior: unused); "
            f"{COLLAPSE_FLAG:g} or more is flagged as posterior collapse",
            applies_to=standard_gaussian,
            applies_text="models with a Gaussian encoder and the N(0, I) prior (the VAE "
            "families; not a learned or mixture prior)",
            flag=ColumnFlag(
                "collapse",
                "posterior collapse",
                COLLAPSE_FLAG,
                "{worst:.0%} of latent dimensions collapsed onto the prior "
                f"(KL < {KL_THRESHOLD:g} nats) in {{count}} of {{n}} seed{{s}}",
            ),
        ),
    ),
)
register_metrics = hook(METRIC)
