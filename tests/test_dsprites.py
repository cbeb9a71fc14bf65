"""The ``dsprites`` dataset on tiny archives in the published format, built in tmp_path.

``make_npz`` writes what DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``
holds (the same keys, dtypes, shapes but the image count, the pickled ``metadata``
dict, a compressed archive): one image per combination of a subset of the latent
classes, in the published C order. No test downloads: every test runs with
:func:`aebench.datasets.fetching.download_url` replaced by a failure, and the fetch
tests replace it with a fake that copies a local file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from test_disentanglement import check_factor_columns

import aebench
from aebench import catalog
from aebench.datasets import dsprites, fetching
from aebench.datasets.conformance import check_dataset
from aebench.errors import ConfigError, DataError

SIZES = (1, 3, 6, 40, 32, 32)  # color, shape, scale, orientation, posX, posY
POSSIBLE = {
    "color": np.array([1.0]),
    "shape": np.array([1.0, 2.0, 3.0]),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40),
    "posX": np.linspace(0.0, 1.0, 32),
    "posY": np.linspace(0.0, 1.0, 32),
}
# latent classes kept per factor: 3 x 2 x 2 x 4 x 4 = 192 images
TINY_CLASSES = ((0,), (0, 1, 2), (0, 5), (0, 10), (0, 10, 21, 31), (0, 10, 21, 31))
N_TINY = 192


def draw(shape: int, scale: float, angle: float, x: float, y: float) -> np.ndarray:
    """A 64 x 64 0/1 sprite: square, ellipse or (roughly) heart, rotated and placed."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    cx, cy, r = 12 + 40 * x, 12 + 40 * y, 4 + 8 * scale
    u = (np.cos(angle) * (xx - cx) + np.sin(angle) * (yy - cy)) / r
    v = (-np.sin(angle) * (xx - cx) + np.cos(angle) * (yy - cy)) / r
    if shape == 1:
        mask = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    elif shape == 2:
        mask = u**2 + (v / 0.5) ** 2 <= 1
    else:
        mask = (np.abs(u) + v <= 1) & (v >= -1) | ((np.abs(u) - 0.5) ** 2 + (v + 0.5) ** 2 <= 0.3)
    return mask.astype(np.uint8)


