"""Export to MLflow (its offline file store) and `aebench open`."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
from mlflow.tracking import MlflowClient  # noqa: E402


def _runs(store: Path, experiment: str = "aebench") -> list:
    client = MlflowClient(store.resolve().as_uri())
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return client.search_runs([exp.experiment_id])


def test_export_copies_params_metrics_history_and_images(finished, tmp_path, cli, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = tmp_path / "mlruns"
    code, _, err = cli("export", str(finished), "--mlflow", str(store))
    assert code == 0, err
    assert "2 run(s) exported, 0 skipped" in err
    runs = {r.data.tags["aebench.run_id"]: r for r in _runs(store)}
    ours = {p.name: p for p in (finished / "runs").iterdir()}
    assert set(runs) == set(ours)
    client = MlflowClient(store.resolve().as_uri())
    for run_id, run in runs.items():
        config = json.loads((ours[run_id] / "config.json").read_text())
        metrics = json.loads((ours[run_id] / "metrics.json").read_text())
        assert run.info.status == "FINISHED"
        assert run.data.params["model"] == config["model"]
        assert run.data.params["seed"] == str(config["seed"])
        assert run.data.params["model.latent_dim"] == str(config["model_config"]["latent_dim"])
        assert run.data.tags["aebench.key"] == config["key"]
        assert run.data.metrics["test_mse"] == pytest.approx(metrics["test_mse"])
        # not-applicable metrics are absent, not 0
        for key in metrics.get("not_applicable", []):
            assert key not in run.data.metrics
        # the per-epoch history arrives as steps
        history = pd.read_csv(ours[run_id] / "history.csv")
        steps = client.get_metric_history(run.info.run_id, "val_total")
        assert [m.step for m in steps] == list(history["epoch"])
        assert [m.value for m in steps] == pytest.approx(list(history["val_total"]))
        files = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "metrics.json", "history.csv", "images"} <= files
        images = client.list_artifacts(run.info.run_id, "images")
        assert any(a.path.endswith(".png") for a in images)


def test_export_again_adds_nothing_and_new_runs_only(finished, tmp_path, cli):
    store = tmp_path / "mlruns"
    bench = tmp_path / "out"
    shutil.copytree(finished, bench)
    (one,) = (bench / "runs").glob("digits_vae-mlp_*")
    moved = tmp_path / one.name
    shutil.move(one, moved)  # the VAE "finishes later"
    assert cli("export", str(bench), "--mlflow", str(store))[0] == 0
    assert len(_runs(store)) == 1
    shutil.move(moved, one)
    code, _, err = cli("export", str(bench), "--mlflow", str(store))
    assert code == 0 and "1 run(s) exported, 1 skipped" in err
    code, _, err = cli("export", str(bench), "--mlflow", str(store))
    assert "0 run(s) exported, 2 skipped" in err
    assert len(_runs(store)) == 2  # no duplicates


def test_run_with_mlflow_exports_the_grid_it_ran(tmp_path, cli):
    store = tmp_path / "mlruns"
    code, _, err = cli(
        "run", "--models", "ae-mlp", "--datasets", "digits", "--epochs", "1",
        "--fid-samples", "0", "--no-report", "--out", str(tmp_path / "out"),
        "--mlflow", str(store), "--mlflow-experiment", "mine",
    )  # fmt: skip
    assert code == 0, err
    assert "mlflow: 1 run(s) exported to experiment 'mine'" in err
    assert len(_runs(store, "mine")) == 1


def test_missing_extra_and_wrong_folder_are_one_line(finished, tmp_path, cli, monkeypatch):
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    code, _, err = cli("export", str(finished), "--mlflow", str(tmp_path / "m"))
    assert code != 0 and "pip install 'aebench[mlflow]'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(builtins, "__import__", real_import)
    code, _, err = cli("export", str(tmp_path / "nowhere"), "--mlflow", str(tmp_path / "m"))
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_open_prints_the_site_url_and_explains_a_missing_site(tmp_path, cli, monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    site = tmp_path / "out" / "site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html></html>")
    for where in (tmp_path / "out", site, tmp_path / "out" / "runs"):
        code, out, _ = cli("open", str(where))
        assert code == 0 and out.strip() == (site / "index.html").resolve().as_uri()
    assert len(opened) == 3
    code, _, err = cli("open", str(tmp_path / "empty"))
    assert code != 0 and "aebench report" in err and "Traceback" not in err
