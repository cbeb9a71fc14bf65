"""Loss terms of a model over a dataset, per image in nats, bits/dim, and the
batch-level quantities a family declares.

``model.loss_terms(x)`` gives the per-image evaluation terms (``recon``,
-log p(x|z) in nats summed over pixels; ``reg``, the family's per-image
regulariser, e.g. the KL; ``total``, the per-image objective when the objective
is a mean of per-image values). Every value is per image, so the evaluation
batch size changes nothing. They are computed in fixed-size batches, without
gradients, in eval mode, under a seeded RNG (the encoder's sampling noise), then
averaged over images.

Bits per dimension, with ``D = C*H*W``: the sum of the terms the model names as
its ``bound`` (a VAE: ``recon + reg``, the negative ELBO, with the unweighted KL
so that ``bpd`` compares across β) divided by ``D ln 2``. A model without a
bound (a plain AE, a WAE) has no bits/dim: the column is not applicable.

Batch-level quantities (``model.batch_terms``: total correlation, MMD, a
discriminator's accuracy) are stored as ``test_<name>``, measured on full test
batches of :data:`BATCH_TERMS_SIZE` images (recorded as
``batch_terms_batch_size``), since they change with the batch size.

Note that these are continuous densities on [0, 1] pixel values (Bernoulli or
fixed-variance Gaussian), not discrete 8-bit likelihoods, so they compare
across aebench models, not with dequantised-likelihood papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from aebench.metrics._util import batch_term_metrics, loss_metrics
from aebench.metrics.context import hook
from aebench.specs import BATCH_TERMS_METRIC, MetricColumn, MetricSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext


BATCH_TERMS_SIZE = 500
"""Test images per batch for the batch-level columns (``batch_terms``)."""


# -- the metric ---------------------------------------------------------------------
def _terms(ctx: EvalContext) -> dict[str, float]:
    if "loss_terms" not in ctx.cache:
        ctx.cache["loss_terms"] = loss_metrics(
            ctx.model, ctx.test, device=ctx.device, batch_size=ctx.batch_size, seed=ctx.seed
        )
    return ctx.cache["loss_terms"]


def _has(term: str) -> Callable[[EvalContext], bool]:
    return lambda ctx: term in _terms(ctx)


def compute(ctx: EvalContext) -> dict[str, float]:
    """``test_total``, ``test_recon``, ``test_reg``, ``test_bpd`` over the test split
    (those the model has), and every ``test_<name>`` of its ``batch_terms``.

    A non-finite loss fails the run (the model diverged), which is why this
    metric has ``on_error="fail"``.
    """
    out = {f"test_{k}": v for k, v in _terms(ctx).items()}
    for key, value in out.items():
        if not math.isfinite(value):
            raise FloatingPointError(f"{key} is not finite ({value})")
    return out


def compute_batch_terms(ctx: EvalContext) -> dict[str, float]:
    """``test_<name>`` for each value of ``model.batch_terms`` on full test batches of
    :data:`BATCH_TERMS_SIZE` images (fewer when the test split is smaller), and
    ``batch_terms_batch_size``, the size used."""
    if not ctx.model.batch_columns:
        return {}
    values, size = batch_term_metrics(
        ctx.model, ctx.test, device=ctx.device, batch_size=BATCH_TERMS_SIZE, seed=ctx.seed
    )
    declared = {c.key for c in ctx.model.batch_columns}
    out: dict[str, float] = {}
    for name, value in values.items():
        if f"test_{name}" not in declared:
            raise TypeError(
                f"{type(ctx.model).__name__}.batch_terms() returned {name!r}, but its "
                f"batch_columns declare no column 'test_{name}'"
            )
        if not math.isfinite(value):
            raise FloatingPointError(f"test_{name} is not finite ({value})")
        out[f"test_{name}"] = value
    out["batch_terms_batch_size"] = size
    return out


METRIC = MetricSpec(
    "losses",
    compute,
    description="The model's own loss terms on the test split, per image in nats",
    group="likelihood",
    order=10,
    on_error="fail",
    columns=(
        MetricColumn(
            "test_total",
            "Test loss",
            "nats",
            "min",
            "The training objective per image (recon + β·reg for the VAE families)",
            applies_to=_has("total"),
            applies_text="models whose objective is a mean of per-image values (not one "
            "coupled across a batch, such as an MMD penalty)",
        ),
        MetricColumn("test_recon", "Reconstruction", "nats", "min", "-log p(x|z) over all pixels"),
        MetricColumn(
            "test_reg",
            "Regulariser",
            "nats",
            None,
            "The family's per-image regulariser: KL(q(z|x) || p(z)) for VAEs",
            applies_to=lambda ctx: ctx.model.regulariser != "none" and _has("reg")(ctx),
            applies_text="models with a per-image regulariser (not a plain AE)",
        ),
        MetricColumn(
            "test_bpd",
            "Bits/dim",
            "bits/dim",
            "min",
            "The model's bound on -log p(x) per dimension, in bits (a VAE: (recon + KL) / "
            "(D ln 2), the negative ELBO)",
            applies_to=lambda ctx: bool(ctx.model.bound),
            applies_text="models with a likelihood bound (the VAE families)",
        ),
    ),
)


BATCH_TERMS = MetricSpec(
    BATCH_TERMS_METRIC,
    compute_batch_terms,
    description="Batch-level quantities a model family declares (its batch_columns: total "
    "correlation, MMD, a discriminator's accuracy), on full test batches of a fixed size",
    group="likelihood",
    order=11,
    on_error="fail",
    details=("batch_terms_batch_size",),
)
"""Its columns are the models' ``batch_columns``, added when plugins are collected
(:func:`aebench.specs.with_model_columns`)."""


register_metrics = hook(METRIC, BATCH_TERMS)
