"""Shared fixtures. Tests never download: every dataset comes from ../shared/data,
scikit-learn's bundled digits, or small files generated in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

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
