"""Tests of the aebench-shapes dataset plugin.

Run with ``pytest plugins/aebench-shapes/tests`` after
``pip install plugins/aebench-shapes``. From a bare source checkout the
package is imported from ``src/`` and registered by hand instead.
"""

from __future__ import annotations

import importlib.metadata as md
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import aebench
from aebench.plugins import get_plugins, with_plugin

try:
    import aebench_shapes
except ImportError:  # source checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import aebench_shapes

from aebench_shapes.generate import CLASS_NAMES, generate

SMALL = {"n_train": 300, "n_test": 120}


def _installed() -> bool:
    try:
        md.distribution("aebench-shapes")
    except md.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """Make sure ``shapes`` is registered: by its entry point, or by hand."""
    if "shapes" in get_plugins().datasets:
        yield
        return
    undo = with_plugin(aebench_shapes, "shapes")
    try:
        yield
    finally:
        undo()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Small tensors on a shared CPU: one thread is faster than two that contend.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registered_through_the_entry_point_with_package_and_version() -> None:
    if not _installed():
        pytest.skip("aebench-shapes is not installed (pip install plugins/aebench-shapes)")
    (spec,) = aebench.list_datasets("shapes")
    version = md.version("aebench-shapes")
    assert spec.plugin == f"aebench-shapes {version}"
    assert spec.num_classes == 3
    assert spec.class_names == CLASS_NAMES
    assert spec.files == ()  # nothing to download
    assert spec.is_ready(Path("/nonexistent"))
    info = get_plugins().infos["shapes"]
    assert info.error is None
    assert info.hooks == ["register_datasets"]


def test_passes_the_dataset_conformance_suite() -> None:
    conformance = pytest.importorskip("aebench.datasets.conformance")
    conformance.check_dataset("shapes", **SMALL)


def test_default_splits_match_the_spec() -> None:
    spec = aebench.dataset_spec("shapes")
    train = aebench.get_dataset("shapes", "train")
    test = aebench.get_dataset("shapes", "test")
    assert (len(train), len(test)) == (10_000, 2_000)
    for split in (train, test):
        assert split.shape == spec.shape == (1, 32, 32)
        assert split.images.dtype == torch.uint8
        assert split.labels is not None and split.labels.dtype == torch.int64
        assert split.class_names == CLASS_NAMES
        assert split.name == "shapes"


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    a, b = generate(60, 32, seed=5), generate(60, 32, seed=5)
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.factors, b.factors)
    assert not torch.equal(a.images, generate(60, 32, seed=6).images)
    # The loader too, including across option changes that must not matter:
    t1 = aebench.get_dataset("shapes", "test", n_train=300, n_test=120)
    t2 = aebench.get_dataset("shapes", "test", n_train=999, n_test=120)
    assert torch.equal(t1.images, t2.images)


def test_train_and_test_share_no_image() -> None:
    train = aebench.get_dataset("shapes", "train", **SMALL)
    test = aebench.get_dataset("shapes", "test", **SMALL)
    flat_train = train.images.flatten(1)
    flat_test = test.images.flatten(1)
    same = (flat_test[:, None, :] == flat_train[None, :, :]).all(-1)
    assert not same.any()


def test_value_range_and_antialiasing() -> None:
    images = aebench.get_dataset("shapes", "train", **SMALL).images
    assert images.min() == 0 and images.max() == 255
    levels = images.unique()
    assert 2 < len(levels) <= 10  # 3x3 supersampled edges
    x = aebench.get_dataset("shapes", "train", **SMALL).batch(slice(0, 8))
    assert x.dtype == torch.float32 and x.min() >= 0.0 and x.max() <= 1.0
    # One shape per image: never empty, never the whole frame.
    on = (images > 127).flatten(1).float().mean(1)
    assert (on > 0.01).all() and (on < 0.5).all()


