"""Every registered model, built-in or plugin, passes the conformance suite in aebench.testing."""

from __future__ import annotations

import pytest
import torch

from aebench import testing


@pytest.fixture(autouse=True)
def _one_thread():
    # Small models on a shared CPU: one thread is faster and keeps results stable.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("check", testing.check_names())
@pytest.mark.parametrize("name", testing.model_names())
def test_conformance(name: str, check: str) -> None:
    testing.run_check(check, name)


def test_every_builtin_model_is_checked() -> None:
    names = set(testing.model_names())
    builtins = {"ae-mlp", "ae-cnn", "vae-mlp", "vae-cnn", "beta-vae-mlp", "beta-vae-cnn"}
    assert builtins <= names
