"""Slow end-to-end checks on real MNIST from ../shared/data (run by .ci/run: `-m slow`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def aebench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aebench.cli", *args],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )


def test_mnist_subset_end_to_end(shared_data, tmp_path):
    res = aebench(
        "run",
        "--models",
        "vae-mlp,ae-cnn",
        "--datasets",
        "mnist",
        "--data-dir",
        str(shared_data),
        "--limit",
        "3000",
        "--epochs",
        "10",
        "--fid-samples",
        "1000",
        "--nll-samples",
        "200",
        "--probe-samples",
        "2000",
        "--out",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(tmp_path / "results.csv").set_index("model")
    assert set(table.index) == {"vae-mlp", "ae-cnn"} and (table.status == "done").all()
    vae = table.loc["vae-mlp"]
    # 10 epochs on 3k MNIST images (~230 steps): measured here 163 nats, SSIM 0.49,
    # probe 0.75. An untrained VAE sits near 545 nats with SSIM near 0.
    assert 100 < vae.test_total < 200
    assert vae.nll <= vae.test_total + 1e-6  # the IWAE bound is at least the ELBO
    assert vae.test_ssim > 0.35 and vae.probe_acc > 0.6
    assert pd.isna(table.loc["ae-cnn"].test_reg) and pd.isna(table.loc["ae-cnn"].nll)  # n/a
    assert vae.fid_samples == 1000 and vae.fid_reference == 10000
    assert vae.fid_extractor.startswith("aebench-classifier") and vae.fid > 0
    assert (tmp_path / "site" / "index.html").is_file()
    config = json.loads(next((tmp_path / "runs").glob("mnist_vae-mlp*/config.json")).read_text())
    assert config["input_shape"] == [1, 28, 28] and config["limit"] == 3000


def test_sigkill_mid_benchmark_loses_at_most_the_run_in_progress(shared_data, tmp_path):
    args = [
        "run",
        "--models",
        "vae-mlp,ae-mlp",
        "--latent-dims",
        "2,8",
        "--datasets",
        "mnist",
        "--data-dir",
        str(shared_data),
        "--limit",
        "1000",
        "--epochs",
        "2",
        "--no-fid",
        "--no-report",
        "--nll-samples",
        "100",
        "--probe-samples",
        "500",
    ]
    clean = aebench(*args, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aebench.cli", *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while time.time() < deadline:
        done = [p for p in out.glob("runs/*/status.json") if '"done"' in p.read_text()]
        if len(done) >= 2:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done) >= 2

    resumed = aebench(*args, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "already finished" in resumed.stderr
    cols = ["run_id", "status", "test_total", "test_mse", "test_ssim", "probe_acc"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "clean" / "results.csv")[cols],
        pd.read_csv(out / "results.csv")[cols],
    )
