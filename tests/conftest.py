"""Shared fixtures. Tests never download: every dataset comes from ../shared/data,
scikit-learn's bundled digits, or small files generated in tmp_path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# Before any fixture of any scope runs: the whole session uses its own aebench cache
# and data folders, so a session- or module-scoped fixture (which runs before the
# per-test isolation below) never reads or writes the user's ~/.cache/aebench.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="aebench-tests-"))
os.environ["AEBENCH_CACHE_DIR"] = str(_SESSION_DIR / "cache")
os.environ["AEBENCH_DATA_DIR"] = str(_SESSION_DIR / "data")
USER_CACHE = Path.home() / ".cache" / "aebench"


def _tree(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")} if root.exists() else {}


@pytest.fixture(scope="session", autouse=True)
def _user_cache_untouched() -> Iterator[None]:
    """Fails the session (an error in its last test) if any test created, changed or
    removed anything under the user's ~/.cache/aebench."""
    before = _tree(USER_CACHE)
    yield
    after = _tree(USER_CACHE)
    changed = sorted(set(before) ^ set(after) | {p for p in before if after.get(p) != before[p]})
    assert not changed, f"tests touched the user's cache: {changed[:5]}"


# Two cores in CI: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own aebench cache, so none depends on another's leftovers."""
    cache = tmp_path_factory.mktemp("aebench-cache")
    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(cache))
    monkeypatch.delenv("AEBENCH_PLUGINS", raising=False)
    yield


@pytest.fixture
def shared_data() -> Path:
    """The real MNIST/FashionMNIST files (read-only) that CI has beside the repo."""
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (CI provides it)")
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """One torch thread: small models run faster and more repeatably without contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    """Run ``aebench ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from aebench.cli import main

    def run(*args: str) -> CliResult:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        cap = capsys.readouterr()
        return CliResult(code, cap.out, cap.err)

    return run


# -- shared data and artefacts, built once per session ---------------------------------
@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, (train, test) ImageSets (offline, instant)."""
    import aebench

    return aebench.get_dataset("digits", split="train"), aebench.get_dataset("digits", split="test")


@pytest.fixture(scope="session")
def fid_cache(tmp_path_factory, digits):
    """One aebench cache holding the digits FID classifier, trained once per session."""
    from aebench.metrics import fid

    root = tmp_path_factory.mktemp("fid-cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net on shared, oversubscribed CI cores: 1 thread is faster
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AEBENCH_CACHE_DIR", str(root))
            info = fid.ensure_classifier(*digits)
    finally:
        torch.set_num_threads(threads)
    return root, info


@pytest.fixture
def offline(monkeypatch, tmp_path, fid_cache):
    """No Inception weights anywhere; the shared classifier cache."""
    from aebench.metrics import fid

    monkeypatch.setenv("AEBENCH_CACHE_DIR", str(fid_cache[0]))
    monkeypatch.delenv(fid.ENV_INCEPTION_WEIGHTS, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return fid_cache[1]


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """A real benchmark output with two finished runs (an AE and a VAE) on digits; tests
    that damage it work on a copy."""
    import aebench

    out = tmp_path_factory.mktemp("bench")
    summary = aebench.run(
        "ae-mlp,vae-mlp",
        "digits",
        out=out,
        epochs=1,
        report=False,
        metric_options={"fid_samples": 0, "nll_samples": 50, "probe_samples": 200},
    )
    assert [o.status for o in summary.outcomes] == ["done", "done"]
    return out


# -- the report tests' fake benchmark (tests/report_helpers.py), built once per session --
@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake benchmark output dir (``report_helpers.make_benchmark_dir``); do not modify."""
    from report_helpers import make_benchmark_dir

    return make_benchmark_dir(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="session")
def ctx(bench: Path) -> dict:
    """The leaderboard context of ``bench``."""
    from report_helpers import _context

    return _context(bench)


@pytest.fixture(scope="session")
def site(bench: Path) -> Path:
    """The site built from ``bench`` (``<bench>/site``)."""
    from aebench.report import build_site

    index = build_site(bench)
    assert index == bench / "site" / "index.html"
    return index.parent
