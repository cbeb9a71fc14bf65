"""Disentanglement metrics (MIG, DCI, SAP, FactorVAE score) against hand-computed values
and synthetic latents with known answers, then end to end on the shapes plugin."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import aebench
from aebench.datasets.base import ImageSet
from aebench.metrics import disentanglement as dis
from aebench.metrics.context import EvalContext
from aebench.metrics.evaluate import evaluate, make_context
from aebench.plugins import get_plugins

KEYS = (
    "mig",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "sap",
    "factorvae_score",
)
KINDS = ("discrete", "continuous", "continuous", "continuous")
ESTIMATORS = 10  # boosting stages per DCI classifier: enough for these clean cases


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """The metrics, registered by hand until aebench lists them among its built-ins."""
    plugins = get_plugins()
    if any(s.name == "mig" for s in plugins.metrics):
        yield
        return
    plugins.register(dis, "disentanglement-test")
    try:
        yield
    finally:
        plugins.unregister("disentanglement-test")


# -- hand-computed values on tiny inputs -------------------------------------------------
def test_histogram_discretize_is_numpy_digitize_on_histogram_edges():
    x = np.array([0.0, 0.5, 1.0, 0.26, 0.74])
    # 4 bins over [0, 1]: left edges 0, .25, .5, .75; the maximum falls in the last bin
    assert dis.histogram_discretize(x, 4).tolist() == [1, 3, 4, 2, 3]
    two = dis.histogram_discretize(np.stack([x, -x], axis=1), 4)
    assert two[:, 0].tolist() == [1, 3, 4, 2, 3] and two[:, 1].tolist() == [4, 3, 1, 3, 2]
    assert set(dis.histogram_discretize(np.full(5, 7.0)).tolist()) == {11}  # constant: one bin


def test_factor_codes_share_bins_across_splits():
    train = np.array([[1.0, 0.0], [3.0, 0.5], [1.0, 1.0]])
    test = np.array([[3.0, 1.0], [2.0, 0.0]])
    a, b = dis.factor_codes(("discrete", "continuous"), train, test, num_bins=2)
    assert a[:, 0].tolist() == [0, 2, 0] and b[:, 0].tolist() == [2, 1]  # distinct values
    assert a[:, 1].tolist() == [1, 2, 2] and b[:, 1].tolist() == [2, 1]  # bins of both splits


def entropy2(p: float) -> float:
    """Entropy in nats of a two-valued variable with probabilities p, 1 - p."""
    return -p * np.log(p) - (1 - p) * np.log(1 - p)


def test_mig_by_hand():
    v = np.array([[0, 0, 1, 1]]).T
    # z0 copies v: I = H(v) = ln 2; z1 is independent of v: I = 0. MIG = ln 2 / ln 2.
    z = np.array([[0, 0, 1, 1], [0, 1, 0, 1]]).T
    assert dis.mig_from_codes(z, v) == pytest.approx([1.0])
    # z0 = [0, 0, 0, 1]: I(z0; v) = H(z0) - H(z0 | v) = h(1/4) - h(1/2) / 2.
    z = np.array([[0, 0, 0, 1], [0, 1, 0, 1]]).T
    expected = (entropy2(0.25) - entropy2(0.5) / 2) / np.log(2)
    assert dis.mig_from_codes(z, v) == pytest.approx([expected])
    # Through mig(): float latents are binned (20 bins), a discrete factor is its values.
    score, per_factor = dis.mig(z.astype(float) * 3.7 - 1, v.astype(float) + 5, ("discrete",))
    assert score == pytest.approx(expected) and per_factor == pytest.approx([expected])
    # A constant factor has no entropy: it is left out, not divided by zero.
    v2 = np.array([[0, 0, 1, 1], [4, 4, 4, 4]]).T
    assert np.isnan(dis.mig_from_codes(z, v2)[1])
    # One latent dimension: the gap is its information alone.
    assert dis.mig_from_codes(z[:, :1], v) == pytest.approx([expected])


def test_dci_disentanglement_and_completeness_by_hand():
    eye = np.diag([5.0] * 5)
    assert dis.dci_disentanglement(eye) == pytest.approx(1.0)
    assert dis.dci_completeness(eye) == pytest.approx(1.0)
    # Each dimension used for two factors: 1 - log 2 / log 10 (10 factors, 5 dims).
    two_factors = np.hstack([eye, eye])
    assert dis.dci_disentanglement(two_factors) == pytest.approx(1 - np.log(2) / np.log(10))
    assert dis.dci_completeness(two_factors) == pytest.approx(1.0)
    # Each factor in two dimensions: completeness drops the same way.
    two_dims = np.vstack([eye, eye])
    assert dis.dci_disentanglement(two_dims) == pytest.approx(1.0)
    assert dis.dci_completeness(two_dims) == pytest.approx(1 - np.log(2) / np.log(10))
    assert dis.dci_disentanglement(np.zeros((4, 4))) == pytest.approx(0.0, abs=1e-6)
    # R = [[3, 1], [0, 2]]: dim 0 splits 3:1 between the factors, dim 1 serves factor 1 only.
    r = np.array([[3.0, 1.0], [0.0, 2.0]])

    def h2(p: float) -> float:
        return entropy2(p) / np.log(2)

    d = (4 / 6) * (1 - h2(0.75)) + (2 / 6) * 1.0
    c = (3 / 6) * 1.0 + (3 / 6) * (1 - h2(1 / 3))
    assert dis.dci_disentanglement(r) == pytest.approx(d, abs=1e-6)
    assert dis.dci_completeness(r) == pytest.approx(c, abs=1e-6)


def test_sap_by_hand():
    v = np.array([[1.0, 2.0, 3.0, 4.0]]).T
    z = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, -1.0, 1.0, -1.0], [2.0, 2.0, 2.0, 2.0]]).T
    # R² of z0 is 1; of z1, cov² / (var z var v) = (2/3)² / ((4/3)(5/3)) = 0.2; z2 is constant.
    matrix = dis.sap_matrix(z, v, z, v, ("continuous",))
    assert matrix[:, 0] == pytest.approx([1.0, 0.2, 0.0])
    score, per_factor = dis.sap(z, v, z, v, ("continuous",))
    assert score == pytest.approx(0.8) and per_factor == pytest.approx([0.8])
    # A discrete factor: accuracy of a one-dimensional linear SVM on the test points.
    y = np.array([[0, 1] * 100]).T.astype(float)
    zz = np.column_stack([y[:, 0] * 2.0 - 1.0, np.zeros(len(y))])
    matrix = dis.sap_matrix(zz, y, zz, y, ("discrete",))
    assert matrix[0, 0] == pytest.approx(1.0)  # a threshold separates the two classes
    assert matrix[1, 0] == pytest.approx(0.5)  # a constant dim: one class, half right
    assert dis.sap(zz, y, zz, y, ("discrete",))[0] == pytest.approx(0.5)


def test_discrete_factors_with_non_integer_values_score_as_their_classes():
    # dSprites' discrete factors are grid values (scale 0.5, 0.6, ...): scikit-learn would
    # refuse them as "continuous" labels, so SAP (like the others) uses class indices.
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(300, 2))
    values = np.array([0.5, 0.75, 1.0])[codes]
    z = codes + rng.normal(0, 0.1, size=codes.shape)
    kinds = ("discrete", "discrete")
    on_values = dis.sap_matrix(z[:200], values[:200], z[200:], values[200:], kinds)
    on_codes = dis.sap_matrix(z[:200], codes[:200], z[200:], codes[200:], kinds)
    assert on_values == pytest.approx(on_codes)
    # the encoding dimension beats the other one (about chance, 1/3) for each factor
    assert on_values[0, 0] > on_values[1, 0] + 0.2 and on_values[1, 1] > on_values[0, 1] + 0.2
    assert dis.mig(z, values, kinds)[0] == pytest.approx(dis.mig(z, codes, kinds)[0])


def test_factorvae_majority_vote_by_hand():
    train = np.array([[5, 0, 1], [1, 4, 3]])  # dims 0, 1, 2 predict factors 0, 1, 1
    evals = np.array([[2, 1, 0], [0, 1, 2]])
    train_acc, eval_acc = dis.majority_vote_accuracy(train, evals)
    assert train_acc == pytest.approx(12 / 14) and eval_acc == pytest.approx(5 / 6)
    assert dis.majority_vote_accuracy(train, np.zeros((2, 3), dtype=int))[1] == 0.0


def test_factorvae_votes_for_the_dimension_that_stays_still():
    # Two factors with 4 classes; dim 1 copies factor 0, dim 0 copies factor 1.
    codes = np.stack(np.meshgrid(np.arange(4), np.arange(4)), -1).reshape(-1, 2).repeat(8, 0)
    z = codes[:, ::-1].astype(float)
    votes = dis.factorvae_votes(
        z, codes, z.var(0, ddof=1), np.array([True, True]), 200, np.random.default_rng(0), 16
    )
    assert votes.sum() == 200
    assert votes[0, 0] == votes[1, 1] == 0  # fixing factor k never leaves dim k as the stillest
    # A pruned (collapsed) dimension never gets a vote, and its index is kept.
    z3 = np.column_stack([z, np.full(len(z), 2.0)])
    res = dis.factorvae_score(z3, codes, z3, codes, n_votes=200, batch_size=16)
    assert res.active_dims == 2 and res.score == pytest.approx(1.0)


# -- synthetic latents with known answers ------------------------------------------------
def draw_factors(n: int, seed: int) -> np.ndarray:
    """A discrete shape (3 values) and three independent uniform continuous factors."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.integers(0, 3, n), rng.uniform(0, 1, (n, 3))]).astype(float)


