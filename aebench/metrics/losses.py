"""Loss terms of a model over a dataset, per image in nats, and bits/dim.

``model.loss_terms(x)`` gives per-image ``total`` (what training minimises),
``recon`` (-log p(x|z), nats, summed over pixels) and ``reg`` (the family's
regulariser, the KL divergence for ``regulariser == "kl"``). They are computed
in fixed-size batches (the last one may be smaller), without gradients, in eval
mode, under a seeded RNG (the encoder's sampling noise), then averaged over
images.

Bits per dimension, with ``D = C*H*W``:

* ``regulariser == "kl"``: ``(recon + reg) / (D ln 2)``, the negative ELBO
  per dimension in bits. For beta-VAEs ``total = recon + beta * KL`` but the
  bound uses the unweighted KL (``reg``), so ``bpd`` is comparable across betas.
* any other regulariser: ``recon / (D ln 2)``, the reconstruction term alone
  (a plain AE has no likelihood bound; this is *not* a bound on -log p(x)).

Note that these are continuous densities on [0, 1] pixel values (Bernoulli or
fixed-variance Gaussian), not discrete 8-bit likelihoods, so they compare
across aebench models, not with dequantised-likelihood papers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from aebench.metrics._util import loss_metrics
from aebench.metrics.context import hook
from aebench.specs import MetricColumn, MetricSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext


# -- the metric ---------------------------------------------------------------------
def _has_regulariser(ctx: EvalContext) -> bool:
    return ctx.model.regulariser != "none"


def compute(ctx: EvalContext) -> dict[str, float]:
    """``test_total``, ``test_recon``, ``test_reg``, ``test_bpd`` over the test split.

    A non-finite loss fails the run (the model diverged), which is why this
    metric has ``on_error="fail"``.
    """
    out = loss_metrics(
        ctx.model, ctx.test, device=ctx.device, batch_size=ctx.batch_size, seed=ctx.seed
    )
    for key in ("total", "recon", "reg"):
        if not math.isfinite(out[key]):
            raise FloatingPointError(f"test_{key} is not finite ({out[key]})")
    return {f"test_{k}": v for k, v in out.items()}


METRIC = MetricSpec(
    "losses",
    compute,
    description="The model's own loss terms on the test split, per image in nats",
    group="likelihood",
    order=10,
    on_error="fail",
    columns=(
        MetricColumn("test_total", "Test loss", "nats", "min", "Training objective: recon + β·reg"),
        MetricColumn("test_recon", "Reconstruction", "nats", "min", "-log p(x|z) over all pixels"),
        MetricColumn(
            "test_reg",
            "Regulariser",
            "nats",
            None,
            "The family's regulariser: KL(q(z|x) || p(z)) for VAEs",
            applies_to=_has_regulariser,
            applies_text="models with a regulariser (not a plain AE)",
        ),
        MetricColumn(
            "test_bpd",
            "Bits/dim",
            "bits/dim",
            "min",
            "(recon + KL) / (D ln 2): the negative ELBO per dimension; recon alone without a KL",
        ),
    ),
)
register_metrics = hook(METRIC)
