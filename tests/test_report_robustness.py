"""One bad run cannot stop the report: unreadable artefacts, degenerate latents, native
crashes, and build folders a killed report left behind (issue 21)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from report_helpers import write_run


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("aebench: warning:")]


def test_unreadable_artefacts_are_named_once_and_the_report_finishes(tmp_path: Path, cli) -> None:
    """Garbage latents.npz, empty latents_epochs.npz, an empty per-epoch frame and run
    images that do not decode: exit 0, one warning line each naming the run and the
    file, the page says so where the figure would be, and the other run is listed."""
    bad = write_run(tmp_path, "bad", epochs=2)
    (bad / "latents.npz").write_bytes(b"garbage, not a zip")
    (bad / "latents_epochs.npz").write_bytes(b"")
    (bad / "images" / "recon_epoch_001.png").write_bytes(b"")
    (bad / "images" / "recon.png").write_bytes(b"xx")
    (bad / "images" / "samples.png").write_bytes(b"")
    write_run(tmp_path, "good", latent_dim=2, seed=1)

    result = cli("report", str(tmp_path))
    assert result.code == 0, result.err
    lines = _warnings(result.err)
    for name in ("latents.npz", "latents_epochs.npz", "recon_epoch_001.png", "recon.png"):
        named = [line for line in lines if f"run bad: {name} unreadable" in line]
        assert len(named) == 1, (name, lines)
    assert not any("good" in line for line in lines)
    site = tmp_path / "site"
    index = (site / "index.html").read_text()
    assert "runs/bad.html" in index and "runs/good.html" in index
    page = (site / "runs" / "bad.html").read_text()
    assert "No latent plot: latents.npz is unreadable (" in page
    assert "No reconstructions: recon.png is unreadable" in page
    assert "No samples: samples.png is unreadable" in page
    assert 'src="bad/recon.png"' not in page
    assert (site / "runs" / "bad" / "recon_epochs.gif").exists()  # from the readable frame
    assert (site / "runs" / "good" / "latents.png").exists()


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("equal", "all 60 latents are the same point"),
        ("nan", "all 60 test latents are NaN or infinite"),
        ("one", "only one test latent"),
    ],
)
def test_collapsed_latents_leave_a_reason_not_a_crash(
    tmp_path: Path, cli, kind: str, why: str
) -> None:
    """A collapsed encoder (every latent the same point; NaN codes; one test image)
    crashed t-SNE natively. Now the report finishes and the page says why the figure
    is empty."""
    run = write_run(tmp_path, "collapsed", epochs=2)
    n = 1 if kind == "one" else 60
    z = np.full((n, 16), np.nan if kind == "nan" else 0.25, dtype=np.float32)
    y = np.arange(n) % 10
    np.savez(run / "latents.npz", z=z, y=y)
    np.savez(run / "latents_epochs.npz", z=np.stack([z, z]), y=y)

    result = cli("report", str(tmp_path))
    assert result.code == 0, result.err
    page = (tmp_path / "site" / "runs" / "collapsed.html").read_text()
    assert f"No latent plot: {why}" in page
    assert "No latent animation: " in page
    assert not (tmp_path / "site" / "runs" / "collapsed" / "latents.png").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # PCA of identical points
def test_a_native_crash_in_tsne_is_a_reason_in_the_figure(tmp_path: Path, monkeypatch) -> None:
    """With the input checks bypassed, t-SNE on identical points really segfaults: in the
    helper process, so this process lives on and the figure's panel says so."""
    from aebench.report.plots import isolated, latents

    monkeypatch.setattr(latents, "_centred_unit", lambda z: z)  # the guards, off
    monkeypatch.setattr(latents, "TSNE_MIN_DISTINCT", 0)
    notes: list[str] = []
    drawn = latents.plot_latents(np.ones((60, 4)), None, tmp_path / "l.png", notes=notes)
    assert drawn == ["PCA"]
    assert "t-SNE crashed (signal 11)" in notes
    assert (tmp_path / "l.png").exists()
    assert isolated.call("operator:add", {}, None, 2, 3) == (5, None)  # a fresh helper


def test_isolated_call_reports_errors_and_timeouts() -> None:
    from aebench.report.plots import isolated

    value, why = isolated.call("builtins:int", {}, None, "x")
    assert value is None and why is not None and why.startswith("ValueError: invalid literal")
    assert isolated.call("time:sleep", {}, None, 30, timeout=0.5) == (None, "timed out after 0.5 s")
    assert isolated.call("operator:mul", {}, None, 6, 7) == (42, None)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_build_folders_of_killed_reports_are_removed_live_ones_kept(tmp_path: Path) -> None:
    from aebench.report import build_site
    from aebench.report.render import STALE_AGE

    write_run(tmp_path, "one", light=True)
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        stale = [tmp_path / f".site.building-{dead}", tmp_path / f".site.old-{dead}"]
        reused = tmp_path / f".site.building-{live.pid + 1_000_000}"  # no such pid
        busy = tmp_path / f".site.building-{live.pid}"  # a concurrent build
        ancient = tmp_path / f".site.old-{live.pid}"  # pid alive again, days later
        other = tmp_path / f".public.building-{dead}"  # another site's: not ours to judge
        for folder in (*stale, reused, busy, ancient, other):
            (folder / "runs").mkdir(parents=True)
            (folder / "index.html").write_text("half")
        long_ago = time.time() - STALE_AGE - 60
        os.utime(ancient, (long_ago, long_ago))

        build_site(tmp_path)
        left = sorted(p.name for p in tmp_path.iterdir() if re.search(r"\.(building|old)-", p.name))
        assert left == sorted([busy.name, other.name])
        assert (busy / "index.html").read_text() == "half"  # untouched
        assert (tmp_path / "site" / "index.html").exists()
    finally:
        live.kill()
        live.wait()


class _Ctx:
    """The little of an EvalContext that the ex-post sampler and the latent metric read."""

    def __init__(self, z: torch.Tensor) -> None:
        self.z = z
        self.model = SimpleNamespace(
            has_prior=True, device=torch.device("cpu"), latent_kind="deterministic"
        )

    def latents(self, split: str) -> torch.Tensor:
        return self.z

    def encodings(self, split: str) -> tuple[torch.Tensor, None]:
        return self.z, None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_expost_mixture_fits_collapsed_latents_and_leaves_out_nan_rows() -> None:
    from aebench.samplers import expost

    generator = torch.Generator().manual_seed(0)
    draw = expost.fit(_Ctx(torch.ones(200, 4)))  # every code the same point
    assert draw is not None and torch.isfinite(draw(16, generator)).all()
    some_nan = torch.randn(200, 4)
    some_nan[:7] = float("nan")
    assert len(expost.finite_latents(some_nan)) == 193
    draw = expost.fit(_Ctx(some_nan))
    assert draw is not None and torch.isfinite(draw(16, generator)).all()
    with pytest.raises(ValueError, match="200 of 200 training latent means are NaN or infinite"):
        expost.fit(_Ctx(torch.full((200, 4), float("inf"))))


def test_latent_health_of_nan_codes_is_an_error_with_the_reason() -> None:
    """Recorded by evaluate() as ``latent_error``; its columns are then empty ("—")."""
    from aebench.metrics import latent

    z = torch.randn(50, 4)
    z[3, 1] = float("nan")
    with pytest.raises(ValueError, match="1 of 50 test latent codes are NaN or infinite"):
        latent.compute(_Ctx(z))
    assert latent.compute(_Ctx(torch.ones(50, 4)))["active_units"] == 0  # collapsed: none
