"""Fake benchmark runs and lookups shared by the report tests (tests/test_report_*.py).

``make_benchmark_dir`` writes fake-but-realistic runs through the run store
(format 2, as the runner writes them); conftest.py builds it once per session
(fixtures ``bench``, ``ctx``, ``site``). ``write_format1_run`` writes a run by hand
exactly as aebench 0.1.0 did. A plain module: the test files import it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

from aebench.store import RunStore

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


# --------------------------------------------------------------------------- lookups


def _context(out: Path) -> dict[str, Any]:
    from aebench.report.leaderboard import leaderboard_context

    return leaderboard_context(RunStore(out).records())


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