TRAIN, TEST = draw_factors(1200, 0), draw_factors(600, 1)
MEAN, STD = TRAIN.mean(0), TRAIN.std(0)


def standard(f: np.ndarray) -> np.ndarray:
    return (f - MEAN) / STD


def scores(z_train: np.ndarray, z_test: np.ndarray) -> dict[str, float]:
    """Every metric on latents of TRAIN and TEST (the module's own functions, cheap budgets)."""
    codes_train, codes_test = dis.factor_codes(KINDS, TRAIN, TEST)
    mig, mig_per = dis.mig(z_test, TEST, KINDS)
    dci = dis.dci(z_train, codes_train, z_test, codes_test, n_estimators=ESTIMATORS, n_jobs=1)
    sap, sap_per = dis.sap(z_train, TRAIN, z_test, TEST, KINDS)
    fvae = dis.factorvae_score(z_train, codes_train, z_test, codes_test, n_votes=600)
    return {
        "mig": mig,
        "mig_per_factor": mig_per,
        "dci_disentanglement": dci.disentanglement,
        "dci_completeness": dci.completeness,
        "dci_informativeness": dci.informativeness,
        "dci_per_factor": dci.test_accuracy,
        "sap": sap,
        "sap_per_factor": sap_per,
        "factorvae_score": fvae.score,
    }


