"""Dataset plugins: real MNIST/FashionMNIST from ../shared/data (read-only), and
MNIST-format / SVHN files generated in tmp_path for the format and error paths.
No test downloads: fetch tests monkeypatch the download function."""

from __future__ import annotations

import gzip
import os
import stat
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import aebench.datasets.fetching as fetching
from aebench import catalog
from aebench.catalog import get_dataset, load_splits
from aebench.datasets import mnist, svhn
from aebench.datasets.base import ImageSet, cache_dir, validation_split
from aebench.datasets.conformance import check_dataset
from aebench.errors import DataError
from aebench.plugins import get_plugins

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# -- helpers: small files in the real formats ----------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, folder: str = "MNIST", n: dict | None = None, seed: int = 0) -> dict:
    """Tiny MNIST-format set (28x28, correct headers); returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, count in (n or {"train": 6, "test": 4}).items():
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        img_name, lbl_name = MNIST_FILES[split]
        (raw / img_name).write_bytes(gzip.compress(idx_bytes(images)))
        (raw / lbl_name).write_bytes(gzip.compress(idx_bytes(labels)))
        out[split] = (images, labels)
    return out


def write_svhn(root: Path, n: dict | None = None, seed: int = 0) -> dict:
    """Tiny SVHN .mat files: X (32, 32, 3, N) uint8, y (N, 1) uint8 with 10 meaning 0."""
    import scipy.io

    rng = np.random.default_rng(seed)
    (root / "SVHN").mkdir(parents=True, exist_ok=True)
    out = {}
    for split, count in (n or {"train": 5, "test": 3}).items():
        x = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
        y = np.array([10, 1, 2, 3, 9, 5, 6][:count], dtype=np.uint8).reshape(-1, 1)
        scipy.io.savemat(root / "SVHN" / f"{split}_32x32.mat", {"X": x, "y": y})
        out[split] = (x, y)
    return out


@pytest.fixture
def no_checksums(monkeypatch):
    monkeypatch.setenv("AEBENCH_SKIP_CHECKSUMS", "1")


def make_read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def restore_writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")}


# -- registration ---------------------------------------------------------------
def test_datasets_are_registered_with_their_contract():
    reg = get_plugins().datasets
    m, f, s, folder = reg.get("mnist"), reg.get("fashion-mnist"), reg.get("svhn"), reg.get("folder")
    assert m.shape == f.shape == (1, 28, 28) and s.shape == (3, 32, 32)
    assert m.files[0] == "MNIST/raw/train-images-idx3-ubyte.gz" and len(m.files) == 4
    assert all(p.startswith("FashionMNIST/raw/") for p in f.files)
    assert s.files == ("SVHN/train_32x32.mat", "SVHN/test_32x32.mat")
    assert f.class_names[:2] == ("T-shirt/top", "Trouser") and f.num_classes == 10
    assert m.fetch and f.fetch and s.fetch and folder.takes_argument and folder.fetch is None


def test_file_names_checksums_and_class_names_match_torchvision():
    import torchvision.datasets as tvd

    for ds, cls in ((mnist.MNIST, tvd.MNIST), (mnist.FASHION_MNIST, tvd.FashionMNIST)):
        mirrors, md5s = ds.torchvision()
        assert mirrors == list(cls.mirrors) and md5s == dict(cls.resources)
        assert sorted(Path(f).name for f in ds.files) == sorted(name for name, _ in cls.resources)
    assert tuple(tvd.FashionMNIST.classes) == mnist.FASHION_CLASSES
    split_list = svhn.torchvision_split_list()
    assert {split_list[s][1] for s in ("train", "test")} == set(svhn.SPLIT_FILES.values())


# -- real data (read-only) ------------------------------------------------------
def test_real_mnist_read_only(shared_data):
    before = snapshot(shared_data)
    train, val, test = load_splits("mnist", data_dir=shared_data, val_size=5000)
    assert (len(train), len(val), len(test)) == (55000, 5000, 10000)
    full = get_dataset("mnist", "train", shared_data)  # warm: from the cache
    assert full.images.shape == (60000, 1, 28, 28) and full.images.dtype == torch.uint8
    assert full.labels.tolist()[:5] == [5, 0, 4, 1, 9]
    assert test.labels.tolist()[:5] == [7, 2, 1, 0, 4]
    assert int(full.images.min()) == 0 and int(full.images.max()) == 255
    assert full.class_names == tuple("0123456789") and full.name == "mnist"
    assert torch.bincount(full.labels).tolist()[:2] == [5923, 6742]
    assert snapshot(shared_data) == before  # nothing written into the data root
    assert list((cache_dir() / "datasets").glob("mnist-*.pt"))


def test_real_fashion_mnist(shared_data):
    train = get_dataset("fashion-mnist", "train", shared_data)
    test = get_dataset("fashion-mnist", "test", shared_data)
    assert (len(train), len(test)) == (60000, 10000)
    assert train.labels.tolist()[:5] == [9, 0, 0, 3, 0]
    assert test.labels.tolist()[:5] == [9, 2, 1, 1, 6]
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    assert train.class_names[0] == "T-shirt/top" and train.class_names[9] == "Ankle boot"
    assert torch.bincount(test.labels).tolist() == [1000] * 10


# -- MNIST format on generated files ------------------------------------------
def test_generated_mnist_loads_exactly(tmp_path, no_checksums):
    data = write_mnist(tmp_path)
    for split, (images, labels) in data.items():
        ds = get_dataset("mnist", split, tmp_path)
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
        assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
    check_dataset("mnist", tmp_path)


def test_fashion_mnist_uses_its_own_folder(tmp_path, no_checksums):
    write_mnist(tmp_path, "FashionMNIST")
    ds = get_dataset("fashion-mnist", "test", tmp_path)
    assert len(ds) == 4 and ds.class_names[-1] == "Ankle boot"
    with pytest.raises(DataError, match="MNIST"):
        get_dataset("mnist", "test", tmp_path)


def test_wrong_checksum_names_file_expected_and_actual_md5(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(DataError) as info:
        get_dataset("mnist", "train", tmp_path)
    msg = str(info.value)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    import hashlib

    actual = hashlib.md5(path.read_bytes()).hexdigest()
    assert str(path) in msg and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in msg and actual in msg
    assert "AEBENCH_SKIP_CHECKSUMS=1" in msg and "aebench fetch mnist" in msg
    assert "\n" not in msg
    # The per-call option opts out too, and a cache entry made without checking
    # is not trusted once checksums are on again.
    assert len(get_dataset("mnist", "train", tmp_path, verify_checksums=False)) == 6
    with pytest.raises(DataError, match="md5"):
        get_dataset("mnist", "train", tmp_path)


def test_truncated_gzip_is_an_error_naming_the_file(tmp_path, no_checksums):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as info:
        get_dataset("mnist", "train", tmp_path)
    assert str(path) in str(info.value)


def test_bad_gzip_is_an_error_naming_the_file(tmp_path, no_checksums):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="not a valid gzip") as info:
        get_dataset("mnist", "test", tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (struct.pack(">IIII", 2049, 4, 28, 28) + bytes(4 * 784), "magic number 2049"),
        (struct.pack(">IIII", 2051, 4, 28, 28) + bytes(3 * 784), "truncated"),
        (struct.pack(">IIII", 2051, 4, 28, 28) + bytes(4 * 784 + 1), "longer than"),
        (struct.pack(">II", 2051, 4), "truncated inside its IDX header"),
        (struct.pack(">IIII", 2051, 4, 32, 32) + bytes(4 * 1024), "expected 28x28"),
    ],
)
def test_wrong_idx_header_or_length(tmp_path, no_checksums, payload, match):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload))
    with pytest.raises(DataError, match=match) as info:
        get_dataset("mnist", "test", tmp_path)
    assert str(path) in str(info.value)


def test_image_and_label_counts_must_agree(tmp_path, no_checksums):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
    with pytest.raises(DataError, match="4 images but"):
        get_dataset("mnist", "test", tmp_path)


def test_read_only_root_loads_and_stays_untouched(tmp_path, no_checksums):
    root = tmp_path / "data"
    data = write_mnist(root)
    make_read_only(root)
    try:
        before = snapshot(root)
        ds = get_dataset("mnist", "train", root)
        assert ds.labels.tolist() == data["train"][1].tolist()
        assert snapshot(root) == before
    finally:
        restore_writable(root)


def test_cache_is_used_warm_and_invalidated_when_a_source_changes(tmp_path, no_checksums):
    write_mnist(tmp_path)
    first = get_dataset("mnist", "test", tmp_path)
    entries = list((cache_dir() / "datasets").glob("mnist-test.*.pt"))
    assert len(entries) == 1
    # Warm load comes from the cache: the source is never decoded again.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mnist, "read_idx_gz", pytest.fail)
        assert torch.equal(get_dataset("mnist", "test", tmp_path).images, first.images)
    raw = tmp_path / "MNIST" / "raw"
    # A new source file (same size, new content) is noticed.
    new = write_mnist(tmp_path, seed=1)
    later = time.time_ns() + 10**9
    for name in MNIST_FILES["test"]:
        os.utime(raw / name, ns=(later, later))
    changed = get_dataset("mnist", "test", tmp_path)
    assert torch.equal(changed.images[:, 0], torch.from_numpy(new["test"][0]))
    assert not torch.equal(changed.images, first.images)
    assert len(list((cache_dir() / "datasets").glob("mnist-test.*.pt"))) == 1  # old one pruned


def test_damaged_cache_entry_is_rebuilt(tmp_path, no_checksums):
    write_mnist(tmp_path)
    first = get_dataset("mnist", "test", tmp_path)
    (entry,) = (cache_dir() / "datasets").glob("mnist-test.*.pt")
    entry.write_bytes(b"garbage")
    assert torch.equal(get_dataset("mnist", "test", tmp_path).images, first.images)


def test_unwritable_cache_only_warns(tmp_path, monkeypatch, no_checksums):
    write_mnist(tmp_path / "data")
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(blocker))
    with pytest.warns(RuntimeWarning, match="dataset cache"):
        assert len(get_dataset("mnist", "test", tmp_path / "data")) == 4


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "svhn"])
def test_missing_files_error_names_dataset_files_and_folder(tmp_path, name):
    with pytest.raises(DataError) as info:
        get_dataset(name, "train", tmp_path)
    msg = str(info.value)
    spec = get_plugins().datasets.get(name)
    assert f"dataset {name!r}" in msg and f"aebench fetch {name}" in msg and "\n" not in msg
    for f in spec.files:
        assert Path(f).name in msg
        assert str((tmp_path / f).parent) in msg
    assert info.value.exit_code == 2


def test_unknown_option_is_rejected(tmp_path, no_checksums):
    from aebench.errors import ConfigError

    write_mnist(tmp_path)
    with pytest.raises(ConfigError, match="has no option 'size'; it takes: verify_checksums"):
        get_dataset("mnist", "test", tmp_path, size=32)
    with pytest.raises(ConfigError, match="expected true or false"):
        get_dataset("mnist", "test", tmp_path, verify_checksums="maybe")
    with pytest.raises(ConfigError, match="dataset 'digits' has no option 'size'; it takes none"):
        get_dataset("digits", "test", size=32)


# -- SVHN ------------------------------------------------------------------------
def test_generated_svhn_loads_with_labels_10_as_0(tmp_path, no_checksums):
    data = write_svhn(tmp_path)
    ds = get_dataset("svhn", "train", tmp_path)
    assert ds.images.shape == (5, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.labels.tolist() == [0, 1, 2, 3, 9]
    x = data["train"][0]
    # image 1, channel 2 (blue), row 4, column 7 == X[row 4, col 7, channel 2, image 1]
    assert int(ds.images[1, 2, 4, 7]) == int(x[4, 7, 2, 1])
    assert torch.equal(ds.images, torch.from_numpy(x).permute(3, 2, 0, 1))
    check_dataset("svhn", tmp_path)


def test_svhn_wrong_checksum_and_truncated_file(tmp_path):
    write_svhn(tmp_path)
    path = tmp_path / "SVHN" / "test_32x32.mat"
    with pytest.raises(DataError, match="eb5a983be6a315427106f1b164d9cef3") as info:
        get_dataset("svhn", "test", tmp_path)
    assert str(path) in str(info.value)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="not a readable MATLAB") as info:
        get_dataset("svhn", "test", tmp_path, verify_checksums=False)
    assert str(path) in str(info.value)


def test_svhn_wrong_variables(tmp_path, no_checksums):
    import scipy.io

    (tmp_path / "SVHN").mkdir()
    path = tmp_path / "SVHN" / "test_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(DataError, match=r"expected \(32, 32, 3, N\)"):
        svhn.load("test", tmp_path)
    scipy.io.savemat(path, {"images": np.zeros((32, 32, 3, 2), np.uint8)})
    with pytest.raises(DataError, match="lacks the variables"):
        svhn.load("test", tmp_path)


def test_svhn_read_only_root(tmp_path, no_checksums):
    root = tmp_path / "data"
    write_svhn(root)
    make_read_only(root)
    try:
        before = snapshot(root)
        assert len(get_dataset("svhn", "test", root)) == 3
        assert snapshot(root) == before
    finally:
        restore_writable(root)


# -- validation split -------------------------------------------------------------
def test_validation_split_is_deterministic_and_disjoint():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    full = ImageSet(images, torch.arange(100) % 10, None, "toy", "train")
    tr1, va1 = validation_split(full, 0.2, seed=0)
    tr2, va2 = validation_split(full, 20, seed=0)
    assert torch.equal(va1.images, va2.images) and torch.equal(tr1.images, tr2.images)
    assert len(va1) == 20 and len(tr1) == 80 and va1.split == "val"
    assert set(va1.images.flatten().tolist()).isdisjoint(tr1.images.flatten().tolist())
    _, va3 = validation_split(full, 0.2, seed=1)
    assert not torch.equal(va1.images, va3.images)


# -- fetch (never downloads: the download function is replaced) -----------------
def test_fetch_uses_torchvision_urls_and_md5s(tmp_path, monkeypatch):
    seen = []
    payload = write_mnist(tmp_path / "src")

    def fake_download(url, root, filename, md5):
        seen.append((url, filename, md5))
        src = tmp_path / "src" / "MNIST" / "raw" / filename
        Path(root, filename).write_bytes(src.read_bytes())

    monkeypatch.setattr(fetching, "download_url", fake_download)
    root = catalog.fetch_dataset("mnist", tmp_path / "data", echo=None)
    assert root == tmp_path / "data"
    assert [f for _, f, _ in seen] == [name for name, _ in mnist.MNIST.torchvision()[1].items()]
    # torchvision's first mirror (ossci's S3 today; yann.lecun.com in torchvision 0.16)
    assert seen[0][0] == torchvision.datasets.MNIST.mirrors[0] + "train-images-idx3-ubyte.gz"
    assert seen[0][2] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert not list((root / "MNIST" / "raw").glob(".aebench-download-*"))
    ds = get_dataset("mnist", "test", root, verify_checksums=False)
    assert ds.labels.tolist() == payload["test"][1].tolist()


def test_fetch_failure_is_one_clean_line_and_leaves_nothing(tmp_path, monkeypatch):
    import urllib.error

    def offline(url, root, filename, md5):
        Path(root, filename).write_bytes(b"partial")
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fetching, "download_url", offline)
    with pytest.raises(DataError) as info:
        catalog.fetch_dataset("svhn", tmp_path, echo=None)
    msg = str(info.value)
    assert "train_32x32.mat" in msg and "no network" in msg and "\n" not in msg
    assert str(tmp_path / "SVHN" / "train_32x32.mat") in msg
    assert list((tmp_path / "SVHN").iterdir()) == []


def test_fetch_into_read_only_root(tmp_path, monkeypatch):
    monkeypatch.setattr(fetching, "download_url", pytest.fail)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError, match="cannot create") as info:
        catalog.fetch_dataset("mnist", tmp_path / "a-file" / "data", echo=None)
    assert "choose a writable --data-dir" in str(info.value)
    root = tmp_path / "ro"
    root.mkdir()
    make_read_only(root)
    try:
        if os.access(root, os.W_OK):
            pytest.skip("running as a user who can write read-only folders")
        with pytest.raises(DataError, match="choose a writable --data-dir"):
            catalog.fetch_dataset("mnist", root, echo=None)
    finally:
        restore_writable(root)


def test_fetch_digits_and_folder_need_nothing(tmp_path):
    said = []
    assert catalog.fetch_dataset("digits", tmp_path, echo=said.append) == tmp_path
    catalog.fetch_dataset("folder:whatever", tmp_path, echo=said.append)
    assert "nothing to fetch" in said[0] and "nothing to fetch" in said[1]
    assert list(tmp_path.iterdir()) == []