def make_npz(path: Path, classes=TINY_CLASSES, **override) -> Path:
    """A dSprites archive at ``path`` in the published format, with the latent classes
    ``classes`` (one tuple per latent); ``override`` replaces arrays (tests of bad files)."""
    grid = np.stack(np.meshgrid(*classes, indexing="ij"), axis=-1).reshape(-1, len(SIZES))
    latents_classes = grid.astype(np.int64)
    latents_values = np.stack(
        [POSSIBLE[name][latents_classes[:, k]] for k, name in enumerate(POSSIBLE)], axis=1
    )
    imgs = np.stack([draw(*row[1:]) for row in latents_values]).astype(np.uint8)
    metadata = {
        "date": "April 2017",
        "description": "tiny test copy of the dSprites archive",
        "version": 1,
        "latents_names": tuple(POSSIBLE),
        "latents_possible_values": dict(POSSIBLE),
        "latents_sizes": np.array(SIZES),
        "author": "aebench tests",
        "title": "dSprites dataset",
    }
    arrays = {
        "imgs": imgs,
        "latents_values": latents_values,
        "latents_classes": latents_classes,
        "metadata": np.array(metadata, dtype=object),
        **override,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to odd names
        np.savez_compressed(fh, **{k: v for k, v in arrays.items() if v is not None})
    return path


def tiny_root(tmp_path: Path, **override) -> Path:
    """A data root holding ``dsprites/<published file name>``."""
    root = tmp_path / "data"
    make_npz(root / dsprites.FOLDER / dsprites.FILENAME, **override)
    return root


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(fetching, "download_url", refuse)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A tiny archive, with checksums off (its bytes are not DeepMind's)."""
    monkeypatch.setenv("AEBENCH_SKIP_CHECKSUMS", "1")
    return tiny_root(tmp_path)


def published(root: Path) -> dict[str, np.ndarray]:
    with np.load(root / dsprites.FOLDER / dsprites.FILENAME, allow_pickle=True) as z:
        return {k: z[k] for k in z.files}


# -- the tiny file is what it claims to be ----------------------------------------------
def test_the_tiny_archive_has_the_published_layout(root):
    z = published(root)
    assert sorted(z) == ["imgs", "latents_classes", "latents_values", "metadata"]
    assert z["imgs"].shape == (N_TINY, 64, 64) and z["imgs"].dtype == np.uint8
    assert set(np.unique(z["imgs"])) == {0, 1}
    assert z["latents_values"].shape == (N_TINY, 6) and z["latents_values"].dtype == np.float64
    assert z["latents_classes"].dtype == np.int64
    meta = z["metadata"][()]
    assert meta["latents_names"] == dsprites.LATENT_NAMES
    assert list(meta["latents_sizes"]) == list(SIZES)
    assert len(np.unique(z["imgs"].reshape(N_TINY, -1), axis=0)) > N_TINY // 2


# -- loading ------------------------------------------------------------------------------
def test_loads_images_labels_and_factors_of_the_file(root):
    z = published(root)
    train = aebench.get_dataset("dsprites", "train", root)
    test = aebench.get_dataset("dsprites", "test", root)
    assert (len(train), len(test)) == (N_TINY - 19, 19)  # 10% held out, rounded
    for ds in (train, test):
        assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape[1:]) == (1, 64, 64)
        assert set(ds.images.unique().tolist()) <= {0, 255}
        assert ds.class_names == ("square", "ellipse", "heart")
        assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
        assert ds.factor_kinds == ("discrete",) * 5
        assert ds.factors.dtype == torch.float32
        # every image is the file's image with those latents (each combination is unique)
        values = z["latents_values"][:, 1:].astype(np.float32)
        rows = [int(np.flatnonzero((values == f).all(axis=1))[0]) for f in ds.factors.numpy()]
        assert torch.equal(ds.images[:, 0], torch.from_numpy(z["imgs"][rows] * 255))
        assert torch.equal(ds.labels, torch.from_numpy(z["latents_classes"][rows, 1]))
        assert torch.equal(ds.labels + 1, ds.factors[:, 0].long())  # shape values 1, 2, 3


def test_splits_are_deterministic_disjoint_and_cover_the_file(root):
    def positions(**options):
        out = {}
        for split in ("train", "test"):
            ds = aebench.get_dataset("dsprites", split, root, **options)
            out[split] = {tuple(f) for f in ds.factors.tolist()}
            assert len(out[split]) == len(ds)
        return out

    first, again = positions(), positions()
    assert first == again
    assert not first["train"] & first["test"]
    assert len(first["train"] | first["test"]) == N_TINY
    other = positions(split_seed=1)
    assert other["test"] != first["test"]
    subset = positions(n=50, test_fraction=0.2)
    assert (len(subset["train"]), len(subset["test"])) == (40, 10)
    assert subset == positions(n=50, test_fraction=0.2)
    assert subset["train"] | subset["test"] <= first["train"] | first["test"]


def test_split_indices_are_the_same_on_every_machine():
    train, test = dsprites.split_indices(10, None, 0.2, 0)
    assert sorted([*train, *test]) == list(range(10)) and len(test) == 2
    assert np.array_equal(test, dsprites.split_indices(10, None, 0.2, 0)[1])
    with pytest.raises(ConfigError, match="n=11 exceeds the 10 images"):
        dsprites.split_indices(10, 11, 0.2, 0)


def test_size_option_averages_blocks(root):
    full = aebench.get_dataset("dsprites", "test", root)
    small = aebench.get_dataset("dsprites", "test", root, size=16)
    assert tuple(small.images.shape[1:]) == (1, 16, 16)
    assert torch.equal(small.factors, full.factors)
    blocks = full.images.double().reshape(len(full), 1, 16, 4, 16, 4).mean(dim=(3, 5))
    assert torch.equal(small.images, blocks.round().to(torch.uint8))


def test_spec_declares_the_factors_and_the_conformance_suite_passes(root):
    spec = aebench.dataset_spec("dsprites")
    assert spec.factor_names == dsprites.FACTOR_NAMES
    assert "color" not in spec.factor_names  # a single value: no information
    assert spec.files == (f"dsprites/{dsprites.FILENAME}",)
    assert spec.is_ready(root)
    check_dataset("dsprites", data_dir=root)
    check_dataset("dsprites", data_dir=root, n=60, split_seed=3)


def test_a_warm_load_comes_from_the_cache(root, monkeypatch):
    first = aebench.get_dataset("dsprites", "train", root, size=32)
    monkeypatch.setattr(dsprites, "_decode", pytest.fail)
    again = aebench.get_dataset("dsprites", "train", root, size=32)
    assert torch.equal(first.images, again.images)


# -- options ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"size": 20}, r"option dsprites:size: expected one of 64, 32, 16, 8, got 20"),
        ({"size": "big"}, r"option dsprites:size"),
        ({"n": 1}, r"option dsprites:n must be at least 2"),
        ({"n": "many"}, r"option dsprites:n: expected an integer, got 'many'"),
        ({"n": 10_000}, r"option dsprites:n=10000 exceeds the 192 images"),
        ({"test_fraction": 1.5}, r"option dsprites:test_fraction=1.5 must be between 0 and 1"),
        ({"test_fraction": "x"}, r"option dsprites:test_fraction: expected a number"),
        ({"sise": 32}, r"dataset 'dsprites' has no option 'sise' \(did you mean size\?\)"),
    ],
)
def test_bad_options_are_one_clear_line(root, options, match):
    with pytest.raises(ConfigError, match=match) as info:
        aebench.get_dataset("dsprites", "train", root, **options)
    assert "\n" not in str(info.value)


