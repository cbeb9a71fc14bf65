"""`aebench run` end to end on the offline digits set: storage, resume, failures, validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import aebench
from aebench.catalog import load_model
from aebench.plugins import get_plugins
from aebench.specs import ModelSpec

FAST = [
    "--datasets",
    "digits",
    "--epochs",
    "2",
    "--no-fid",
    "--no-report",
    "--probe-samples",
    "300",
]


def test_run_stores_every_run_and_the_results_table(cli, tmp_path):
    code, _, err = cli("run", "--models", "vae-mlp,ae-mlp", *FAST, "--out", str(tmp_path))
    assert code == 0, err
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        for name in (
            "config.json",
            "status.json",
            "history.csv",
            "metrics.json",
            "weights.safetensors",
            "latents.npz",
            "images/recon.png",
            "images/samples.png",
            "images/interp.png",
            "images/recon_epoch_002.png",
        ):
            assert (run / name).is_file(), f"{run.name} lacks {name}"
        assert json.loads((run / "status.json").read_text())["status"] == "done"
        with np.load(run / "latents_epochs.npz") as epochs:
            assert epochs["z"].shape == (2, 144, 16)  # epochs x all 144 val images x latent dim
            assert epochs["y"].shape == (144,)
        history = pd.read_csv(run / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        assert {"val_mse", "val_ssim", "val_psnr", "train_total", "val_reg"} <= set(history)
    table = pd.read_csv(tmp_path / "results.csv")
    assert set(table["model"]) == {"vae-mlp", "ae-mlp"}
    assert (table["status"] == "done").all()
    vae = table[table.model == "vae-mlp"].iloc[0]
    ae = table[table.model == "ae-mlp"].iloc[0]
    assert vae.test_reg > 0 and pd.isna(ae.test_reg)  # KL for the VAE; not applicable to an AE
    assert vae.test_total == pytest.approx(vae.test_recon + vae.test_reg)
    assert pd.isna(ae.nll) and vae.nll > 0
    assert 0 <= vae.test_ssim <= 1 and vae.probe_acc > 0.3
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "results.parquet")[["run_id", "test_total"]],
        table[["run_id", "test_total"]],
    )


def test_same_seed_same_numbers_and_weights_reload(cli, tmp_path):
    for out in ("a", "b"):
        code, _, err = cli("run", "--models", "vae-cnn", *FAST, "--out", str(tmp_path / out))
        assert code == 0, err
    a, b = (pd.read_csv(tmp_path / o / "results.csv") for o in ("a", "b"))
    assert a.test_total.iloc[0] == b.test_total.iloc[0]
    assert a.test_ssim.iloc[0] == b.test_ssim.iloc[0]

    from aebench.store import RunStore

    store = RunStore(tmp_path / "a")
    (run_id,) = store.run_ids()
    model = load_model(store, run_id)
    x = aebench.get_dataset("digits", "test").batch(slice(0, 4))
    assert model.reconstruct(x).shape == x.shape and not model.training


def test_rerun_skips_finished_runs_and_force_redoes_them(cli, tmp_path):
    args = ("run", "--models", "ae-mlp", *FAST, "--out", str(tmp_path))
    assert cli(*args)[0] == 0
    stamp = (tmp_path / "runs").iterdir().__next__() / "status.json"
    before = stamp.read_text()
    code, _, err = cli(*args)
    assert code == 0 and "1 of 1 runs already finished" in err and "0 run(s) done, 1 skipped" in err
    assert stamp.read_text() == before
    code, _, err = cli(*args, "--force")
    assert code == 0 and "1 run(s) done" in err


def test_interrupted_benchmark_resumes_to_the_same_table(cli, tmp_path, monkeypatch):
    args = ["run", "--models", "vae-mlp,ae-mlp", "--latent-dims", "2,4", *FAST]
    assert cli(*args, "--out", str(tmp_path / "clean"))[0] == 0

    import aebench.executors.local as runner

    real, calls = runner.execute_run, {"n": 0}

    def killed_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runner, "execute_run", killed_on_third)
    code, _, err = cli(*args, "--out", str(tmp_path / "resumed"))
    assert code == 130 and "finished runs are kept" in err
    partial = pd.read_csv(tmp_path / "resumed" / "results.csv")
    assert (partial.status == "done").sum() == 2  # the table was rebuilt on the way out
    monkeypatch.setattr(runner, "execute_run", real)
    code, _, err = cli(*args, "--out", str(tmp_path / "resumed"))
    assert code == 0 and "2 of 4 runs already finished" in err

    cols = ["run_id", "status", "test_total", "test_mse", "test_ssim", "probe_acc"]
    clean = pd.read_csv(tmp_path / "clean" / "results.csv")[cols]
    resumed = pd.read_csv(tmp_path / "resumed" / "results.csv")[cols]
    pd.testing.assert_frame_equal(clean, resumed)


def test_diverging_model_is_recorded_as_failed_and_others_continue(cli, tmp_path):
    base = aebench.model_spec("vae-mlp")

    def factory(config, shape):
        model = base.factory(config, shape)
        real = model.loss_terms

        def loss_terms(x):
            terms = real(x)
            terms["total"] = terms["total"] * float("nan")
            return terms

        model.loss_terms = loss_terms
        return model

    class Plugin:
        @aebench.hookimpl
        def register_models(self, register):
            register(
                ModelSpec(
                    name="boom-mlp",
                    family="boom",
                    arch="mlp",
                    config_cls=base.config_cls,
                    factory=factory,
                )
            )

    plugins = get_plugins()
    plugins.register(Plugin(), "boom")
    try:
        code, _, err = cli("run", "--models", "boom,ae-mlp", *FAST, "--out", str(tmp_path))
    finally:
        plugins.unregister("boom")
    assert code == 1
    assert "1 run(s) done, 0 skipped, 1 failed" in err
    assert "failed: boom-mlp on digits" in err and "DivergedError: loss became nan" in err
    table = pd.read_csv(tmp_path / "results.csv").set_index("model")
    assert table.loc["boom-mlp", "status"] == "failed"
    assert table.loc["boom-mlp", "reason"].startswith("DivergedError: loss became nan at epoch 1")
    assert table.loc["ae-mlp", "status"] == "done"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--models", "vea"), "unknown model 'vea' (did you mean vae?)"),
        (("--datasets", "digts"), "unknown dataset 'digts' (did you mean digits?)"),
        (("--latent-dims", "2,x"), "--latent-dims: expected comma-separated integers"),
        (("--latent-dims", "0"), "latent_dim must be a positive integer, got 0"),
        (("--epochs", "0"), "--epochs must be > 0"),
        (("--lr", "-1"), "--lr must be > 0"),
        (("--lr", "nan"), "--lr: expected a finite number"),
        (("--val-size", "1.5"), "--val-size must be a fraction between 0 and 1"),
        (("--batch-size", "0"), "--batch-size must be > 0"),
        (("--models", "beta-vae-mlp", "--betas", "-1"), "beta must be a finite number >= 0"),
        (("--device", "cuda"), "--device cuda: CUDA is not available"),
        (("--device", "tpu"), "unknown device 'tpu'"),
        (("--profile", "quik"), "unknown profile 'quik' (did you mean quick?)"),
        (
            ("--fid-extractor", "inception"),
            "--fid-extractor: expected one of auto, inception-v3-compat, classifier, "
            "got 'inception'",
        ),
        (("--likelihood", "poisson"), "likelihood must be one of bernoulli, gaussian"),
        (
            ("--datasets", "digits,mnist", "--data-dir", "{empty}"),
            "dataset 'mnist' is not available",
        ),
        (("--suite", "{missing}"), "--suite: no such file"),
        (("--fid-extractor", "inception-v3-compat", "--fid-samples", "10"), "needs its weights"),
        (("--datasets", "folder:{flat}", "--fid-samples", "10"), "has no class labels"),
        (("--datasets", "folder:{empty}"), "does not exist"),
        (("--betas", "4"), "model option 'beta': none of the selected models (vae-mlp) has it"),
        (("-o", "beta=1,2"), "beta-vae-mlp, beta-vae-cnn, beta-tcvae-mlp, beta-tcvae-cnn do"),
        (("--models", "beta-vae-mlp", "-o", "bta=1"), "unknown model option 'bta' (did you"),
        (("-o", "latent_dim=2,x"), "option latent_dim: expected an integer, got 'x'"),
        (("-o", "latent_dim"), "--model-option: expected KEY=VALUE"),
        (("--models", "vae-cnn", "--hidden-dims", "32,64"), "cnn hidden_dims must be"),
        (("--models", "ae-mlp", "--hidden-dims", "0"), "hidden_dims must be positive"),
        (("--metric-option", "nll_k=0"), "--nll-k must be >= 1"),
        (("--metric-option", "fid_sample=1"), "unknown metric option 'fid_sample'"),
        (("--dataset-options", "size=8"), "dataset 'digits' has no option 'size'"),
        (("--dataset-options", "size"), "--dataset-options: expected [DATASET:]KEY=VALUE pairs"),
        (("--dataset-options", "mnist:size=8"), "no selected dataset is called 'mnist'"),
        (
            ("--datasets", "folder:{flat}", "--no-fid", "--dataset-options", "folder:size=-2"),
            "size",
        ),
    ],
)
def test_bad_options_fail_before_any_training(cli, tmp_path, args, message):
    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("this machine has CUDA")
    flat = tmp_path / "flat"  # a folder of unlabelled images
    flat.mkdir()
    from PIL import Image

    for i in range(30):
        Image.new("L", (8, 8), color=i * 8).save(flat / f"{i}.png")
    args = tuple(
        a.format(empty=tmp_path / "empty", missing=tmp_path / "nope.toml", flat=flat) for a in args
    )
    base = {"--models": "vae-mlp", "--datasets": "digits"}
    for flag in ("--models", "--datasets"):
        if flag in args:
            base.pop(flag)
    given = [x for kv in base.items() for x in kv]
    # --epochs 1 first: a bad value in `args` comes later and wins.
    code, _, err = cli("run", *given, "--epochs", "1", "--out", str(tmp_path / "o"), *args)
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o" / "runs").exists() or not any((tmp_path / "o" / "runs").iterdir())


def test_suite_file_defines_the_grid_and_cli_overrides_it(tmp_path):
    from aebench.plan import Grid, load_suite, plan

    suite = tmp_path / "s.toml"
    suite.write_text(
        'name = "t"\nepochs = 3\nseeds = [0, 1]\n'
        '[[grid]]\nmodels = ["vae-mlp"]\ndatasets = ["digits"]\nlatent_dims = [2, 4]\n'
        '[[grid]]\nmodels = ["beta-vae-mlp", "ae-mlp"]\ndatasets = ["digits"]\n'
        "betas = [0.5, 4.0]\n"
    )
    meta, grids = load_suite(suite)
    runs = plan([g.merged(Grid(epochs=1)) for g in grids], device="cpu")
    assert meta["name"] == "t"
    assert {r.epochs for r in runs} == {1}
    # vae: 2 dims x 2 seeds; beta-vae: 2 betas x 2 seeds; ae ignores betas: 2 seeds
    assert len(runs) == 4 + 4 + 2
    assert {r.model_config["beta"] for r in runs if r.model == "beta-vae-mlp"} == {0.5, 4.0}
    assert all("beta" not in r.model_config for r in runs if r.model == "ae-mlp")
    assert len({r.run_id for r in runs}) == len(runs)

    suite.write_text('epoch = 3\nmodels = ["vae"]\n')
    with pytest.raises(
        aebench.errors.ConfigError, match=r"unknown key 'epoch'.*did you mean epochs"
    ):
        load_suite(suite)


@pytest.mark.parametrize(
    "suite", sorted((Path(__file__).parents[1] / "benchmarks" / "suites").glob("*.toml"))
)
def test_shipped_suites_are_valid(suite):
    from aebench.plan import load_suite, plan
    from aebench.plugins import get_plugins

    _, grids = load_suite(suite)
    needs_shapes = any("shapes" in (g.datasets or ()) for g in grids)
    if needs_shapes and "shapes" not in get_plugins().datasets:  # .ci/run installs it later
        pytest.skip(f"{suite.name} needs the example plugin: pip install plugins/aebench-shapes")
    runs = plan(grids, device="cpu")
    assert runs


def test_own_image_folder_with_loader_options_from_the_cli(cli, tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    for label, colour in (("dark", 30), ("light", 220)):
        (root / label).mkdir(parents=True)
        for i in range(40):
            Image.new("RGB", (12, 10), color=(colour, i * 3, 255 - colour)).save(
                root / label / f"{i}.png"
            )
    args = [
        "run",
        "--models",
        "ae-mlp",
        "--datasets",
        f"folder:{root}",
        "--epochs",
        "1",
        "--no-fid",
        "--no-report",
        "--out",
        str(tmp_path / "o"),
    ]
    code, _, err = cli(*args, "--dataset-options", "size=8,channels=1")
    assert code == 0, err
    (run,) = (tmp_path / "o" / "runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["input_shape"] == [1, 8, 8]
    assert config["dataset_options"] == {"channels": 1, "size": [8, 8]}
    # Other loader options are another run (a different key), not a skipped one.
    code, _, err = cli(*args, "--dataset-options", "size=6,channels=3")
    assert code == 0 and "1 run(s) done, 0 skipped" in err
    assert len(list((tmp_path / "o" / "runs").iterdir())) == 2
