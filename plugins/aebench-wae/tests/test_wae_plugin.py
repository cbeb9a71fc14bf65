"""Tests of the aebench-wae model plugin.

Run with ``pytest plugins/aebench-wae/tests`` after ``pip install
plugins/aebench-wae``. From a bare source checkout the package is imported
from ``src/`` and registered by hand instead (the entry-point test skips).
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import aebench
from aebench import testing
from aebench.errors import ConfigError
from aebench.models.base import StepInfo
from aebench.plugins import get_plugins, with_plugin

try:
    import aebench_wae
except ImportError:  # source checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import aebench_wae

from aebench_wae import WAE, WAEConfig, mmd

MODELS = ("wae-mlp", "wae-cnn")


def _installed() -> bool:
    try:
        md.distribution("aebench-wae")
    except md.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """Make sure the WAE models are registered: by the entry point, or by hand."""
    if "wae-mlp" in get_plugins().models:
        yield
        return
    undo = with_plugin(aebench_wae, "wae")
    try:
        yield
    finally:
        undo()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Small tensors on a shared CPU: one thread is faster than two that contend.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- registration -------------------------------------------------------------
def test_models_listed_under_the_family_with_package_and_version() -> None:
    if not _installed():
        pytest.skip("aebench-wae is not installed (pip install plugins/aebench-wae)")
    specs = aebench.list_models("wae")
    assert [s.name for s in specs] == list(MODELS)
    version = md.version("aebench-wae")
    for spec in specs:
        assert spec.family == "wae"
        assert spec.plugin == f"aebench-wae {version}"
        assert spec.config_cls is WAEConfig
    assert [s.arch for s in specs] == ["mlp", "cnn"]
    info = get_plugins().infos["wae"]
    assert (info.package, info.version, info.error) == ("aebench-wae", version, None)
    assert info.hooks == ["register_models"]


def test_glob_and_create_model() -> None:
    assert "wae-cnn" in [s.name for s in aebench.list_models("*-cnn")]
    model = aebench.create_model("wae-cnn", (1, 28, 28), latent_dim=4, mmd_weight=3.0)
    assert isinstance(model, WAE)
    assert (model.family, model.regulariser, model.arch) == ("wae", "mmd", "cnn")
    assert model.mmd_weight == 3.0


# -- the conformance suite every model passes ---------------------------------
@pytest.mark.parametrize("check", testing.check_names())
@pytest.mark.parametrize("name", MODELS)
def test_conformance(name: str, check: str) -> None:
    testing.run_check(check, name)


# -- the MMD penalty ----------------------------------------------------------
def test_mmd_is_about_zero_for_prior_samples() -> None:
    gen = torch.Generator().manual_seed(0)
    values = torch.stack(
        [
            mmd(torch.randn(256, 8, generator=gen), torch.randn(256, 8, generator=gen))
            for _ in range(20)
        ]
    )
    assert values.abs().max() < 0.03
    assert abs(float(values.mean())) < 0.01  # unbiased: no systematic offset


def test_mmd_grows_with_the_distance_from_the_prior() -> None:
    gen = torch.Generator().manual_seed(1)
    prior = torch.randn(256, 8, generator=gen)
    codes = torch.randn(256, 8, generator=gen)
    shifted = [float(mmd(codes + s, prior)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert shifted[0] < 0.03
    assert shifted == sorted(shifted) and shifted[2] > 0.5
    assert float(mmd(codes * 3.0, prior)) > 0.5  # too wide is penalised too
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd(codes[:1], prior)


def test_mmd_gradient_is_finite_for_identical_codes() -> None:
    z = torch.zeros(4, 3, requires_grad=True)  # zero distances: cdist would give NaN
    mmd(z, torch.randn(4, 3)).backward()
    assert torch.isfinite(z.grad).all()


# -- loss terms, batch terms and the objective -----------------------------------
def _digits(n: int = 16) -> torch.Tensor:
    return testing.digits_batch(n)


def test_loss_terms_are_per_image_recon_only() -> None:
    model = testing.build("wae-mlp", (1, 8, 8), latent_dim=4).eval()
    x = _digits()
    terms = model.loss_terms(x)
    assert list(terms) == ["recon"] and terms["recon"].shape == (16,)
    # each image's value is its own: the same alone as among the batch
    alone = torch.cat([model.loss_terms(x[i : i + 1])["recon"] for i in range(4)])
    assert torch.allclose(alone, terms["recon"][:4], rtol=1e-5, atol=1e-4)
    assert type(model).bound == ()  # no likelihood bound: bits/dim does not apply


def test_mmd_is_the_declared_batch_column() -> None:
    model = testing.build("wae-mlp", (1, 8, 8), latent_dim=4, mmd_weight=7.5).eval()
    assert [c.key for c in type(model).batch_columns] == ["test_mmd"]
    x = _digits()
    with torch.no_grad():
        values = model.batch_terms(x)
        z = model.encode(x).mean
        expected = mmd(z, model.prior_draws(z))
    assert list(values) == ["mmd"] and values["mmd"].dim() == 0
    assert torch.allclose(values["mmd"], expected)


def test_objective_is_mean_recon_plus_weighted_mmd() -> None:
    model = testing.build("wae-cnn", (1, 8, 8), latent_dim=4, mmd_weight=7.5).eval()
    x = _digits()
    loss, logs = model.objective(x)
    recon = model.loss_terms(x)["recon"]
    penalty = model.batch_terms(x)["mmd"]  # eval mode: the same seeded prior draws
    assert loss.dim() == 0 and loss.requires_grad
    assert torch.allclose(loss, recon.mean() + 7.5 * penalty, rtol=1e-6, atol=1e-5)
    assert torch.allclose(logs["recon"], recon.mean()) and torch.allclose(logs["reg"], penalty)
    assert model.objective_label() == "WAE-MMD"


def test_mmd_weight_changes_only_the_objective() -> None:
    a = testing.build("wae-cnn", (1, 8, 8), latent_dim=4, mmd_weight=1.0).eval()
    b = testing.build("wae-cnn", (1, 8, 8), latent_dim=4, mmd_weight=20.0).eval()
    b.load_state_dict(a.state_dict())
    x = _digits()
    assert torch.equal(a.loss_terms(x)["recon"], b.loss_terms(x)["recon"])
    assert torch.equal(a.batch_terms(x)["mmd"], b.batch_terms(x)["mmd"])
    diff = b.objective(x)[0] - a.objective(x)[0]
    assert torch.allclose(diff, 19.0 * a.batch_terms(x)["mmd"], atol=1e-4)


def test_eval_mmd_is_reproducible_and_training_draws_vary() -> None:
    model = testing.build("wae-mlp", (1, 8, 8), latent_dim=4)
    x = _digits()
    model.eval()
    assert torch.equal(model.batch_terms(x)["mmd"], model.batch_terms(x)["mmd"])
    assert torch.equal(model.objective(x)[0], model.objective(x)[0])
    model.train()
    assert not torch.equal(model.batch_terms(x)["mmd"], model.batch_terms(x)["mmd"])


def test_eval_terms_do_not_depend_on_the_eval_batch_size() -> None:
    """The contract's point: what the table reports per image is the same whatever the
    evaluation batch (the batch-level MMD is measured apart, at one batch size)."""
    from aebench.metrics._util import batch_term_metrics, loss_metrics

    model = testing.build("wae-mlp", (1, 8, 8), latent_dim=4)
    data = aebench.get_dataset("digits", split="train").subset(slice(0, 1000))
    small, large = (loss_metrics(model, data, batch_size=b) for b in (100, 500))
    assert set(small) == {"recon"}
    assert small["recon"] == pytest.approx(large["recon"], rel=1e-6)
    values, size = batch_term_metrics(model, data, batch_size=500)
    assert size == 500 and set(values) == {"mmd"}


def test_batch_of_one_has_zero_mmd_but_still_trains() -> None:
    model = testing.build("wae-mlp", (1, 8, 8), latent_dim=4)
    x = _digits(1)
    assert float(model.batch_terms(x)["mmd"].detach()) == 0.0
    loss, _ = model.objective(x)
    loss.backward()
    assert torch.allclose(loss, model.loss_terms(x)["recon"].mean())


def test_training_pulls_codes_towards_the_prior() -> None:
    # Codes of a fresh encoder are far from N(0, I) in scale; training with a
    # large weight must bring the batch MMD down.
    model = testing.build("wae-mlp", (1, 8, 8), latent_dim=4, mmd_weight=100.0)
    x = _digits(64)
    with torch.no_grad():
        model.encoder[-1][-1].weight.mul_(10.0)  # spread the initial codes out
    with torch.no_grad():
        before = float(model.eval().batch_terms(x)["mmd"])
    testing.train(model, x, steps=60)
    with torch.no_grad():
        after = float(model.eval().batch_terms(x)["mmd"])
    assert before > 0.3 and after < before / 3


def test_deterministic_encoder_and_prior_sampling() -> None:
    model = testing.build("wae-cnn", (1, 8, 8), latent_dim=4).eval()
    assert model.encode(_digits(4)).logvar is None
    assert model.log_likelihood(_digits(4)) is None
    assert model.prior_description.startswith("N(0, I)")
    s = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, 8, 8) and s.min() >= 0 and s.max() <= 1


def test_the_built_in_wae_mmd_trains_the_same_objective() -> None:
    """The example plugin and aebench's built-in ``wae-mmd`` (Tolstikhin et al.'s WAE-MMD
    with the plugin's IMQ kernel) give the same objective, terms and MMD on the same
    weights, batch and prior draws."""
    small = {"latent_dim": 4, "hidden_dims": (32, 16)}
    ours = aebench.create_model("wae-mmd-mlp", (1, 8, 8), **small)
    plugin = aebench.create_model("wae-mlp", (1, 8, 8), **small)
    plugin.load_state_dict(ours.state_dict())
    x = _digits()
    step = StepInfo(3, 1, 10, 1, 16)

    def seeded(model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        return model.objective(x, step)

    for mode in (True, False):
        ours.train(mode)
        plugin.train(mode)
        with torch.no_grad():
            (a, a_logs), (b, b_logs) = seeded(ours), seeded(plugin)
            assert torch.equal(ours.loss_terms(x)["recon"], plugin.loss_terms(x)["recon"])
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-5)
        torch.testing.assert_close(a_logs["mmd"], b_logs["reg"], rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.batch_terms(x)["mmd"], plugin.batch_terms(x)["mmd"], rtol=1e-6, atol=1e-7
        )


def test_config_adds_only_mmd_weight_and_validates_it() -> None:
    from dataclasses import fields

    from aebench import ModelConfig

    extra = {f.name for f in fields(WAEConfig)} - {f.name for f in fields(ModelConfig)}
    assert extra == {"mmd_weight"}
    assert WAEConfig().mmd_weight == 10.0
    with pytest.raises(ConfigError, match="mmd_weight"):
        WAEConfig(mmd_weight=-1.0)
    with pytest.raises(ConfigError, match="has no option 'lambda'"):
        WAEConfig.from_options(**{"lambda": 2.0})


def test_installed_plugin_runs_end_to_end_and_reaches_the_leaderboard(tmp_path: Path) -> None:
    """`aebench run --suite` sweeps the plugin's own option (mmd_weight), trains,
    evaluates and reports the plugin like a built-in."""
    if not _installed():
        pytest.skip("needs `pip install plugins/aebench-wae` (the entry point is the point)")
    import json
    import os
    import subprocess

    import pandas as pd

    suite = tmp_path / "wae-sweep.toml"
    suite.write_text(
        'name = "wae-sweep"\nmodels = ["wae"]\ndatasets = ["digits"]\nprofile = "smoke"\n'
        "epochs = 5\nmodel_options = { mmd_weight = [1, 10] }\n"
    )
    env = {**os.environ, "AEBENCH_CACHE_DIR": str(tmp_path / "cache")}
    out = str(tmp_path / "out")
    res = subprocess.run(
        [sys.executable, "-m", "aebench.cli", "run", "--suite", str(suite), "--out", out],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "4 run(s) done, 0 skipped, 0 failed" in res.stderr
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    assert sorted(r.name.split("_")[1] for r in runs) == ["wae-cnn"] * 2 + ["wae-mlp"] * 2
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        metrics = json.loads((run / "metrics.json").read_text())
        assert config["plugin"] == f"aebench-wae {aebench_wae.__version__}"
        assert metrics["regulariser"] == "mmd" and metrics["fid"] is not None
        assert metrics["test_mmd"] is not None and metrics["test_total"] is None
        assert f"_mmd-weight{config['model_config']['mmd_weight']:g}_" in run.name
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(table["mmd_weight"]) == [1.0, 1.0, 10.0, 10.0]
    assert table["nll"].isna().all()  # a WAE has no likelihood bound: not applicable
    assert table["test_mmd"].notna().all() and table["test_total"].isna().all()
    index = (tmp_path / "out" / "site" / "index.html").read_text()
    assert "wae-mlp" in index and "wae-cnn" in index and "mmd_weight" in index
