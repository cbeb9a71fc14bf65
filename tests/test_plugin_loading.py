"""Plugins are discovered through real ``importlib.metadata`` distributions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aebench.plugins import Plugins

GOOD = """
import aebench
from aebench.specs import ModelSpec

@aebench.hookimpl
def register_models(register):
    register(ModelSpec(name="good-mlp", family="good", arch="mlp",
                       config_cls=aebench.ModelConfig, factory=lambda c, s: None,
                       description="from an installed distribution"))
"""


def _dist(site: Path, package: str, version: str, module: str, source: str, ep: str) -> None:
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{package.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[aebench]\n{ep} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "aebench-good", "1.2.3", "aebench_good", GOOD, "good")
    _dist(
        site, "aebench-broken", "0.1", "aebench_broken", "raise ImportError('no torch9')", "broken"
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_entry_point_plugin_is_discovered_with_package_and_version(site):
    with pytest.warns(UserWarning, match="aebench plugin 'broken'.*ImportError: no torch9"):
        plugins = Plugins()
    spec = plugins.models.get("good-mlp")
    assert spec.plugin == "aebench-good 1.2.3"
    good, broken = plugins.infos["good"], plugins.infos["broken"]
    assert (good.package, good.version, good.hooks, good.error) == (
        "aebench-good",
        "1.2.3",
        ["register_models"],
        None,
    )
    assert broken.error == "ImportError: no torch9" and broken.package == "aebench-broken"
    assert "digits" in plugins.datasets  # built-ins unaffected by the broken plugin


def test_env_var_restricts_which_external_plugins_load(site, monkeypatch):
    monkeypatch.setenv("AEBENCH_PLUGINS", "")
    plugins = Plugins()
    assert "good-mlp" not in plugins.models and "broken" not in plugins.infos
    monkeypatch.setenv("AEBENCH_PLUGINS", "aebench-good")  # distribution name works too
    plugins = Plugins()
    assert "good-mlp" in plugins.models and "broken" not in plugins.infos


def _cli(*args: str, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "aebench.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_lists_installed_plugin_and_reports_the_broken_one(site):
    res = _cli("plugins", "--json", site=site)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["good"]["version"] == "1.2.3" and rows["good"]["hooks"] == ["register_models"]
    assert rows["broken"]["error"] == "ImportError: no torch9"
    assert not any(r["builtin"] for r in rows.values())  # built-ins only with --all

    res = _cli("models", "good", "--json", site=site)
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)  # warnings go to stderr, so stdout stays valid JSON
    assert (row["name"], row["plugin"]) == ("good-mlp", "aebench-good 1.2.3")
    assert res.stderr.strip() == (
        "aebench: warning: plugin 'broken' (aebench-broken 0.1) is disabled: "
        "ImportError: no torch9 (see `aebench plugins`)"
    )


def test_plugins_load_once_and_reset_picks_up_a_later_install(tmp_path, monkeypatch):
    from aebench import plugins

    plugins.reset()
    first = plugins.get_plugins()
    assert "good-mlp" not in first.models
    site = tmp_path / "later"
    site.mkdir()
    _dist(site, "aebench-good", "1.2.3", "aebench_good", GOOD, "good")
    monkeypatch.syspath_prepend(str(site))
    try:
        assert plugins.get_plugins() is first  # loaded once, lazily: no rescan
        plugins.reset()
        assert "good-mlp" in plugins.get_plugins().models
    finally:
        plugins.reset()
