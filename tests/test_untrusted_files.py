"""No pickle from a file aebench did not just write in this process: a pickle planted
in the feature cache (aebench's safetensors files, or torch-fidelity's old ``.pt``
names) or in place of the Inception weights never runs, is named in one line, and
the values stay right; the cache files get the mode the umask gives."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

import aebench
from aebench.errors import ConfigError
from aebench.metrics import feature_cache, fid
from aebench.metrics import samples as sm
from aebench.metrics.evaluate import evaluate, make_context
from aebench.samplers import prior


class Payload:
    """Unpickling this creates ``marker``: what a planted file could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(path: Path, marker: Path) -> None:
    """A torch.save pickle at ``path`` whose loading with ``weights_only=False`` creates
    ``marker`` (as torch-fidelity's cache and Inception loader would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(Payload(marker), path)


@pytest.fixture
def cache(offline, tmp_path, monkeypatch) -> Path:
    """An empty aebench cache but for the session's digits classifier (no training)."""
    root = tmp_path / "cache"
    (root / "fid").mkdir(parents=True)
    shutil.copy(offline.path, root / "fid" / offline.path.name)
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(root))
    return root


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload-ran"


def test_the_payload_runs_when_unpickled(tmp_path, marker):
    """The planted files of these tests are live: loading one as torch-fidelity does runs it."""
    plant(tmp_path / "x.pt", marker)
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert marker.exists()


def _evaluate(digits) -> dict:
    train, test = digits
    torch.manual_seed(0)
    model = aebench.create_model("vae-mlp", (1, 8, 8), latent_dim=4)
    ctx = make_context(
        model,
        train,
        test,
        sampler_specs=(prior.SAMPLER,),
        fid_samples=100,
        kid_subsets=3,
        probe_samples=0,
        novelty_train=200,
        seed=1,
    )
    return evaluate(ctx, [fid.METRIC, sm.METRIC])


VALUE_KEYS = ("fid", "fid_rec", "kid", "precision", "recall", "density", "coverage", "novelty")


def test_planted_pickles_in_the_feature_cache_never_run(cache, digits, marker, capsys):
    first = _evaluate(digits)
    root = fid.feature_cache_root()
    files = sorted(root.iterdir())
    # test features and statistics, train features, k-NN radii, the novelty median
    assert len(files) == 5 and all(p.suffix == ".safetensors" for p in files), files
    assert not (cache / "fid" / "stats").exists()  # torch-fidelity's cache: never written
    assert capsys.readouterr().err == ""
    # a pickle in place of each file, and at each name torch-fidelity's cache used
    for path in files:
        plant(path, marker)
        plant(cache / "fid" / "stats" / (path.stem + ".pt"), marker)
    again = _evaluate(digits)
    assert not marker.exists()
    assert {k: again[k] for k in VALUE_KEYS} == {k: first[k] for k in VALUE_KEYS}
    assert all(first[k] is not None for k in VALUE_KEYS)
    lines = capsys.readouterr().err.splitlines()
    for path in files:
        said = [line for line in lines if str(path) in line]
        assert len(said) == 1, (path, lines)
        assert said[0].startswith(f"aebench: warning: ignoring {path}: not a valid aebench")
    assert len(lines) == len(files)
    # ... and each is replaced by a valid cache file
    for path in files:
        with path.open("rb") as fh:
            assert not fh.read(2).startswith(b"PK")  # torch.save's zip
    # read back from the cache, every value is the same to the bit
    cached = _evaluate(digits)
    assert {k: cached[k] for k in VALUE_KEYS} == {k: first[k] for k in VALUE_KEYS}
    assert capsys.readouterr().err == "" and not marker.exists()


def _damage_pickle(path: Path, marker: Path) -> None:
    plant(path, marker)


def _damage_truncate(path: Path, marker: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _damage_shape(path: Path, marker: Path) -> None:
    """A valid file of the right key and kind whose sigma does not fit its mu."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as fh:
        key, kind = fh.metadata()["key"], fh.metadata()["kind"]
    feature_cache.save(path, key, kind, {"mu": np.zeros(3), "sigma": np.zeros((2, 2))})


def _damage_key(path: Path, marker: Path) -> None:
    """Another value's valid file under this name."""
    feature_cache.save(path, "another-key", "stat-fid", {"mu": np.zeros(3), "sigma": np.eye(3)})


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (_damage_pickle, "not a safetensors file"),
        (_damage_truncate, "not a safetensors file"),
        (_damage_shape, "do not fit"),
        (_damage_key, "another-key"),
    ],
)
def test_compute_fid_refuses_a_damaged_statistics_file(cache, digits, marker, capsys, damage, why):
    train, test = digits
    samples = train.images[:200]
    first = fid.compute_fid(samples, test, fid.CLASSIFIER, train_set=train)
    (stats,) = fid.feature_cache_root().glob("*-stat-fid-*.safetensors")
    damage(stats, marker)
    again = fid.compute_fid(samples, test, fid.CLASSIFIER, train_set=train)
    assert again.value == first.value and not marker.exists()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"aebench: warning: ignoring {stats}: not a valid aebench feature")
    assert why in line
    assert fid.compute_fid(samples, test, fid.CLASSIFIER, train_set=train).value == first.value
    assert capsys.readouterr().err == ""  # replaced by a valid file


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_cache_files_get_the_mode_of_the_umask(cache, digits, umask, mode):
    """Not mkstemp's 0600: a group sharing a cache folder reads each other's files."""
    train, test = digits
    old = os.umask(umask)
    try:
        fid.compute_fid(train.images[:50], test, fid.CLASSIFIER, train_set=train)
    finally:
        os.umask(old)
    files = list(fid.feature_cache_root().iterdir())
    assert len(files) == 2  # the test split's features and statistics
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {mode}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
def test_dataset_cache_entries_get_the_mode_of_the_umask(tmp_path, monkeypatch, umask, mode):
    from aebench.datasets import cache

    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(tmp_path))
    old = os.umask(umask)
    try:
        path = cache.save("slot", {"k": 1}, {"images": torch.zeros(2, 1, 3, 3)})
    finally:
        os.umask(old)
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == mode
    assert torch.equal(cache.load("slot", {"k": 1})["images"], torch.zeros(2, 1, 3, 3))


