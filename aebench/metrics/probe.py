"""Linear-probe accuracy: how linearly decodable the labels are from latent means.

A scikit-learn ``LogisticRegression`` (multinomial, lbfgs, L2 with C=1,
``max_iter=2000``) on standardised features (``StandardScaler``) is fitted on the
latent means ``encode(x).mean`` of a fixed train subset and scored (accuracy)
on the latent means of the test set (or a fixed test subset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from aebench.datasets.base import ImageSet
from aebench.metrics._util import encode_all, fixed_subset
from aebench.metrics.context import hook
from aebench.models.base import AutoEncoder
from aebench.specs import MetricColumn, MetricOption, MetricSpec
from aebench.threads import single_threaded

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext


def probe_accuracy(
    model: AutoEncoder,
    train: ImageSet,
    test: ImageSet,
    *,
    n_train: int | None = 10000,
    n_test: int | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> float | None:
    """Test accuracy of a linear probe on latent means; ``None`` without labels
    or with fewer than two classes in the train subset; ``n_train=0`` skips it."""
    if train.labels is None or test.labels is None or n_train == 0:
        return None
    tr, te = fixed_subset(train, n_train), fixed_subset(test, n_test)
    if len(torch.unique(tr.labels)) < 2:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert tr.labels is not None and te.labels is not None  # checked above, on the full sets
    z_tr = encode_all(model, tr, device)[0].double().numpy()
    z_te = encode_all(model, te, device)[0].double().numpy()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    with single_threaded():  # small matrices: faster without BLAS threads (aebench.threads)
        clf.fit(z_tr, tr.labels.numpy())
        return float(clf.score(z_te, te.labels.numpy()))


# -- the metric ---------------------------------------------------------------------
PROFILES = {"smoke": 1000, "quick": 5000, "full": 10000}
HELP = "training images the probe is fitted on (0: skip)"


def compute(ctx: EvalContext) -> dict[str, Any]:
    return {
        "probe_acc": probe_accuracy(
            ctx.model,
            ctx.train,
            ctx.test,
            n_train=ctx.option("probe_samples"),
            device=ctx.device,
            seed=ctx.seed,
        )
    }


METRIC = MetricSpec(
    "probe",
    compute,
    description="How linearly decodable the class labels are from the latent means",
    group="representation",
    order=50,
    applies_to=lambda ctx: ctx.train.labels is not None and ctx.test.labels is not None,
    applies_text="datasets with class labels",
    options=(
        MetricOption(
            "probe_samples", int, 10000, HELP, profiles=PROFILES, minimum=0, flag="--probe-samples"
        ),
    ),
    columns=(
        MetricColumn(
            "probe_acc", "Linear probe", "accuracy", "max", "Logistic regression accuracy"
        ),
    ),
)
register_metrics = hook(METRIC)
