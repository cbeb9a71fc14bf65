"""A plugin that breaks the model contract, or a size that exhausts memory, fails alone and
says so in one line naming the model.

* ``loss_terms`` returning a batch mean (a 0-d tensor) instead of one value per image
  fails its cell on the first batch, before it trains (it used to train and be
  validated, ranked and published on the wrong number); the grid's other models go
  on, and ``aebench run`` exits 1, as for any failed cell. The conformance kit fails
  the same model.
* Options whose parameters cannot fit in memory are refused before anything trains,
  exit status 2, naming the model and the option values.
* Memory that runs out during a cell fails that cell as "<model> ran out of memory",
  not an allocator's message or an internal error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import aebench
from aebench import testing
from aebench.data import shared_cache
from aebench.errors import ConfigError
from aebench.execute import execute_run
from aebench.models.nets import make_spec
from aebench.models.vae import VAE, VAEConfig
from aebench.plan import Grid, plan
from aebench.plugins import get_plugins
from aebench.runner import check_runs
from aebench.train import ContractError, TrainSettings, available_memory, fit, training_bytes


class MeanVAE(VAE):
    """A VAE whose evaluation terms are batch means: the mistake this file is about."""

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.mean() for k, v in super().loss_terms(x).items()}


class ColumnVAE(VAE):
    """``(B, 1)`` terms: one value per image, in the wrong shape."""

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[:, None] for k, v in super().loss_terms(x).items()}


class NoTotalVAE(VAE):
    """Keeps the default objective (the mean of ``total``) but returns no ``total``."""

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = super().loss_terms(x)
        del terms["total"]
        return terms


class PerImageBatchTerm(VAE):
    """A batch term that is a vector, where one value for the batch is due."""

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"spread": self.encode(x).mean.std(dim=1)}


class HungryVAE(VAE):
    """Runs out of memory in its first training step (raised as CUDA and NumPy do)."""

    def training_step(self, x, step, optimizers):  # type: ignore[no-untyped-def]
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class Plugin:
    @aebench.hookimpl
    def register_models(self, register) -> None:  # type: ignore[no-untyped-def]
        register(make_spec("mean-vae-mlp", "mean-vae", "mlp", MeanVAE, VAEConfig, "batch means"))
        register(make_spec("hungry-vae-mlp", "hungry-vae", "mlp", HungryVAE, VAEConfig, "OOM"))


@pytest.fixture
def plugin() -> Iterator[None]:
    plugins = get_plugins()
    plugins.register(Plugin(), "model-failures-test")
    try:
        yield
    finally:
        plugins.unregister("model-failures-test")


def _status(out: Path, model: str) -> dict:
    (run,) = (out / "runs").glob(f"*_{model}_*")
    return json.loads((run / "status.json").read_text())


def test_broken_models_fail_alone_and_the_grid_goes_on(plugin, cli, tmp_path: Path) -> None:
    """A batch-mean plugin fails on its first batch, one that runs out of memory fails
    as that; each names the model in one line; the healthy model finishes; exit 1."""
    out = tmp_path / "out"
    code, stdout, err = cli(
        "run",
        "--models",
        "mean-vae-mlp,hungry-vae-mlp,ae-mlp",
        "--datasets",
        "digits",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--no-fid",
        "--probe-samples",
        "0",
        "--nll-samples",
        "0",
        "--threads",
        "1",
        "--no-report",
        "--out",
        str(out),
    )
    assert code == 1, err
    assert "internal error" not in err + stdout and "Traceback" not in err + stdout
    mean = _status(out, "mean-vae-mlp")
    assert mean["status"] == "failed"
    assert mean["reason"] == (
        "mean-vae-mlp breaks the model contract: loss_terms()['total'] must have one value "
        "per image, shape (B,) = (128,), got () (see the model contract in aebench.models.base)"
    )
    assert f"  failed: mean-vae-mlp on digits (z=16, seed 0): {mean['reason']}" in err
    (mean_dir,) = (out / "runs").glob("*_mean-vae-mlp_*")
    assert not (mean_dir / "history.csv").exists(), "it must fail before its first epoch"
    hungry = _status(out, "hungry-vae-mlp")
    assert hungry["status"] == "failed"
    assert hungry["reason"].startswith(
        "hungry-vae-mlp ran out of memory (OutOfMemoryError: CUDA out of memory."
    )
    assert "\n" not in hungry["reason"]
    assert _status(out, "ae-mlp")["status"] == "done"
    assert "1 run(s) done, 0 skipped, 2 failed" in err


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (MeanVAE, r"loss_terms\(\)\['total'\] must have one value per image, shape \(B,\) = "),
        (ColumnVAE, r"loss_terms\(\)\['total'\] must have .* = \(32,\), got \(32, 1\)"),
        (NoTotalVAE, r"loss_terms\(\) must return 'total', got \['recon', 'reg'\]"),
        (PerImageBatchTerm, r"batch_terms\(\)\['spread'\] must be a single value .* got \(32,\)"),
    ],
)
def test_fit_checks_the_first_batch_before_it_steps(digits, cls: type, message: str) -> None:
    torch.manual_seed(0)
    model = cls(VAEConfig(latent_dim=4), (1, 8, 8))
    before = [p.detach().clone() for p in model.parameters()]
    train, val = digits
    with pytest.raises(ContractError, match=message):
        fit(model, train.subset(slice(0, 64)), val, TrainSettings(epochs=1, batch_size=32))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_kit_fails_a_batch_mean_in_one_line(plugin) -> None:
    with pytest.raises(AssertionError) as info:
        testing.run_check("loss_terms", "mean-vae-mlp")
    assert str(info.value) == (
        "mean-vae-mlp: loss_terms()['total'] must have shape (B,) = (4,), got ()"
    )


@pytest.mark.parametrize("option", ["latent_dim=100000000", "hidden_dims=[100000,100000]"])
def test_sizes_beyond_memory_are_refused_naming_the_options(
    cli, tmp_path: Path, option: str
) -> None:
    out = tmp_path / "out"
    code, stdout, err = cli(
        "run",
        "--models",
        "ae-mlp,vae-mlp",
        "--datasets",
        "digits",
        "--no-fid",
        "--no-report",
        "-o",
        option,
        "--out",
        str(out),
    )
    assert code == ConfigError.exit_code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    shown = "hidden_dims=[100000, 100000]" if option.startswith("hidden_dims") else option
    assert lines[0].startswith("aebench: error: model 'ae-mlp' with "), err
    assert shown in lines[0]
    assert "is too big (for digits's 1x8x8 images): its " in lines[0]
    assert "parameters need at least" in lines[0] and "of memory available on cpu" in lines[0]
    assert "internal error" not in err and "Traceback" not in err + stdout
    assert not any((out / "runs").glob("*")), "nothing may train"


def test_the_estimate_counts_weights_gradients_and_adam(monkeypatch) -> None:
    """Built on the meta device (nothing allocated): 4 float32 copies per parameter.
    A model that fits is planned; with less memory than it needs it is refused."""
    with torch.device("meta"):
        model = aebench.create_model("vae-mlp", (1, 8, 8))
    n = sum(p.numel() for p in model.parameters())
    assert training_bytes(model) == 4 * 4 * n

    runs = plan([Grid(models=["vae-mlp"], datasets=["digits"])], device="cpu")
    data = shared_cache(None)
    assert check_runs(runs, data)[0] == runs
    monkeypatch.setattr("aebench.train.available_memory", lambda device: 16 * n - 1)
    with pytest.raises(ConfigError, match=rf"its {n:,} parameters need at least .* to train"):
        check_runs(runs, data)
    monkeypatch.setattr("aebench.train.available_memory", lambda device: 16 * n)
    assert check_runs(runs, data)[0] == runs


def test_available_memory_is_what_the_machine_has_free() -> None:
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    free = available_memory("cpu")
    assert free is not None and 0 < free <= total
    assert available_memory("meta") is None


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
            "allocate memory: you tried to allocate 204800000000 bytes."
        ),
    ],
)
def test_memory_running_out_in_a_cell_fails_it_naming_the_model(
    monkeypatch, tmp_path: Path, error: Exception
) -> None:
    """NumPy's MemoryError (no message) and the CPU allocator's RuntimeError."""

    def exhausted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise error

    monkeypatch.setattr("aebench.execute.fit", exhausted)
    (run,) = plan([Grid(models=["ae-mlp"], datasets=["digits"])], device="cpu")
    outcome = execute_run(run, tmp_path)
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.startswith(f"ae-mlp ran out of memory ({type(error).__name__}")
    assert outcome.reason.endswith("; choose smaller model options or batch size")
    assert _status(tmp_path, "ae-mlp")["reason"] == outcome.reason
