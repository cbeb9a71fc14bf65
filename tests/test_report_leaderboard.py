"""Leaderboard rows: options, seed means, best and significant cells, flags, failed/corrupt runs."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from report_helpers import (
    AE_NOT_APPLICABLE,
    _context,
    _dataset,
    _row,
    write_format1_run,
    write_run,
)


def test_datasets_sorted_and_counted(ctx: dict[str, Any]) -> None:
    assert [ds["name"] for ds in ctx["datasets"]] == ["fashion-mnist", "mnist"]
    assert ctx["n_runs"] == 9
    assert ctx["n_not_done"] == 1 and ctx["n_corrupt"] == 0
    mnist = _dataset(ctx)
    assert len(mnist["rows"]) == 6  # two seeds of vae-cnn latent_dim=2 share a row


def test_option_columns_replace_fixed_ones(ctx: dict[str, Any]) -> None:
    mnist = _dataset(ctx)
    # latent_dim first, beta because the β-VAE runs show it; prior/prior_components
    # only exist in the AE (one value), hidden_dims is the same everywhere: no column
    assert [o["name"] for o in mnist["options"]] == ["latent_dim", "beta"]
    assert all(o["numeric"] for o in mnist["options"])
    assert mnist["options"][0]["title"] == "size of the latent code"  # the field's help
    betas = [r for r in mnist["rows"] if r["model"] == "beta-vae-cnn"]
    assert sorted(r["options"]["beta"] for r in betas) == [0.5, 4.0]
    assert sorted(r["label"] for r in betas) == [
        "beta-vae-cnn latent_dim=16 beta=0.5",
        "beta-vae-cnn latent_dim=16 beta=4",
    ]
    vae = _row(mnist, "vae-cnn", latent_dim=2)
    assert vae["label"] == "vae-cnn latent_dim=2"
    assert [c["text"] for c in vae["option_cells"]] == ["2", "—"]
    assert vae["option_cells"][1]["title"] == "not an option of this model"
    fashion = _dataset(ctx, "fashion-mnist")
    assert [o["name"] for o in fashion["options"]] == ["latent_dim"]


def test_option_that_varies_gets_a_column_and_rows_sort_by_it(tmp_path: Path) -> None:
    for i, width in enumerate(([512, 256], [1024], [64])):
        write_run(tmp_path, f"w{i}", options={"hidden_dims": width}, light=True)
    (ds,) = _context(tmp_path)["datasets"]
    assert [o["name"] for o in ds["options"]] == ["latent_dim", "hidden_dims"]
    assert not ds["options"][1]["numeric"]
    # the resolved config is what was built (write_run resolves every width to 32x64)
    assert [c["text"] for r in ds["rows"] for c in r["option_cells"]][1::2] == ["32x64"] * 3
    assert {r["variant"] for r in ds["rows"]} == {""}  # the option column tells them apart


def test_seeds_aggregate_to_mean_and_t_interval(ctx: dict[str, Any]) -> None:
    from scipy import stats

    row = _row(_dataset(ctx), "vae-cnn", latent_dim=2)
    assert row["n_seeds"] == 2
    assert [r["seed"] for r in row["runs"]] == [0, 1]
    cell = row["cells"]["test_mse"]
    assert cell["mean"] == pytest.approx(0.02)
    assert cell["std"] == pytest.approx(math.sqrt(2) * 0.01)  # sample std, ddof=1
    assert cell["n"] == 2
    low, high = stats.t.interval(0.95, df=1, loc=0.02, scale=stats.sem([0.01, 0.03]))
    assert (cell["low"], cell["high"]) == pytest.approx((low, high))
    # the mean is shown to the precision of its interval: ± to two significant digits
    assert cell["text"] == f"0.02 ± {(high - low) / 2:.2f}" == "0.02 ± 0.13"
    assert cell["by_seed"] == {0: 0.01, 1: 0.03}
    single = _row(_dataset(ctx), "ae-cnn")["cells"]["test_mse"]
    assert single["std"] is None and single["text"] == "0.005"


def test_best_marking_respects_direction(ctx: dict[str, Any]) -> None:
    ds = _dataset(ctx)
    best = {
        col.key: [r["model"] for r in ds["rows"] if r["cells"][col.key]["best"]]
        for col in ds["columns"]
    }
    assert best["test_mse"] == ["ae-cnn"]  # lowest MSE (0.005)
    assert best["test_ssim"] == ["ae-cnn"]  # highest SSIM (0.95)
    assert best["test_reg"] == []  # KL is informational: a collapsed KL is not "best"
    assert best["nll"] == ["vae-cnn"]  # 90 < 95; the AE's NLL does not apply, never 0
    # undirected columns are never marked
    assert best["train_seconds"] == [] and best["my_plugin_score"] == []
    # ties for best are all marked (inception FID 30 for three configurations, 42 for one) ...
    assert len(best["fid:inception:10000"]) == 3
    # ... but a column where everyone ties marks nobody (every run has PSNR 17)
    assert best["test_psnr"] == []


def test_best_needs_two_values() -> None:
    from aebench.report.format import aggregate
    from aebench.report.leaderboard import mark_best

    rows = [
        {"cells": {"a": aggregate([1.0]), "b": aggregate([None])}},
        {"cells": {"a": aggregate([None]), "b": aggregate([2.0, 4.0])}},
    ]
    mark_best(rows, [{"key": "a", "direction": "min"}, {"key": "b", "direction": "max"}])
    assert not any(r["cells"][k]["best"] for r in rows for k in "ab")


def test_not_applicable_and_missing_cells(ctx: dict[str, Any]) -> None:
    ds = _dataset(ctx)
    ae = _row(ds, "ae-cnn")
    for key in AE_NOT_APPLICABLE:
        cell = ae["cells"][key]
        assert cell["na"] and cell["text"] == "—" and cell["n"] == 0 and not cell["best"]
        assert cell["title"].startswith("not applicable to this model: it applies to ")
    fid = ae["cells"]["fid:inception:10000"]
    assert fid["text"] == "—" and not fid["na"] and fid["title"] == "not computed"
    vae = _row(ds, "vae-cnn")["cells"]["test_reg"]
    assert not vae["na"] and vae["text"] == "20" and vae["title"] == ""
    # a column nobody has a value for is not shown; on fashion-mnist the AE's KL and NLL
    # do not apply, so those columns vanish there
    fkeys = [c.key for c in _dataset(ctx, "fashion-mnist")["columns"]]
    assert "nll" not in fkeys and "test_reg" not in fkeys and "my_plugin_score" not in fkeys
    assert "test_bpd" in fkeys


def test_variants_are_separate_rows(tmp_path: Path) -> None:
    write_run(tmp_path, "a", epochs=2, light=True)
    write_run(tmp_path, "b", epochs=3, light=True)
    write_run(tmp_path, "c", epochs=3, seed=1, light=True)
    (ds,) = _context(tmp_path)["datasets"]
    assert sorted((r["variant"], r["n_seeds"]) for r in ds["rows"]) == [
        ("epochs=2", 1),
        ("epochs=3", 2),
    ]


def test_failed_runs_listed_with_reason(ctx: dict[str, Any]) -> None:
    ds = _dataset(ctx)
    (failed,) = ds["others"]
    assert failed["run_id"] == "mnist-vae-mlp-d8-s0"
    assert failed["status"] == "failed"
    assert failed["label"] == "vae-mlp latent_dim=8"
    assert "loss is NaN" in failed["reason"]
    assert failed["href"] == "runs/mnist-vae-mlp-d8-s0.html"
    assert all(r["model"] != "vae-mlp" for r in ds["rows"])


# --------------------------------------------------------------------------- damaged runs


DAMAGE = {
    "metrics": ("metrics.json", "{not json", "metrics.json is not valid JSON"),
    "config": ("config.json", "[1, 2", "config.json is not valid JSON"),
    "status": ("status.json", "\x00\x01garbage", "status.json is not valid JSON"),
    "history": ("history.csv", "epoch,train_total\n1,abc\n", "history.csv line 2"),
    "version": ("config.json", None, "run format 99"),
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One good run, one running, and one run per kind of damage in :data:`DAMAGE`."""
    out = tmp_path_factory.mktemp("damaged")
    write_run(out, "good", light=True)
    write_run(out, "still-running", latent_dim=8, status="running", light=True)
    for name, (file, content, _) in DAMAGE.items():
        path = write_run(out, f"bad-{name}", latent_dim=4, light=True)
        if content is None:
            config = json.loads((path / file).read_text())
            content = json.dumps({**config, "format_version": 99})
        (path / file).write_text(content)
    return out


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_corrupt_run_is_listed_not_ranked(damaged: Path, damage: str) -> None:
    ctx = _context(damaged)
    rows = [m.run_id for ds in ctx["datasets"] for r in ds["rows"] for m in r["members"]]
    assert rows == ["good"]
    others = {o["run_id"]: o for ds in ctx["datasets"] for o in ds["others"]}
    other = others[f"bad-{damage}"]
    assert other["status"] == "corrupt"
    assert DAMAGE[damage][2] in other["reason"]
    assert others["still-running"]["status"] == "running"
    assert ctx["n_corrupt"] == len(DAMAGE)


