"""Sample quality beyond FID, and memorisation, on FID's samples and features.

Every value here is computed from the features FID uses
(:class:`aebench.metrics.fid.EvalFeatures`: the same extractor, the same
``fid_samples`` samples of each sampler, the test split as the real images),
so one feature extraction per input serves all of them; each is stored per
sampler like FID (``kid`` for the prior sampler, ``kid_expost`` for the ex-post
Gaussian mixture, ``kid_twostage`` for the two-stage VAE, ``kid_codes`` for a
discrete model's code prior; a plugin's sampler under its own suffix; see
:mod:`aebench.metrics.fid`) and split on the leaderboard by extractor and
sample count.

``kid``, ``kid_std``
    Kernel inception distance (Bińkowski et al. 2018) as torch-fidelity
    defines and computes it: the unbiased MMD² with the cubic polynomial kernel
    ``(x·y / d + 1)³``, mean and standard deviation over ``kid_subsets`` random
    subsets of ``min(1000, n)`` samples and as many test images
    (torch-fidelity's fixed subset seed 2020).

``precision``, ``recall``
    Improved precision and recall (Kynkäänniemi et al. 2019) with k = 3, as
    torch-fidelity computes them: a sample counts towards precision when it lies
    within (``<=``) the distance from some real image to that image's 3rd
    nearest real neighbour; recall is the same with the roles swapped. The real
    images of these four metrics are as many test images as there are samples
    (a fixed subset, :func:`aebench.metrics._util.fixed_indices`; all of the
    test split when it is not larger), since both papers compare equal numbers
    and the values move with the ratio; the count is stored as
    ``prdc_real_images``.

``density``, ``coverage``
    Naeem et al. 2020 with k = 5, as their ``prdc`` package computes them
    (strict ``<``): density is the number of real images' 5-NN balls containing
    a sample, averaged over samples and divided by 5 (≈1 when samples are
    distributed like the data, above 1 when they crowd its dense regions);
    coverage is the share of real images whose 5-NN ball contains a sample.

``novelty``, ``memorised``
    How close samples are to the images the model trained on, relative to
    unseen real images: the median over samples of the distance to the nearest
    of the first ``novelty_train`` training images, divided by the same median
    over the test images. About 1: samples are as far from the training set as
    new real data; well below 1: samples copy (or nearly copy) training images.
    ``memorised`` is 1 when ``novelty`` is below :data:`NOVELTY_THRESHOLD` (0.5):
    the typical sample is then closer to a training image than half the typical
    distance of an unseen real image, which a model that generalises does not
    do (test images score 1 by construction, blurry or poor samples score about
    1 or more, since blur moves them away from every real image), while exact
    and near copies score close to 0. Only copies of the reference images are
    seen: when the model trained on more images than ``novelty_train``, copies
    of the others count as novel, so use ``novelty_train`` at least as large as
    the training set for a memorisation audit (the ``full`` profile does for
    the built-in datasets); the count used is stored as ``novelty_train_images``
    and splits the column. The training images' features and the test images'
    nearest-neighbour distances are cached per dataset and extractor.

All distances are Euclidean in feature space, computed in blocks of
:data:`BLOCK` rows (float32, on the evaluation's device), never as one
``N x M`` matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from aebench.metrics import feature_cache
from aebench.metrics._util import fixed_indices
from aebench.metrics.context import hook
from aebench.metrics.fid import (
    SAMPLERS,
    SPLIT_BY,
    eval_features,
    reference_cache_name,
    sampler_column,
    sampler_suffix,
)
from aebench.specs import ColumnFlag, MetricColumn, MetricOption, MetricSpec, SamplerSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext

PR_K = 3
"""Neighbourhood size of precision and recall (torch-fidelity's ``prc_neighborhood``)."""
DC_K = 5
"""Neighbourhood size of density and coverage (Naeem et al. 2020)."""
KID_SUBSET_SIZE = 1000
"""torch-fidelity's KID subset size; smaller sets use all their samples."""
NOVELTY_THRESHOLD = 0.5
"""``memorised`` is 1 when ``novelty`` is below this."""
BLOCK = 1000
"""Rows of a distance block."""
CHUNK = 10000
"""Columns of one ``torch.cdist`` call (torch-fidelity's ``prc_batch_size``, so that
distances equal torch-fidelity's to the bit)."""


# -- distances ------------------------------------------------------------------
def _cdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if len(y) <= CHUNK:  # one call: no copy through torch.cat
        return torch.cdist(x, y)
    return torch.cat([torch.cdist(x, part) for part in y.split(CHUNK)], dim=1)


def distance_blocks(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    block: int = BLOCK,
    device: torch.device | str | None = None,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """``(rows, D)`` for blocks of ``block`` rows of ``x``: ``D[i, j]`` is the Euclidean
    distance from ``x[rows][i]`` to ``y[j]`` (float32, on ``device``, default ``x``'s)."""
    device = torch.device(device) if device is not None else x.device
    y = y.to(device, torch.float32)
    for start in range(0, len(x), block):
        rows = slice(start, min(start + block, len(x)))
        yield rows, _cdist(x[rows].to(device, torch.float32), y)


def knn_radii(
    features: torch.Tensor,
    ks: tuple[int, ...],
    *,
    block: int = BLOCK,
    device: torch.device | str | None = None,
) -> dict[int, torch.Tensor]:
    """For each ``k`` in ``ks``: every point's distance to its ``k``-th nearest other
    point of ``features`` (the ``k+1``-th smallest distance, counting itself), CPU."""
    if len(features) <= max(ks):
        raise ValueError(f"k-NN radii with k={max(ks)} need more than {max(ks)} points")
    parts: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    for _, d in distance_blocks(features, features, block=block, device=device):
        smallest = d.topk(max(ks) + 1, dim=1, largest=False).values
        for k in ks:
            parts[k].append(smallest[:, k].cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def nearest_distances(
    queries: torch.Tensor,
    reference: torch.Tensor,
    *,
    block: int = BLOCK,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Distance from each of ``queries`` to its nearest point of ``reference``, CPU."""
    parts = [
        d.min(dim=1).values.cpu()
        for _, d in distance_blocks(queries, reference, block=block, device=device)
    ]
    return torch.cat(parts)


# -- KID --------------------------------------------------------------------------
def kid(
    samples: torch.Tensor, real: torch.Tensor, subsets: int = 100, subset_size: int | None = None
) -> tuple[float, float]:
    """(mean, std) of KID over ``subsets`` subsets of ``subset_size`` (default
    ``min(1000, len(samples), len(real))``), by torch-fidelity's own function."""
    from torch_fidelity.metric_kid import (
        KEY_METRIC_KID_MEAN,
        KEY_METRIC_KID_STD,
        kid_features_to_metric,
    )

    size = subset_size or min(KID_SUBSET_SIZE, len(samples), len(real))
    out = kid_features_to_metric(
        samples.cpu(), real.cpu(), kid_subsets=subsets, kid_subset_size=size, verbose=False
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


# -- precision, recall, density, coverage -------------------------------------------
@dataclass(frozen=True)
class PRDC:
    """Precision and recall (Kynkäänniemi et al., k = ``pr_k``), density and coverage
    (Naeem et al., k = ``dc_k``) of samples against real images."""

    precision: float
    recall: float
    density: float
    coverage: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def real_radii(
    real: torch.Tensor, *, block: int = BLOCK, device: torch.device | str | None = None
) -> dict[int, torch.Tensor]:
    """The real images' k-NN radii :func:`prdc` needs (k = :data:`PR_K` and :data:`DC_K`)."""
    return knn_radii(real, (PR_K, DC_K), block=block, device=device)


def prdc(
    samples: torch.Tensor,
    real: torch.Tensor,
    *,
    radii: dict[int, torch.Tensor] | None = None,
    block: int = BLOCK,
    device: torch.device | str | None = None,
) -> PRDC:
    """:class:`PRDC` of ``samples`` (generated features) against ``real`` features.

    One pass over the sample-to-real distances gives all four: precision and
    recall as torch-fidelity computes them (k = 3, ``<=``), density and coverage
    as the ``prdc`` package does (k = 5, ``<``). ``radii``: :func:`real_radii`
    of ``real``, when already known (they depend on the real set only).
    """
    device = torch.device(device) if device is not None else samples.device
    if radii is None:
        radii = real_radii(real, block=block, device=device)
    r_pr, r_dc = radii[PR_K].to(device), radii[DC_K].to(device)
    s_pr = knn_radii(samples, (PR_K,), block=block, device=device)[PR_K].to(device)
    precise = torch.zeros(len(samples), dtype=torch.bool)
    inside = torch.zeros(len(samples), dtype=torch.float64)
    recalled = torch.zeros(len(real), dtype=torch.bool, device=device)
    nearest = torch.full((len(real),), torch.inf, device=device)
    for rows, d in distance_blocks(samples, real, block=block, device=device):
        precise[rows] = (d <= r_pr).any(dim=1).cpu()
        inside[rows] = (d < r_dc).sum(dim=1).double().cpu()
        recalled |= (d <= s_pr[rows, None]).any(dim=0)
        nearest = torch.minimum(nearest, d.min(dim=0).values)
    return PRDC(
        precision=float(precise.double().mean()),
        recall=float(recalled.double().mean()),
        density=float(inside.mean() / DC_K),
        coverage=float((nearest < r_dc).double().mean()),
    )


# -- novelty ----------------------------------------------------------------------
def novelty(
    samples: torch.Tensor,
    train: torch.Tensor,
    test: torch.Tensor | None = None,
    *,
    test_median: float | None = None,
    block: int = BLOCK,
    device: torch.device | str | None = None,
) -> float:
    """Median distance of ``samples`` to their nearest ``train`` point over the median
    distance of ``test`` points to theirs (``test_median``, when already known)."""
    if test_median is None:
        if test is None:
            raise ValueError("novelty needs the test features or their median distance")
        test_median = median_nearest(test, train, block=block, device=device)
    d = nearest_distances(samples, train, block=block, device=device)
    return float(_median(d) / test_median) if test_median > 0 else float("inf")


def median_nearest(
    queries: torch.Tensor,
    reference: torch.Tensor,
    *,
    block: int = BLOCK,
    device: torch.device | str | None = None,
) -> float:
    """Median over ``queries`` of the distance to the nearest ``reference`` point."""
    return _median(nearest_distances(queries, reference, block=block, device=device))


def _median(d: torch.Tensor) -> float:
    return float(torch.quantile(d.double(), 0.5))


# -- the metric ---------------------------------------------------------------------
BASE_KEYS = ("kid", "kid_std", "precision", "recall", "density", "coverage")
NOVELTY_KEYS = ("novelty", "memorised")
DETAIL_KEYS = (
    "kid_subsets",
    "kid_subset_size",
    "precision_k",
    "density_k",
    "prdc_real_images",
    "novelty_train_images",
    "novelty_train_total",
)


def _keys() -> list[str]:
    """The column keys: each base key with each built-in sampler's suffix (a plugin's
    sampler gets its values stored under its suffix too, beside these)."""
    return [k + s.key_suffix for k in (*BASE_KEYS, *NOVELTY_KEYS) for s in SAMPLERS]


def compute(ctx: EvalContext) -> dict[str, Any]:
    """KID, precision/recall, density/coverage and novelty of each sampler's
    ``fid_samples`` samples (None when ``fid_samples`` is 0 or ``sample_metrics`` off)."""
    out: dict[str, Any] = dict.fromkeys([*_keys(), *DETAIL_KEYS])
    n = ctx.option("fid_samples")
    if not n or not ctx.option("sample_metrics"):
        return out
    feats = eval_features(ctx)
    real = feats.test()
    device = ctx.device
    # precision/recall/density/coverage: as many real images as samples (a fixed subset)
    index = fixed_indices(len(real), n)
    real_n = real if index is None else real[index]
    radii = feats.cached(
        ctx.test,
        f"knn-radii-{PR_K}-{DC_K}-{len(real_n)}",
        lambda: real_radii(real_n, device=device),
        feature_cache.check_vectors({PR_K, DC_K}, len(real_n)),
    )
    subsets = ctx.option("kid_subsets")
    size = min(KID_SUBSET_SIZE, n, len(real))
    n_train = min(ctx.option("novelty_train"), len(ctx.train))
    if n_train:
        reference = ctx.train.subset(slice(0, n_train))
        train = feats.reference(reference)
        test_median = feats.cached(
            ctx.test,
            f"nn-median-to-{reference_cache_name(reference, feats.extractor)}",
            lambda: median_nearest(real, train, device=device),
            feature_cache.check_float,
        )
    for sampler in ctx.samplers():
        sfx = sampler_suffix(ctx, sampler)
        fake = feats.samples(sampler)
        out[f"kid{sfx}"], out[f"kid_std{sfx}"] = kid(fake, real, subsets, size)
        for key, value in prdc(fake, real_n, radii=radii, device=device).to_dict().items():
            out[key + sfx] = value
        if n_train:
            value = novelty(fake, train, test_median=test_median, device=device)
            out[f"novelty{sfx}"] = value
            out[f"memorised{sfx}"] = int(value < NOVELTY_THRESHOLD)
    out.update(
        kid_subsets=subsets,
        kid_subset_size=size,
        precision_k=PR_K,
        density_k=DC_K,
        prdc_real_images=len(real_n),
        novelty_train_images=n_train or None,
        novelty_train_total=len(ctx.train) if n_train else None,
    )
    return out


@dataclass(frozen=True)
class _Column:
    key: str
    label: str
    direction: str | None
    definition: str  # "{samples}" is replaced by the sampler's samples
    split_by: tuple[str, ...] = SPLIT_BY
    integer: bool = False
    copies_flag: bool = False  # the leaderboard's "copies" warning when the value is 1


def _copies(sampler: str) -> ColumnFlag:
    return ColumnFlag(
        "memorised",
        f"copies ({sampler})",
        1,
        f"{sampler} samples copy training images (novelty < {NOVELTY_THRESHOLD}) in "
        "{count} of {n} seed{s}",
    )


_COLUMNS = (
    _Column(
        "kid",
        "KID",
        "min",
        "Kernel inception distance (torch-fidelity: unbiased MMD², cubic polynomial kernel), "
        "{samples} vs the test split, mean over subsets of min(1000, n)",
    ),
    _Column("kid_std", "KID std", None, "Standard deviation of KID over its subsets, {samples}"),
    _Column(
        "precision",
        "Precision",
        "max",
        "Share of {samples} within the 3-NN ball of a real image (Kynkäänniemi et al. 2019, "
        "torch-fidelity); real images: as many test images as samples",
    ),
    _Column(
        "recall",
        "Recall",
        "max",
        "Share of real images within the 3-NN ball of one of the {samples} (Kynkäänniemi et "
        "al. 2019, torch-fidelity); real images: as many test images as samples",
    ),
    _Column(
        "density",
        "Density",
        "max",
        "Real images' 5-NN balls containing a sample, per sample and divided by 5, for the "
        "{samples} (Naeem et al. 2020; ≈1 like the data, >1 crowding dense regions); real "
        "images: as many test images as samples",
    ),
    _Column(
        "coverage",
        "Coverage",
        "max",
        "Share of real images whose 5-NN ball contains one of the {samples} (Naeem et al. "
        "2020); real images: as many test images as samples",
    ),
    _Column(
        "novelty",
        "Novelty",
        None,
        "Median distance of the {samples} to their nearest training image over the same for "
        "test images (FID features); ≈1 novel, <0.5 copying",
        (*SPLIT_BY, "novelty_train_images"),
    ),
    _Column(
        "memorised",
        "Memorised",
        "min",
        f"1 when novelty < {NOVELTY_THRESHOLD} (the {{samples}} copy training images), else 0",
        (*SPLIT_BY, "novelty_train_images"),
        integer=True,
        copies_flag=True,
    ),
)


def _columns() -> tuple[MetricColumn, ...]:
    """Each column of :data:`_COLUMNS` for each built-in sampler (:data:`SAMPLERS`),
    sampler by sampler within a column."""
    return tuple(_column(c, sampler) for c in _COLUMNS for sampler in SAMPLERS)


def _column(c: _Column, sampler: SamplerSpec) -> MetricColumn:
    return sampler_column(
        c.key,
        c.label,
        c.direction,
        c.definition,
        sampler,
        split_by=c.split_by,
        integer=c.integer,
        flag=_copies(sampler.label) if c.copies_flag else None,
    )


METRIC = MetricSpec(
    "samples",
    compute,
    description="KID, precision/recall (Kynkäänniemi et al.), density/coverage (Naeem et al.) "
    "and novelty against the training set, per sampler, on FID's samples and features",
    group="samples",
    order=31,
    details=DETAIL_KEYS,
    options=(
        MetricOption(
            "sample_metrics",
            bool,
            True,
            "KID, precision/recall, density/coverage, novelty on FID's samples (false: FID only)",
        ),
        MetricOption(
            "kid_subsets",
            int,
            100,
            "random subsets KID is averaged over (torch-fidelity's default: 100)",
            profiles={"smoke": 10, "quick": 10, "full": 100},
            minimum=1,
        ),
        MetricOption(
            "novelty_train",
            int,
            10000,
            "first training images novelty measures distances to (0: skip novelty)",
            profiles={"smoke": 2000, "quick": 5000, "full": 60000},
            minimum=0,
        ),
    ),
    columns=_columns(),
)
register_metrics = hook(METRIC)
