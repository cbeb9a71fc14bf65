"""``folder:PATH``: the user's own images, generated here with PIL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aebench.datasets.folder as folder
from aebench.catalog import get_dataset, load_splits
from aebench.datasets.base import cache_dir
from aebench.datasets.conformance import check_dataset
from aebench.errors import ConfigError, DataError


def save(path: Path, size=(20, 16), mode="RGB", value=0) -> None:
    """An image of ``size`` (width, height) whose pixels encode ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode).save(path)


@pytest.fixture
def classes(tmp_path) -> Path:
    """cats: 5 PNGs, dogs: 5 JPEGs (one in a nested folder), 20x16 RGB."""
    root = tmp_path / "pets"
    for i in range(5):
        save(root / "cats" / f"c{i}.png", value=i)
        save(root / "dogs" / ("more" if i == 4 else "") / f"d{i}.JPG", value=10 + i)
    (root / "dogs" / "notes.txt").write_text("not an image")
    save(root / ".hidden" / "x.png")
    return root


def test_class_subfolders_give_sorted_labels_and_a_stratified_split(classes):
    train = get_dataset(f"folder:{classes}", "train")
    test = get_dataset(f"folder:{classes}", "test")
    assert train.class_names == test.class_names == ("cats", "dogs")
    assert (len(train), len(test)) == (8, 2)
    assert test.labels.tolist() == [0, 1]  # 20% of each class
    assert train.images.shape == (8, 3, 16, 20) and train.images.dtype == torch.uint8
    assert train.name == f"folder:{classes}" and test.split == "test"
    # The PNGs are lossless: a cat in train equals its file exactly.
    cats = [np.asarray(Image.open(classes / "cats" / f"c{i}.png")) for i in range(5)]
    first_cat = train.images[0].permute(1, 2, 0).numpy()
    assert any(np.array_equal(first_cat, c) for c in cats)
    check_dataset(f"folder:{classes}")


def test_flat_folder_gray_resize_and_options_as_strings(tmp_path):
    for i in range(10):
        save(tmp_path / "imgs" / f"{i:02d}.png", size=(40, 30), mode="L", value=i)
    train, val, test = load_splits(f"folder:{tmp_path / 'imgs'}", val_size=2, size="28")
    assert train.labels is None and train.class_names is None
    assert (len(train), len(val), len(test)) == (6, 2, 2)
    assert train.images.shape[1:] == (1, 28, 28)  # gray by default: the first image is L
    rgb = get_dataset(f"folder:{tmp_path / 'imgs'}", "test", size="24x32", channels=3)
    assert rgb.images.shape[1:] == (3, 24, 32)
    assert torch.equal(rgb.images[:, 0], rgb.images[:, 2])  # gray replicated to RGB
    gray = get_dataset(f"folder:{tmp_path / 'imgs'}", "test", channels="L")
    assert gray.images.shape[1:] == (1, 30, 40)  # default size: the first image's


def test_rgb_images_to_gray_and_mixed_sizes_and_alpha(tmp_path):
    save(tmp_path / "a.png", size=(8, 8), mode="RGB")
    save(tmp_path / "b.png", size=(16, 12), mode="RGBA")
    save(tmp_path / "c.jpg", size=(5, 9), mode="L")
    ds = get_dataset(f"folder:{tmp_path}", "train", channels=1, test_fraction=0.34)
    assert ds.images.shape[1:] == (1, 8, 8) and len(ds) == 2
    both = get_dataset(f"folder:{tmp_path}", "train", test_fraction="0.34", split_seed=0)
    assert both.images.shape[1:] == (3, 8, 8)


def test_split_is_deterministic_and_seeded(classes):
    a = get_dataset(f"folder:{classes}", "test")
    b = get_dataset(f"folder:{classes}", "test")
    assert torch.equal(a.images, b.images)
    seeds = {
        tuple(get_dataset(f"folder:{classes}", "test", split_seed=s).images.flatten()[:50].tolist())
        for s in range(4)
    }
    assert len(seeds) > 1


def test_decoded_once_then_cached_and_invalidated_on_change(classes, monkeypatch):
    first = get_dataset(f"folder:{classes}", "train")
    with monkeypatch.context() as mp:
        mp.setattr(folder, "decode", pytest.fail)
        assert torch.equal(get_dataset(f"folder:{classes}", "test").labels, torch.tensor([0, 1]))
        assert torch.equal(get_dataset(f"folder:{classes}", "train").images, first.images)
    save(classes / "cats" / "c0.png", value=99)
    later = time.time_ns() + 10**9
    os.utime(classes / "cats" / "c0.png", ns=(later, later))
    changed = get_dataset(f"folder:{classes}", "train")
    assert not torch.equal(changed.images, first.images)
    save(classes / "cats" / "c5.png", value=5)  # a new file changes the file list
    assert len(get_dataset(f"folder:{classes}", "train")) == 9  # 6 cats + 5 dogs, 1+1 held out
    assert len(list((cache_dir() / "datasets").glob("folder.*.pt"))) == 1


def test_nothing_is_written_into_the_folder(classes):
    before = sorted(p.relative_to(classes) for p in classes.rglob("*"))
    get_dataset(f"folder:{classes}", "train", size=8)
    assert sorted(p.relative_to(classes) for p in classes.rglob("*")) == before


def test_errors_are_one_line_and_name_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="does not exist") as info:
        get_dataset(f"folder:{missing}", "train")
    assert str(missing) in str(info.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no images found") as info:
        get_dataset(f"folder:{tmp_path / 'empty'}", "train")
    assert str(tmp_path / "empty") in str(info.value)
    bad = tmp_path / "bad"
    save(bad / "ok.png")
    (bad / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="cannot read image") as info:
        get_dataset(f"folder:{bad}", "train")
    assert str(bad / "broken.png") in str(info.value) and "\n" not in str(info.value)
    truncated = tmp_path / "trunc"
    save(truncated / "a.png", size=(64, 64))
    save(truncated / "b.png", size=(64, 64), value=3)
    data = (truncated / "b.png").read_bytes()
    (truncated / "b.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read image") as info:
        get_dataset(f"folder:{truncated}", "train")
    assert str(truncated / "b.png") in str(info.value)


def test_layout_and_option_errors(tmp_path, classes):
    save(classes / "stray.png")
    with pytest.raises(DataError, match="mixes images at the top level"):
        get_dataset(f"folder:{classes}", "train")
    save(tmp_path / "one" / "only.png")
    with pytest.raises(DataError, match="at least 2 images"):
        get_dataset(f"folder:{tmp_path / 'one'}", "train")
    with pytest.raises(ConfigError, match="needs an argument"):
        get_dataset("folder", "train")
    for options, match in [
        ({"channels": 2}, "channels"),
        ({"size": "big"}, "size"),
        ({"size": 0}, "at least 3x3"),
        ({"test_fraction": 1.5}, "between 0 and 1"),
        ({"colour": 1}, "dataset 'folder' has no option 'colour'"),
        ({"chanels": 1}, r"did you mean channels\?"),
    ]:
        with pytest.raises(ConfigError, match=match):
            get_dataset(f"folder:{tmp_path / 'one'}", "train", **options)


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    save(tmp_path / "imgs" / "a.png", value=1)
    save(tmp_path / "imgs" / "b.png", value=2)
    assert len(get_dataset("folder:~/imgs", "test")) == 1
