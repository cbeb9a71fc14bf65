"""Every registered model, built-in or plugin, passes the conformance suite in aebench.testing."""

from __future__ import annotations

import pytest

from aebench import testing

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("check", testing.check_names())
@pytest.mark.parametrize("name", testing.model_names())
def test_conformance(name: str, check: str) -> None:
    testing.run_check(check, name)


def test_every_builtin_model_is_checked() -> None:
    names = set(testing.model_names())
    builtins = {"ae-mlp", "ae-cnn", "vae-mlp", "vae-cnn", "beta-vae-mlp", "beta-vae-cnn"}
    assert builtins <= names
