from __future__ import annotations

import types

import pytest

import aebench
from aebench.errors import DuplicateNameError, UnknownNameError
from aebench.plugins import Plugins, get_plugins
from aebench.registry import Registry
from aebench.specs import DatasetSpec, ModelSpec


def _spec(name: str, family: str, arch: str, plugin: str = "") -> ModelSpec:
    return ModelSpec(
        name=name,
        family=family,
        arch=arch,
        config_cls=aebench.ModelConfig,
        factory=lambda cfg, shape: None,
        plugin=plugin,  # type: ignore[arg-type,return-value]
    )


@pytest.fixture
def registry() -> Registry[ModelSpec]:
    reg: Registry[ModelSpec] = Registry("model", "see `aebench models`")
    for name, fam, arch in [
        ("ae-mlp", "ae", "mlp"),
        ("ae-cnn", "ae", "cnn"),
        ("vae-mlp", "vae", "mlp"),
        ("vae-cnn", "vae", "cnn"),
        ("beta-vae-mlp", "beta-vae", "mlp"),
        ("beta-vae-cnn", "beta-vae", "cnn"),
    ]:
        reg.add(_spec(name, fam, arch))
    return reg


def test_family_name_selects_all_its_variants_and_nothing_else(registry):
    assert [s.name for s in registry.list("vae")] == ["vae-mlp", "vae-cnn"]
    assert [s.name for s in registry.list("ae")] == ["ae-mlp", "ae-cnn"]


def test_glob_and_comma_selection(registry):
    assert [s.name for s in registry.list("*-cnn")] == ["ae-cnn", "vae-cnn", "beta-vae-cnn"]
    chosen = registry.select("vae-*,ae-cnn,vae-mlp")
    assert [s.name for s in chosen] == ["vae-mlp", "vae-cnn", "ae-cnn"]  # each once, in order


def test_get_exact_and_unknown_name_suggests_closest(registry):
    assert registry.get("vae-cnn").arch == "cnn"
    with pytest.raises(UnknownNameError) as info:
        registry.select("vea")
    msg = str(info.value)
    assert "'vea'" in msg and "did you mean vae?" in msg and "aebench models" in msg
    assert "\n" not in msg


def test_duplicate_name_names_both_plugins(registry):
    with pytest.raises(DuplicateNameError, match=r"by a 1\.0 and by b 2\.0"):
        reg: Registry[ModelSpec] = Registry("model")
        reg.add(_spec("x-mlp", "x", "mlp", plugin="a 1.0"))
        reg.add(_spec("x-mlp", "x", "mlp", plugin="b 2.0"))


def test_invalid_names_are_rejected():
    with pytest.raises(ValueError, match="invalid model name"):
        _spec("VAE CNN", "vae", "cnn")


def _throwaway(name: str, **hooks) -> types.SimpleNamespace:
    ns = types.SimpleNamespace(**hooks)
    for fn in hooks.values():
        aebench.hookimpl(fn)
    ns.__name__ = name
    return ns


def test_plugin_registration_through_the_hook_records_provenance():
    def register_models(register):
        register(_spec("toy-mlp", "toy", "mlp"))

    plugins = get_plugins()
    plugins.register(_throwaway("toy", register_models=register_models), "toy", "toy-pkg", "9.9")
    try:
        spec = aebench.model_spec("toy-mlp")
        assert spec.plugin == "toy-pkg 9.9"
        assert [s.name for s in aebench.list_models("toy")] == ["toy-mlp"]
        assert plugins.infos["toy"].hooks == ["register_models"]
    finally:
        plugins.unregister("toy")
    assert "toy-mlp" not in plugins.models


def test_plugin_that_raises_in_a_hook_is_isolated_and_loses_only_its_own_specs():
    def register_models(register):
        register(_spec("half-mlp", "half", "mlp"))
        raise RuntimeError("boom in hook")

    plugins = Plugins(load_entry_points=False)
    before = len(plugins.datasets)
    with pytest.warns(UserWarning, match="boom in hook"):
        plugins.register(_throwaway("bad", register_models=register_models), "bad")
    assert "half-mlp" not in plugins.models
    assert plugins.infos["bad"].error == "RuntimeError: boom in hook"
    assert len(plugins.datasets) == before  # everything else keeps working


def test_duplicate_across_plugins_disables_the_second_and_names_both():
    def one(register):
        register(_spec("dup-mlp", "dup", "mlp"))

    def two(register):
        register(_spec("dup-mlp", "dup", "mlp"))

    plugins = Plugins(load_entry_points=False)
    plugins.register(_throwaway("first", register_models=one), "first", "first", "1")
    with pytest.warns(UserWarning) as rec:
        plugins.register(_throwaway("second", register_models=two), "second", "second", "2")
    assert "registered twice: by first 1 and by second 2" in str(rec[0].message)
    assert plugins.models.get("dup-mlp").plugin == "first 1"


def test_misspelled_hook_is_an_error_not_silence():
    def register_model(register):  # missing "s"
        pass

    plugins = Plugins(load_entry_points=False)
    with pytest.warns(UserWarning, match=r"unknown hook 'register_model' \(did you mean"):
        plugins.register(_throwaway("typo", register_model=register_model), "typo")
    assert "did you mean register_models?" in plugins.infos["typo"].error
    plugins.check()  # the typo'd plugin was removed, so the manager is consistent again


def test_dataset_spec_selection_and_argument_syntax():
    assert aebench.dataset_spec("digits").shape == (1, 8, 8)
    with pytest.raises(UnknownNameError, match="did you mean digits"):
        aebench.dataset_spec("digit")
    spec = DatasetSpec(name="argy", load=lambda *a, **k: None, takes_argument=True)  # type: ignore[arg-type,return-value]
    assert spec.takes_argument
