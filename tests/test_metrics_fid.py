"""FID: our wrapper equals torch-fidelity and a scipy Fréchet distance; extractor
resolution is offline (Inception only when its weights are on disk)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity
import torch_fidelity.utils

import aebench
from aebench.errors import ConfigError
from aebench.metrics import fid


def _frechet(f1: np.ndarray, f2: np.ndarray) -> float:
    """Textbook FID (Heusel et al.) with scipy's matrix square root, in float64."""
    f1, f2 = f1.astype(np.float64), f2.astype(np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _noise(n: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)


def test_classifier_is_cached_accurate_and_identified(offline, digits):
    info = offline
    assert info.path.is_file() and info.path.parent == fid.cache_dir() / "fid"
    assert info.test_accuracy is not None and info.test_accuracy > 0.9
    assert info.identity.startswith("aebench-classifier:digits:v1:")
    again = fid.ensure_classifier(*digits)  # a cache hit: no retraining, same identity
    assert again.identity == info.identity and again.test_accuracy == info.test_accuracy
    # the identity names the training data and the weights
    assert info.identity.startswith(fid.classifier_identity(digits[0]) + ":")
    state = torch.load(info.path, weights_only=True)["state_dict"]
    assert info.identity.endswith(":" + fid.weights_digest(state)[:12])
    labels = digits[0].labels.clone()
    labels[0] = (labels[0] + 1) % 10
    relabelled = aebench.ImageSet(digits[0].images, labels, name="digits")
    # another train set (one label changed), another extractor
    assert fid.classifier_identity(relabelled) != info.identity
    assert fid.classifier_identity(digits[0].subset(slice(0, 500))) != info.identity


def test_a_cached_classifier_without_its_weights_named_is_not_reused(digits, tmp_path):
    """Two classifiers trained on the same data can differ (another torch, another
    machine): a cache file written before aebench named the weights, or one whose
    weights were changed, is trained again under an identity naming its new weights."""
    train, test = digits[0].subset(slice(0, 300)), digits[1]
    first = fid.ensure_classifier(train, test, root=tmp_path)
    ckpt = torch.load(first.path, weights_only=True)
    # another classifier under the same file name, as an older aebench wrote it
    ckpt["state_dict"] = {k: v + 0.01 for k, v in ckpt["state_dict"].items()}
    old_id = ckpt["meta"]["identity"].rsplit(":", 1)[0]
    ckpt["meta"] = {k: v for k, v in ckpt["meta"].items() if k != "weights_sha256"}
    ckpt["meta"]["identity"] = old_id
    torch.save(ckpt, first.path)
    again = fid.ensure_classifier(train, test, root=tmp_path)
    assert again.identity != old_id and again.identity == first.identity  # retrained, seeded
    # weights changed behind the recorded digest: not used either
    ckpt = torch.load(again.path, weights_only=True)
    ckpt["state_dict"] = {k: v * 2 for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, again.path)
    third = fid.ensure_classifier(train, test, root=tmp_path)
    state = torch.load(third.path, weights_only=True)["state_dict"]
    assert third.identity.endswith(":" + fid.weights_digest(state)[:12])


def test_auto_falls_back_to_classifier_and_labels_it(offline, digits):
    assert fid.inception_weights_path() is None
    assert fid.resolve_extractor("auto") == fid.CLASSIFIER
    with pytest.raises(ConfigError, match=fid.INCEPTION_WEIGHTS_FILE):
        fid.resolve_extractor(fid.INCEPTION)
    with pytest.raises(ConfigError, match="unknown FID extractor"):
        fid.resolve_extractor("vgg")
    train, test = digits
    res = fid.compute_fid(train.images[:200], test, "auto", train_set=train)
    assert res.extractor == offline.identity
    assert "test accuracy" in res.extractor_detail and offline.path.name in res.extractor_detail
    assert res.grayscale_handling == fid.GRAY_NATIVE
    assert (res.n_samples, res.n_reference) == (200, len(test))


def test_inception_weights_detected_on_disk(offline, tmp_path, monkeypatch):
    monkeypatch.setattr(fid, "INCEPTION_SHA256", hashlib.sha256(b"stub").hexdigest())
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True)
    (hub / fid.INCEPTION_WEIGHTS_FILE).write_bytes(b"stub")
    assert fid.inception_weights_path() == hub / fid.INCEPTION_WEIGHTS_FILE
    assert fid.resolve_extractor("auto") == fid.INCEPTION
    own = tmp_path / "my-inception.pth"
    own.write_bytes(b"stub")
    monkeypatch.setenv(fid.ENV_INCEPTION_WEIGHTS, str(own))
    assert fid.inception_weights_path() == own
    monkeypatch.setenv(fid.ENV_INCEPTION_WEIGHTS, str(tmp_path / "missing.pth"))
    assert fid.resolve_extractor("auto") == fid.CLASSIFIER