# -- Inception weights ------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_inception(tmp_path_factory) -> Path:
    """A state dict of torch-fidelity's Inception (random weights: the real ones cannot
    be downloaded here), saved as the weights file would be."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    root = tmp_path_factory.mktemp("fake-inception")
    empty = root / "empty.pth"
    torch.save({}, empty)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3(fid.INCEPTION, ["2048"], str(empty))
    path = root / fid.INCEPTION_WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


def test_inception_weights_with_another_hash_are_refused(offline, tmp_path, marker, cli):
    """A planted file at $AEBENCH_INCEPTION_WEIGHTS or in torch hub's checkpoints: one
    line naming the file and the expected hash, exit 2 before training; never loaded."""
    planted = tmp_path / "weights.pth"
    plant(planted, marker)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fid.ENV_INCEPTION_WEIGHTS, str(planted))
        out = tmp_path / "out"
        res = cli(
            "run",
            "--models",
            "ae-mlp",
            "--datasets",
            "digits",
            "--profile",
            "smoke",
            "--threads",
            "1",
            "--out",
            str(out),
        )
    assert res.code == 2 and not marker.exists()
    (line,) = res.err.strip().splitlines()
    assert line.startswith(f"aebench: error: Inception weights {planted} ")
    assert fid.INCEPTION_SHA256 in line and "--fid-extractor classifier" in line
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())
    hub = Path(torch.hub.get_dir()) / "checkpoints" / fid.INCEPTION_WEIGHTS_FILE
    plant(hub, marker)
    train, test = aebench.get_dataset("digits", split="train"), aebench.get_dataset("digits")
    for extractor in ("auto", fid.INCEPTION):
        with pytest.raises(ConfigError, match=f"{hub}.*expected {fid.INCEPTION_SHA256}"):
            fid.compute_fid(train.images[:20], test, extractor, train_set=train)
    assert not marker.exists()


def test_weights_matching_the_hash_are_still_loaded_without_running_code(
    offline, tmp_path, marker, monkeypatch
):
    """Were a pickle to match the hash, ``weights_only=True`` still refuses to run it."""
    planted = tmp_path / "weights.pth"
    plant(planted, marker)
    monkeypatch.setattr(fid, "INCEPTION_SHA256", hashlib.sha256(planted.read_bytes()).hexdigest())
    with pytest.raises(ConfigError, match=f"Inception weights {planted} could not be read"):
        fid.load_inception_weights(planted)
    assert not marker.exists()


def test_published_weights_are_handed_to_torch_fidelity_as_aebench_own_copy(
    offline, fake_inception, digits, monkeypatch
):
    """The accepted path: torch-fidelity's Inception holds the file's weights, and
    torch-fidelity unpickled only a file aebench wrote, since removed."""
    digest = hashlib.sha256(fake_inception.read_bytes()).hexdigest()
    monkeypatch.setattr(fid, "INCEPTION_SHA256", digest)
    monkeypatch.setenv(fid.ENV_INCEPTION_WEIGHTS, str(fake_inception))
    assert fid.resolve_extractor("auto") == fid.INCEPTION
    loads: list[tuple[str, bool]] = []
    real_load = torch.load

    def spy(f, *args, **kwargs):
        loads.append((str(f), kwargs.get("weights_only", True)))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ext = fid.extractor_for("auto", digits[1])
    assert ext.weights == str(fake_inception) and ext.repeat
    module = fid.Features(ext, cache=False).module
    monkeypatch.setattr(torch, "load", real_load)
    unsafe = [path for path, safe in loads if not safe]
    assert len(unsafe) == 1 and unsafe[0] != str(fake_inception)  # torch-fidelity's own load
    assert not Path(unsafe[0]).exists() and not Path(unsafe[0]).parent.exists()
    want = torch.load(fake_inception, weights_only=True)
    got = module.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
