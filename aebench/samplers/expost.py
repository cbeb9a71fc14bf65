"""The ``expost`` sampler: a Gaussian mixture fitted on training latent means.

The "ex-post" density estimation of Ghosh et al. (2020): after training, a
:data:`COMPONENTS`-component, full-covariance ``GaussianMixture``
(:func:`aebench.models.density.fit_gmm`, ``random_state=0``) is fitted on the
latent means of the first :data:`~aebench.metrics.context.EXPOST_FIT_IMAGES`
training images (those without NaN or infinity); its draws are decoded. A model
without a prior of its own (the plain AE) already samples from such a density,
fitted after training: its own ``sample`` is its ex-post sampler. It applies to
continuous latents (gaussian and deterministic), not to discrete codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from aebench.models.density import fit_gmm, sample_gmm
from aebench.samplers.base import LatentDraw, hook
from aebench.specs import SamplerSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext
    from aebench.models.base import AutoEncoder

COMPONENTS = 10
"""Components of the ex-post Gaussian mixture (the AE's default prior)."""
LABEL = "ex-post GMM"
SAMPLES = (
    "samples decoded from a GaussianMixture fitted on training latent means "
    "(a plain AE's own sampler)"
)
APPLIES = "models with continuous latents (gaussian or deterministic)"
DENSITY = f"GaussianMixture({COMPONENTS}, full) fitted on training latent means"


def continuous(model: AutoEncoder) -> bool:
    """Whether ``model``'s latents are continuous vectors (gaussian or deterministic)."""
    return model.latent_kind in ("gaussian", "deterministic")


def finite_latents(latents: torch.Tensor) -> torch.Tensor:
    """The rows of ``latents`` without NaN or infinity (a model that diverged on some
    images); a ValueError saying how many are not when too few are left to fit the
    mixture (the metrics drawing from it record that as their error)."""
    finite = torch.isfinite(latents).reshape(len(latents), -1).all(dim=1)
    if bool(finite.all()):
        return latents
    if int(finite.sum()) < max(COMPONENTS, 2):
        raise ValueError(
            f"{int((~finite).sum())} of {len(latents)} training latent means are NaN or "
            "infinite: no ex-post density to fit"
        )
    return latents[finite]


def fit(ctx: EvalContext) -> LatentDraw | None:
    """The mixture fitted on ``ctx.latents("train")`` (None for a model without a
    prior: its ``sample`` draws from its own ex-post density)."""
    model = ctx.model
    if not model.has_prior:
        return None
    weights, means, chol = fit_gmm(finite_latents(ctx.latents("train")), COMPONENTS)
    dev, dtype = model.device, torch.float32
    w, m, c = weights.to(dev, dtype), means.to(dev, dtype), chol.to(dev, dtype)
    return lambda n, generator: sample_gmm(w, m, c, n, generator)


def describe(model: AutoEncoder) -> str:
    return DENSITY if model.has_prior else model.prior_description


SAMPLER = SamplerSpec(
    "expost",
    fit,
    label=LABEL,
    description=SAMPLES,
    suffix="_expost",
    applies=continuous,
    applies_text=APPLIES,
    describe_model=describe,
)
register_samplers = hook(SAMPLER)
