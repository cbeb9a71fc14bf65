"""The CLI: exit codes, one-line errors, and --json that parses back."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from aebench import __version__


def test_version_and_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"aebench {__version__}"
    code, out, _ = cli("--help")
    assert code == 0
    for cmd in ("models", "datasets", "plugins"):
        assert cmd in out


def test_datasets_json_parses_and_reports_local_readiness(cli, tmp_path):
    code, out, _ = cli("datasets", "--json", "--data-dir", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert data["data_dir"] == str(tmp_path)
    digits = next(d for d in data["datasets"] if d["name"] == "digits")
    assert digits["shape"] == [1, 8, 8] and digits["num_classes"] == 10 and digits["ready"]


def test_plugins_all_lists_builtins_with_hooks(cli):
    code, out, _ = cli("plugins", "--all", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out) if r["builtin"]}  # third-party may be installed
    assert rows["aebench.datasets.digits"]["hooks"] == ["register_datasets"]
    assert rows["aebench.models.vae"]["hooks"] == ["register_models"]
    assert all(r["package"] == "aebench" and r["error"] is None for r in rows.values())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("models", "vea"), "unknown model 'vea'"),
        (("models", "nosuch"), "unknown model 'nosuch'; see `aebench models`"),
    ],
)
def test_unknown_names_exit_2_with_one_line(cli, args, expected):
    code, _, err = cli(*args)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unknown_model_suggests_the_family(cli):
    _, _, err = cli("models", "vea")
    assert "did you mean vae?" in err


def test_models_pattern_and_json(cli):
    code, out, _ = cli("models", "*-cnn", "--json")
    assert code == 0
    rows = [r for r in json.loads(out) if r["plugin"].startswith("aebench ")]  # built-ins
    assert [r["name"] for r in rows][:3] == ["ae-cnn", "vae-cnn", "beta-vae-cnn"]
    assert all(r["arch"] == "cnn" for r in json.loads(out))
    beta = rows[2]
    assert beta["family"] == "beta-vae" and beta["config"]["beta"] == 4.0
    code, out, _ = cli("models", "vae", "--json")
    assert [r["name"] for r in json.loads(out)] == ["vae-mlp", "vae-cnn"]


def test_console_script_end_to_end_exit_code():
    res = subprocess.run(
        [sys.executable, "-m", "aebench.cli", "models", "nosuch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert res.stderr.startswith("aebench: error: unknown model 'nosuch'")
    assert "Traceback" not in res.stderr

    verbose = subprocess.run(
        [sys.executable, "-m", "aebench.cli", "--verbose", "models", "nosuch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_run_help_names_required_options_and_every_default(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = cli("run", "--help")
    assert code == 0
    assert "--models and --datasets are required" in out
    blocks: dict[str, str] = {}  # option -> its help text, across wrapped lines
    for line in out.splitlines():
        if m := re.match(r"^  (?:-\w, )?(--[a-z][a-z-]*)", line):
            current = m.group(1)
        if line.startswith("  ") and "current" in locals():
            blocks[current] = blocks.get(current, "") + " " + line.strip()
    # each option's help ends with its default (or says when it applies), none is cut off
    for option in ("--epochs", "--batch-size", "--lr", "--latent-dims", "--seeds", "--profile",
                   "--out", "--device", "--executor", "--workers", "--threads", "--fid-samples",
                   "--binarize", "--mlflow-experiment"):  # fmt: skip
        assert "default" in blocks[option], (option, blocks[option])
    assert "…" not in out  # what a cut-off help line ends with


def test_the_first_offline_extractor_shows_its_progress(cli, tmp_path):
    code, _, err = cli(
        "run", "--models", "ae-mlp", "--datasets", "digits", "--epochs", "1",
        "--fid-samples", "100", "--nll-samples", "0", "--probe-samples", "0",
        "--no-report", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    assert "training the offline FID extractor for digits (once; cached): step 200/400" in err
    assert "step 400/400" in err and "offline FID extractor for digits: test accuracy" in err
    # cached: the second benchmark does not train it again
    code, _, err = cli(
        "run", "--models", "ae-mlp", "--datasets", "digits", "--epochs", "1", "--seeds", "1",
        "--fid-samples", "100", "--nll-samples", "0", "--probe-samples", "0",
        "--no-report", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0 and "training the offline FID extractor" not in err


def test_listings_keep_names_whole_at_80_columns(cli, monkeypatch):
    """Names are what users type next: a narrow terminal wraps the other columns."""
    from aebench import cli as cli_module
    from aebench.catalog import list_datasets, list_models

    monkeypatch.setattr(cli_module.out, "_width", 80)
    datasets = {s.name + (":ARG" if s.takes_argument else "") for s in list_datasets()}
    for command, names in (("datasets", datasets), ("models", {s.name for s in list_models()})):
        code, out, _ = cli(command)
        assert code == 0
        listing = out.split("└")[0]  # the first table (datasets adds one of options)
        first_cells = {line.split("│")[1].strip() for line in listing.splitlines() if "│" in line}
        assert names <= first_cells, command


def test_report_defaults_to_the_run_commands_output_folder(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("report")
    assert code == 2 and "aebench-out" in err  # the default folder, named in the error
