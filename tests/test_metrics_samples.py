"""Sample metrics beyond FID: KID, precision and recall equal torch-fidelity's,
density and coverage equal the ``prdc`` package and known answers, novelty flags
copies of training images; every sample metric is computed per sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch_fidelity
from prdc import compute_prdc

import aebench
from aebench.images import to_uint8
from aebench.metrics import fid
from aebench.metrics import samples as sm
from aebench.metrics._util import encode_all, fixed_indices
from aebench.metrics.context import generate_samples
from aebench.metrics.evaluate import evaluate, make_context
from aebench.models.base import AutoEncoder, Encoding, ModelConfig
from aebench.samplers import expost, prior

SPECS = [fid.METRIC, sm.METRIC]
SAMPLE_KEYS = ("fid", *sm.BASE_KEYS, *sm.NOVELTY_KEYS)
PRIOR_AND_EXPOST = (prior.SAMPLER, expost.SAMPLER)
"""The samplers these tests evaluate with, unless they say otherwise: the others fit a
network each (tests/test_samplers.py tests them)."""


class Replay(AutoEncoder):
    """Test-local model whose prior samples are fixed images, in order, so the metrics
    see known samples; its latent is the image itself (the ex-post sampler works)."""

    family = "replay"

    def __init__(self, images: torch.Tensor) -> None:
        shape = tuple(int(s) for s in images.shape[1:])
        super().__init__(ModelConfig(latent_dim=math.prod(shape)), shape)
        self.register_buffer("images", images)
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def encode(self, x: torch.Tensor) -> Encoding:
        return Encoding(x.flatten(1))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logit(z.clamp(1e-3, 1 - 1e-3)).reshape(-1, *self.input_shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        assert n <= len(self.images)
        return self.images[:n].float() / 255


@pytest.fixture(scope="module")
def features(fid_cache, digits):
    """Classifier features of the digits train and test splits."""
    ext = fid.ClassifierFeatureExtractor(
        fid.TF_CLASSIFIER_NAME, [fid.CLASSIFIER_FEATURE], str(fid_cache[1].path)
    )
    with torch.no_grad():
        return ext(digits[0].images)[0], ext(digits[1].images)[0]


def _evaluate(model, train, test, samplers=PRIOR_AND_EXPOST, **options):
    options = {"fid_samples": 300, "kid_subsets": 10, "probe_samples": 0, **options}
    return evaluate(make_context(model, train, test, sampler_specs=samplers, **options), SPECS)


def _unused_sampler_keys(samplers=PRIOR_AND_EXPOST) -> list[str]:
    """The column keys of the built-in samplers not among ``samplers`` (n/a)."""
    used = {s.name for s in samplers}
    return sorted(
        c.key
        for c in (*fid.METRIC.columns, *sm.METRIC.columns)
        if c.key.endswith(tuple(s.key_suffix for s in fid.SAMPLERS if s.name not in used))
    )


def _noisy(images: torch.Tensor, levels: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(-levels, levels + 1, images.shape, generator=g)
    return (images.int() + noise).clamp(0, 255).to(torch.uint8)


# -- against the reference implementations ----------------------------------------------
def _torch_fidelity(offline, images: torch.Tensor, real: torch.Tensor) -> dict:
    return torch_fidelity.calculate_metrics(
        input1=fid.UInt8Images(images),
        input2=fid.UInt8Images(real),
        fid=True,
        kid=True,
        prc=True,
        feature_extractor=fid.TF_CLASSIFIER_NAME,
        feature_layer_fid=fid.CLASSIFIER_FEATURE,
        feature_layer_kid=fid.CLASSIFIER_FEATURE,
        feature_layer_prc=fid.CLASSIFIER_FEATURE,
        feature_extractor_weights_path=str(offline.path),
        kid_subsets=10,
        kid_subset_size=300,
        batch_size=500,
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )


def test_kid_precision_recall_equal_torch_fidelity(offline, digits):
    train, test = digits
    images = _noisy(train.images[:300], 24)
    out = _evaluate(Replay(images), train, test)
    # FID and KID against the whole test split; precision and recall against as many
    # test images as samples (a fixed subset), as Kynkäänniemi et al. compare them
    direct = _torch_fidelity(offline, images, test.images)
    index = fixed_indices(len(test), 300)
    assert index is not None and len(index) == 300 < len(test)
    same_n = _torch_fidelity(offline, images, test.images[index])
    assert out["prdc_real_images"] == 300
    assert out["kid_subset_size"] == 300 and out["kid_subsets"] == 10
    assert out["kid"] == pytest.approx(direct[torch_fidelity.KEY_METRIC_KID_MEAN], rel=1e-6)
    assert out["kid_std"] == pytest.approx(direct[torch_fidelity.KEY_METRIC_KID_STD], rel=1e-6)
    # torch-fidelity returns float32 shares; ours are the same counts in float64
    assert out["precision"] == pytest.approx(same_n[torch_fidelity.KEY_METRIC_PRECISION], abs=1e-7)
    assert out["recall"] == pytest.approx(same_n[torch_fidelity.KEY_METRIC_RECALL], abs=1e-7)
    # the real set matters: against all test images precision and recall differ
    assert out["recall"] != pytest.approx(direct[torch_fidelity.KEY_METRIC_RECALL], abs=1e-7)
    assert 0 < out["precision"] < 1 and 0 < out["recall"] < 1  # a case that discriminates
    assert out["fid"] == pytest.approx(direct[torch_fidelity.KEY_METRIC_FID], rel=1e-6)
    assert out["precision_k"] == 3 and out["density_k"] == 5


def test_density_coverage_equal_prdc(features):
    train_f, test_f = features
    fake = train_f[:300]
    ref = compute_prdc(test_f.numpy(), fake.numpy(), nearest_k=5)
    ours = sm.prdc(fake, test_f)
    assert ours.density == pytest.approx(ref["density"], abs=1e-12)
    assert ours.coverage == pytest.approx(ref["coverage"], abs=1e-12)
    assert 0.5 < ours.coverage < 1 and ours.density > 0.5
    # k=3 precision/recall with prdc's strict "<" agree with torch-fidelity's "<=" here
    ref3 = compute_prdc(test_f.numpy(), fake.numpy(), nearest_k=3)
    assert (ours.precision, ours.recall) == pytest.approx((ref3["precision"], ref3["recall"]))
    # blocks smaller than the sets give the same numbers
    assert sm.prdc(fake, test_f, block=64) == ours


def test_density_coverage_use_as_many_real_images_as_samples(offline, digits, features):
    train, test = digits
    _, test_f = features
    images = _noisy(train.images[:300], 24)
    out = _evaluate(Replay(images), train, test)
    ext = fid.ClassifierFeatureExtractor(
        fid.TF_CLASSIFIER_NAME, [fid.CLASSIFIER_FEATURE], str(offline.path)
    )
    with torch.no_grad():
        fake = ext(images)[0]
    real = test_f[fixed_indices(len(test), 300)]
    ref = compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    assert out["density"] == pytest.approx(ref["density"], rel=1e-6)
    assert out["coverage"] == pytest.approx(ref["coverage"], abs=1e-12)
    # with more samples than test images, every test image is a real one
    many = _evaluate(
        Replay(train.images[: len(test) + 10]), train, test, fid_samples=len(test) + 10
    )
    assert many["prdc_real_images"] == len(test)


def test_prdc_against_prdc_on_random_features():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(400, 16, generator=g)
    fake = 1.3 * torch.randn(250, 16, generator=g) + 0.4
    ref = compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    ours = sm.prdc(fake, real, block=100)
    assert (ours.density, ours.coverage) == pytest.approx((ref["density"], ref["coverage"]))
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    # same counts; torch-fidelity's shares are float32
    ref_pr = calculate_precision_recall_full(fake, real, 3)
    assert (ours.precision, ours.recall) == pytest.approx(ref_pr, abs=1e-7)


def test_prdc_known_answers():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=g)
    same = sm.prdc(real.clone(), real)
    assert (same.precision, same.recall, same.coverage) == (1.0, 1.0, 1.0)
    # each point lies strictly inside its own ball and its k-1 nearest neighbours' (the k-th
    # is on the boundary); float32 distances may tip a boundary tie or two
    assert same.density == pytest.approx(1.0, abs=2 / (5 * 300))
    far = sm.prdc(real + 1000, real)
    assert (far.precision, far.recall, far.density, far.coverage) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="more than 5 points"):
        sm.prdc(real, real[:5])  # the real set's 5-NN radii need 6 points


def test_kid_known_answers(features):
    test_f = features[1]
    same = sm.kid(test_f[:180], test_f[180:], subsets=10)
    far = sm.kid(test_f[:180] + 5, test_f[180:], subsets=10)
    assert abs(same[0]) < 0.05 * far[0] and far[1] >= 0


def test_nearest_distances_and_radii_in_blocks():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(230, 5, generator=g), torch.randn(170, 5, generator=g)
    full = torch.cdist(x.double(), y.double())
    assert torch.allclose(sm.nearest_distances(x, y, block=64).double(), full.min(1).values)
    radii = sm.knn_radii(y, (3, 5), block=50)
    self_d = torch.cdist(y.double(), y.double())
    for k in (3, 5):
        expected = self_d.sort(1).values[:, k]  # column 0 is the point itself
        assert torch.allclose(radii[k].double(), expected, atol=1e-5)


# -- novelty ----------------------------------------------------------------------------
def test_novelty_flags_copies_of_training_images(offline, digits):
    train, test = digits
    copies = _evaluate(Replay(train.images[:300]), train, test)
    assert copies["novelty"] < 0.01 and copies["memorised"] == 1
    near = _evaluate(Replay(_noisy(train.images[:300], 8)), train, test)
    assert near["novelty"] < sm.NOVELTY_THRESHOLD and near["memorised"] == 1
    assert copies["novelty_train_images"] == copies["novelty_train_total"] == len(train)


def test_novelty_of_unseen_real_images_is_about_one(offline, digits):
    train, test = digits
    half = len(test) // 2
    unseen, reference = test.images[:half], test.subset(slice(half, None))
    out = _evaluate(Replay(unseen), train, reference, fid_samples=half)
    assert 0.8 < out["novelty"] < 1.25 and out["memorised"] == 0


def test_novelty_reference_and_cache(offline, digits, features):
    train, test = digits
    train_f, test_f = features
    out = _evaluate(Replay(train.images[1000:1300]), train, test, novelty_train=500)
    assert out["novelty_train_images"] == 500 and out["novelty_train_total"] == len(train)
    # the samples are training images, but not among the first 500: not memorised
    expected = sm.novelty(train_f[1000:1300], train_f[:500], test_f)
    assert out["novelty"] == pytest.approx(expected, rel=1e-5) and out["memorised"] == 0
    stats = fid.feature_cache_root()
    assert list(stats.glob("aebench-digits-test-*-knn-radii-3-5-*"))
    assert list(stats.glob("aebench-digits-test-*-nn-median-to-aebench-digits-train-*"))
    again = _evaluate(Replay(train.images[1000:1300]), train, test, novelty_train=500)
    assert {k: again[k] for k in SAMPLE_KEYS} == {k: out[k] for k in SAMPLE_KEYS}
    skipped = _evaluate(Replay(train.images[:300]), train, test, novelty_train=0)
    assert skipped["novelty"] is None and skipped["kid"] is not None


# -- the sampler axis -------------------------------------------------------------------
def test_vae_gets_values_for_each_of_its_samplers(offline, digits):
    train, test = digits
    torch.manual_seed(0)
    vae = aebench.create_model("vae-mlp", (1, 8, 8), latent_dim=4)
    out = _evaluate(vae, train, test, samplers=None, seed=3)  # every registered sampler
    for key in SAMPLE_KEYS:
        for sfx in ("", "_expost", "_twostage"):
            assert out[key + sfx] is not None, key + sfx
        assert out[f"{key}_codes"] is None, key  # discrete latents only
    assert len({out["fid"], out["fid_expost"], out["fid_twostage"]}) == 3
    assert out["kid"] != out["kid_expost"]
    assert out["fid_sampler"] == "N(0, I)" and "GaussianMixture" in out["fid_expost_sampler"]
    assert "two-stage VAE" in out["fid_twostage_sampler"] and out["fid_codes_sampler"] is None
    assert sorted(out["not_applicable"]) == [k for k in _unused_sampler_keys() if "_codes" in k]
    samples = generate_samples(vae, 300, seed=3)
    ref = fid.compute_fid(samples, test, "classifier", train_set=train)
    assert out["fid"] == ref.value and out["fid_extractor"] == ref.extractor


def test_ae_gets_only_expost_values_equal_to_its_own_samples(offline, digits):
    train, test = digits
    torch.manual_seed(0)
    ae = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=4)
    ae.fit_prior(encode_all(ae, train)[0])
    out = _evaluate(ae, train, test, seed=5)
    for key in SAMPLE_KEYS:
        assert out[key] is None and key in out["not_applicable"], key
        assert out[f"{key}_expost"] is not None, key
        assert out[f"{key}_twostage"] is None and out[f"{key}_codes"] is None, key
    assert out["fid_sampler"] is None and out["fid_expost_sampler"] == ae.prior_description
    own = generate_samples(ae, 300, seed=5)
    assert out["fid_expost"] == fid.compute_fid(own, test, "classifier", train_set=train).value


def test_reconstruction_fid_for_every_model_equals_torch_fidelity(offline, digits):
    train, test = digits
    # Replay reconstructs exactly: its value is the FID of the first n test images
    exact = _evaluate(Replay(train.images[:300]), train, test)
    first = test.images[:300]
    direct = _torch_fidelity(offline, first, test.images)[torch_fidelity.KEY_METRIC_FID]
    assert exact["fid_rec"] == pytest.approx(direct, rel=1e-5) and exact["fid_rec_images"] == 300
    torch.manual_seed(0)
    ae = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=2)  # untrained: blurry
    ae.fit_prior(encode_all(ae, train)[0])
    out = _evaluate(ae, train, test)
    with torch.no_grad():
        recon = to_uint8(ae.reconstruct(first.float() / 255))
    direct = _torch_fidelity(offline, recon, test.images)[torch_fidelity.KEY_METRIC_FID]
    assert out["fid_rec"] == pytest.approx(direct, rel=1e-5)
    assert out["fid_rec"] > 10 * exact["fid_rec"]
    # n is capped by the test split, and the column is there without any sampler
    many = _evaluate(Replay(train.images), train, test, samplers=(), fid_samples=len(test) + 50)
    assert many["fid_rec_images"] == len(test) and many["fid_rec"] is not None


def test_switches_and_budgets(offline, digits):
    train, test = digits
    model = Replay(train.images[:300])
    off = _evaluate(model, train, test, sample_metrics=False)
    assert off["fid"] is not None and off["fid_expost"] is not None
    unused = _unused_sampler_keys()  # the samplers it is not evaluated with
    assert all(off[k] is None for k in sm._keys()) and sorted(off["not_applicable"]) == unused
    none = _evaluate(model, train, test, fid_samples=0)
    assert all(none[k] is None for k in (*sm._keys(), "fid", "fid_expost", "fid_extractor"))
    assert sorted(none["not_applicable"]) == unused  # skipped by the budget, not inapplicable


def test_columns_name_their_sampler():
    columns = {c.key: c for c in sm.METRIC.columns + fid.METRIC.columns}
    for key in SAMPLE_KEYS:
        plain, expost = columns[key], columns[f"{key}_expost"]
        twostage, codes = columns[f"{key}_twostage"], columns[f"{key}_codes"]
        assert expost.label == f"{plain.label} (ex-post GMM)"
        assert twostage.label == f"{plain.label} (two-stage VAE)"
        assert codes.label == f"{plain.label} (code prior)"
        assert "prior" in plain.definition and "GaussianMixture" in expost.definition
        assert "Dai & Wipf" in twostage.definition and "codes" in codes.definition
        for col in (plain, expost, twostage, codes):
            assert col.applies_text and col.applies_to is not None, col.key
            assert col.split_by[:2] == ("fid_extractor", "fid_samples"), col.key
    assert "discrete" in columns["fid_codes"].applies_text
    assert columns["memorised"].integer and columns["novelty"].direction is None
    assert np.isclose(sm.NOVELTY_THRESHOLD, 0.5)