def test_options_are_listed_with_their_defaults():
    spec = aebench.dataset_spec("dsprites")
    described = {o.name: o.describe() for o in spec.options}
    assert described["size"]["choices"] == [64, 32, 16, 8]
    assert described["size"]["default"] == 64
    assert described["test_fraction"]["default"] == 0.1
    assert set(described) == {"size", "n", "test_fraction", "split_seed", "verify_checksums"}


# -- missing and damaged files --------------------------------------------------------------
def test_missing_file_says_where_to_put_it_and_how_to_fetch_it(tmp_path):
    with pytest.raises(DataError) as info:
        aebench.get_dataset("dsprites", "train", tmp_path / "empty")
    message = str(info.value)
    assert str(tmp_path / "empty" / "dsprites") in message
    assert dsprites.FILENAME in message
    assert "aebench fetch dsprites" in message
    assert "--data-dir" in message and "\n" not in message
    # the loader itself (called without aebench's readiness check) also names the URL
    with pytest.raises(DataError, match="aebench fetch dsprites") as info:
        dsprites.load("train", tmp_path / "empty")
    assert dsprites.URLS[0] in str(info.value) and str(tmp_path / "empty") in str(info.value)


def test_git_blob_id_is_what_git_computes(tmp_path):
    # git's published ids (`git hash-object`; the second is the Pro Git book's example)
    for content, blob in (
        (b"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
        (b"test content\n", "d670460b4b4aece5915caf5c68d12f560a9fe3e4"),
    ):
        (tmp_path / "f").write_bytes(content)
        assert dsprites.git_blob_sha1(tmp_path / "f") == blob
    path = make_npz(tmp_path / "tiny.npz")
    if shutil.which("git") is not None:  # and git itself on a binary file in the format
        expected = subprocess.run(
            ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert dsprites.git_blob_sha1(path) == expected


def test_checksum_mismatch_names_both_ids_and_the_opt_out(tmp_path, monkeypatch):
    monkeypatch.delenv("AEBENCH_SKIP_CHECKSUMS", raising=False)
    root = tiny_root(tmp_path)
    actual = dsprites.git_blob_sha1(root / dsprites.FOLDER / dsprites.FILENAME)
    with pytest.raises(DataError) as info:
        aebench.get_dataset("dsprites", "train", root)
    message = str(info.value)
    assert actual in message and dsprites.GIT_BLOB in message
    assert "AEBENCH_SKIP_CHECKSUMS=1" in message and "verify_checksums=False" in message
    # the option opts out, and the published id is accepted
    assert len(aebench.get_dataset("dsprites", "test", root, verify_checksums=False)) == 19
    monkeypatch.setattr(dsprites, "GIT_BLOB", actual)
    assert len(aebench.get_dataset("dsprites", "test", root)) == 19


def test_an_unverified_cache_entry_is_verified_before_use(root, monkeypatch):
    aebench.get_dataset("dsprites", "train", root)  # decoded and cached, unverified
    monkeypatch.delenv("AEBENCH_SKIP_CHECKSUMS")
    with pytest.raises(DataError, match="git blob id"):
        aebench.get_dataset("dsprites", "train", root)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"imgs": None}, r"has no array 'imgs'"),
        ({"latents_classes": None}, r"has no array 'latents_classes'"),
        ({"imgs": np.zeros((N_TINY, 32, 32), np.uint8)}, r"expected \(N, 64, 64\) uint8"),
        ({"imgs": np.zeros((N_TINY, 64, 64), np.float32)}, r"expected \(N, 64, 64\) uint8"),
        ({"imgs": np.zeros((N_TINY - 1, 64, 64), np.uint8)}, r"191 images but 192 latents"),
        ({"imgs": np.full((N_TINY, 64, 64), 2, np.uint8)}, r"pixel value 2; .* 0 or 1"),
        ({"latents_values": np.zeros((N_TINY, 5))}, r"latents_values of shape \(192, 5\)"),
        ({"latents_classes": np.full((N_TINY, 6), 3)}, r"shape classes outside 0..2"),
    ],
)
def test_a_malformed_archive_is_one_line_naming_the_file(tmp_path, monkeypatch, override, match):
    monkeypatch.setenv("AEBENCH_SKIP_CHECKSUMS", "1")
    root = tiny_root(tmp_path, **override)
    with pytest.raises(DataError, match=match) as info:
        aebench.get_dataset("dsprites", "train", root)
    assert dsprites.FILENAME in str(info.value) and "\n" not in str(info.value)


