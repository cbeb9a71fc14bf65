"""Leaderboard columns: from the metric registry, FID per extractor, plugin and unknown metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from report_helpers import EVIL_MODEL, _context, _dataset, _row, write_run

import aebench
from aebench.store import RunRecord


def _columns(ds: dict[str, Any]) -> dict[str, Any]:
    return {c.key: c for c in ds["columns"]}


def _record(metrics: dict[str, Any], **config: Any) -> RunRecord:
    config = {"model": "vae-cnn", "dataset": "mnist", "seed": 0, "model_config": {}, **config}
    return RunRecord(Path("r"), "r", config=config, status="done", metrics=metrics)


def test_columns_come_from_the_registry(ctx: dict[str, Any]) -> None:
    from aebench.catalog import column_specs

    ds = _dataset(ctx)
    specs = {c.key: c for c in column_specs()}
    keys = [c.key for c in ds["columns"]]
    registered = [c.metric for c in ds["columns"] if c.registered]
    order = list(specs)
    groups = ["likelihood", "reconstruction", "samples", "representation", "other", "cost"]
    # grouped (each group's columns together, in the leaderboard's group order),
    # registry order within a group
    assert registered == sorted(
        registered, key=lambda k: (groups.index(specs[k].group), order.index(k))
    )
    assert registered.count("fid") == 2  # FID split into its two extractors
    for col in ds["columns"]:
        if col.registered:
            spec = specs[col.metric]
            assert (col.label, col.unit, col.direction, col.arrow) == (
                spec.label,
                spec.unit,
                spec.direction,
                spec.arrow,
            )
            assert col.title.startswith(spec.definition)
    cols = _columns(ds)
    assert cols["test_mse"].arrow == "↓" and cols["test_mse"].first == "ascending"
    assert cols["test_psnr"].arrow == "↑" and cols["test_psnr"].first == "descending"
    assert cols["eval_seconds"].direction is None
    # stored values that are budgets, counts or identifiers are no columns
    for key in ("n_test", "nll_k", "nll_samples", "fid_reference", "best_epoch", "threads"):
        assert key not in keys, key
    # a plugin metric whose plugin is not installed: generic column, before the cost group
    assert keys.index("probe_acc") < keys.index("my_plugin_score") < keys.index("train_seconds")


def test_fid_split_by_extractor(ctx: dict[str, Any]) -> None:
    ds = _dataset(ctx)
    fid_cols = [c for c in ds["columns"] if c.metric == "fid"]
    assert [c.key for c in fid_cols] == ["fid:inception:10000", "fid:offline-cnn:2000"]
    assert fid_cols[0].sub == "inception, n=10000"
    assert fid_cols[1].sub == "offline-cnn, n=2000"
    assert "aebench LeNet features" in fid_cols[1].title
    d2, d16 = _row(ds, "vae-cnn", latent_dim=2), _row(ds, "vae-cnn")
    assert d2["cells"]["fid:inception:10000"]["mean"] == pytest.approx(42.0)
    assert d2["cells"]["fid:offline-cnn:2000"]["mean"] is None
    assert d16["cells"]["fid:offline-cnn:2000"]["mean"] == pytest.approx(12.0)
    assert d16["cells"]["fid:inception:10000"]["mean"] is None
    assert "other settings" in d16["cells"]["fid:inception:10000"]["title"]
    # 12 (offline) must not beat the inception numbers: different columns, different bests
    assert not d16["cells"]["fid:inception:10000"]["best"]
    keys = [c.key for c in ds["columns"]]
    # columns come grouped: the likelihood group (losses, NLL), then reconstruction, samples
    assert keys.index("nll") < keys.index("test_ssim") < keys.index("fid:inception:10000")


def test_fid_column_header_with_a_classifier_extractor_id_containing_colons() -> None:
    from aebench.report.columns import columns_for

    metrics = {
        "fid": 3.0,
        "fid_extractor": "aebench-classifier:mnist:v1:0123abcd",
        "fid_samples": 5000,
    }
    (col,) = [c for c in columns_for([_record(metrics)]) if c.metric == "fid"]
    assert col.key == "fid:aebench-classifier:mnist:v1:0123abcd:5000"
    assert col.split == (
        ("fid_extractor", "aebench-classifier:mnist:v1:0123abcd"),
        ("fid_samples", 5000),
    )
    assert col.sub == "aebench-classifier, n=5000"
    assert "aebench-classifier:mnist:v1:0123abcd, n=5000" in col.title


def test_split_text_is_generic() -> None:
    from aebench.report.columns import split_text

    split = (("dci_samples", 2000), ("dci_estimators", 20), ("dci_kind", None))
    assert split_text(split, column="dci_completeness") == "n=2000, estimators=20"
    assert split_text((("other_budget", 3),), column="dci_x") == "other_budget=3"


def test_factorvae_scores_stored_before_the_std_fix_get_their_own_column() -> None:
    """Scores from before the FactorVAE score divided by the standard deviation have no
    ``factorvae_normalisation``: they never share a column (or a best mark) with new ones."""
    from aebench.report.columns import columns_for

    old = _record({"factorvae_score": 0.374, "factorvae_votes": 200})
    new = _record(
        {"factorvae_score": 0.55, "factorvae_votes": 200, "factorvae_normalisation": "std"}
    )
    cols = [c for c in columns_for([old, new]) if c.metric == "factorvae_score"]
    assert len(cols) == 2
    by_split = {dict(c.split)["factorvae_normalisation"]: c for c in cols}
    assert set(by_split) == {None, "std"}
    assert by_split["std"].value(new)[0] == 0.55 and by_split["std"].value(old)[0] is None
    assert by_split[None].value(old)[0] == 0.374 and by_split[None].value(new)[0] is None


def test_integer_columns_show_no_decimals() -> None:
    from aebench.report.columns import columns_for
    from aebench.report.leaderboard import cell

    (col,) = columns_for([_record({"n_widgets": 12000}), _record({"n_widgets": 12000})])
    assert col.integer and not col.registered
    assert cell([col.value(_record({"n_widgets": 12000}))], col.integer)["text"] == "12000"
    (col,) = columns_for([_record({"score": 12000.0})])
    assert not col.integer
    assert cell([col.value(_record({"score": 12000.0}))])["text"] == "12000.0"  # as ever


def test_unknown_metric_gets_a_generic_column(ctx: dict[str, Any]) -> None:
    ds = _dataset(ctx)
    col = _columns(ds)["my_plugin_score"]
    assert not col.registered and col.direction is None and col.arrow == ""
    assert col.label == "my_plugin_score" and "not ranked" in col.title
    evil = _row(ds, EVIL_MODEL, latent_dim=4)
    assert evil["cells"]["my_plugin_score"]["mean"] == 0.5
    assert _row(ds, "vae-cnn")["cells"]["my_plugin_score"]["text"] == "—"


class _SharpnessPlugin:
    """A plugin registering one metric with two columns (one a count)."""

    @aebench.hookimpl
    def register_metrics(self, register: Any) -> None:
        from aebench.specs import MetricColumn, MetricSpec

        columns = (
            MetricColumn("sharpness", "Sharpness", "grad/px", "max", "Mean gradient magnitude"),
            MetricColumn("sharp_pixels", "Sharp px", "", "min", "Pixels over 0.5", integer=True),
        )
        register(MetricSpec("tmp-sharpness", lambda ctx: {}, columns=columns))


def test_a_registered_plugin_metric_becomes_a_column(tmp_path: Path) -> None:
    from aebench.plugins import get_plugins
    from aebench.report import build_site

    for i, (sharp, pixels) in enumerate(((0.3, 12000), (0.6, 15000))):
        write_run(
            tmp_path,
            f"sharp-{i}",
            epochs=2 + i,
            light=True,
            metrics={"sharpness": sharp, "sharp_pixels": pixels, "regulariser": "none"},
        )
    unknown = _columns(_dataset(_context(tmp_path)))["sharpness"]
    assert not unknown.registered and unknown.direction is None  # plugin not installed

    get_plugins().register(_SharpnessPlugin(), "tmp-metric")
    try:
        ds = _dataset(_context(tmp_path))
        index = build_site(tmp_path).read_text(encoding="utf-8")
    finally:
        get_plugins().unregister("tmp-metric")
    col = _columns(ds)["sharpness"]
    assert (col.label, col.unit, col.direction, col.arrow) == ("Sharpness", "grad/px", "max", "↑")
    assert [r["cells"]["sharpness"]["best"] for r in ds["rows"]] == [False, True]
    assert [r["cells"]["sharp_pixels"]["text"] for r in ds["rows"]] == ["12000", "15000"]
    assert [r["cells"]["sharp_pixels"]["best"] for r in ds["rows"]] == [True, False]
    th = re.search(r'<th[^>]*data-key="sharpness"[^>]*>.*?</th>', index).group(0)
    assert 'title="Sharpness [grad/px]: Mean gradient magnitude"' in th  # label, unit, definition
    assert 'data-first="descending"' in th
    assert "Sharpness ↑" in th and "grad/px" in th
    keys = [c.key for c in ds["columns"]]
    assert keys.index("probe_acc") < keys.index("sharpness") < keys.index("train_seconds")


def test_column_groups_and_leads(ctx: dict[str, Any]) -> None:
    ds = _dataset(ctx)
    groups = [g["name"] for g in ds["groups"]]
    assert groups == ["likelihood", "reconstruction", "samples", "representation", "other", "cost"]
    leads = {c.key for c in ds["columns"] if c.lead}
    # collapsed, each group keeps its first ranked column of each metric
    assert {"test_total", "nll", "test_mse", "probe_acc"} <= leads
    assert {"fid:inception:10000", "fid:offline-cnn:2000"} <= leads
    assert "test_psnr" not in leads and "nll_bpd" not in leads
    assert all(g["n_lead"] >= 1 for g in ds["groups"])
