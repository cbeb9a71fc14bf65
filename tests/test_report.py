"""The HTML leaderboard: context building, rendering, escaping, assets.

``make_benchmark_dir`` writes fake-but-realistic run directories in the
runner's format; the browser test (test_report_browser.py) reuses it.
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

EVIL = "<script>alert(1)</script>"
EVIL_MODEL = f"evil{EVIL}$x^2$"
VERSIONS = {"torch": "2.5.0", "torchvision": "0.20.0", "aebench": "0.1.0", "python": "3.11.9"}
CLASSES = [str(i) for i in range(10)]


# --------------------------------------------------------------------------- fake runs


def _save_grid(path: Path, n: int, nrow: int, seed: int) -> None:
    """A grid of smooth random blobs (digit-like sizes), as the runner writes them."""
    import torch
    from torch.nn.functional import interpolate
    from torchvision.utils import save_image

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 7, 7, generator=g)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(interpolate(coarse, size=(28, 28), mode="bilinear"), path, nrow=nrow, padding=2)


def write_run(
    out: Path,
    run_id: str,
    *,
    model: str = "vae-cnn",
    family: str = "vae",
    dataset: str = "mnist",
    latent_dim: int = 16,
    beta: float | None = None,
    seed: int = 0,
    epochs: int = 3,
    status: str = "done",
    reason: str | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = "A convolutional VAE.",
    n_latents: int = 60,
    images: bool = True,
) -> Path:
    """Write one run dir in the runner's format; ``metrics`` override the defaults."""
    d = out / "runs" / run_id
    d.mkdir(parents=True)
    config = {
        "run_id": run_id,
        "model": model,
        "family": family,
        "arch": "cnn",
        "dataset": dataset,
        "latent_dim": latent_dim,
        "beta": beta,
        "seed": seed,
        "epochs": epochs,
        "batch_size": 128,
        "lr": 0.001,
        "limit": 512,
        "likelihood": "bernoulli",
        "model_config": {"hidden": [32, 64], "latent_dim": latent_dim},
        "profile": "quick",
        "fid_extractor": "auto",
        "fid_samples": 10000,
        "plugin": "aebench 0.1.0 (built-in)",
        "description": description,
    }
    (d / "config.json").write_text(json.dumps(config))
    (d / "status.json").write_text(
        json.dumps(
            {
                "status": status,
                "reason": reason,
                "started": "2025-01-01T10:00:00+00:00",
                "finished": None if status == "running" else "2025-01-01T10:03:25+00:00",
            }
        )
    )
    rng = np.random.default_rng(seed * 100 + latent_dim)
    lines = [
        "epoch,train_total,train_recon,train_reg,val_total,val_recon,val_reg,"
        "val_mse,val_ssim,val_psnr,seconds"
    ]
    for e in range(1, epochs + 1):
        t = 200 / e + rng.normal()
        lines.append(
            f"{e},{t},{t - 20},20,{t + 3},{t - 18},21,{0.05 / e},{0.5 + 0.1 * e},{12 + e},{1.5}"
        )
    (d / "history.csv").write_text("\n".join(lines) + "\n")
    if images:
        _save_grid(d / "images" / "recon.png", 16, 8, seed)
        _save_grid(d / "images" / "samples.png", 64, 8, seed + 1)
        _save_grid(d / "images" / "interp.png", 10, 10, seed + 2)
        for e in range(1, epochs + 1):
            _save_grid(d / "images" / f"recon_epoch_{e:03d}.png", 16, 8, seed + 10 + e)
        y = np.arange(n_latents, dtype=np.int64) % 10
        z = rng.normal(size=(n_latents, latent_dim)).astype(np.float32) + y[:, None] * 0.5
        np.savez(d / "latents.npz", z=z, y=y)
        drift = np.linspace(2.0, 0.0, epochs)[:, None, None]  # codes settle over training
        z_epochs = np.stack([z[:60] * (1 - k / 4) + k for k in drift[:, 0, 0]])
        np.savez(d / "latents_epochs.npz", z=z_epochs.astype(np.float32), y=y[:60])
    if status == "done":
        m: dict[str, Any] = {
            "test_total": 100.0,
            "test_recon": 80.0,
            "test_reg": 20.0,
            "test_bpd": 0.18,
            "test_mse": 0.02,
            "test_psnr": 17.0,
            "test_ssim": 0.7,
            "fid": 30.0,
            "fid_extractor": "inception",
            "fid_extractor_detail": "pt_inception-2015-12-05",
            "fid_samples": 10000,
            "fid_reference": "test split",
            "fid_grayscale": "repeat 3 channels",
            "nll": 95.0,
            "nll_bpd": 0.17,
            "nll_k": 100,
            "probe_acc": 0.9,
            "regulariser": "kl",
            "prior": "N(0, I)",
            "train_seconds": 180.0,
            "eval_seconds": 25.0,
            "device": "cpu",
            "versions": VERSIONS,
            "per_class": {
                c: {"mse": 0.01 + 0.002 * i, "psnr": 20 - i * 0.3, "ssim": 0.8}
                for i, c in enumerate(CLASSES)
            },
        }
        m.update(metrics or {})
        (d / "metrics.json").write_text(json.dumps(m))
    (d / "weights.safetensors").write_bytes(b"ignored")
    return d


