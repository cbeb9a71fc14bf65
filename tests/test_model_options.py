"""Any model-config field is an option users set and sweep: CLI, suite file, Python API."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pandas as pd
import pytest
import torch

import aebench
from aebench.cli import main
from aebench.errors import ConfigError
from aebench.models.ae import AE, AEConfig
from aebench.models.vae import VAE, VAEConfig
from aebench.plan import Grid, load_suite, parse_model_options, plan
from aebench.plugins import get_plugins
from aebench.specs import ModelSpec

FAST = ["--datasets", "digits", "--epochs", "1", "--no-fid", "--no-report"]
FAST += ["--probe-samples", "0", "--nll-samples", "0"]


@dataclass
class NoisyConfig(VAEConfig):
    """A plugin family's own options: a float, a bool and a tuple."""

    noise: float = field(default=0.1, metadata={"help": "input noise"})
    tied: bool = False
    widths: tuple[int, ...] = (4, 2)


@pytest.fixture
def noisy():
    """A throwaway plugin registering ``noisy-mlp`` whose config has its own options."""

    class Plugin:
        @aebench.hookimpl
        def register_models(self, register):
            register(
                ModelSpec("noisy-mlp", "noisy", "mlp", NoisyConfig, lambda c, s: VAE(c, s, "mlp"))
            )

    plugins = get_plugins()
    plugins.register(Plugin(), "noisy")
    try:
        yield
    finally:
        plugins.unregister("noisy")


def configs(runs, model):
    return [r.model_config for r in runs if r.model == model]


def test_sweeps_expand_into_the_grid_with_typed_values(noisy):
    runs = plan(
        [
            Grid(
                models=["noisy-mlp", "vae-mlp"],
                datasets=["digits"],
                model_options={"noise": "0.5,1", "tied": ["true"], "latent_dim": [2, 4]},
            )
        ],
        device="cpu",
    )
    noisy_runs = configs(runs, "noisy-mlp")
    assert len(noisy_runs) == 4 and len(configs(runs, "vae-mlp")) == 2  # vae has no noise
    assert {(c["noise"], c["latent_dim"]) for c in noisy_runs} == {
        (0.5, 2),
        (0.5, 4),
        (1, 2),
        (1, 4),
    }
    assert all(c["tied"] is True and isinstance(c["noise"], float) for c in noisy_runs)
    assert len({r.key for r in runs}) == 6  # the key covers every option
    labels = [r.label for r in runs if r.model == "noisy-mlp"]
    assert "noisy-mlp on digits (z=2, noise=0.5, tied=True, seed 0)" in labels
    assert any("_noise0.5_" in r.run_id for r in runs)


def test_list_options_one_value_or_a_sweep(noisy):
    def widths(raw):
        runs = plan(
            [Grid(models=["noisy-mlp"], datasets=["digits"], model_options={"widths": raw})],
            device="cpu",
        )
        return [r.model_config["widths"] for r in runs]

    assert widths("8,4") == [[8, 4]]  # text as typed on the command line: one value
    assert widths("[8,4],[3]") == [[8, 4], [3]]  # brackets: a sweep
    assert widths([8, 4]) == [[8, 4]]  # a flat list (suite, API): one value
    assert widths([[8, 4], [3]]) == [[8, 4], [3]]