def test_classes_balanced_and_labels_match_shapes() -> None:
    train = aebench.get_dataset("shapes", "train", n_train=301, n_test=10)
    counts = torch.bincount(train.labels, minlength=3)
    assert counts.tolist() == [101, 100, 100]
    # Same factors, different shape -> the label really is the shape: at equal
    # scale, the ellipse covers the least area and no two shapes match.
    f = torch.tensor([[1.0, 0.0, 0.5, 0.5]]).repeat(3, 1)
    from aebench_shapes.generate import render

    area = render(torch.arange(3), f, 32).float().sum((1, 2, 3))
    assert area[1] < area[0] and area[1] < area[2] and area[0] != area[2]


def test_size_option_and_factors() -> None:
    small = aebench.get_dataset("shapes", "train", size=28, **SMALL)
    assert small.shape == (1, 28, 28)
    factors = aebench_shapes.factors("train", size=28, **SMALL)
    assert factors.shape == (300, 4)
    scale, rot, x, y = factors.unbind(1)
    assert scale.min() >= 0.5 and scale.max() <= 1.0
    assert rot.min() >= 0.0 and rot.max() <= 2 * math.pi
    for pos in (x, y):
        assert pos.min() >= 0.25 and pos.max() <= 0.75
    # Centre of mass follows the x/y factors (image rows go down, y too).
    img = small.images[:, 0].float()
    grid = (torch.arange(28).float() + 0.5) / 28
    mass = img.sum((1, 2))
    cx = (img.sum(1) * grid).sum(1) / mass
    cy = (img.sum(2) * grid).sum(1) / mass
    assert torch.corrcoef(torch.stack([cx, x]))[0, 1] > 0.95
    assert torch.corrcoef(torch.stack([cy, y]))[0, 1] > 0.95


def test_splits_carry_their_factors_as_the_spec_declares() -> None:
    spec = aebench.dataset_spec("shapes")
    assert spec.factor_names == ("shape", "scale", "rotation", "x", "y")
    for split in ("train", "test"):
        ds = aebench.get_dataset("shapes", split, **SMALL)
        assert ds.factor_names == spec.factor_names
        assert ds.factor_kinds == ("discrete",) + ("continuous",) * 4
        assert ds.factors is not None and ds.factors.dtype == torch.float32
        assert ds.factors.shape == (len(ds), 5)
        # The discrete factor is the label; the others are what factors() returns.
        assert torch.equal(ds.factors[:, 0].long(), ds.labels)
        assert torch.equal(ds.factors[:, 1:], aebench_shapes.factors(split, **SMALL))
    # Subsets (the validation split, limits) keep images and factors aligned.
    train = aebench.get_dataset("shapes", "train", **SMALL)
    part = train.subset(torch.tensor([5, 1, 7]))
    assert torch.equal(part.factors, train.factors[[5, 1, 7]])
    assert torch.equal(part.factors[:, 0].long(), part.labels)


def test_bad_options_name_the_problem() -> None:
    with pytest.raises(ValueError, match="dataset 'shapes' has no option 'colour'"):
        aebench.get_dataset("shapes", "train", colour=3)
    with pytest.raises(ValueError, match="option shapes:size: expected an integer"):
        aebench.get_dataset("shapes", "train", size="big")
    with pytest.raises(ValueError, match="size must be at least 8"):
        aebench.get_dataset("shapes", "train", size=4, **SMALL)


SUITES = Path(__file__).resolve().parents[3] / "benchmarks" / "suites"


@pytest.mark.skipif(not SUITES.is_dir(), reason="run from outside the aebench repository")
def test_the_suites_that_use_shapes_plan() -> None:
    """The shipped suites that need this dataset (the zoo, smoke-shapes) plan here, where
    it is registered; aebench's own test run skips them when the plugin is absent."""
    from aebench.plan import load_suite, plan

    planned = {}
    for path in sorted(SUITES.glob("*.toml")):
        _, grids = load_suite(path)
        if any("shapes" in (g.datasets or ()) for g in grids):
            planned[path.stem] = plan(grids, device="cpu")
    assert {"zoo", "smoke-shapes"} <= set(planned)
    assert all(any(r.dataset == "shapes" for r in runs) for runs in planned.values())