@pytest.fixture(scope="module")
def perfect() -> dict[str, float]:
    return scores(standard(TRAIN), standard(TEST))


def test_latents_equal_to_the_factors_score_near_one(perfect):
    # MIG's plug-in estimate of the second-best information is biased up by about
    # (bins - 1)² / 2n nats (0.3 of ln 20 = 3 nats at n = 600), hence not quite 1.
    assert perfect["mig"] > 0.85
    assert perfect["dci_disentanglement"] > 0.95 and perfect["dci_completeness"] > 0.95
    assert perfect["dci_informativeness"] > 0.8
    # SAP: about 1 per continuous factor; the three-valued shape's gap is at most
    # 1 - 1/3, since a dimension without it still guesses a third right.
    assert perfect["sap"] > 0.85
    assert perfect["factorvae_score"] > 0.95


def test_scores_ignore_the_order_scale_and_sign_of_dimensions(perfect):
    perm, scale = [2, 0, 3, 1], np.array([3.0, -0.5, 10.0, -2.0])
    moved = scores(standard(TRAIN)[:, perm] * scale + 1, standard(TEST)[:, perm] * scale + 1)
    assert moved["mig"] == pytest.approx(perfect["mig"], abs=1e-9)
    for key in ("dci_disentanglement", "dci_completeness", "factorvae_score"):
        assert moved[key] == pytest.approx(perfect[key], abs=0.05), key
    # SAP's R² (continuous factors) ignores scale; its SVM (C=0.01 on the raw dimension, as
    # in disentanglement_lib) does not: the discrete shape may score differently.
    assert moved["sap_per_factor"][1:] == pytest.approx(perfect["sap_per_factor"][1:], abs=1e-9)