def test_every_option_is_in_the_key():
    def key(**opts):
        (run,) = plan(
            [Grid(models=["vae-mlp"], datasets=["digits"], model_options=opts)], device="cpu"
        )
        return run.key

    base = key()
    assert key(gaussian_var=[0.25]) != base
    assert key(likelihood=["gaussian"]) != base
    assert key(latent_dim=[16]) == base  # the default, given explicitly: the same run


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"nois": ["1"]}, "unknown model option 'nois' (did you mean noise?)"),
        ({"noise": ["loud"]}, "option noise: expected a number, got 'loud'"),
        ({"tied": ["maybe"]}, "option tied: expected true or false"),
        ({"beta": ["2"]}, "none of the selected models (noisy-mlp) has it"),
    ],
)
def test_option_errors_name_the_option(noisy, opts, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan([Grid(models=["noisy-mlp"], datasets=["digits"], model_options=opts)], "cpu")


def test_cli_sweep_reaches_results_with_one_column_per_varied_option(cli, tmp_path):
    code, _, err = cli(
        "run",
        "--models",
        "beta-vae-mlp,ae-mlp",
        *FAST,
        "-o",
        "beta=0.5,2",
        "-o",
        "gaussian_var=0.25",
        "--out",
        str(tmp_path),
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == 3  # beta-vae x 2 betas, ae once (it has no beta)
    assert {"beta", "gaussian_var", "latent_dim", "likelihood"} <= set(table.columns)
    betas = table.set_index("run_id")["beta"]
    assert sorted(betas.dropna()) == [0.5, 2.0] and betas.isna().sum() == 1
    assert set(table["gaussian_var"]) == {0.25}
    # the prior of the AE varies against the VAEs' (absent): named, not confused
    assert "model.sampler" not in table.columns and "sampler" in table.columns


def test_rerun_with_a_default_spelled_out_finds_the_finished_run(cli, tmp_path):
    args = ["run", "--models", "beta-vae-mlp", *FAST, "--out", str(tmp_path)]
    assert cli(*args)[0] == 0
    code, _, err = cli(*args, "--betas", "4")  # 4 is the default: same configuration
    assert code == 0 and "1 of 1 runs already finished" in err


def test_suite_file_sweeps_model_options(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(
        'models = ["beta-vae-mlp"]\ndatasets = ["digits"]\n'
        "model_options = { beta = [0.5, 4], gaussian_var = 0.25 }\n"
        "[[grid]]\nlatent_dims = [2]\n"
        '[[grid]]\nmodel_options = { beta = [1] }\nlikelihood = "gaussian"\n'
        "dataset_options = { digits = {} }\nfid_samples = 0\n"
    )
    _, grids = load_suite(suite)
    runs = plan(grids, device="cpu")
    got = sorted(
        (r.model_config["beta"], r.model_config["latent_dim"], r.model_config["likelihood"])
        for r in runs
    )
    assert got == [(0.5, 2, "bernoulli"), (1.0, 16, "gaussian"), (4.0, 2, "bernoulli")]
    assert all(r.model_config["gaussian_var"] == 0.25 for r in runs)
    assert {r.metric_options["fid_samples"] for r in runs} == {0, 5000}

    suite.write_text('models = ["vae"]\ndatasets = ["digits"]\nbetas = [1]\n')
    with pytest.raises(ConfigError, match="none of the selected models"):
        plan(load_suite(suite)[1], device="cpu")
    suite.write_text('models = ["beta-vae"]\nbetas = [1]\nmodel_options = { beta = [2] }\n')
    with pytest.raises(ConfigError, match="betas and model option 'beta' are both given"):
        load_suite(suite)


def test_python_api_runs_a_sweep(tmp_path):
    summary = aebench.run(
        "beta-vae-mlp",
        "digits",
        out=tmp_path,
        epochs=1,
        report=False,
        model_options={"beta": [0.5, 1], "hidden_dims": [32, 16]},
        metric_options={"fid_samples": 0, "probe_samples": 0, "nll_samples": 0},
    )
    assert [o.status for o in summary.outcomes] == ["done", "done"]
    resolved = [
        json.loads((p / "config.json").read_text())["resolved_model_config"]
        for p in sorted((tmp_path / "runs").iterdir())
    ]
    assert [r["beta"] for r in resolved] == [0.5, 1.0]
    assert all(r["hidden_dims"] == [32, 16] for r in resolved)


def test_batch_size_beyond_the_training_set_is_recorded_as_used(cli, tmp_path):
    code, _, err = cli(
        "run", "--models", "ae-mlp", *FAST, "--batch-size", "100000", "--out", str(tmp_path)
    )
    assert code == 0, err
    assert "using batches of 1293" in err  # 1437 train images less 144 for validation
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "config.json").read_text())["batch_size"] == 1293
    assert pd.read_csv(tmp_path / "results.csv")["batch_size"].tolist() == [1293]


def test_models_command_lists_options(capsys):
    try:
        main(["models", "beta-vae-mlp", "--json"])
    except SystemExit as exc:  # pragma: no cover
        assert not exc.code
    (row,) = json.loads(capsys.readouterr().out)
    options = {o["name"]: o for o in row["options"]}
    assert options["beta"]["default"] == 4.0 and options["beta"]["type"] == "float"
    assert "KL" in options["beta"]["help"] and options["hidden_dims"]["default"] is None


def test_dynamic_binarisation_and_n_seeds(tmp_path):
    from aebench.data import DataCache

    runs = plan(
        [Grid(models=["vae-mlp"], datasets=["digits"], binarize="dynamic", n_seeds=3)], "cpu"
    )
    assert [r.seed for r in runs] == [0, 1, 2] and {r.binarize for r in runs} == {"dynamic"}
    plain = plan([Grid(models=["vae-mlp"], datasets=["digits"])], "cpu")[0]
    assert plain.key != runs[0].key  # another setting, another run
    data = DataCache().for_run(runs[0])
    for split in (data.val, data.test):  # binarised once, the same for every run and seed
        assert set(split.images.unique().tolist()) == {0, 255}
        assert torch.equal(split.images, getattr(DataCache().for_run(runs[2]), split.split).images)
    assert len(data.train.images.unique()) > 2  # training batches are binarised on the fly
    with pytest.raises(ConfigError, match="--binarize: expected 'dynamic'"):
        plan([Grid(models=["vae-mlp"], datasets=["digits"], binarize="static")], "cpu")
    with pytest.raises(ConfigError, match="--n-seeds: give at most one --seeds value"):
        plan([Grid(models=["vae-mlp"], datasets=["digits"], seeds=[0, 1], n_seeds=2)], "cpu")


def test_binarised_training_sees_only_binary_batches():
    from aebench.train import TrainSettings, fit

    seen = []
    torch.manual_seed(0)
    model = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=2)
    real = model.loss_terms

    def spy(x):
        seen.append(x)
        return real(x)

    model.loss_terms = spy
    from aebench.data import binarized

    train = aebench.get_dataset("digits", "train")
    val = binarized(train.subset(slice(0, 200)), 1)  # as DataCache.for_run gives it
    fit(model, train, val, TrainSettings(epochs=1, binarize=True))
    assert seen and all(set(x.unique().tolist()) <= {0.0, 1.0} for x in seen)


