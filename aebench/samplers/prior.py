"""The ``prior`` sampler: the model's own ``sample``, the prior it was trained with.

It applies to models that declare ``has_prior`` (the VAE family: N(0, I)); its
values are the plain sample-metric keys (``fid``, ``kid``, ...: suffix ``""``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aebench.samplers.base import LatentDraw, hook
from aebench.specs import SamplerSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext
    from aebench.models.base import AutoEncoder

SAMPLES = "samples of the prior the model was trained with (VAE: N(0, I))"
APPLIES = "models with a prior (VAE family)"


def fit(ctx: EvalContext) -> LatentDraw | None:
    """Nothing to fit: the model's own ``sample``."""
    return None


def has_prior(model: AutoEncoder) -> bool:
    return bool(model.has_prior)


def describe(model: AutoEncoder) -> str:
    return model.prior_description


SAMPLER = SamplerSpec(
    "prior",
    fit,
    label="prior",
    description=SAMPLES,
    suffix="",
    applies=has_prior,
    applies_text=APPLIES,
    describe_model=describe,
)
register_samplers = hook(SAMPLER)