def test_a_random_rotation_mixes_every_factor_and_scores_low(perfect):
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))
    mixed = scores(standard(TRAIN) @ q, standard(TEST) @ q)
    assert mixed["mig"] < 0.3
    assert mixed["dci_disentanglement"] < 0.5 and mixed["dci_completeness"] < 0.5
    assert mixed["sap"] < 0.6 * perfect["sap"]
    # Nothing is lost, only mixed: every factor stays predictable well above chance (1/3 for
    # the shape, 1/20 for a continuous factor's bins), though axis-aligned trees on a small
    # budget predict rotated latents less well than the aligned ones.
    chance = np.array([1 / 3, 1 / 20, 1 / 20, 1 / 20])
    assert (np.asarray(mixed["dci_per_factor"]) > 2 * chance).all()
    assert mixed["dci_informativeness"] < perfect["dci_informativeness"]


def test_an_equal_mixture_defeats_the_factorvae_score_too():
    # A Hadamard rotation gives every dimension the same share of every factor: no
    # dimension stays still when one factor is fixed, so the votes are chance (1/4).
    # (A generic rotation can keep a FactorVAE score high: that metric only asks which
    # dimension varies least, not whether it varies with the other factors too.)
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2
    mixed = scores(standard(TRAIN) @ hadamard, standard(TEST) @ hadamard)
    assert mixed["mig"] < 0.1 and mixed["sap"] < 0.15
    assert mixed["dci_disentanglement"] < 0.2
    assert mixed["factorvae_score"] < 0.25 + 0.15


def test_latents_ignoring_one_factor_lose_exactly_that_factor(perfect):
    rng = np.random.default_rng(4)
    z_train, z_test = standard(TRAIN), standard(TEST)
    z_train[:, 2], z_test[:, 2] = rng.normal(size=len(TRAIN)), rng.normal(size=len(TEST))
    out = scores(z_train, z_test)
    per = out["mig_per_factor"]
    assert per[2] < 0.05 and min(per[[0, 1, 3]]) > 0.85
    assert out["mig"] == pytest.approx(np.mean(per)) and 0.6 < out["mig"] < 0.75
    assert out["dci_per_factor"][2] < 0.2 < 0.8 < min(out["dci_per_factor"][[0, 1, 3]])
    assert out["dci_informativeness"] < perfect["dci_informativeness"] - 0.1
    # Fixing the ignored factor leaves no dimension still: its votes are chance, the
    # others' right: about 3/4 + 1/4 * 1/4.
    assert 0.7 < out["factorvae_score"] < 0.92


def test_the_factorvae_score_ignores_the_scale_of_noisy_dimensions():
    """Kim & Mnih divide each dimension by its global standard deviation, so rescaling
    one dimension changes nothing. Noise keeps the fixed factor's own dimension from
    being exactly still, which is what exposes a division by the variance instead (the
    rescaled dimension then always looks stillest: 0.26 instead of 1.0)."""
    rng = np.random.default_rng(6)
    codes_train, codes_test = dis.factor_codes(KINDS, TRAIN, TEST)
    z_train = standard(TRAIN) + 0.2 * rng.normal(size=TRAIN.shape)
    z_test = standard(TEST) + 0.2 * rng.normal(size=TEST.shape)
    plain = dis.factorvae_score(z_train, codes_train, z_test, codes_test, n_votes=600)
    stretch = np.array([100.0, 1.0, 1.0, 1.0])
    scaled = dis.factorvae_score(
        z_train * stretch, codes_train, z_test * stretch, codes_test, n_votes=600
    )
    assert plain.score > 0.9
    assert scaled.score == pytest.approx(plain.score, abs=1e-9)