# -- scoped options: one name, two meanings ---------------------------------------------
@dataclass
class TCTestConfig(AEConfig):
    """A throwaway family whose ``gamma`` weighs one thing..."""

    gamma: float = field(default=6.0, metadata={"help": "weight of the TC term"})


@dataclass
class WideTCTestConfig(TCTestConfig):
    """...a variant that only changes its default (the same meaning)..."""

    gamma: float = 12.0


@dataclass
class DiscTestConfig(AEConfig):
    """...and another family whose ``gamma`` weighs something else."""

    gamma: float = field(default=35.0, metadata={"help": "weight of the discriminator term"})


@pytest.fixture
def two_gammas():
    """``tc-test-mlp``, ``tc-test-wide`` (family tc-test) and ``disc-test-mlp``, each with
    a ``gamma`` field: the same one for the tc-test models, another for disc-test."""

    def build(config, shape):
        return AE(config, shape, "mlp")

    class Plugin:
        @aebench.hookimpl
        def register_models(self, register):
            register(ModelSpec("tc-test-mlp", "tc-test", "mlp", TCTestConfig, build))
            register(ModelSpec("tc-test-wide", "tc-test", "mlp", WideTCTestConfig, build))
            register(ModelSpec("disc-test-mlp", "disc-test", "mlp", DiscTestConfig, build))

    plugins = get_plugins()
    plugins.register(Plugin(), "two-gammas")
    try:
        yield
    finally:
        plugins.unregister("two-gammas")


def grid_runs(models, **model_options):
    grid = Grid(models=models.split(","), datasets=["digits"], model_options=model_options)
    return plan([grid], device="cpu")


def gammas(runs, model):
    return [r.model_config["gamma"] for r in runs if r.model == model]


AMBIGUOUS = (
    "model option 'gamma' means different things for tc-test-mlp (TCTestConfig: weight of "
    "the TC term) and disc-test-mlp (DiscTestConfig: weight of the discriminator term): "
    "scope it, e.g. -o tc-test.gamma=1"
)


def test_a_plain_option_with_two_meanings_is_an_error(two_gammas, cli):
    with pytest.raises(ConfigError) as info:
        grid_runs("tc-test-mlp,disc-test-mlp", gamma="1")
    assert str(info.value) == AMBIGUOUS
    code, out, err = cli(
        "run", "--models", "tc-test-mlp,disc-test-mlp", *FAST, "-o", "gamma=1", "--out", "x"
    )
    assert code == 2 and not out
    assert err.strip() == f"aebench: error: {AMBIGUOUS}" and "Traceback" not in err
    # a glob scope covering both meanings is as ambiguous
    with pytest.raises(ConfigError, match=r"means different things .*narrow its scope, e\.g\."):
        grid_runs("tc-test-mlp,disc-test-mlp", **{"*-test-mlp.gamma": [1]})