def test_a_file_that_is_not_an_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_SKIP_CHECKSUMS", "1")
    path = tmp_path / "data" / dsprites.FOLDER / dsprites.FILENAME
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(DataError, match=r"is not a readable \.npz archive.*aebench fetch dsprites"):
        aebench.get_dataset("dsprites", "train", tmp_path / "data")


# -- fetching (never over the network) ---------------------------------------------------------
def fake_downloader(source: Path, calls: list[str]):
    def download(url, root, filename, md5):
        calls.append(url)
        shutil.copyfile(source, Path(root) / filename)

    return download


def test_fetch_downloads_verifies_and_moves_the_file_into_place(tmp_path, monkeypatch):
    source = make_npz(tmp_path / "upstream.npz")
    monkeypatch.setattr(dsprites, "GIT_BLOB", dsprites.git_blob_sha1(source))
    calls: list[str] = []
    monkeypatch.setattr(fetching, "download_url", fake_downloader(source, calls))
    root = tmp_path / "data"
    assert catalog.fetch_dataset("dsprites", root, echo=None) == root
    assert calls == [dsprites.URLS[0]]
    assert dsprites.COMMIT in calls[0]  # pinned to the commit whose blob id is checked
    dest = root / dsprites.FOLDER / dsprites.FILENAME
    assert dest.read_bytes() == source.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [dsprites.FILENAME]  # no temp left
    # a verified copy is not downloaded again
    monkeypatch.setattr(fetching, "download_url", pytest.fail)
    catalog.fetch_dataset("dsprites", root, echo=None)
    assert len(aebench.get_dataset("dsprites", "test", root)) == 19


def test_fetch_of_wrong_bytes_fails_and_leaves_nothing(tmp_path, monkeypatch):
    source = make_npz(tmp_path / "upstream.npz")  # its blob id is not DeepMind's
    calls: list[str] = []
    monkeypatch.setattr(fetching, "download_url", fake_downloader(source, calls))
    root = tmp_path / "data"
    with pytest.raises(DataError, match="git blob id") as info:
        catalog.fetch_dataset("dsprites", root, echo=None)
    assert "\n" not in str(info.value)
    assert not list((root / dsprites.FOLDER).iterdir())


def test_fetch_offline_is_one_line_naming_the_urls_and_where_to_copy(tmp_path):
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        # the autouse fixture refuses downloads
        catalog.fetch_dataset("dsprites", root, echo=None)
    message = str(info.value)
    assert all(url in message for url in dsprites.URLS)
    dest = root / dsprites.FOLDER / dsprites.FILENAME
    assert f"copy the file to {dest} yourself" in message and "\n" not in message
    assert not list((root / dsprites.FOLDER).iterdir())


# -- end to end: a run gets the disentanglement columns, digits does not ------------------
def test_a_smoke_run_on_dsprites_fills_the_disentanglement_columns(root, tmp_path, cli):
    out = tmp_path / "out"
    result = cli(
        "run",
        "--models",
        "vae-mlp",
        "--datasets",
        "dsprites,digits",
        "--data-dir",
        str(root),
        "--profile",
        "smoke",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--dataset-options",
        "dsprites:size=32",
        "--no-fid",
        "--no-report",
        "--out",
        str(out),
    )
    assert result.code == 0, result.err
    check_factor_columns(out, "dsprites", list(dsprites.FACTOR_NAMES))