def test_site_builds_beside_corrupt_runs(damaged: Path, tmp_path: Path) -> None:
    from aebench.report import build_site

    index = build_site(damaged, tmp_path / "site")
    html = index.read_text(encoding="utf-8")
    failed = html.split("Failed or unfinished runs")
    assert len(failed) >= 2
    for damage, (_, _, why) in DAMAGE.items():
        assert f">bad-{damage}</a>" in html
        assert why in html
        page = (index.parent / "runs" / f"bad-{damage}.html").read_text(encoding="utf-8")
        assert "cannot be read (corrupt)" in page
    assert html.count("<td>corrupt</td>") == len(DAMAGE)
    assert "(5 unreadable: corrupt)" in html
    assert html.count('<tr data-index="') == 1  # only the good run is ranked
    # runs whose config cannot be read (no dataset known) come last
    assert html.index('id="ds-mnist"') < html.index("<h2>(unknown dataset)</h2>")


# --------------------------------------------------------------------------- format 1


def test_format_1_runs_still_render(tmp_path: Path) -> None:
    from aebench.report import build_site

    write_format1_run(tmp_path, "fashion-mnist_ae-cnn_z16_s0_1fc410568f", model="ae-cnn")
    write_format1_run(
        tmp_path, "fashion-mnist_beta-vae-cnn_z16-b4_s0_aa00", model="beta-vae-cnn", beta=4.0
    )
    (ds,) = _context(tmp_path)["datasets"]
    assert [o["name"] for o in ds["options"]] == ["latent_dim", "beta"]
    beta, ae = ds["rows"]  # runs stored without a group: the registered model's
    assert (beta["group"], ae["group"]) == ("penalised", "deterministic")
    assert ae["label"] == "ae-cnn latent_dim=16"
    assert beta["label"] == "beta-vae-cnn latent_dim=16 beta=4"
    reg = ae["cells"]["test_reg"]
    assert (
        reg["na"]
        and reg["text"] == "—"
        and reg["title"].startswith("not applicable to this model: it applies to models with")
    )
    assert ae["cells"]["nll"]["na"] and beta["cells"]["test_reg"]["text"] == "13.49"
    fid = "fid:aebench-classifier:fashion-mnist:v1:a8007d7be041:5000"
    assert [r["cells"][fid]["text"] for r in (ae, beta)] == ["13.81", "46.59"]

    index = build_site(tmp_path)
    page = (index.parent / "runs" / "fashion-mnist_ae-cnn_z16_s0_1fc410568f.html").read_text()
    assert "Samples decoded from" in page and "GaussianMixture(10, full)" in page
    assert re.search(r'data-key="test_reg">.*?title="not applicable to this model">—<', page)
    assert "3 min 37 s" in page  # wall time from status.json