def test_one_meaning_is_fine_when_declared_once(two_gammas):
    # tc-test-wide redeclares gamma only to change its default: TCTestConfig's gamma still
    runs = grid_runs("tc-test-mlp,tc-test-wide", gamma="1,2")
    assert gammas(runs, "tc-test-mlp") == gammas(runs, "tc-test-wide") == [1.0, 2.0]
    # latent_dim is ModelConfig's for every model: a plain option is fine
    runs = grid_runs("tc-test-mlp,disc-test-mlp,vae-mlp", latent_dim="2,4")
    assert {(r.model, r.model_config["latent_dim"]) for r in runs} == {
        (m, z) for m in ("tc-test-mlp", "disc-test-mlp", "vae-mlp") for z in (2, 4)
    }


def test_a_scoped_option_sweeps_only_its_models(two_gammas):
    runs = grid_runs("tc-test,disc-test-mlp", **{"disc-test.gamma": "1,2", "latent_dim": [8]})
    assert gammas(runs, "disc-test-mlp") == [1.0, 2.0]
    assert gammas(runs, "tc-test-mlp") == [6.0] and gammas(runs, "tc-test-wide") == [12.0]
    assert {r.model_config["latent_dim"] for r in runs} == {8}
    # a plain value, and a scoped one that overrides it for its models (no ambiguity left)
    runs = grid_runs("tc-test,disc-test-mlp", **{"gamma": "3", "disc-test.gamma": "4,5"})
    assert gammas(runs, "tc-test-mlp") == gammas(runs, "tc-test-wide") == [3.0]
    assert gammas(runs, "disc-test-mlp") == [4.0, 5.0]
    # a model name beats its family, a family a glob
    scoped = {"tc-test-*.gamma": "7", "tc-test.gamma": "8", "tc-test-wide.gamma": "9"}
    runs = grid_runs("tc-test,disc-test-mlp", **scoped)
    assert gammas(runs, "tc-test-mlp") == [8.0] and gammas(runs, "tc-test-wide") == [9.0]
    with pytest.raises(ConfigError, match="'gamma' is set twice for tc-test-mlp"):
        grid_runs("tc-test", **{"tc-test-*.gamma": "7", "*-mlp.gamma": "8"})


def test_scoped_option_errors(two_gammas):
    with pytest.raises(ConfigError) as info:
        grid_runs("tc-test-mlp,vae-mlp", **{"disc-test.gamma": "1"})
    assert str(info.value) == (
        "model option 'disc-test.gamma': 'disc-test' matches none of the selected models; "
        "selected: tc-test-mlp, vae-mlp"
    )
    with pytest.raises(ConfigError, match=r"'tc-tset' matches none .*\(did you mean tc-test\?\)"):
        grid_runs("tc-test-mlp,vae-mlp", **{"tc-tset.gamma": "1"})
    with pytest.raises(ConfigError) as info:
        grid_runs("tc-test-mlp,vae-mlp", **{"tc-test.gama": "1"})
    assert str(info.value).startswith(
        "unknown model option 'gama' for 'tc-test' (did you mean gamma?); tc-test-mlp takes: "
    )
    with pytest.raises(ConfigError, match=r"no model in 'vae' \(vae-mlp\) has 'gamma'; tc-test"):
        grid_runs("tc-test-mlp,vae-mlp", **{"vae.gamma": "1"})
    with pytest.raises(ConfigError, match=r"option tc-test\.gamma: expected a number"):
        grid_runs("tc-test-mlp", **{"tc-test.gamma": "loud"})


def test_cli_parses_scoped_options():
    assert parse_model_options("-o", ["tc-test.some-opt=1,2", "gaussian-var=0.5"]) == {
        "tc-test.some_opt": "1,2",
        "gaussian_var": "0.5",
    }
    for bad in (".gamma=1", "tc-test.=1"):
        with pytest.raises(ConfigError, match=r"expected \[SCOPE\.\]KEY=VALUE"):
            parse_model_options("-o", [bad])
    with pytest.raises(ConfigError, match=re.escape("'tc-test.gamma' is given twice")):
        parse_model_options("-o", ["tc-test.gamma=1", "tc-test.gamma=2"])


