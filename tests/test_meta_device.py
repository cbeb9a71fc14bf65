"""aebench builds every model of a run on PyTorch's meta device when it plans the run. A
model that cannot be built there (a constructor calling ``.item()``) stops ``aebench run``
with one line naming the model and the cause, before anything trains, and the
conformance kit's ``meta_device`` check catches it first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import aebench
from aebench import testing
from aebench.errors import ConfigError
from aebench.models.ae import AE, AEConfig
from aebench.models.nets import make_spec
from aebench.plugins import get_plugins
from aebench.runner import META_HINT as HINT

META_ITEM_ERROR = (
    r"RuntimeError: Tensor\.item\(\) cannot be called on meta tensors"  # current torch
    r"|NotImplementedError: Could not run 'aten::_local_scalar_dense' with arguments from "
    r"the 'Meta' backend"  # torch 2.1
)


class ItemInInit(AE):
    """Reads a tensor's value in its constructor: works on CPU, not on the meta device."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("temperature", torch.tensor(0.5))
        self.temperature_value = self.temperature.item()


class Plugin:
    @aebench.hookimpl
    def register_models(self, register):
        register(make_spec("item-mlp", "item", "mlp", ItemInInit, AEConfig, "reads .item()"))


@pytest.fixture
def item_model() -> Iterator[str]:
    plugins = get_plugins()
    plugins.register(Plugin(), "meta-device-test")
    try:
        yield "item-mlp"
    finally:
        plugins.unregister("meta-device-test")


def test_it_builds_on_cpu_but_not_on_meta(item_model: str) -> None:
    assert isinstance(aebench.create_model(item_model, (1, 8, 8)), ItemInInit)
    with (
        pytest.raises((RuntimeError, NotImplementedError), match=r"(?i)meta"),
        torch.device("meta"),
    ):
        aebench.create_model(item_model, (1, 8, 8))


def test_run_refuses_it_in_one_line_with_exit_2(item_model: str, cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, err = cli(
        "run",
        "--models",
        f"{item_model},ae-mlp",
        "--datasets",
        "digits",
        "--epochs",
        "1",
        "--no-fid",
        "--no-report",
        "--out",
        str(out),
    )
    assert code == ConfigError.exit_code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(
        "aebench: error: model 'item-mlp' cannot be built on PyTorch's meta device, "
        "where aebench checks every model before training (for digits's 1x8x8 images): "
    ), err
    assert re.search(META_ITEM_ERROR, lines[0]), err  # torch's own words
    assert lines[0].endswith(HINT), err
    assert "Traceback" not in err + stdout and "internal error" not in err
    assert not any((out / "runs").glob("*")), "nothing may train"


def test_the_kit_fails_it_in_one_line_naming_model_and_cause(item_model: str) -> None:
    with pytest.raises(AssertionError) as info:
        testing.run_check("meta_device", item_model)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("item-mlp: cannot be built on PyTorch's meta device for 1x28x28 images")
    assert re.search(META_ITEM_ERROR, text), text
    assert "aebench builds every model there when it plans a run" in text
    with pytest.raises(AssertionError, match=r"^item-mlp: cannot be built on PyTorch's meta"):
        testing.check_model(item_model)


def test_the_kit_names_a_model_that_does_not_build_at_all() -> None:
    """A constructor that fails everywhere is not blamed on the meta device."""

    class Broken(AE):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("no weights for you")

    spec = make_spec("broken-mlp", "broken", "mlp", Broken, AEConfig, "")
    with pytest.raises(AssertionError) as info:
        testing.run_check("meta_device", spec, input_shapes=[(1, 8, 8)])
    assert str(info.value) == (
        "broken-mlp: cannot be built for 1x8x8 images: RuntimeError: no weights for you"
    )


def test_builtin_models_build_on_meta() -> None:
    for name in ("ae-mlp", "vae-cnn", "beta-vae-mlp"):
        with torch.device("meta"):
            model = aebench.create_model(name, (1, 28, 28))
        assert all(p.is_meta for p in model.parameters())