def make_benchmark_dir(out: Path) -> Path:
    """A benchmark output dir with two datasets, seeds, a β sweep, FID from two
    extractors, an AE without NLL/FID, a failed run and a plugin with an HTML name."""
    # vae-cnn d=2: two seeds, aggregated
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
    # vae-cnn d=16 with FID from another extractor (must get its own column)
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
        },
    )
    # beta sweep
    for beta, mse, kl in ((0.5, 0.006, 30.0), (4.0, 0.025, 8.0)):
        write_run(
            out,
            f"mnist-beta-vae-cnn-d16-b{beta}",
            model="beta-vae-cnn",
            family="beta_vae",
            latent_dim=16,
            beta=beta,
            metrics={
                "test_mse": mse,
                "test_reg": kl,
                "test_recon": 60 + 1 / mse / 10,
                "test_ssim": 0.9 - mse * 4,
            },
        )
    # deterministic AE: no KL, no NLL, no FID
    write_run(
        out,
        "mnist-ae-cnn-d16-s0",
        model="ae-cnn",
        family="ae",
        latent_dim=16,
        description="Deterministic autoencoder.",
        metrics={
            "test_reg": 0.0,
            "nll": None,
            "nll_bpd": None,
            "nll_k": None,
            "fid": None,
            "fid_extractor": None,
            "fid_samples": None,
            "regulariser": "none",
            "prior": "GMM fitted on training latents",
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
    # third-party plugin with HTML in its name and description, and an extra metric
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
        metrics={"regulariser": "none", "test_reg": 0.0, "nll": None},
    )
    return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_benchmark_dir(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def ctx(bench: Path) -> dict[str, Any]:
    from aebench.report.context import leaderboard_context, load_runs

    return leaderboard_context(load_runs(bench))


@pytest.fixture(scope="module")
def site(bench: Path) -> Path:
    from aebench.report import build_site

    index = build_site(bench)
    assert index == bench / "site" / "index.html"
    return index.parent


def _mnist(ctx: dict[str, Any]) -> dict[str, Any]:
    return next(ds for ds in ctx["datasets"] if ds["name"] == "mnist")


def _row(ds: dict[str, Any], model: str, d: int, beta: float | None = None) -> dict[str, Any]:
    (row,) = [
        r for r in ds["rows"] if r["model"] == model and r["latent_dim"] == d and r["beta"] == beta
    ]
    return row


# --------------------------------------------------------------------------- context


def test_datasets_sorted_and_counted(ctx: dict[str, Any]) -> None:
    assert [ds["name"] for ds in ctx["datasets"]] == ["fashion-mnist", "mnist"]
    assert ctx["n_runs"] == 9
    assert ctx["n_not_done"] == 1
    mnist = _mnist(ctx)
    assert len(mnist["rows"]) == 6  # two seeds of vae-cnn d=2 share a row


def test_seeds_aggregate_to_mean_and_std(ctx: dict[str, Any]) -> None:
    row = _row(_mnist(ctx), "vae-cnn", 2)
    assert row["n_seeds"] == 2
    assert [r["seed"] for r in row["runs"]] == [0, 1]
    cell = row["cells"]["test_mse"]
    assert cell["mean"] == pytest.approx(0.02)
    assert cell["std"] == pytest.approx(math.sqrt(2) * 0.01)  # sample std, ddof=1
    assert cell["n"] == 2
    assert cell["text"] == "0.02 ± 0.014"
    single = _row(_mnist(ctx), "ae-cnn", 16)["cells"]["test_mse"]
    assert single["std"] is None and single["text"] == "0.005"


def test_best_marking_respects_direction(ctx: dict[str, Any]) -> None:
    ds = _mnist(ctx)
    best = {
        col["key"]: [r["model"] for r in ds["rows"] if r["cells"][col["key"]]["best"]]
        for col in ds["columns"]
    }
    assert best["test_mse"] == ["ae-cnn"]  # lowest MSE (0.005)
    assert best["test_ssim"] == ["ae-cnn"]  # highest SSIM (0.95)
    assert best["test_reg"] == []  # KL is informational: a collapsed or absent KL is not "best"
    cols = {c["key"]: c for c in ds["columns"]}
    assert cols["test_mse"]["arrow"] == "↓" and cols["test_mse"]["first"] == "ascending"
    assert cols["test_psnr"]["arrow"] == "↑" and cols["test_psnr"]["first"] == "descending"
    assert cols["probe_acc"]["direction"] == "max"
    assert cols["nll"]["direction"] == "min"
    # undirected columns are never marked
    assert not any(r["cells"]["train_seconds"]["best"] for r in ds["rows"])
    assert not any(r["cells"]["my_plugin_score"]["best"] for r in ds["rows"])
    # ties for best are all marked (inception FID 30 for three configurations, 42 for one) ...
    assert sum(r["cells"]["fid:inception:10000"]["best"] for r in ds["rows"]) == 3
    # ... but a column where everyone ties marks nobody (every run has PSNR 17)
    assert not any(r["cells"]["test_psnr"]["best"] for r in ds["rows"])


def test_best_needs_two_values() -> None:
    from aebench.report.context import aggregate, mark_best

    rows = [
        {"cells": {"a": aggregate([1.0]), "b": aggregate([None])}},
        {"cells": {"a": aggregate([None]), "b": aggregate([2.0, 4.0])}},
    ]
    mark_best(rows, [{"key": "a", "direction": "min"}, {"key": "b", "direction": "max"}])
    assert not any(r["cells"][k]["best"] for r in rows for k in "ab")


def test_fid_split_by_extractor(ctx: dict[str, Any]) -> None:
    ds = _mnist(ctx)
    fid_cols = [c for c in ds["columns"] if c["key"].startswith("fid")]
    assert [c["key"] for c in fid_cols] == ["fid:inception:10000", "fid:offline-cnn:2000"]
    assert fid_cols[0]["sub"] == "inception, n=10000"
    assert fid_cols[1]["sub"] == "offline-cnn, n=2000"
    assert "aebench LeNet features" in fid_cols[1]["title"]
    d2, d16 = _row(ds, "vae-cnn", 2), _row(ds, "vae-cnn", 16)
    assert d2["cells"]["fid:inception:10000"]["mean"] == pytest.approx(42.0)
    assert d2["cells"]["fid:offline-cnn:2000"]["mean"] is None
    assert d16["cells"]["fid:offline-cnn:2000"]["mean"] == pytest.approx(12.0)
    assert d16["cells"]["fid:inception:10000"]["mean"] is None
    # 12 (offline) must not beat the inception numbers: different columns, different bests
    assert not d16["cells"]["fid:inception:10000"]["best"]
    keys = [c["key"] for c in ds["columns"]]
    assert keys.index("test_ssim") < keys.index("fid:inception:10000") < keys.index("nll")


def test_failed_runs_listed_with_reason(ctx: dict[str, Any]) -> None:
    ds = _mnist(ctx)
    (failed,) = ds["others"]
    assert failed["run_id"] == "mnist-vae-mlp-d8-s0"
    assert failed["status"] == "failed"
    assert "loss is NaN" in failed["reason"]
    assert failed["href"] == "runs/mnist-vae-mlp-d8-s0.html"
    assert all(r["model"] != "vae-mlp" for r in ds["rows"])


def test_missing_and_null_metrics(ctx: dict[str, Any]) -> None:
    ds = _mnist(ctx)
    ae = _row(ds, "ae-cnn", 16)
    assert ae["cells"]["nll"] == {
        "mean": None,
        "std": None,
        "n": 0,
        "text": "—",
        "sort": "",
        "best": False,
    }
    assert ae["cells"]["fid:inception:10000"]["text"] == "—"
    # a column nobody has is not shown at all; null columns on one dataset vanish there
    fashion = next(d for d in ctx["datasets"] if d["name"] == "fashion-mnist")
    fkeys = [c["key"] for c in fashion["columns"]]
    assert "nll" not in fkeys and "my_plugin_score" not in fkeys
    assert "nll_bpd" in fkeys


def test_extra_plugin_metric_column(ctx: dict[str, Any]) -> None:
    ds = _mnist(ctx)
    col = next(c for c in ds["columns"] if c["key"] == "my_plugin_score")
    assert col["direction"] is None and col["arrow"] == ""
    evil = _row(ds, EVIL_MODEL, 4)
    assert evil["cells"]["my_plugin_score"]["mean"] == 0.5
    assert _row(ds, "vae-cnn", 16)["cells"]["my_plugin_score"]["text"] == "—"


def test_variants_are_separate_rows(tmp_path: Path) -> None:
    from aebench.report.context import leaderboard_context, load_runs

    write_run(tmp_path, "a", epochs=2, images=False)
    write_run(tmp_path, "b", epochs=3, images=False)
    write_run(tmp_path, "c", epochs=3, seed=1, images=False)
    (ds,) = leaderboard_context(load_runs(tmp_path))["datasets"]
    assert sorted((r["variant"], r["n_seeds"]) for r in ds["rows"]) == [
        ("epochs=2", 1),
        ("epochs=3", 2),
    ]


def test_unreadable_and_incomplete_runs(tmp_path: Path) -> None:
    from aebench.report.context import leaderboard_context, load_runs

    write_run(tmp_path, "good", images=False)
    bad = write_run(tmp_path, "bad", images=False)
    (bad / "config.json").write_text("{not json")
    half = write_run(tmp_path, "half", images=False)
    (half / "metrics.json").unlink()
    runs = load_runs(tmp_path)
    assert {r["run_id"]: r["status"] for r in runs} == {
        "good": "done",
        "bad": "unreadable",
        "half": "incomplete",
    }
    ctx = leaderboard_context(runs)
    others = {o["run_id"]: o for ds in ctx["datasets"] for o in ds["others"]}
    assert "config.json unreadable" in others["bad"]["reason"]
    assert "metrics.json missing" in others["half"]["reason"]


def test_run_context_settings(bench: Path) -> None:
    from aebench.report.context import load_run, run_context

    rc = run_context(load_run(bench / "runs" / "mnist-vae-cnn-d16-s0"))
    settings = {s["name"]: s["value"] for s in rc["settings"]}
    assert settings["FID extractor"] == "offline-cnn (aebench LeNet features)"
    assert settings["FID samples"] == "2000"
    assert settings["Device"] == "cpu"
    assert settings["Seed"] == "0"
    assert settings["Prior"] == "N(0, I)"
    assert settings["Train time"] == "3 min 00 s"
    assert settings["Wall time (start → finish)"] == "3 min 25 s"
    assert {v["name"]: v["value"] for v in rc["versions"]}["torch"] == "2.5.0"
    assert [c["name"] for c in rc["per_class"]] == CLASSES
    assert any(m["label"] == "FID" and m["unit"] == "offline-cnn, n=2000" for m in rc["metrics"])


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
    assert "MSE ↓" in html and "SSIM ↑" in html and "PSNR ↑" in html and "Probe acc. ↑" in html
    assert "0.02 ± 0.014" in html
    assert html.count('class="num best"') >= 5
    assert "Failed or unfinished runs (1)" in html
    assert "loss is NaN at epoch 2" in html
    for name in (
        "mnist-vs-latent_dim.png",
        "mnist-vs-beta.png",
        "mnist-rate-distortion.png",
        "mnist-per-class-mse.png",
    ):
        assert f"plots/{name}" in html
        assert (site / "plots" / name).stat().st_size > 1000
    # fashion-mnist has a single AE run: no latent/β sweep, no KL runs
    assert not list((site / "plots").glob("fashion-mnist-*"))
    assert re.search(r'data-sort="0\.02(0*\d*)?"', html)


def test_run_page_content(site: Path) -> None:
    page = site / "runs" / "mnist-vae-cnn-d16-s0.html"
    html = page.read_text(encoding="utf-8")
    srcs = [ref for tag, ref in _refs(page).refs if tag == "img"]
    assert sorted(Path(s).name for s in srcs) == sorted(
        [
            "recon.png",
            "samples.png",
            "interp.png",
            "recon_epochs.gif",
            "latents.png",
            "latents_epochs.gif",
            "losses.png",
            "quality.png",
            "per_class.png",
        ]
    )
    for text in (
        "offline-cnn (aebench LeNet features)",
        "Device",
        "torchvision",
        "Seed",
        "Train time",
        "Prior",
        "PCA (left) and t-SNE",
        "3 epochs",
    ):
        assert text in html, text
    assert "seed" not in html.split("<h1>")[0].split("Leaderboard")[1]  # a single seed
    d2 = (site / "runs" / "mnist-vae-cnn-d2-s0.html").read_text(encoding="utf-8")
    assert 'href="mnist-vae-cnn-d2-s1.html"' in d2  # link to the other seed
    assert "plotted directly" in d2
    failed = (site / "runs" / "mnist-vae-mlp-d8-s0.html").read_text(encoding="utf-8")
    assert "did not finish (failed)" in failed and "loss is NaN" in failed
    assert "losses.png" in failed  # partial curves of a failed run are still shown


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

    write_run(tmp_path, "keep", images=False)
    gone = write_run(tmp_path, "gone", latent_dim=8, images=False)
    out = tmp_path / "site"
    build_site(tmp_path, out)
    assert (out / "runs" / "gone.html").exists()
    (out / "notes.txt").write_text("user file")
    shutil.rmtree(gone)
    build_site(tmp_path, out)
    assert not (out / "runs" / "gone.html").exists()
    assert (out / "runs" / "keep.html").exists()
    assert (out / "notes.txt").exists()  # only runs/ and plots/ are the builder's


def test_latent_projections(tmp_path: Path) -> None:
    from aebench.report.plots import plot_latents

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    assert plot_latents(rng.normal(size=(60, 2)), y, tmp_path / "a.png") == ["z (direct)"]
    assert plot_latents(rng.normal(size=(30, 6)), None, tmp_path / "b.png") == ["PCA", "t-SNE"]
    assert plot_latents(rng.normal(size=(1, 6)), None, tmp_path / "c.png") == []
    assert (tmp_path / "a.png").exists() and not (tmp_path / "c.png").exists()


def test_report_command(tmp_path: Path) -> None:
    from aebench.errors import AebenchError
    from aebench.report import report_command

    with pytest.raises(AebenchError, match="does not exist"):
        report_command(tmp_path / "nope")
    with pytest.raises(AebenchError, match="no runs found"):
        report_command(tmp_path)
    write_run(tmp_path, "one", images=False)
    index = report_command(tmp_path, tmp_path / "public")
    assert index == tmp_path / "public" / "index.html" and index.exists()
    # a single run dir works too
    assert report_command(tmp_path / "runs" / "one", tmp_path / "single").exists()


def test_fid_column_header_with_a_classifier_extractor_id_containing_colons():
    from aebench.report.context import _fid_column, fid_key

    metrics = {
        "fid": 3.0,
        "fid_extractor": "aebench-classifier:mnist:v1:0123abcd",
        "fid_samples": 5000,
    }
    key = fid_key(metrics)
    col = _fid_column(key, [{"metrics": metrics}])
    assert col["extractor"] == "aebench-classifier:mnist:v1:0123abcd"
    assert col["samples"] == "5000"
    assert col["sub"] == "aebench-classifier, n=5000"


def test_run_page_animates_the_latent_space_over_epochs(tmp_path):
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
