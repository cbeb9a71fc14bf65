"""The CLI: exit codes, one-line errors, and --json that parses back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aebench import __version__
from aebench.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_version_and_help(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"aebench {__version__}"
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for cmd in ("models", "datasets", "plugins"):
        assert cmd in out


def test_datasets_json_parses_and_reports_local_readiness(capsys, tmp_path):
    code, out, _ = run(capsys, "datasets", "--json", "--data-dir", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert data["data_dir"] == str(tmp_path)
    digits = next(d for d in data["datasets"] if d["name"] == "digits")
    assert digits["shape"] == [1, 8, 8] and digits["num_classes"] == 10 and digits["ready"]


def test_plugins_all_lists_builtins_with_hooks(capsys):
    code, out, _ = run(capsys, "plugins", "--all", "--json")
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
def test_unknown_names_exit_2_with_one_line(capsys, args, expected):
    code, _, err = run(capsys, *args)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unknown_model_suggests_the_family(capsys):
    _, _, err = run(capsys, "models", "vea")
    assert "did you mean vae?" in err


def test_models_pattern_and_json(capsys):
    code, out, _ = run(capsys, "models", "*-cnn", "--json")
    assert code == 0
    rows = [r for r in json.loads(out) if r["plugin"].startswith("aebench ")]  # built-ins
    assert [r["name"] for r in rows] == ["ae-cnn", "vae-cnn", "beta-vae-cnn"]
    assert all(r["arch"] == "cnn" for r in json.loads(out))
    beta = rows[2]
    assert beta["family"] == "beta-vae" and beta["config"]["beta"] == 4.0
    code, out, _ = run(capsys, "models", "vae", "--json")
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