def test_equals_direct_torch_fidelity_call(offline, digits):
    train, test = digits
    samples = train.images[:300]
    stats_dir = fid.feature_cache_root()
    before = set(stats_dir.glob("aebench-digits-test-*stat-fid*"))
    ours = fid.compute_fid(samples, test, fid.CLASSIFIER, train_set=train)
    direct = torch_fidelity.calculate_metrics(
        input1=fid.UInt8Images(samples),
        input2=fid.UInt8Images(test.images),
        fid=True,
        feature_extractor=fid.TF_CLASSIFIER_NAME,
        feature_layer_fid=fid.CLASSIFIER_FEATURE,
        feature_extractor_weights_path=str(offline.path),
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )[torch_fidelity.KEY_METRIC_FID]
    assert ours.value == direct  # the same extraction and Fréchet computation, to the bit
    # the reference statistics of this test set are cached in at most one file (other
    # tests of the session may have cached other subsets of digits) ...
    stats = set(stats_dir.glob("aebench-digits-test-*stat-fid*"))
    assert len(stats - before) <= 1 and stats
    # ... which a second call reads, agreeing, without writing another
    assert fid.compute_fid(samples, test, "classifier", train_set=train).value == ours.value
    assert set(stats_dir.glob("aebench-digits-test-*stat-fid*")) == stats


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # dead ReLU units: zero-variance dims
def test_equals_scipy_frechet_of_extracted_features(offline, digits):
    train, test = digits
    samples = train.images[300:700]
    ext = fid.ClassifierFeatureExtractor(
        fid.TF_CLASSIFIER_NAME, [fid.CLASSIFIER_FEATURE], str(offline.path)
    )
    with torch.no_grad():
        (f1,) = ext(samples)
        (f2,) = ext(test.images)
    expected = _frechet(f1.numpy(), f2.numpy())
    ours = fid.compute_fid(samples, test, "classifier", train_set=train, cache=False)
    assert ours.value == pytest.approx(expected, rel=1e-4)


def test_same_distribution_small_noise_large(offline, digits):
    train, test = digits
    half = len(test) // 2
    a, b = test.subset(slice(0, half)), test.subset(slice(half, None))
    same = fid.compute_fid(a.images, b, "classifier", train_set=train, cache=False).value
    noise = fid.compute_fid(_noise(half, test.shape), b, "classifier", train_set=train).value
    assert 0 <= same < 0.1 * noise
    floats = fid.compute_fid(a.images.float() / 255, b, "classifier", train_set=train, cache=False)
    assert floats.value == pytest.approx(same)  # [0, 1] floats are quantised back to uint8


def test_classifier_needs_labels_and_train_set(offline, digits):
    train, test = digits
    with pytest.raises(ValueError, match="train_set"):
        fid.compute_fid(train.images[:10], test, "classifier")
    unlabelled = aebench.ImageSet(train.images[:50], None, name="nolabels")
    with pytest.raises(ConfigError, match="needs labels"):
        fid.compute_fid(train.images[:10], test, "classifier", train_set=unlabelled)
    with pytest.raises(ValueError, match="shape"):
        fid.compute_fid(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), test, train_set=train)


def test_inception_path_wiring(offline, tmp_path, monkeypatch, digits):
    """The real Inception weights cannot be downloaded here: check what we hand to
    torch-fidelity (local weights path, layer, grayscale repeated to 3 channels);
    tests/test_untrusted_files.py runs a real Inception on fake weights."""
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"stub")
    monkeypatch.setattr(fid, "INCEPTION_SHA256", hashlib.sha256(b"stub").hexdigest())
    monkeypatch.setenv(fid.ENV_INCEPTION_WEIGHTS, str(weights))
    seen: dict = {"inputs": []}
    g = torch.Generator().manual_seed(0)

    class Stub:
        def get_name(self) -> str:
            return "stub-inception"

    def fake_create_module(extractor, **kwargs):
        seen["extractor"] = extractor
        return Stub()

    def fake_extract(input_id, module, input1, **kwargs):
        seen["inputs"].append(input1)
        return {"2048": torch.randn(len(input1), 5, generator=g)}

    monkeypatch.setattr(fid, "create_module", fake_create_module)
    monkeypatch.setattr(torch_fidelity.utils, "extract_featuresdict_from_input_id", fake_extract)
    train, test = digits
    res = fid.compute_fid(train.images[:6], test, "auto")
    ext = seen["extractor"]
    assert ext.name == fid.INCEPTION and ext.layer == "2048" and ext.weights == str(weights)
    samples, reference = seen["inputs"]
    assert samples[0].shape == (3, 8, 8) and samples[0].dtype == torch.uint8
    assert torch.equal(reference[5][1], test.images[5][0])
    assert len(list(fid.feature_cache_root().glob("*-rgb-stub-inception-stat-fid-2048.*"))) == 1
    assert (res.extractor, res.feature_layer) == (fid.INCEPTION, "2048") and res.value > 0
    assert res.grayscale_handling == fid.GRAY_REPEAT and weights.name in res.extractor_detail


def test_classifier_features_nhwc_and_pool_first_match_the_plain_net(offline, digits):
    """The extractor runs the net channels-last and pools before each ReLU for speed;
    its features are the textbook conv-ReLU-pool net's, to float rounding."""
    ext = fid.ClassifierFeatureExtractor(
        fid.TF_CLASSIFIER_NAME, [fid.CLASSIFIER_FEATURE], str(offline.path)
    )
    x = digits[1].images
    b = ext.net.body
    plain = torch.nn.Sequential(b[0], b[2], b[1], b[3], b[5], b[4], *b[6:]).to(
        memory_format=torch.contiguous_format
    )
    with torch.no_grad():
        got = ext(x)[0]
        relu_first = plain(x.float().div(255.0).sub(0.5).contiguous())
        pool_first = ext.net.body(x.float().div(255.0).sub(0.5).contiguous())
    assert [type(m).__name__ for m in plain[:3]] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert torch.equal(relu_first, pool_first)  # ReLU and max-pooling commute exactly
    assert torch.allclose(got, relu_first, rtol=1e-5, atol=1e-5) and got.abs().sum() > 0
    assert ext.get_name().endswith("-nhwc")  # NHWC features never mix with NCHW caches
