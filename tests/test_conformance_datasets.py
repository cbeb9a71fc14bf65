"""Every registered dataset that needs no files and no argument, built-in or plugin,
passes check_dataset (aebench.datasets.conformance), and check_dataset names the rule a
broken dataset breaks. Datasets with files are checked on generated files beside their
format tests (test_datasets.py, test_dsprites.py, test_datasets_folder.py)."""

from __future__ import annotations

import types

import pytest
import torch

from aebench import testing
from aebench.datasets.base import ImageSet
from aebench.hookspecs import hookimpl
from aebench.plugins import get_plugins
from aebench.specs import DatasetSpec


@pytest.mark.parametrize("name", testing.offline_dataset_names())
def test_conformance(name: str) -> None:
    testing.check_dataset(name)


def test_offline_datasets_are_those_without_files_or_argument() -> None:
    names = testing.offline_dataset_names()
    assert "digits" in names
    assert not {"mnist", "svhn", "dsprites", "folder"} & set(names)


def _images(n: int = 3, size: int = 28) -> torch.Tensor:
    return torch.zeros(n, 1, size, size, dtype=torch.uint8)


def test_conformance_names_the_broken_rule() -> None:
    def bad_load(split, root, **_):
        return ImageSet(_images(), torch.tensor([0, 1, 12]), None, "bad", split)

    def nondeterministic(split, root, **_):
        images = torch.randint(0, 255, (3, 1, 28, 28), dtype=torch.uint8)
        return ImageSet(images, None, None, "nd", split)

    def wrong_split(split, root, **_):
        return ImageSet(_images(), None, None, "ws", "train")

    @hookimpl
    def register_datasets(register):
        register(DatasetSpec("bad-labels", bad_load, (1, 28, 28), num_classes=10))
        register(DatasetSpec("bad-shape", bad_load, (1, 32, 32)))
        register(DatasetSpec("flaky", nondeterministic, (1, 28, 28)))
        register(DatasetSpec("wrong-split", wrong_split, (1, 28, 28)))
        register(DatasetSpec("no-test", wrong_split, (1, 28, 28), splits=("train",)))

    plugins = get_plugins()
    plugins.register(types.SimpleNamespace(register_datasets=register_datasets), "conformance-test")
    try:
        assert {"bad-labels", "flaky", "no-test"} <= set(testing.offline_dataset_names())
        with pytest.raises(AssertionError, match="labels-int64-in-range"):
            testing.check_dataset("bad-labels")
        with pytest.raises(AssertionError, match="shape-matches-spec"):
            testing.check_dataset("bad-shape")
        with pytest.raises(AssertionError, match="'deterministic'"):
            testing.check_dataset("flaky")
        with pytest.raises(AssertionError, match="split-and-name-recorded"):
            testing.check_dataset("wrong-split")
        with pytest.raises(AssertionError, match="has-train-and-test"):
            testing.check_dataset("no-test")
    finally:
        plugins.unregister("conformance-test")
