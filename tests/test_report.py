"""The HTML leaderboard: columns from the registry, tables, run pages, escaping, assets.

``make_benchmark_dir`` writes fake-but-realistic runs through the run store
(format 2, as the runner writes them); the browser test
(test_report_browser.py) reuses it. ``write_format1_run`` writes a run by hand
exactly as aebench 0.1.0 did.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

import aebench
from aebench.store import RunRecord, RunStore

EVIL = "<script>alert(1)</script>"
EVIL_MODEL = f"evil{EVIL}$x^2$"
VERSIONS = {"torch": "2.5.0", "torchvision": "0.20.0", "aebench": "0.1.0", "python": "3.11.9"}
CLASSES = [str(i) for i in range(10)]
AE_NOT_APPLICABLE = ["test_reg", "nll", "nll_bpd"]


# --------------------------------------------------------------------------- fake runs


def _save_grid(path: Path, n: int, nrow: int, seed: int) -> None:
    """A grid of smooth random blobs (digit-like sizes), as the runner writes them."""
    import torch
    from torch.nn.functional import interpolate
    from torchvision.utils import save_image

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 7, 7, generator=g)
    save_image(interpolate(coarse, size=(28, 28), mode="bilinear"), path, nrow=nrow, padding=2)


def _metrics(overrides: dict[str, Any] | None, not_applicable: Sequence[str]) -> dict[str, Any]:
    m: dict[str, Any] = {
        "test_total": 100.0,
        "test_recon": 80.0,
        "test_reg": 20.0,
        "test_bpd": 0.18,
        "n_test": 10000,
        "test_mse": 0.02,
        "test_psnr": 17.0,
        "test_ssim": 0.7,
        "per_class": {
            c: {"mse": 0.01 + 0.002 * i, "psnr": 20 - i * 0.3, "ssim": 0.8}
            for i, c in enumerate(CLASSES)
        },
        "fid": 30.0,
        "fid_extractor": "inception",
        "fid_extractor_detail": "pt_inception-2015-12-05",
        "fid_samples": 10000,
        "fid_reference": 10000,
        "fid_grayscale": "repeat 3 channels",
        "nll": 95.0,
        "nll_bpd": 0.17,
        "nll_k": 100,
        "nll_samples": 1000,
        "probe_acc": 0.9,
        "not_applicable": list(not_applicable),
        "eval_timings": {"losses": 0.5, "fid": 20.0},
        "eval_seconds": 25.0,
        "regulariser": "kl",
        "sampler": "N(0, I)",
        "best_epoch": 3,
        "train_seconds": 180.0,
        "device": "cpu",
        "threads": 2,
        "versions": VERSIONS,
    }
    m.update(overrides or {})
    for key in not_applicable:
        m[key] = None
    return m


def write_run(
    out: Path,
    run_id: str,
    *,
    model: str = "vae-cnn",
    family: str = "vae",
    dataset: str = "mnist",
    latent_dim: int = 16,
    options: dict[str, Any] | None = None,
    shown: Sequence[str] = ("latent_dim",),
    seed: int = 0,
    epochs: int = 3,
    status: str = "done",
    reason: str | None = None,
    metrics: dict[str, Any] | None = None,
    not_applicable: Sequence[str] = (),
    description: str = "A convolutional VAE.",
    n_latents: int = 60,
    images: bool = True,
    light: bool = False,
) -> Path:
    """Write one run through the store, as the runner does (config format 2);
    ``metrics`` override the defaults, ``not_applicable`` keys are stored as null.
    ``light``: no images, history or per-class results (nothing to plot: fast)."""
    model_config = {
        "latent_dim": latent_dim,
        "likelihood": "bernoulli",
        "gaussian_var": 0.5,
        "hidden_dims": None,
        **(options or {}),
    }
    config = {
        "run_id": run_id,
        "key": hashlib.sha256(run_id.encode()).hexdigest()[:10],
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "model_config": model_config,
        "epochs": epochs,
        "batch_size": 128,
        "lr": 0.001,
        "limit": 512,
        "val_size": 0.1,
        "metric_options": {
            "fid_samples": 10000,
            "fid_extractor": "auto",
            "nll_k": 100,
            "nll_samples": 1000,
            "probe_samples": 10000,
        },
        "device": "cpu",
        "profile": "quick",
        "dataset_options": {},
        "family": family,
        "arch": "cnn",
        "plugin": "aebench 0.1.0 (built-in)",
        "description": description,
        "shown_options": list(shown),
        "input_shape": [1, 28, 28],
    }
    writer = RunStore(out).start(run_id, config)
    writer.update_config(resolved_model_config={**model_config, "hidden_dims": [32, 64]})
    rng = np.random.default_rng(seed * 100 + latent_dim)
    rows = []
    for e in range(1, epochs + 1):
        t = 200 / e + rng.normal()
        rows.append(
            {
                "epoch": e,
                "train_total": t,
                "train_recon": t - 20,
                "train_reg": 20,
                "val_total": t + 3,
                "val_recon": t - 18,
                "val_reg": 21,
                "val_mse": 0.05 / e,
                "val_ssim": 0.5 + 0.1 * e,
                "val_psnr": 12 + e,
                "seconds": 1.5,
            }
        )
    if not light:
        writer.history(rows)
    if images and not light:
        _save_grid(writer.image_path("recon"), 16, 8, seed)
        _save_grid(writer.image_path("samples"), 64, 8, seed + 1)
        _save_grid(writer.image_path("interp"), 10, 10, seed + 2)
        for e in range(1, epochs + 1):
            _save_grid(writer.image_path(f"recon_epoch_{e:03d}"), 16, 8, seed + 10 + e)
        y = np.arange(n_latents, dtype=np.int64) % 10
        z = rng.normal(size=(n_latents, latent_dim)).astype(np.float32) + y[:, None] * 0.5
        writer.arrays("latents", z=z, y=y)
        drift = np.linspace(2.0, 0.0, epochs)  # codes settle over training
        z_epochs = np.stack([z[:60] * (1 - k / 4) + k for k in drift]).astype(np.float32)
        writer.arrays("latents_epochs", z=z_epochs, y=y[:60])
    if status == "done":
        values = _metrics(metrics, not_applicable)
        if light:
            values.pop("per_class")
        writer.metrics(values)
    if status != "running":
        writer.status(status, reason)
    return RunStore(out).path(run_id)


def write_format1_run(out: Path, run_id: str, *, model: str, beta: float | None = None) -> Path:
    """A run directory exactly as aebench 0.1.0 wrote it: no format_version, options
    flat in config.json, ``prior`` for the sampler, and an AE's KL stored as 0."""
    ae = model.startswith("ae-")
    model_config: dict[str, Any] = {
        "latent_dim": 16,
        "likelihood": "bernoulli",
        "gaussian_var": 0.5,
        "hidden_dims": None,
    }
    if ae:
        model_config.update(prior="gmm", prior_components=10)
    if beta is not None:
        model_config["beta"] = beta
    key = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    config = {
        "run_id": run_id,
        "key": key,
        "model": model,
        "dataset": "fashion-mnist",
        "seed": 0,
        "latent_dim": 16,
        "beta": beta,
        "model_config": model_config,
        "epochs": 10,
        "batch_size": 128,
        "lr": 0.001,
        "limit": None,
        "val_size": 0.1,
        "fid_extractor": "auto",
        "fid_samples": 5000,
        "nll_k": 64,
        "nll_samples": 1000,
        "probe_samples": 5000,
        "device": "cpu",
        "profile": "quick",
        "dataset_options": {},
        "family": model.rsplit("-", 1)[0],
        "arch": "cnn",
        "plugin": "aebench 0.1.0 (built-in)",
        "description": "",
        "likelihood": "bernoulli",
        "input_shape": [1, 28, 28],
    }
    sampler = "GaussianMixture(10, full) fitted on training latent means" if ae else "N(0, I)"
    metrics = {
        "n_test": 10000,
        "test_total": 215.57 if ae else 242.59,
        "test_recon": 215.57 if ae else 229.1,
        "test_reg": 0.0 if ae else 13.49,
        "test_bpd": 0.3967 if ae else 0.4464,
        "test_mse": 0.01077 if ae else 0.01499,
        "test_psnr": 20.68 if ae else 19.03,
        "test_ssim": 0.7541 if ae else 0.6893,
        "per_class": {"Bag": {"mse": 0.0169, "psnr": 18.2, "ssim": 0.62}},
        "fid": 13.81 if ae else 46.59,
        "fid_extractor": "aebench-classifier:fashion-mnist:v1:a8007d7be041",
        "fid_extractor_detail": "ClassifierNet v1 trained on 60000 fashion-mnist train images",
        "fid_samples": 5000,
        "fid_reference": 10000,
        "fid_grayscale": "native 1 channel (classifier trained on grayscale)",
        "fid_feature_layer": "penultimate",
        "fid_prior": sampler,
        "nll": None if ae else 240.86,
        "nll_bpd": None if ae else 0.4432,
        "nll_k": 64,
        "nll_samples": 0 if ae else 1000,
        "probe_acc": 0.8007 if ae else 0.7939,
        "eval_timings": {"fid": 0.674, "image": 0.9261, "losses": 0.6026},
        "eval_seconds": 4.27,
        "regulariser": "none" if ae else "kl",
        "prior": sampler,
        "best_epoch": 10,
        "train_seconds": 104.8,
        "device": "cpu",
        "threads": 2,
        "versions": {"aebench": "0.1.0", "python": "3.11.7", "torch": "2.15.0"},
    }
    status = {
        "status": "done",
        "reason": None,
        "started": "2026-11-21T13:40:00+00:00",
        "finished": "2026-11-21T13:43:37+00:00",
    }
    d = out / "runs" / run_id
    (d / "images").mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config, indent=2))
    (d / "status.json").write_text(json.dumps(status, indent=2))
    (d / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (d / "history.csv").write_text(
        "epoch,train_total,train_recon,train_reg,val_total,val_recon,val_reg,seconds\n"
        "1,250.0,240.0,10.0,248.0,238.0,10.0,10.4\n"
    )
    return d


def make_benchmark_dir(out: Path) -> Path:
    """A benchmark output dir with two datasets, seeds, a β sweep, FID from two
    extractors, an AE without KL/NLL/FID, a failed run and a plugin with an HTML name."""
    # vae-cnn latent_dim=2: two seeds, aggregated
    write_run(
        out,
        "mnist-vae-cnn-d2-s0",
        latent_dim=2,
        seed=0,
        metrics={"test_mse": 0.01, "test_ssim": 0.60, "fid": 40.0},
    )
    write_run(
        out,
        "mnist-vae-cnn-d2-s1",
        latent_dim=2,
        seed=1,
        metrics={"test_mse": 0.03, "test_ssim": 0.62, "fid": 44.0},
    )
    # vae-cnn latent_dim=16 with FID from another extractor (must get its own column)
    write_run(
        out,
        "mnist-vae-cnn-d16-s0",
        latent_dim=16,
        metrics={
            "test_mse": 0.008,
            "test_ssim": 0.85,
            "fid": 12.0,
            "fid_extractor": "offline-cnn",
            "fid_samples": 2000,
            "fid_extractor_detail": "aebench LeNet features",
            "nll": 90.0,
            "kl_per_dim": [0.9, 0.001] * 8,  # half the dimensions collapsed
            "collapsed_fraction": 0.5,
            "active_units": 8,
        },
    )
    # beta sweep: a model option the user swept, so it labels the runs
    for beta, mse, kl in ((0.5, 0.006, 30.0), (4.0, 0.025, 8.0)):
        write_run(
            out,
            f"mnist-beta-vae-cnn-d16-b{beta}",
            model="beta-vae-cnn",
            family="beta-vae",
            latent_dim=16,
            options={"beta": beta},
            shown=("latent_dim", "beta"),
            metrics={
                "test_mse": mse,
                "test_reg": kl,
                "test_recon": 60 + 1 / mse / 10,
                "test_ssim": 0.9 - mse * 4,
            },
        )
    # deterministic AE: no KL, no NLL (not applicable), no FID (not computed)
    write_run(
        out,
        "mnist-ae-cnn-d16-s0",
        model="ae-cnn",
        family="ae",
        latent_dim=16,
        options={"prior": "gmm", "prior_components": 10},
        description="Deterministic autoencoder.",
        not_applicable=AE_NOT_APPLICABLE,
        metrics={
            "fid": None,
            "fid_extractor": None,
            "fid_samples": None,
            "regulariser": "none",
            "sampler": "GaussianMixture(10, full) fitted on training latent means",
            "test_mse": 0.005,
            "test_ssim": 0.95,
        },
    )
    # failed run, reason with markup that must be shown as text
    write_run(
        out,
        "mnist-vae-mlp-d8-s0",
        model="vae-mlp",
        latent_dim=8,
        status="failed",
        reason="RuntimeError: loss is NaN at epoch 2 <b>not bold</b>",
        epochs=2,
        images=False,
    )
    # third-party plugin with HTML in its name and description, and a metric of a
    # plugin that is not installed here
    write_run(
        out,
        "mnist-evil-d4-s0",
        model=EVIL_MODEL,
        family="evil",
        latent_dim=4,
        description=f"plugin description {EVIL}",
        metrics={"my_plugin_score": 0.5, "test_mse": 0.04},
    )
    # a second dataset
    write_run(
        out,
        "fashion-ae-cnn-d2-s0",
        model="ae-cnn",
        family="ae",
        dataset="fashion-mnist",
        latent_dim=2,
        options={"prior": "gmm", "prior_components": 10},
        not_applicable=AE_NOT_APPLICABLE,
        metrics={"regulariser": "none"},
    )
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_benchmark_dir(tmp_path_factory.mktemp("bench"))


def _context(out: Path) -> dict[str, Any]:
    from aebench.report.leaderboard import leaderboard_context

    return leaderboard_context(RunStore(out).records())


@pytest.fixture(scope="module")
def ctx(bench: Path) -> dict[str, Any]:
    return _context(bench)


@pytest.fixture(scope="module")
def site(bench: Path) -> Path:
    from aebench.report import build_site

    index = build_site(bench)
    assert index == bench / "site" / "index.html"
    return index.parent


def _dataset(ctx: dict[str, Any], name: str = "mnist") -> dict[str, Any]:
    return next(ds for ds in ctx["datasets"] if ds["name"] == name)


def _row(ds: dict[str, Any], model: str, **options: Any) -> dict[str, Any]:
    options.setdefault("latent_dim", 16)
    (row,) = [
        r
        for r in ds["rows"]
        if r["model"] == model and all(r["options"].get(k) == v for k, v in options.items())
    ]
    return row


def _columns(ds: dict[str, Any]) -> dict[str, Any]:
    return {c.key: c for c in ds["columns"]}


def _record(metrics: dict[str, Any], **config: Any) -> RunRecord:
    config = {"model": "vae-cnn", "dataset": "mnist", "seed": 0, "model_config": {}, **config}
    return RunRecord(Path("r"), "r", config=config, status="done", metrics=metrics)


# --------------------------------------------------------------------------- leaderboard


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


def test_columns_come_from_the_registry(ctx: dict[str, Any]) -> None:
    from aebench.metrics import column_specs

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


def test_not_applicable_and_missing_cells(ctx: dict[str, Any]) -> None:
    ds = _dataset(ctx)
    ae = _row(ds, "ae-cnn")
    for key in AE_NOT_APPLICABLE:
        cell = ae["cells"][key]
        assert cell["na"] and cell["text"] == "—" and cell["n"] == 0 and not cell["best"]
        assert cell["title"] == "not applicable to this model"
    fid = ae["cells"]["fid:inception:10000"]
    assert fid["text"] == "—" and not fid["na"] and fid["title"] == "not computed"
    vae = _row(ds, "vae-cnn")["cells"]["test_reg"]
    assert not vae["na"] and vae["text"] == "20" and vae["title"] == ""
    # a column nobody has a value for is not shown; on fashion-mnist the AE's KL and NLL
    # do not apply, so those columns vanish there
    fkeys = [c.key for c in _dataset(ctx, "fashion-mnist")["columns"]]
    assert "nll" not in fkeys and "test_reg" not in fkeys and "my_plugin_score" not in fkeys
    assert "test_bpd" in fkeys


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
    ae, beta = ds["rows"]
    assert ae["label"] == "ae-cnn latent_dim=16"
    assert beta["label"] == "beta-vae-cnn latent_dim=16 beta=4"
    reg = ae["cells"]["test_reg"]
    assert reg["na"] and reg["text"] == "—" and reg["title"] == "not applicable to this model"
    assert ae["cells"]["nll"]["na"] and beta["cells"]["test_reg"]["text"] == "13.49"
    fid = "fid:aebench-classifier:fashion-mnist:v1:a8007d7be041:5000"
    assert [r["cells"][fid]["text"] for r in (ae, beta)] == ["13.81", "46.59"]

    index = build_site(tmp_path)
    page = (index.parent / "runs" / "fashion-mnist_ae-cnn_z16_s0_1fc410568f.html").read_text()
    assert "Samples decoded from" in page and "GaussianMixture(10, full)" in page
    assert re.search(r'data-key="test_reg">.*?title="not applicable to this model">—<', page)
    assert "3 min 37 s" in page  # wall time from status.json


# --------------------------------------------------------------------------- run page


def test_run_context(bench: Path) -> None:
    from aebench.report.runpage import run_context

    record = RunStore(bench).read("mnist-vae-cnn-d16-s0")
    rc = run_context(record, "x")
    sections = {s["title"]: {r["name"]: r["value"] for r in s["rows"]} for s in rc["settings"]}
    assert list(sections) == ["Run", "Model options", "Training", "Metric options", "Evaluation"]
    assert sections["Run"]["Seed"] == "0" and sections["Run"]["Image shape (C, H, W)"] == "1x28x28"
    assert sections["Model options"] == {
        "latent_dim": "16",
        "likelihood": "bernoulli",
        "gaussian_var": "0.5",
        "hidden_dims": "32x64",  # resolved_model_config: what was built
    }
    assert sections["Training"]["Learning rate"] == "0.001"
    assert sections["Metric options"]["fid_extractor"] == "auto"
    assert sections["Evaluation"]["Samples decoded from"] == "N(0, I)"
    assert sections["Evaluation"]["Train time"] == "3 min 00 s"
    assert sections["Evaluation"]["Device"] == "cpu"
    assert rc["samples_caption"].startswith("Prior samples: latents drawn from N(0, I), the prior")
    assert rc["sampler"] == "prior N(0, I)"
    assert {v["name"]: v["value"] for v in rc["versions"]}["torch"] == "2.5.0"
    assert [c["name"] for c in rc["per_class"]] == CLASSES
    metrics = {m["key"]: m for m in rc["metrics"]}
    assert metrics["fid"]["unit"] == "offline-cnn, n=2000" and metrics["fid"]["value"] == "12"
    assert metrics["test_mse"]["label"] == "MSE" and metrics["test_mse"]["arrow"] == "↓"
    assert metrics["test_mse"]["definition"] == "Mean squared error per pixel"
    stored = {s["name"]: s["value"] for s in rc["stored"]}
    assert stored["fid_extractor_detail"] == "aebench LeNet features"
    assert stored["n_test"] == "10000" and "test_mse" not in stored

    ae = run_context(RunStore(bench).read("mnist-ae-cnn-d16-s0"), "y")
    metrics = {m["key"]: m for m in ae["metrics"]}
    assert metrics["test_reg"]["na"] and metrics["test_reg"]["value"] == "—"
    assert metrics["fid"]["title"] == "not computed"
    # an AE has no prior: its samples come from a mixture fitted on its latents after training
    assert ae["samples_caption"].startswith("Ex-post samples: latents drawn from a GaussianMixture")
    assert (
        "no prior of its own" in ae["samples_caption"]
        and "prior samples" not in ae["samples_caption"].lower()
    )
    assert ae["sampler"] == "ex-post GMM"
    options = next(s for s in ae["settings"] if s["title"] == "Model options")
    assert {r["name"] for r in options["rows"]} >= {"prior", "prior_components"}


def test_format_helpers() -> None:
    from aebench.report.format import fmt_integer, fmt_number, fmt_option, fmt_seconds

    assert fmt_seconds(205) == "3 min 25 s" and fmt_seconds(12.34) == "12.3 s"
    assert fmt_seconds(3 * 3600 + 125) == "3 h 02 min"
    assert fmt_number(0.0123456) == "0.01235" and fmt_number(12345.678) == "12345.7"
    assert fmt_integer(12000.0) == "12000" and fmt_integer(2.5) == "2.5"
    assert fmt_option([512, 256]) == "512x256" and fmt_option(0.5) == "0.5"


# --------------------------------------------------------------------------- rendering


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, value))


