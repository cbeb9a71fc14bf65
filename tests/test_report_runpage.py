"""Run pages: the run context (settings, metrics, sampler) and the rendered page and images."""

from __future__ import annotations

import re
from pathlib import Path

from report_helpers import CLASSES, _refs, write_run

from aebench.store import RunStore


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


def test_run_page_plots_kl_per_dimension(site: Path) -> None:
    html = (site / "runs" / "mnist-vae-cnn-d16-s0.html").read_text(encoding="utf-8")
    assert "Latent health" in html and 'src="mnist-vae-cnn-d16-s0/kl_per_dim.png"' in html
    assert (site / "runs" / "mnist-vae-cnn-d16-s0" / "kl_per_dim.png").is_file()
    # every generated image is a link to itself
    for src in re.findall(r'<img [^>]*src="([^"]+)"', html):
        assert f'<a href="{src}"><img' in html, src
    # resolved settings: the hidden sizes actually built, not the requested null
    assert "<dt>hidden_dims</dt><dd>32x64</dd>" in html
