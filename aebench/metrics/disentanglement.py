"""Disentanglement: MIG, DCI, SAP and the FactorVAE score, as disentanglement_lib defines them.

These metrics compare the latent means ``encode(x).mean`` with the generative
factors a dataset knows (``ImageSet.factors``: the ``shapes`` plugin,
``dsprites``); they are "not applicable" elsewhere. They follow Locatello et
al. 2019 ("Challenging common assumptions in the unsupervised learning of
disentangled representations") and its library, google-research/
disentanglement_lib (``evaluation/metrics/{mig,dci,sap_score,factor_vae,utils}.py``
and the ``unsupervised_study_v1`` metric configs), with its constants:

* **Discretisation** (``utils._histogram_discretize``): a continuous value is
  replaced by its bin among :data:`NUM_BINS` (20) equal-width bins spanning its
  range, ``np.digitize(x, np.histogram(x, 20)[1][:-1])``. Latents are
  discretised this way for MIG; continuous factors wherever a metric needs
  classes (MIG, DCI, the FactorVAE batches), with the bins of the train and test
  points together so both splits share classes. Discrete factors (a shape; every
  dSprites factor, which lie on a grid and which disentanglement_lib uses as
  class indices) are their distinct values.
* **MIG** (Chen et al. 2018, ``mig.py``): on the test latents, the mutual
  information ``I(z_j; v_k)`` (nats, ``sklearn.metrics.mutual_info_score`` of
  the discretised values) between every latent dimension and every factor; per
  factor, the gap between its two most informative dimensions divided by the
  factor's entropy ``H(v_k)``; averaged over factors.
* **DCI** (Eastwood & Williams 2018, ``dci.py``): one scikit-learn
  ``GradientBoostingClassifier`` per factor predicts the factor's class from the
  train latents; ``R[j, k]`` is dimension ``j``'s feature importance for factor
  ``k``. *Disentanglement*: ``sum_j rho_j (1 - H_K(R[j, :]))`` with
  ``rho_j = sum_k R[j, k] / sum R`` (entropy base K, the number of factors);
  *completeness*: ``sum_k rho_k (1 - H_D(R[:, k]))`` (base D, the latent
  dimensions); *informativeness*: the classifiers' mean accuracy on the test
  latents (disentanglement_lib's ``informativeness_test``; an accuracy, so
  higher is better, unlike the paper's prediction error). Budgets replace the
  library's ``GradientBoostingClassifier()`` defaults: ``dci_estimators`` trees
  per class (100 in disentanglement_lib; fewer in the smoke/quick profiles) on
  ``dci_samples`` train points, scored on half as many test points.
* **SAP** (Kumar et al. 2018, ``sap_score.py``): a score matrix ``S[j, k]``
  per latent dimension and factor; per factor, the gap between its two highest
  scores; averaged over factors. For a continuous factor ``S`` is the R² of a
  one-dimensional linear regression, ``cov(z_j, v_k)² / (var z_j var v_k)`` (0
  where ``var z_j <= 1e-12``), on the test latents; for a discrete factor it is
  the test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")`` fitted
  on the single train dimension ``z_j`` (the library's ``continuous_factors``
  flag, chosen per factor from ``factor_kinds``). A dimension that carries
  nothing about a discrete factor still scores about the chance accuracy
  (1 / its number of classes), so that factor's gap stays near ``1 - 1/classes``
  (2/3 for a three-valued shape) even when one dimension encodes it exactly.
* **FactorVAE score** (Kim & Mnih 2018, ``factor_vae.py``): latent dimensions
  are divided by their standard deviation over the train latents; those with a
  standard deviation below :data:`PRUNE_THRESHOLD` (0.05, the study's
  ``prune_dims.threshold``) are dropped as collapsed. One *vote* fixes a factor
  ``k`` (uniformly drawn), draws a batch of :data:`FACTORVAE_BATCH` (64) images
  sharing that factor's (discretised) value and votes for the active dimension
  with the least normalised variance over the batch. A majority-vote classifier
  (each dimension predicts the factor it most often won for) is fitted on
  ``factorvae_votes`` votes from the train split; the score is its accuracy on
  half as many votes from the test split (the library's ``eval_accuracy``).
  disentanglement_lib renders each batch from the generative process (fixed
  factor, the others resampled from their prior); aebench has only the
  dataset's own images, so a batch is drawn with replacement among the images
  whose fixed factor falls in the anchor image's class: this approximates
  sampling from the generative process when the factors are independent and
  the split is large enough that each class holds many images (the quick
  profile's 2,000-image shapes test split holds about 100 per class). Unlike
  the library, a vote indexes the full list of dimensions when some are pruned
  (its ``argmin`` is taken over the active dimensions only but counted as if
  over all of them).

Constant factors (one distinct value, such as dSprites' colour) carry no
information and are left out of every metric, as disentanglement_lib leaves
out dSprites' colour. Each metric takes a fixed subset of points (the same
for every run on a dataset) and seeds its own randomness (boosting, votes)
with the run's seed; per-factor values and the counts used are stored beside
the columns (``mig_per_factor``, ``mig_samples``, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from aebench.metrics.context import hook
from aebench.specs import MetricColumn, MetricOption, MetricSpec

if TYPE_CHECKING:
    import torch

    from aebench.datasets.base import ImageSet
    from aebench.metrics.context import EvalContext

NUM_BINS = 20
"""Equal-width histogram bins that discretise continuous values (disentanglement_lib's 20)."""
PRUNE_THRESHOLD = 0.05
"""Standard deviation below which the FactorVAE score drops a latent dimension as collapsed."""
FACTORVAE_BATCH = 64
FACTORVAE_NORMALISATION = "std"
"""Stored with every FactorVAE score: what the latents were divided by. Scores stored
before aebench divided by the standard deviation (they divided by the variance, which
made the score depend on each dimension's scale) have none, so the leaderboard never
puts the two in one column."""
"""Images per FactorVAE vote (disentanglement_lib's ``batch_size``)."""
SUBSET_SEED = 0
"""Seed of the fixed subsets of points the metrics use (the same for every run)."""


# -- discretisation -------------------------------------------------------------------
def histogram_discretize(values: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Bin index (1..``num_bins``) of every value among ``num_bins`` equal-width bins
    spanning its column's range, as disentanglement_lib's ``_histogram_discretize``;
    ``(N,)`` or ``(N, D)`` (each column binned on its own), int64."""
    x = np.asarray(values, dtype=np.float64)
    cols = x.reshape(len(x), -1)
    out = np.zeros(cols.shape, dtype=np.int64)
    for j in range(cols.shape[1]):
        edges = np.histogram(cols[:, j], num_bins)[1]
        out[:, j] = np.digitize(cols[:, j], edges[:-1])
    return out.reshape(x.shape)


def factor_codes(
    kinds: Sequence[str], *factors: np.ndarray, num_bins: int = NUM_BINS
) -> list[np.ndarray]:
    """Integer classes ``(N_i, K)`` of each ``(N_i, K)`` factor array, shared across them:
    a discrete factor's distinct values, numbered; a continuous factor's histogram bin
    (:func:`histogram_discretize`) over all arrays together."""
    sizes = [len(f) for f in factors]
    joint = np.concatenate([np.asarray(f, dtype=np.float64) for f in factors])
    codes = np.zeros(joint.shape, dtype=np.int64)
    for k, kind in enumerate(kinds):
        if kind == "continuous":
            codes[:, k] = histogram_discretize(joint[:, k], num_bins)
        else:
            codes[:, k] = np.unique(joint[:, k], return_inverse=True)[1].reshape(-1)
    return np.split(codes, np.cumsum(sizes)[:-1])


# -- MIG --------------------------------------------------------------------------------
def mutual_information(codes_z: np.ndarray, codes_v: np.ndarray) -> np.ndarray:
    """``I(z_j; v_k)`` in nats for every column pair of two integer arrays, ``(D, K)``."""
    from sklearn.metrics import mutual_info_score

    d, k = codes_z.shape[1], codes_v.shape[1]
    m = np.zeros((d, k))
    for j in range(d):
        for i in range(k):
            m[j, i] = mutual_info_score(codes_v[:, i], codes_z[:, j])
    return m


def mig_from_codes(codes_z: np.ndarray, codes_v: np.ndarray) -> np.ndarray:
    """Per-factor MIG ``(I_1st - I_2nd) / H(v_k)`` from discretised latents and factors;
    NaN for a constant factor (zero entropy). One latent dimension: the gap is ``I_1st``."""
    m = mutual_information(codes_z, codes_v)
    entropy = np.array(
        [mutual_information(codes_v[:, [k]], codes_v[:, [k]])[0, 0] for k in range(m.shape[1])]
    )
    ordered = -np.sort(-m, axis=0)
    second = ordered[1] if len(ordered) > 1 else np.zeros(m.shape[1])
    gap = ordered[0] - second
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(entropy > 0, gap / np.where(entropy > 0, entropy, 1.0), np.nan)


def mig(
    latents: np.ndarray,
    factors: np.ndarray,
    kinds: Sequence[str],
    num_bins: int = NUM_BINS,
) -> tuple[float, np.ndarray]:
    """(MIG, per-factor values) of latent means ``(N, D)`` against factors ``(N, K)``:
    latents binned into ``num_bins`` histogram bins, continuous factors too."""
    (codes_v,) = factor_codes(kinds, factors, num_bins=num_bins)
    per_factor = mig_from_codes(histogram_discretize(latents, num_bins), codes_v)
    return _nanmean(per_factor), per_factor


# -- DCI --------------------------------------------------------------------------------
def _normalised_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy (log base ``base``) of each column of non-negative weights ``p``, as
    ``scipy.stats.entropy(p + 1e-11, base=base)`` computes it."""
    p = p + 1e-11
    p = p / p.sum(axis=0, keepdims=True)
    if base < 2:
        return np.zeros(p.shape[1])
    return -(p * np.log(p)).sum(axis=0) / np.log(base)


def dci_disentanglement(importance: np.ndarray) -> float:
    """Eastwood & Williams' disentanglement of an importance matrix ``(D, K)``: per
    dimension ``1 - H_K(R[j, :])``, weighted by the dimension's share of importance."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    per_code = 1.0 - _normalised_entropy(r.T, r.shape[1])
    if r.sum() == 0.0:
        r = np.ones_like(r)
    return float(np.sum(per_code * r.sum(axis=1) / r.sum()))


def dci_completeness(importance: np.ndarray) -> float:
    """Eastwood & Williams' completeness of an importance matrix ``(D, K)``: per factor
    ``1 - H_D(R[:, k])``, weighted by the factor's share of importance."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    per_factor = 1.0 - _normalised_entropy(r, r.shape[0])
    if r.sum() == 0.0:
        r = np.ones_like(r)
    return float(np.sum(per_factor * r.sum(axis=0) / r.sum()))


@dataclass(frozen=True)
class DCIResult:
    """DCI scores, the importance matrix ``(D, K)`` and per-factor accuracies."""

    disentanglement: float
    completeness: float
    informativeness: float
    informativeness_train: float
    importance: np.ndarray
    test_accuracy: np.ndarray


def dci(
    z_train: np.ndarray,
    codes_train: np.ndarray,
    z_test: np.ndarray,
    codes_test: np.ndarray,
    *,
    n_estimators: int = 100,
    seed: int = 0,
    n_jobs: int | None = None,
) -> DCIResult:
    """DCI from latents and integer factor classes (:func:`factor_codes`): one
    ``GradientBoostingClassifier(n_estimators)`` per factor, fitted on the train
    points; its feature importances form ``R``; accuracies are measured on both
    splits. A factor with a single class among the train points is skipped. Factors
    are fitted in ``n_jobs`` threads (default: torch's thread count)."""
    from joblib import Parallel, delayed
    from sklearn.ensemble import GradientBoostingClassifier

    def fit(i: int) -> tuple[int, np.ndarray, float, float]:
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        model.fit(z_train, codes_train[:, i])
        train_acc = np.mean(model.predict(z_train) == codes_train[:, i])
        test_acc = np.mean(model.predict(z_test) == codes_test[:, i])
        return i, np.abs(model.feature_importances_), float(train_acc), float(test_acc)

    d, k = z_train.shape[1], codes_train.shape[1]
    importance = np.zeros((d, k))
    acc_train, acc_test = np.full(k, np.nan), np.full(k, np.nan)
    todo = [i for i in range(k) if len(np.unique(codes_train[:, i])) >= 2]
    # The trees are built without the GIL: threads use the cores the run was given.
    jobs = max(1, min(len(todo), n_jobs or torch_threads()))
    for i, imp, train_acc, test_acc in Parallel(n_jobs=jobs, prefer="threads")(
        delayed(fit)(i) for i in todo
    ):
        importance[:, i], acc_train[i], acc_test[i] = imp, train_acc, test_acc
    fitted = ~np.isnan(acc_test)
    kept = importance[:, fitted]
    return DCIResult(
        disentanglement=dci_disentanglement(kept) if fitted.any() else float("nan"),
        completeness=dci_completeness(kept) if fitted.any() else float("nan"),
        informativeness=_nanmean(acc_test),
        informativeness_train=_nanmean(acc_train),
        importance=importance,
        test_accuracy=acc_test,
    )


def torch_threads() -> int:
    """The CPU threads this process may use (torch's setting, which executors set per worker)."""
    import torch

    return torch.get_num_threads()


# -- SAP --------------------------------------------------------------------------------
def sap_matrix(
    z_train: np.ndarray,
    f_train: np.ndarray,
    z_test: np.ndarray,
    f_test: np.ndarray,
    kinds: Sequence[str],
) -> np.ndarray:
    """SAP's score matrix ``(D, K)``: the R² of ``z_j`` for a continuous factor (on the
    test points), the test accuracy of a one-dimensional ``LinearSVC(C=0.01,
    class_weight="balanced")`` fitted on the train points for a discrete one."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    d, k = z_train.shape[1], f_train.shape[1]
    scores = np.zeros((d, k))
    for i, kind in enumerate(kinds):
        if kind == "continuous":
            v = f_test[:, i].astype(np.float64)
            var_v = np.var(v, ddof=1)
            for j in range(d):
                z = z_test[:, j].astype(np.float64)
                var_z = np.var(z, ddof=1)
                if var_z > 1e-12 and var_v > 0:
                    cov = np.cov(z, v, ddof=1)[0, 1]
                    scores[j, i] = cov**2 / (var_z * var_v)
            continue
        # class indices, not the values: scikit-learn refuses non-integer float labels
        # (dSprites' scale 0.5, 0.6, ...) as "continuous"
        _, codes = np.unique(np.concatenate([f_train[:, i], f_test[:, i]]), return_inverse=True)
        y_train, y_test = codes[: len(f_train)], codes[len(f_train) :]
        if len(np.unique(y_train)) < 2:
            continue
        for j in range(d):
            clf = LinearSVC(C=0.01, class_weight="balanced")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(z_train[:, [j]], y_train)
            scores[j, i] = np.mean(clf.predict(z_test[:, [j]]) == y_test)
    return scores


def sap_from_matrix(scores: np.ndarray) -> np.ndarray:
    """Per-factor SAP: the gap between the two highest scores of each column
    (the highest alone with one latent dimension)."""
    ordered = -np.sort(-np.asarray(scores, dtype=np.float64), axis=0)
    second = ordered[1] if len(ordered) > 1 else np.zeros(ordered.shape[1])
    return ordered[0] - second


def sap(
    z_train: np.ndarray,
    f_train: np.ndarray,
    z_test: np.ndarray,
    f_test: np.ndarray,
    kinds: Sequence[str],
) -> tuple[float, np.ndarray]:
    """(SAP, per-factor values): the mean over factors of :func:`sap_from_matrix`."""
    per_factor = sap_from_matrix(sap_matrix(z_train, f_train, z_test, f_test, kinds))
    return _nanmean(per_factor), per_factor


# -- FactorVAE score ----------------------------------------------------------------------
def factorvae_votes(
    latents: np.ndarray,
    codes: np.ndarray,
    scale: np.ndarray,
    active: np.ndarray,
    n_votes: int,
    rng: np.random.Generator,
    batch_size: int = FACTORVAE_BATCH,
) -> np.ndarray:
    """Votes ``(K, D)``: ``n_votes`` times, fix a uniformly drawn factor ``k``, draw
    ``batch_size`` images (with replacement) sharing an anchor image's class of
    ``k`` and vote for the active dimension whose variance over the batch, divided
    by ``scale`` (the global standard deviation), is least. Anchors are drawn among images
    whose class holds at least two images; a factor without such a class gets none."""
    k = codes.shape[1]
    votes = np.zeros((k, latents.shape[1]), dtype=np.int64)
    active_dims = np.flatnonzero(active)
    z = latents[:, active_dims].astype(np.float64) / scale[active_dims]
    usable = []
    for i in range(k):
        order = np.argsort(codes[:, i], kind="stable")
        _, start, count = np.unique(codes[order, i], return_index=True, return_counts=True)
        eligible = np.flatnonzero(count >= 2)
        if len(eligible):
            usable.append((i, order, start[eligible], count[eligible]))
    if not usable or not len(active_dims):
        return votes
    chosen = rng.integers(0, len(usable), n_votes)
    for u, (i, order, start, count) in enumerate(usable):
        m = int((chosen == u).sum())
        for lo in range(0, m, 1024):
            size = min(1024, m - lo)
            # An anchor image uniformly among eligible images: its class in proportion to size.
            group = rng.choice(len(count), size=size, p=count / count.sum())
            offset = (rng.random((size, batch_size)) * count[group, None]).astype(np.int64)
            batch = z[order[start[group, None] + offset]]  # (size, batch, active)
            winner = active_dims[np.argmin(batch.var(axis=1, ddof=1), axis=1)]
            np.add.at(votes, (i, winner), 1)
    return votes


def majority_vote_accuracy(train_votes: np.ndarray, eval_votes: np.ndarray) -> tuple[float, float]:
    """(train, eval) accuracy of the majority-vote classifier fitted on ``train_votes``
    ``(K, D)``: dimension ``j`` predicts ``argmax_k train_votes[k, j]`` (ties: the first)."""
    predict = np.argmax(train_votes, axis=0)
    cols = np.arange(train_votes.shape[1])
    out = []
    for votes in (train_votes, eval_votes):
        total = votes.sum()
        out.append(float(votes[predict, cols].sum() / total) if total else 0.0)
    return out[0], out[1]


@dataclass(frozen=True)
class FactorVAEResult:
    """FactorVAE score (eval accuracy), train accuracy and the active dimensions kept."""

    score: float
    train_accuracy: float
    active_dims: int


def factorvae_score(
    z_train: np.ndarray,
    codes_train: np.ndarray,
    z_test: np.ndarray,
    codes_test: np.ndarray,
    *,
    n_votes: int = 10000,
    n_eval_votes: int | None = None,
    seed: int = 0,
    batch_size: int = FACTORVAE_BATCH,
    threshold: float = PRUNE_THRESHOLD,
) -> FactorVAEResult:
    """The FactorVAE score: global variances and the classifier from the train points,
    ``n_votes`` train votes and ``n_eval_votes`` (default half) test votes; 0 when every
    dimension is collapsed (standard deviation below ``threshold``)."""
    variances = np.var(np.asarray(z_train, dtype=np.float64), axis=0, ddof=1)
    active = np.sqrt(variances) >= threshold
    if not active.any():
        return FactorVAEResult(0.0, 0.0, 0)
    rng = np.random.default_rng(seed)
    scale = np.where(active, np.sqrt(variances), 1.0)  # Kim & Mnih: z / global std
    train_votes = factorvae_votes(z_train, codes_train, scale, active, n_votes, rng, batch_size)
    n_eval = max(1, n_votes // 2) if n_eval_votes is None else n_eval_votes
    eval_votes = factorvae_votes(z_test, codes_test, scale, active, n_eval, rng, batch_size)
    train_acc, eval_acc = majority_vote_accuracy(train_votes, eval_votes)
    return FactorVAEResult(eval_acc, train_acc, int(active.sum()))


# -- the metrics ------------------------------------------------------------------------
def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if len(kept) else float("nan")


def _value(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def has_factors(ctx: EvalContext) -> bool:
    """Whether the run's train and test splits carry generative factors."""
    return ctx.train.factors is not None and ctx.test.factors is not None


@dataclass(frozen=True)
class FactorData:
    """Latent means and factors of one split's fixed subset, non-constant factors only."""

    latents: np.ndarray
    factors: np.ndarray
    names: tuple[str, ...]
    kinds: tuple[str, ...]


def _subset(n_total: int, n: int | None) -> np.ndarray:
    if n is None or n >= n_total:
        return np.arange(n_total)
    perm = np.random.default_rng(SUBSET_SEED).permutation(n_total)
    return np.sort(perm[:n])


def _factors(data: ImageSet) -> torch.Tensor:
    """The factors of ``data``, which these metrics only run on when it has them."""
    if data.factors is None:
        raise ValueError(f"{data.name} has no generative factors")
    return data.factors


def _varying_factors(ctx: EvalContext) -> np.ndarray:
    """Indices of the factors with more than one distinct value over both splits."""
    if "disentanglement:varying" not in ctx.cache:
        both = np.concatenate([_factors(ctx.train).numpy(), _factors(ctx.test).numpy()])
        varies = [len(np.unique(both[:, k])) > 1 for k in range(both.shape[1])]
        ctx.cache["disentanglement:varying"] = np.flatnonzero(varies)
    return ctx.cache["disentanglement:varying"]


def factor_data(ctx: EvalContext, split: str, n: int | None) -> FactorData:
    """Latent means (``ctx.latents(split)``, float64) and the aligned factors of a fixed
    subset of ``n`` points of ``split`` (all when ``n`` is None or larger), keeping the
    factors that vary over the two splits (cached per split and ``n``)."""
    key = f"disentanglement:{split}:{n}"
    if key in ctx.cache:
        return ctx.cache[key]
    data = ctx.train if split == "train" else ctx.test
    z = ctx.latents(split).double().numpy()
    factors = _factors(data)[: len(z)].double().numpy()  # train latents: its first points
    keep = _varying_factors(ctx)
    index = _subset(len(z), n)
    names = tuple(data.factor_names or ())
    kinds = tuple(data.factor_kinds or ())
    out = FactorData(
        z[index],
        factors[index][:, keep],
        tuple(names[k] for k in keep),
        tuple(kinds[k] for k in keep),
    )
    ctx.cache[key] = out
    return out


def _per_factor(names: Sequence[str], values: np.ndarray) -> dict[str, float | None]:
    return {name: _value(v) for name, v in zip(names, values, strict=True)}


def _train_test(ctx: EvalContext, budget: str) -> tuple[FactorData, FactorData] | None:
    """What a metric fitted on train and scored on test reads, for its sample budget
    (the option ``budget``, ``n``): ``n`` train points and half as many (at least one)
    test points; None when the budget is 0 (skipped) or no factor varies."""
    n = ctx.option(budget)
    if not n:
        return None
    train, test = factor_data(ctx, "train", n), factor_data(ctx, "test", max(1, n // 2))
    return (train, test) if train.names else None


def compute_mig(ctx: EvalContext) -> dict[str, Any]:
    n = ctx.option("mig_samples")
    if not n:
        return {"mig": None}
    test = factor_data(ctx, "test", n)
    if not test.names:
        return {"mig": None}
    score, per_factor = mig(test.latents, test.factors, test.kinds)
    return {
        "mig": _value(score),
        "mig_per_factor": _per_factor(test.names, per_factor),
        "mig_samples": len(test.latents),
    }


def compute_dci(ctx: EvalContext) -> dict[str, Any]:
    data = _train_test(ctx, "dci_samples")
    if data is None:
        return dict.fromkeys(("dci_disentanglement", "dci_completeness", "dci_informativeness"))
    train, test = data
    codes_train, codes_test = factor_codes(train.kinds, train.factors, test.factors)
    estimators = ctx.option("dci_estimators")
    res = dci(
        train.latents, codes_train, test.latents, codes_test, n_estimators=estimators, seed=ctx.seed
    )
    return {
        "dci_disentanglement": _value(res.disentanglement),
        "dci_completeness": _value(res.completeness),
        "dci_informativeness": _value(res.informativeness),
        "dci_informativeness_train": _value(res.informativeness_train),
        "dci_informativeness_per_factor": _per_factor(train.names, res.test_accuracy),
        "dci_importance": np.round(res.importance, 6).tolist(),
        "dci_samples": len(train.latents),
        "dci_estimators": estimators,
    }


def compute_sap(ctx: EvalContext) -> dict[str, Any]:
    data = _train_test(ctx, "sap_samples")
    if data is None:
        return {"sap": None}
    train, test = data
    score, per_factor = sap(train.latents, train.factors, test.latents, test.factors, train.kinds)
    return {
        "sap": _value(score),
        "sap_per_factor": _per_factor(train.names, per_factor),
        "sap_samples": len(train.latents),
    }


def compute_factorvae(ctx: EvalContext) -> dict[str, Any]:
    votes = ctx.option("factorvae_votes")
    if not votes:
        return {"factorvae_score": None}
    train, test = factor_data(ctx, "train", None), factor_data(ctx, "test", None)
    if not train.names:
        return {"factorvae_score": None}
    codes_train, codes_test = factor_codes(train.kinds, train.factors, test.factors)
    res = factorvae_score(
        train.latents, codes_train, test.latents, codes_test, n_votes=votes, seed=ctx.seed
    )
    return {
        "factorvae_score": res.score,
        "factorvae_train_accuracy": res.train_accuracy,
        "factorvae_active_dims": res.active_dims,
        "factorvae_votes": votes,
        "factorvae_normalisation": FACTORVAE_NORMALISATION,
    }


APPLIES = "datasets with generative factors (shapes, dsprites)"
ORDER = 55
_spec = partial(
    MetricSpec,
    group="representation",
    order=ORDER,
    applies_to=has_factors,
    applies_text=APPLIES,
)


def _budget(name: str, help: str, smoke: int, quick: int) -> MetricOption:
    """A sample budget: 10,000 in the ``full`` profile, 0 skips the metric."""
    return MetricOption(
        name,
        int,
        10000,
        help,
        profiles={"smoke": smoke, "quick": quick, "full": 10000},
        minimum=0,
    )


MIG = _spec(
    "mig",
    compute_mig,
    description="Mutual information gap (Chen et al. 2018) between latent means and factors",
    details=("mig_per_factor", "mig_samples"),
    options=(
        _budget(
            "mig_samples",
            "test latent means MIG is estimated on (0: skip)",
            1000,
            5000,
        ),
    ),
    columns=(
        MetricColumn(
            "mig",
            "MIG",
            "0-1",
            "max",
            "Mean over factors of the gap between the two latent dims most informative about "
            "it, / its entropy (20-bin histograms)",
            split_by=("mig_samples",),
        ),
    ),
)
DCI = _spec(
    "dci",
    compute_dci,
    description="Disentanglement, completeness and informativeness (Eastwood & Williams "
    "2018) from gradient-boosted-tree importances",
    details=(
        "dci_informativeness_train",
        "dci_informativeness_per_factor",
        "dci_importance",
        "dci_samples",
        "dci_estimators",
    ),
    options=(
        _budget(
            "dci_samples",
            "train latent means the DCI trees are fitted on, half as many test ones scored "
            "(0: skip)",
            500,
            2000,
        ),
        MetricOption(
            "dci_estimators",
            int,
            100,
            "boosting stages per DCI classifier (scikit-learn's default, 100, in "
            "disentanglement_lib)",
            profiles={"smoke": 10, "quick": 20, "full": 100},
            minimum=1,
        ),
    ),
    columns=(
        MetricColumn(
            "dci_disentanglement",
            "DCI disentanglement",
            "0-1",
            "max",
            "Importance-weighted 1 - entropy (base K) of each latent dim's tree importances "
            "over the K factors",
            split_by=("dci_samples", "dci_estimators"),
        ),
        MetricColumn(
            "dci_completeness",
            "DCI completeness",
            "0-1",
            "max",
            "Importance-weighted 1 - entropy (base D) of each factor's tree importances over "
            "the D latent dims",
            split_by=("dci_samples", "dci_estimators"),
        ),
        MetricColumn(
            "dci_informativeness",
            "DCI informativeness",
            "accuracy",
            "max",
            "Test accuracy of gradient-boosted trees predicting each factor's class from the "
            "latent means, mean over factors",
            split_by=("dci_samples", "dci_estimators"),
        ),
    ),
)
SAP = _spec(
    "sap",
    compute_sap,
    description="Separated attribute predictability (Kumar et al. 2018)",
    details=("sap_per_factor", "sap_samples"),
    options=(
        _budget(
            "sap_samples",
            "train latent means SAP's classifiers are fitted on, half as many test ones "
            "scored (0: skip)",
            1000,
            5000,
        ),
    ),
    columns=(
        MetricColumn(
            "sap",
            "SAP",
            "0-1",
            "max",
            "Mean over factors of the gap between the two best single-dim predictors (R² if "
            "continuous, linear SVM accuracy if discrete)",
            split_by=("sap_samples",),
        ),
    ),
)
FACTORVAE = _spec(
    "factorvae",
    compute_factorvae,
    description="FactorVAE score (Kim & Mnih 2018): majority-vote accuracy of the least-varying "
    "latent dim when one factor is fixed",
    details=(
        "factorvae_train_accuracy",
        "factorvae_active_dims",
        "factorvae_votes",
        "factorvae_normalisation",
    ),
    options=(
        _budget(
            "factorvae_votes",
            f"FactorVAE batches of {FACTORVAE_BATCH} train images voting (half as many test "
            "ones scored; 0: skip)",
            200,
            1000,
        ),
    ),
    columns=(
        MetricColumn(
            "factorvae_score",
            "FactorVAE score",
            "accuracy",
            "max",
            "Accuracy of a majority vote predicting the fixed factor from the latent dim of "
            "least normalised variance in a batch (dimensions divided by their global "
            "standard deviation)",
            split_by=("factorvae_votes", "factorvae_normalisation"),
        ),
    ),
)
METRICS = (MIG, DCI, SAP, FACTORVAE)
register_metrics = hook(*METRICS)
