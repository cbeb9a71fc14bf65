"""The metrics registry: one spec per metric, and everything generated from it.

A metric registered by a (temporary) plugin must reach results.csv,
results.parquet, the leaderboard and `aebench metrics` with no other edit, with
its own `aebench run` flag, its own pre-run check and its own leaderboard
warning; README's metric tables must equal what the registry generates.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import aebench
import aebench.errors
from aebench.catalog import column_specs, metric_specs, metrics_markdown
from aebench.plugins import Plugins, get_plugins
from aebench.specs import GROUPS, ColumnFlag, MetricColumn, MetricOption, MetricSpec

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def mean_brightness(ctx) -> dict[str, float]:
    """A plugin metric: mean pixel value of the model's samples (needs a budget)."""
    samples = ctx.samples(ctx.option("brightness_samples"))
    return {"sample_brightness": float(samples.float().mean() / 255), "brightness_note": "ok"}


PREPARED: list[tuple[str, int]] = []


def refuse_unlucky(setup) -> None:
    """The plugin's pre-run check: a budget it cannot work with fails before training."""
    if setup.options["brightness_samples"] == 13:
        raise aebench.errors.ConfigError("--brightness-samples 13 is unlucky: pick another")


def remember(setup) -> None:
    """The plugin's shared preparation: recorded, to show it runs once per dataset."""
    PREPARED.append((setup.dataset, setup.options["brightness_samples"]))


class BrightnessPlugin:
    @aebench.hookimpl
    def register_metrics(self, register):
        register(
            MetricSpec(
                "brightness",
                mean_brightness,
                description="Mean pixel value of samples",
                columns=(
                    MetricColumn(
                        "sample_brightness",
                        "Brightness",
                        "0-1",
                        "max",
                        "Mean pixel value of generated samples",
                        group="samples",
                        flag=ColumnFlag(
                            "dim", "dim samples", 2.0, "{worst:.2f} in {count}/{n}", at_least=False
                        ),
                    ),
                ),
                check=refuse_unlucky,
                prepare=remember,
                options=(
                    MetricOption(
                        "brightness_samples",
                        int,
                        64,
                        "samples drawn",
                        profiles={"smoke": 32},
                        minimum=1,
                        flag="--brightness-samples",
                    ),
                ),
            )
        )


@pytest.fixture
def brightness():
    plugins = get_plugins()
    plugins.register(BrightnessPlugin(), "brightness")
    PREPARED.clear()
    try:
        yield
    finally:
        plugins.unregister("brightness")


def test_builtin_metrics_register_through_the_hook():
    builtin = [s for s in metric_specs() if s.plugin.endswith("(built-in)")]
    names = [s.name for s in builtin]
    assert names[:6] == ["losses", "batch-terms", "reconstruction", "fid", "samples", "nll"]
    assert names[-1] == "cost"
    assert {"probe", "latent"} <= set(names)
    info = get_plugins().infos["aebench.metrics.fid"]
    assert info.hooks == ["register_metrics"] and info.builtin
    for col in column_specs():
        assert col.label and col.definition and col.group in GROUPS, col.key
        assert col.direction in ("min", "max", None)


def test_a_plugin_metric_reaches_table_parquet_site_and_listing(brightness, cli, tmp_path):
    code, _, err = cli(
        "run",
        "--models",
        "ae-mlp,vae-mlp",
        "--datasets",
        "digits",
        "--profile",
        "smoke",
        "--epochs",
        "1",
        "--no-fid",
        "--brightness-samples",
        "16",
        "--out",
        str(tmp_path),
    )
    assert code == 0, err
    assert PREPARED == [("digits", 16)]  # once for the dataset, not once per cell
    for table in (
        pd.read_csv(tmp_path / "results.csv"),
        pd.read_parquet(tmp_path / "results.parquet"),
    ):
        assert table["sample_brightness"].between(0, 1).all()
        columns = list(table.columns)
        # in registry order: after the built-in metric columns, before the runner's times
        assert columns.index("probe_acc") < columns.index("sample_brightness")
        assert columns.index("sample_brightness") < columns.index("train_seconds")
    config = json.loads(next((tmp_path / "runs").glob("*/config.json")).read_text())
    assert config["metric_options"]["brightness_samples"] == 16

    index = (tmp_path / "site" / "index.html").read_text()
    header = re.search(r"<th[^>]*data-key=\"sample_brightness\"[^>]*>.*?</th>", index, re.S)
    assert header, "the leaderboard has a column for the plugin metric"
    assert "Brightness" in header.group(0) and "↑" in header.group(0)
    assert "Mean pixel value of generated samples" in header.group(0)  # tooltip

    # Its leaderboard warning: a brightness of at most 2.0 (always) flags every row.
    rows = re.findall(r'<span class="flag flag-dim" title="([^"]*)">⚠ dim samples</span>', index)
    assert len(rows) == 2 and all(re.fullmatch(r"0\.\d\d in 1/1", t) for t in rows)

    code, out, _ = cli("metrics", "--json")
    listed = {s["name"]: s for s in json.loads(out)}
    assert listed["brightness"]["columns"][0]["label"] == "Brightness"
    assert listed["brightness"]["options"][0]["profiles"] == {"smoke": 32}


def test_a_plugin_metric_check_refuses_its_settings_before_training(brightness, cli, tmp_path):
    args = "--models ae-mlp --datasets digits --no-fid --brightness-samples 13 --out"
    code, _, err = cli("run", *args.split(), str(tmp_path))
    assert code == 2
    assert err.strip() == "aebench: error: --brightness-samples 13 is unlucky: pick another"
    assert not list((tmp_path / "runs").glob("*"))  # nothing trained


def test_metric_flags_come_from_the_specs(brightness, cli):
    code, out, _ = cli("run", "--help")
    assert code == 0
    for flag in ("--brightness-samples", "--fid-samples", "--no-fid", "--nll-k", "--probe-samples"):
        assert flag in out
    code, _, err = cli(
        "run", "--models", "ae-mlp", "--datasets", "digits", "--no-fid", "--fid-samples", "500"
    )
    assert code == 2 and "--no-fid and --fid-samples contradict each other" in err


def test_readme_metric_tables_are_generated_from_the_registry():
    builtin = [s for s in metric_specs() if s.plugin.endswith("(built-in)")]
    block = re.search(r"<!-- metrics:start.*?-->\n(.*?)<!-- metrics:end -->", README, re.S)
    assert block, "README.md must hold the generated metric tables between metrics markers"
    assert {s.name for s in builtin} <= {s.name for s in Plugins(load_entry_points=False).metrics}
    assert block.group(1) == metrics_markdown(), (
        "README's metric tables are stale: paste `aebench metrics --markdown` between the markers"
    )