def test_cli_scope_matching_nothing_exits_with_one_line(two_gammas, cli, tmp_path):
    args = ["run", "--models", "tc-test-mlp", *FAST, "--out", str(tmp_path)]
    code, _, err = cli(*args, "-o", "disc-test.gamma=40")
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "aebench: error: model option 'disc-test.gamma': 'disc-test' matches none of the "
        "selected models; selected: tc-test-mlp"
    )
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_suite_files_take_scoped_keys(two_gammas, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(
        'models = ["tc-test-mlp", "disc-test-mlp"]\ndatasets = ["digits"]\n'
        'model_options = { "disc-test.gamma" = [1, 2], latent_dim = 4 }\n'
        "[[grid]]\n"
        "[[grid]]\nmodel_options = { tc-test.gamma = 3 }\n"  # a dotted TOML key
        "[[grid]]\n[grid.model_options.tc-test-mlp]\ngamma = [5]\n"  # a table per scope
    )
    runs = plan(load_suite(suite)[1], device="cpu")
    assert sorted(gammas(runs, "tc-test-mlp")) == [3.0, 5.0, 6.0]
    assert gammas(runs, "disc-test-mlp") == [1.0, 2.0]  # the same runs from every grid
    assert {r.model_config["latent_dim"] for r in runs} == {4}
    suite.write_text(
        'models = ["tc-test-mlp", "disc-test-mlp"]\ndatasets = ["digits"]\n'
        "model_options = { gamma = [1] }\n"
    )
    with pytest.raises(ConfigError, match="means different things"):
        plan(load_suite(suite)[1], device="cpu")


def test_python_api_takes_scoped_keys(two_gammas, monkeypatch, tmp_path):
    import aebench.runner

    planned = []
    monkeypatch.setattr(
        aebench.runner, "run_grids", lambda grid, *_, **__: planned.extend(plan([grid], "cpu"))
    )
    aebench.run(
        "tc-test-mlp,disc-test-mlp",
        "digits",
        out=tmp_path,
        model_options={"tc-test.gamma": [1, 4], "latent_dim": 2},
    )
    assert gammas(planned, "tc-test-mlp") == [1.0, 4.0] and gammas(planned, "disc-test-mlp") == [
        35.0
    ]


def test_run_ids_stay_as_they_were():
    """Runs already stored keep their ids: plain options name runs as before, and a scoped
    value is just the model's option (the same run as the plain spelling)."""
    runs = plan(
        [
            Grid(
                models=["beta-vae-mlp", "vae-mlp", "ae-cnn"],
                datasets=["digits"],
                model_options={"beta": "0.5,4", "latent_dim": [2], "gaussian_var": ["0.25"]},
                seeds=[1],
            ),
            Grid(models=["vae-mlp"], datasets=["digits"]),
        ],
        device="cpu",
    )
    assert [r.run_id for r in runs] == [
        "digits_beta-vae-mlp_z2_gaussian-var0.25_beta0.5_s1_06f7f8f81c",
        "digits_beta-vae-mlp_z2_gaussian-var0.25_beta4_s1_39f63e9aa2",
        "digits_vae-mlp_z2_gaussian-var0.25_s1_87e81b8caa",
        "digits_ae-cnn_z2_gaussian-var0.25_s1_ca92a509a2",
        "digits_vae-mlp_z16_s0_04c2c09493",
    ]
    assert runs[0].label == "beta-vae-mlp on digits (z=2, gaussian_var=0.25, beta=0.5, seed 1)"
    assert runs[0].shown_options == ("latent_dim", "gaussian_var", "beta")

    def spelled(**opts):
        grid = Grid(models=["beta-vae-mlp", "vae-mlp"], datasets=["digits"], model_options=opts)
        return [(r.run_id, r.label, r.shown_options) for r in plan([grid], "cpu")]

    assert spelled(**{"beta-vae.beta": "1,2"}) == spelled(beta="1,2")
    assert spelled(**{"beta-vae-mlp.gaussian_var": "0.3"}) != spelled(gaussian_var="0.3")
    assert spelled(**{"*.gaussian_var": "0.3"}) == spelled(gaussian_var="0.3")