def test_noise_only_latents_score_about_zero():
    rng = np.random.default_rng(5)
    out = scores(rng.normal(size=(len(TRAIN), 4)), rng.normal(size=(len(TEST), 4)))
    assert out["mig"] < 0.05 and out["sap"] < 0.1
    assert out["dci_disentanglement"] < 0.2 and out["dci_completeness"] < 0.2
    assert out["dci_informativeness"] < 0.25  # chance: 1/3 for shape, 1/20 per binned factor
    assert out["factorvae_score"] < 0.25 + 0.15  # chance is 1/K for a majority vote


def test_collapsed_latents_score_zero():
    z_train, z_test = np.zeros((len(TRAIN), 3)), np.zeros((len(TEST), 3))
    codes_train, codes_test = dis.factor_codes(KINDS, TRAIN, TEST)
    assert dis.mig(z_test, TEST, KINDS)[0] == 0.0
    assert dis.sap(z_train, TRAIN, z_test, TEST, KINDS)[0] == pytest.approx(0.0)
    res = dis.factorvae_score(z_train, codes_train, z_test, codes_test, n_votes=50)
    assert (res.score, res.active_dims) == (0.0, 0)


# -- through EvalContext: alignment, budgets, constant factors ----------------------------
def imageset(factors: np.ndarray, split: str, with_factors: bool = True) -> ImageSet:
    n = len(factors)
    names = ("color", "shape", "scale", "x", "y")
    full = np.column_stack([np.ones(n), factors])  # a constant first factor, like dSprites'
    return ImageSet(
        torch.zeros(n, 1, 4, 4, dtype=torch.uint8),
        torch.as_tensor(factors[:, 0]).long(),
        ("a", "b", "c"),
        "synthetic",
        split,
        factors=torch.as_tensor(full, dtype=torch.float32) if with_factors else None,
        factor_names=names if with_factors else None,
        factor_kinds=("discrete", *KINDS) if with_factors else None,
    )


def context(z_train: np.ndarray, z_test: np.ndarray, **options: int) -> EvalContext:
    budgets = {"dci_estimators": ESTIMATORS, "factorvae_votes": 400, **options}
    ctx = make_context(
        None,  # type: ignore[arg-type]  # never used: the latents are given
        imageset(TRAIN, "train"),
        imageset(TEST, "test"),
        profile="smoke",
        **budgets,
    )
    ctx.cache["encodings:train"] = (torch.as_tensor(z_train, dtype=torch.float32), None)
    ctx.cache["encodings:test"] = (torch.as_tensor(z_test, dtype=torch.float32), None)
    return ctx


def test_evaluate_writes_every_column_and_leaves_constant_factors_out():
    ctx = context(standard(TRAIN)[:1000], standard(TEST))  # train latents: the first 1000
    out = evaluate(ctx, dis.METRICS)
    assert out["not_applicable"] == []
    for key in KEYS:
        assert isinstance(out[key], float) and 0.0 <= out[key] <= 1.0, key
    assert out["mig"] > 0.85 and out["factorvae_score"] > 0.95
    assert list(out["mig_per_factor"]) == ["shape", "scale", "x", "y"]  # no "color"
    assert list(out["sap_per_factor"]) == ["shape", "scale", "x", "y"]
    assert out["mig_samples"] == 600 and out["dci_samples"] == 500  # smoke budgets
    assert out["sap_samples"] == 1000 and out["dci_estimators"] == ESTIMATORS
    assert out["factorvae_votes"] == 400 and out["factorvae_active_dims"] == 4
    assert np.array(out["dci_importance"]).shape == (4, 4)
    json.dumps(out)  # stored as metrics.json