# --------------------------------------------------------------------------- comparability,
# significance, flags


def _light_site(out: Path, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    for i, spec in enumerate(runs):
        spec = dict(spec)
        write_run(out, spec.pop("run_id", f"r{i}"), light=True, **spec)
    return _dataset(_context(out))


def test_best_only_among_comparable_rows(tmp_path: Path) -> None:
    gauss = {"likelihood": "gaussian", "gaussian_var": 0.5}
    ds = _light_site(
        tmp_path,
        [
            {"model": "vae-cnn", "latent_dim": 2, "metrics": {"nll": 90.0}},
            {"model": "vae-cnn", "latent_dim": 4, "metrics": {"nll": 80.0}},
            {"model": "vae-mlp", "latent_dim": 2, "options": gauss, "metrics": {"nll": -500.0}},
            {"model": "vae-mlp", "latent_dim": 4, "options": gauss, "metrics": {"nll": -400.0}},
            # an AE's samples come from its own GMM, a VAE's "fid" from its prior: they
            # only compete within the same sampler
            {
                "model": "ae-cnn",
                "family": "ae",
                "metrics": {"fid": 5.0, "fid_sampler": "GaussianMixture(10, full) fitted"},
            },
        ],
    )
    best = {
        (r["model"], r["options"]["latent_dim"]) for r in ds["rows"] if r["cells"]["nll"]["best"]
    }
    # a Gaussian likelihood's NLL (a density) is not comparable with a Bernoulli one
    assert best == {("vae-cnn", 4), ("vae-mlp", 2)}
    title = _row(ds, "vae-cnn", latent_dim=4)["cells"]["nll"]["best_title"]
    assert title.startswith("best among rows with likelihood bernoulli, objective kl")
    fid = next(c for c in ds["columns"] if c.metric == "fid")
    assert not _row(ds, "ae-cnn")["cells"][fid.key]["best"]  # alone with its sampler
    assert [r["cells"][fid.key]["best"] for r in ds["rows"] if r["model"] != "ae-cnn"] == [
        False
    ] * 4  # the four VAEs tie at 30: nothing stands out


def test_a_lead_is_significant_only_when_a_paired_test_says_so(tmp_path: Path) -> None:
    from scipy import stats

    good, bad, noisy = [0.010, 0.020, 0.030], [0.012, 0.0222, 0.0321], [0.005, 0.040, 0.001]
    runs = []
    for model, values in (("vae-cnn", good), ("vae-mlp", bad), ("ae-cnn", noisy)):
        for seed, v in enumerate(values):
            runs.append(
                {
                    "run_id": f"{model}-s{seed}",
                    "model": model,
                    "seed": seed,
                    "metrics": {"test_mse": v},
                }
            )
    ds = _light_site(tmp_path / "a", [r for r in runs if r["model"] != "ae-cnn"])
    cell = _row(ds, "vae-cnn")["cells"]["test_mse"]
    assert cell["best"] and cell["lead"]["n"] == 3
    assert cell["lead"]["p"] == pytest.approx(stats.ttest_rel(good, bad).pvalue)
    assert (
        cell["lead"]["significant"]
        and "significant (paired t-test over 3 seeds" in cell["best_title"]
    )
    # a noisy runner-up: lower mean MSE, but no paired evidence that it leads
    ds = _light_site(tmp_path / "b", [dict(r) for r in runs if r["model"] != "vae-mlp"])
    cell = _row(ds, "ae-cnn")["cells"]["test_mse"]
    assert cell["best"] and not cell["lead"]["significant"]
    assert "not significant" in cell["best_title"]
    # one seed each: highlighted, never called significant
    ds = _light_site(tmp_path / "c", [dict(r) for r in runs if r["run_id"].endswith("s0")])
    best = [r for r in ds["rows"] if r["cells"]["test_mse"]["best"]]
    assert len(best) == 1 and best[0]["cells"]["test_mse"]["lead"] is None
    assert "not tested" in best[0]["cells"]["test_mse"]["best_title"]


def test_rows_flag_copying_and_posterior_collapse(ctx: dict[str, Any], tmp_path: Path) -> None:
    flags = {f["kind"]: f for f in _row(_dataset(ctx), "vae-cnn", latent_dim=16)["flags"]}
    assert list(flags) == ["collapse"] and "50% of latent dimensions" in flags["collapse"]["title"]
    assert _row(_dataset(ctx), "ae-cnn")["flags"] == []
    ds = _light_site(
        tmp_path,
        [
            {"seed": 0, "metrics": {"memorised": 0, "memorised_expost": 1}},
            {"seed": 1, "metrics": {"memorised": 0, "memorised_expost": 0}},
        ],
    )
    (flag,) = ds["rows"][0]["flags"]
    assert flag["text"] == "copies (ex-post GMM)" and "in 1 of 2 seeds" in flag["title"]
