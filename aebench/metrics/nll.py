"""Negative log-likelihood estimate from the model's IWAE bound.

``nll = -mean_i log p_k(x_i)`` where ``log p_k`` is ``model.log_likelihood(x, k)``,
the importance-weighted lower bound on ``log p(x)`` with ``k`` samples
(Burda et al. 2016), so ``nll`` is an *upper* bound on the true NLL in nats
per image; ``nll_bpd = nll / (D ln 2)``. Computed on a fixed test subset
(the first ``n`` images of a permutation seeded with 0, the same for every
model and run seed) under a RNG seeded with the run seed. It applies to
models that implement ``log_likelihood`` (a likelihood bound); for the others
(deterministic autoencoders) it is "not applicable".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from aebench.datasets.base import ImageSet
from aebench.metrics._util import bits_per_dim, eval_mode, fixed_subset, seeded
from aebench.metrics.context import hook
from aebench.models.base import AutoEncoder
from aebench.specs import MetricColumn, MetricOption, MetricSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext


@torch.no_grad()
def nll_metrics(
    model: AutoEncoder,
    data: ImageSet,
    *,
    k: int = 100,
    n: int | None = 1000,
    device: torch.device | str = "cpu",
    batch_size: int = 100,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """``{"nll", "nll_bpd", "nll_k", "nll_samples"}``; nll values ``None`` without an estimate.

    ``n=0`` skips the estimate (values ``None``)."""
    if n == 0:
        return {"nll": None, "nll_bpd": None, "nll_k": k, "nll_samples": 0}
    subset = fixed_subset(data, n)
    total = 0.0
    with eval_mode(model), seeded(seed, device):
        for i in range(0, len(subset), batch_size):
            ll = model.log_likelihood(subset.batch(slice(i, i + batch_size), device), k)
            if ll is None:
                return {"nll": None, "nll_bpd": None, "nll_k": k, "nll_samples": 0}
            total += float(ll.double().sum())
    nll = -total / len(subset)
    if not math.isfinite(nll):
        raise FloatingPointError(f"NLL estimate is not finite ({nll})")
    dims = math.prod(data.shape)
    return {"nll": nll, "nll_bpd": bits_per_dim(nll, dims), "nll_k": k, "nll_samples": len(subset)}


# -- the metric ---------------------------------------------------------------------
PROFILES_K = {"smoke": 16, "quick": 64, "full": 1000}
PROFILES_N = {"smoke": 200, "quick": 1000, "full": 10000}
HELP_K = "importance samples per image"
HELP_SAMPLES = "test images the NLL is estimated on (0: skip)"


def has_likelihood_bound(model: AutoEncoder) -> bool:
    """Whether the model's class implements ``log_likelihood`` (the VAE families do)."""
    return type(model).log_likelihood is not AutoEncoder.log_likelihood


def compute(ctx: EvalContext) -> dict[str, Any]:
    return nll_metrics(
        ctx.model,
        ctx.test,
        k=ctx.option("nll_k"),
        n=ctx.option("nll_samples"),
        device=ctx.device,
        seed=ctx.seed,
    )


METRIC = MetricSpec(
    "nll",
    compute,
    description="Negative log-likelihood from the IWAE bound (Burda et al. 2016) on a fixed "
    "test subset",
    group="likelihood",
    order=40,
    details=("nll_k", "nll_samples"),
    applies_to=lambda ctx: has_likelihood_bound(ctx.model),
    applies_text="models with a likelihood bound (log_likelihood): the VAE families",
    options=(
        MetricOption("nll_k", int, 100, HELP_K, profiles=PROFILES_K, minimum=1, flag="--nll-k"),
        MetricOption(
            "nll_samples",
            int,
            1000,
            HELP_SAMPLES,
            profiles=PROFILES_N,
            minimum=0,
            flag="--nll-samples",
        ),
    ),
    columns=(
        MetricColumn("nll", "NLL", "nats", "min", "-log p(x): IWAE upper bound with nll_k samples"),
        MetricColumn("nll_bpd", "NLL", "bits/dim", "min", "The IWAE NLL per dimension, in bits"),
    ),
)
register_metrics = hook(METRIC)