def test_misaligned_latents_would_score_low():
    # The same latents shifted by one image: the factors no longer match (a guard
    # that the metrics really read each image's own factors).
    z_train, z_test = standard(TRAIN)[:1000], standard(TEST)
    out = evaluate(context(np.roll(z_train, 1, 0), np.roll(z_test, 1, 0)), [dis.MIG])
    assert out["mig"] < 0.1


def test_zero_budgets_skip_and_no_factors_is_not_applicable():
    ctx = context(
        standard(TRAIN),
        standard(TEST),
        mig_samples=0,
        dci_samples=0,
        sap_samples=0,
        factorvae_votes=0,
    )
    out = evaluate(ctx, dis.METRICS)
    assert all(out[k] is None for k in KEYS) and out["not_applicable"] == []
    ctx = context(standard(TRAIN), standard(TEST))
    ctx.test = imageset(TEST, "test", with_factors=False)
    out = evaluate(ctx, dis.METRICS)
    assert all(out[k] is None for k in KEYS) and sorted(out["not_applicable"]) == sorted(KEYS)


def test_columns_are_declared_for_the_leaderboard():
    cols = {c.key: c for s in dis.METRICS for c in s.columns}
    assert tuple(cols) == KEYS
    for c in cols.values():
        assert c.direction == "max" and c.group == "representation" and c.label and c.definition
    options = {o.name: o for s in dis.METRICS for o in s.options}
    assert set(options) == {
        "mig_samples",
        "dci_samples",
        "dci_estimators",
        "sap_samples",
        "factorvae_votes",
    }
    assert options["dci_estimators"].default_for("full") == 100  # disentanglement_lib's
    assert all(o.default_for("smoke") <= o.default_for("full") for o in options.values())


# -- end to end: shapes gets the columns, digits gets "not applicable" --------------------
@pytest.fixture(scope="module")
def shapes_registered() -> Iterator[None]:
    if "shapes" in get_plugins().datasets:
        yield
        return
    src = Path(__file__).resolve().parents[1] / "plugins" / "aebench-shapes" / "src"
    sys.path.insert(0, str(src))
    import aebench_shapes

    get_plugins().register(aebench_shapes, "shapes-test")
    try:
        yield
    finally:
        get_plugins().unregister("shapes-test")


def test_a_shapes_run_reports_disentanglement_and_digits_does_not(
    tmp_path, shapes_registered, one_thread
):
    summary = aebench.run(
        "ae-mlp",
        "shapes,digits",
        out=tmp_path,
        epochs=1,
        report=False,
        model_options={"hidden_dims": [32], "latent_dim": 4},
        dataset_options={"shapes": {"n_train": 300, "n_test": 200, "size": 16}},
        metric_options={
            "fid_samples": 0,
            "probe_samples": 100,
            "mig_samples": 200,
            "dci_samples": 200,
            "dci_estimators": 5,
            "sap_samples": 200,
            "factorvae_votes": 100,
        },
    )
    assert [o.status for o in summary.outcomes] == ["done", "done"]
    check_factor_columns(tmp_path, "shapes", ["shape", "scale", "rotation", "x", "y"])


def check_factor_columns(out: Path, dataset: str, factors: list[str]) -> None:
    """Every disentanglement column of the benchmark ``out`` is a score in [0, 1] on
    ``dataset`` (per factor, in ``factors``' order) and "not applicable" on digits."""
    table = pd.read_csv(out / "results.csv").set_index("dataset")
    for key in KEYS:
        assert 0.0 <= table.loc[dataset, key] <= 1.0, key
        assert pd.isna(table.loc["digits", key]), key
    for run in (out / "runs").iterdir():
        metrics = json.loads((run / "metrics.json").read_text())
        if run.name.startswith("digits"):
            assert set(KEYS) <= set(metrics["not_applicable"])
        else:
            assert not set(KEYS) & set(metrics["not_applicable"])
            assert list(metrics["mig_per_factor"]) == factors