def _refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_site_is_self_contained(site: Path) -> None:
    pages = [site / "index.html", *sorted((site / "runs").glob("*.html"))]
    assert len(pages) == 10
    for page in pages:
        parser = _refs(page)
        for tag, ref in parser.refs:
            if ref.startswith(("#", "data:")):
                continue
            parts = urlsplit(ref)
            assert not parts.scheme and not parts.netloc, f"{page.name}: absolute link {ref}"
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.exists(), f"{page.name}: broken {tag} -> {ref}"
            assert site.resolve() in target.parents


def test_html_from_plugins_is_escaped(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    assert EVIL not in index
    assert "evil&lt;script&gt;alert(1)&lt;/script&gt;$x^2$" in index
    assert "plugin description &lt;script&gt;" in index  # description tooltip
    assert _refs(site / "index.html").scripts == 1  # only the sorting script
    assert "<b>not bold</b>" not in index
    assert "&lt;b&gt;not bold&lt;/b&gt;" in index
    page = (site / "runs" / "mnist-evil-d4-s0.html").read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert _refs(site / "runs" / "mnist-evil-d4-s0.html").scripts == 0


def test_index_content(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    assert 'id="ds-mnist"' in html and 'id="ds-fashion-mnist"' in html
    assert "FID ↓" in html and "inception, n=10000" in html and "offline-cnn, n=2000" in html
    assert "MSE ↓" in html and "SSIM ↑" in html and "PSNR ↑" in html and "Linear probe ↑" in html
    assert 'data-option="latent_dim"' in html and 'data-option="beta"' in html
    assert ">d<" not in html and ">β<" not in html  # no fixed latent/β columns any more
    assert 'title="MSE [per pixel]: Mean squared error per pixel"' in html  # from the registry
    assert "0.02" in html and "± 0.13" in html
    assert len(re.findall(r'<td class="num g-[a-z]+(?: lead)? best"', html)) >= 5
    assert re.search(
        r'<td class="num g-likelihood[a-z ]* na" data-group="likelihood" data-sort="" '
        r'title="not applicable to this model">—<',
        html,
    )
    assert "Failed or unfinished runs (1)" in html
    assert "loss is NaN at epoch 2" in html
    titles = re.findall(r"<strong>([^<]*)\.</strong>", html)
    assert titles == [
        "Training curves",
        "Metrics vs latent_dim",
        "Metrics vs beta",
        "Rate–distortion",
        "Per-class MSE by configuration",
    ]
    for name in (
        "mnist-training.png",
        "mnist-vs-latent_dim.png",
        "mnist-vs-beta.png",
        "mnist-rate-distortion.png",
        "mnist-per-class-mse.png",
    ):
        assert f"plots/{name}" in html
        assert (site / "plots" / name).stat().st_size > 1000
    # fashion-mnist has a single AE run: no option sweep, no KL runs
    assert not list((site / "plots").glob("fashion-mnist-*.png"))
    assert re.search(r'data-sort="0\.02(0*\d*)?"', html)


def test_comparison_series_are_generic(ctx: dict[str, Any]) -> None:
    from aebench.report.comparisons import compared_columns, option_series

    ds = _dataset(ctx)
    names = [o["name"] for o in ds["options"]]
    beta = option_series(ds["rows"], "beta", names)
    assert {k: sorted(x for x, _ in v) for k, v in beta.items()} == {
        "beta-vae-cnn latent_dim=16": [0.5, 4.0]
    }
    latent = option_series(ds["rows"], "latent_dim", names)
    assert sorted(x for x, _ in latent["vae-cnn"]) == [2.0, 16.0]
    assert "beta-vae-cnn beta=0.5" in latent
    compared = [c.key for c in compared_columns(ds["columns"], ds["rows"])]
    assert compared == ["test_total", "test_mse", "fid:inception:10000", "probe_acc"]


def test_run_page_content(site: Path) -> None:
    page = site / "runs" / "mnist-vae-cnn-d16-s0.html"
    html = page.read_text(encoding="utf-8")
    srcs = [ref for tag, ref in _refs(page).refs if tag == "img"]
    assert sorted(Path(s).name for s in srcs) == sorted(
        [
            "recon.png",
            "samples.png",
            "interp.png",
            "kl_per_dim.png",
            "recon_epochs.gif",
            "latents.png",
            "latents_epochs.gif",
            "losses.png",
            "quality.png",
            "per_class.png",
        ]
    )
    for text in (
        "offline-cnn, n=2000",
        "aebench LeNet features",
        "Device",
        "torchvision",
        "Seed",
        "Train time",
        "Wall time (start → finish)",
        "Prior samples: latents drawn from N(0, I)",
        "PCA (left) and t-SNE",
        "3 epochs",
        "<h3>Model options</h3>",
        "<h3>Metric options</h3>",
    ):
        assert text in html, text
    assert "<title>vae-cnn latent_dim=16 on mnist" in html
    assert "seed" not in html.split("<h1>")[0].split("Leaderboard")[1]  # a single seed
    d2 = (site / "runs" / "mnist-vae-cnn-d2-s0.html").read_text(encoding="utf-8")
    assert 'href="mnist-vae-cnn-d2-s1.html"' in d2  # link to the other seed
    assert "plotted directly" in d2
    failed = (site / "runs" / "mnist-vae-mlp-d8-s0.html").read_text(encoding="utf-8")
    assert "did not finish (failed)" in failed and "loss is NaN" in failed
    assert "losses.png" in failed  # partial curves of a failed run are still shown
    ae = (site / "runs" / "mnist-ae-cnn-d16-s0.html").read_text(encoding="utf-8")
    assert "Ex-post samples: latents drawn from a GaussianMixture(10, full)" in ae


def test_gif_is_animated(site: Path) -> None:
    from PIL import Image

    with Image.open(site / "runs" / "mnist-vae-cnn-d16-s0" / "recon_epochs.gif") as im:
        assert im.is_animated and im.n_frames == 3


def test_images_are_small(site: Path) -> None:
    sizes = {p: p.stat().st_size for p in site.rglob("*") if p.suffix in (".png", ".gif")}
    assert max(sizes.values()) < 120_000, max(sizes.items(), key=lambda kv: kv[1])
    assert sum(sizes.values()) < 3_000_000


def test_rebuild_prunes_removed_runs(tmp_path: Path) -> None:
    import shutil

    from aebench.report import build_site

    write_run(tmp_path, "keep", light=True)
    gone = write_run(tmp_path, "gone", latent_dim=8, light=True)
    out = tmp_path / "site"
    build_site(tmp_path, out)
    assert (out / "runs" / "gone.html").exists()
    assert (out / "plots" / "mnist-vs-latent_dim.png").exists()
    (out / "notes.txt").write_text("user file")
    shutil.rmtree(gone)
    build_site(tmp_path, out)
    assert not (out / "runs" / "gone.html").exists()
    assert not (out / "plots" / "mnist-vs-latent_dim.png").exists()  # one latent_dim left
    assert (out / "runs" / "keep.html").exists()
    assert (out / "notes.txt").exists()  # only runs/ and plots/ are the builder's


def test_a_failed_rebuild_leaves_the_published_site_whole(tmp_path: Path, monkeypatch) -> None:
    from aebench.report import build_site, render

    write_run(tmp_path, "one", light=True)
    out = tmp_path / "site"
    build_site(tmp_path, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write_run(tmp_path, "two", latent_dim=8, light=True)

    def half(root: Path, *args: Any) -> None:  # writes part of the new site, then fails
        (root / "index.html").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(render, "_build", half)
    with pytest.raises(RuntimeError):
        build_site(tmp_path, out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the old site, untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []
    monkeypatch.undo()
    build_site(tmp_path, out)  # the swap: the new site whole, nothing left beside it
    assert (out / "runs" / "two.html").exists() and (out / "runs" / "one.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []


def test_latent_projections(tmp_path: Path) -> None:
    from aebench.report.plots import plot_latents

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    assert plot_latents(rng.normal(size=(60, 2)), y, tmp_path / "a.png") == ["z (direct)"]
    assert plot_latents(rng.normal(size=(30, 6)), None, tmp_path / "b.png") == ["PCA", "t-SNE"]
    assert plot_latents(rng.normal(size=(1, 6)), None, tmp_path / "c.png") == []
    assert (tmp_path / "a.png").exists() and not (tmp_path / "c.png").exists()


def test_report_command(tmp_path: Path) -> None:
    from aebench.errors import DataError
    from aebench.report import report_command

    with pytest.raises(DataError, match="does not exist"):
        report_command(tmp_path / "nope")
    with pytest.raises(DataError, match="not an aebench output folder"):
        report_command(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(DataError, match="no runs found") as err:
        report_command(tmp_path)
    assert "\n" not in str(err.value)
    write_run(tmp_path, "one", light=True)
    index = report_command(tmp_path, tmp_path / "public")
    assert index == tmp_path / "public" / "index.html" and index.exists()
    # the runs/ folder and a single run dir work too
    assert report_command(tmp_path / "runs", tmp_path / "from-runs").exists()
    single = report_command(tmp_path / "runs" / "one", tmp_path / "single")
    assert (single.parent / "runs" / "one.html").exists()


def test_run_page_animates_the_latent_space_over_epochs(tmp_path: Path) -> None:
    from PIL import Image

    from aebench.report import build_site

    out = tmp_path / "bench"
    write_run(out, "mnist-vae-cnn-z8", latent_dim=8, epochs=4)
    index = build_site(out)
    (page,) = (index.parent / "runs").glob("*.html")
    html = page.read_text()
    assert "latents_epochs.gif" in html and "after each epoch" in html
    gif = next((index.parent / "runs").glob("*/latents_epochs.gif"))
    with Image.open(gif) as im:
        assert im.n_frames == 4 and im.size[0] > 100


# --------------------------------------------------------------------------- comparability,
# significance, flags, progress, downloads, gallery, figures


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


def test_build_site_reports_progress(tmp_path: Path) -> None:
    from aebench.report import SITE_STEPS, SiteProgress, build_site

    for i in range(3):
        write_run(tmp_path, f"r{i}", seed=i, light=True)
    events: list[SiteProgress] = []
    build_site(tmp_path, on_event=events.append)
    steps = [e.step for e in events]
    assert [s for i, s in enumerate(steps) if s not in steps[:i]] == list(SITE_STEPS)
    pages = [e for e in events if e.step == "run pages"]
    assert [(e.done, e.total) for e in pages] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert pages[-1].item == "r2" and "run pages 3/3" in pages[-1].text
    assert (events[-1].step, events[-1].done, events[-1].total) == ("index", 1, 1)


def test_downloads_and_model_links(site: Path, bench: Path) -> None:
    import pandas as pd

    html = (site / "index.html").read_text(encoding="utf-8")
    assert '<a href="results.csv" download>CSV</a>' in html
    assert '<a href="results.parquet" download>Parquet</a>' in html
    table = pd.read_csv(site / "results.csv")
    assert set(table["run_id"]) == set(RunStore(bench).run_ids())
    assert set(pd.read_parquet(site / "results.parquet")["run_id"]) == set(table["run_id"])
    # a model name links to its (first) run page
    assert '<a href="runs/mnist-ae-cnn-d16-s0.html">ae-cnn</a>' in html


def test_gallery_shows_shared_originals_reconstructions_and_labelled_samples(site: Path) -> None:
    from PIL import Image

    html = (site / "index.html").read_text(encoding="utf-8")
    mnist = html[html.index('id="ds-mnist"') :]
    gallery = mnist[mnist.index('<div class="gallery">') : mnist.index("<h3>Comparisons")]
    assert gallery.count('<div class="glabel">Test originals</div>') == 1
    assert gallery.count("Reconstructions by ") == 6  # one row per mnist configuration
    assert "samples: prior N(0, I)" in gallery and "samples: ex-post GMM" in gallery
    with Image.open(site / "runs" / "mnist-ae-cnn-d16-s0" / "recon.png") as full:
        w, h = full.size
    crops = site / "plots" / "mnist-gallery"
    with (
        Image.open(crops / "originals.png") as top,
        Image.open(crops / "mnist-ae-cnn-d16-s0-recon.png") as bottom,
    ):
        assert top.size == (w, h // 2) and bottom.size == (w, h - h // 2)
    with Image.open(crops / "mnist-ae-cnn-d16-s0-samples.png") as samples:
        assert samples.size == (242, 62)  # two rows of the 8 x 8 grid of 28-px tiles


def test_figures_are_2x_pngs_shown_at_their_size(site: Path) -> None:
    from PIL import Image

    html = (site / "index.html").read_text(encoding="utf-8")
    shown = re.findall(r'<img src="(plots/[^"]+)" width="(\d+)" height="(\d+)"', html)
    assert len(shown) >= 4
    for src, width, height in shown:
        with Image.open(site / src) as im:
            assert im.size == (2 * int(width), 2 * int(height)) or (
                abs(im.size[0] - 2 * int(width)) <= 1 and abs(im.size[1] - 2 * int(height)) <= 1
            )


def test_figures_have_no_clipped_or_overlapping_labels(ctx: dict[str, Any], tmp_path: Path) -> None:
    from aebench.report import plots
    from aebench.report.comparisons import dataset_figures
    from aebench.report.plots import base

    base.AUDIT = []
    try:
        ds = _dataset(ctx)
        drawn = [f.name for f in dataset_figures(ds) if f.draw(tmp_path / f"{f.name}.png")]
        assert {"training", "vs-latent_dim", "vs-beta", "per-class-mse"} <= set(drawn)
        assert plots.plot_kl_per_dim([0.5, 0.001] * 20, tmp_path / "kl.png")
        maps = [
            {"label": f"a-long-model-name-{i} latent_dim=2", "z": np.eye(2) * i, "y": None}
            for i in range(5)
        ]
        assert plots.plot_latent_maps(maps, tmp_path / "maps.png")
        assert base.AUDIT == []
        # the audit can fail: labels drawn on top of each other are found
        fig, (ax,) = base.figure()
        ax.text(0.5, 0.5, "one label")
        ax.text(0.5, 0.5, "another label")
        assert any("overlap" in p for p in base.layout_problems(fig))
    finally:
        base.AUDIT = None


def test_model_colours_are_one_per_model_across_the_site(ctx: dict[str, Any]) -> None:
    from aebench.report.plots import model_colours

    models = {row["model"] for ds in ctx["datasets"] for row in ds["rows"]}
    colours = model_colours(models)
    assert set(colours) == models and len(set(colours.values())) == len(models)
    assert model_colours(sorted(models)) == colours  # independent of order


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


def test_run_page_plots_kl_per_dimension(site: Path) -> None:
    html = (site / "runs" / "mnist-vae-cnn-d16-s0.html").read_text(encoding="utf-8")
    assert "Latent health" in html and 'src="mnist-vae-cnn-d16-s0/kl_per_dim.png"' in html
    assert (site / "runs" / "mnist-vae-cnn-d16-s0" / "kl_per_dim.png").is_file()
    # every generated image is a link to itself
    for src in re.findall(r'<img [^>]*src="([^"]+)"', html):
        assert f'<a href="{src}"><img' in html, src
    # resolved settings: the hidden sizes actually built, not the requested null
    assert "<dt>hidden_dims</dt><dd>32x64</dd>" in html


def test_compact_html_folds_white_space_between_tags_only() -> None:
    from aebench.report.render import compact_html

    page = (
        "<div>\n  <p>a  b</p>\n  <p>c</p>\n<pre>x\n  <b>y</b>\n</pre>"
        "<script>if (a > b)\n  c < d</script>\n</div>"
    )
    out = compact_html(page)
    assert out.startswith("<div> <p>a  b</p> <p>c</p>")  # one space: renders the same
    assert "<pre>x\n  <b>y</b>\n</pre>" in out  # verbatim blocks untouched
    assert "<script>if (a > b)\n  c < d</script>" in out


def test_every_page_uses_the_one_local_stylesheet(site: Path) -> None:
    pages = [site / "index.html", *sorted((site / "runs").glob("*.html"))]
    assert len(pages) > 1 and (site / "style.css").stat().st_size > 1000
    for page in pages:
        html = page.read_text()
        (href,) = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
        assert (page.parent / href).resolve() == (site / "style.css").resolve(), page
        assert "<style>" not in html
