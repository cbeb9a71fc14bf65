"""The run store: the one owner of run directories (write, read, status, versions, damage)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import aebench
from aebench import results
from aebench.catalog import load_model
from aebench.store import FORMAT_VERSION, RunFormatError, RunStore


@pytest.fixture
def bench(finished, tmp_path) -> Path:
    """A private copy of ``finished`` that a test may damage."""
    shutil.copytree(finished, tmp_path / "out")
    return tmp_path / "out"


def run_dir(out: Path, model: str) -> Path:
    (path,) = (out / "runs").glob(f"digits_{model}_*")
    return path


def test_written_runs_read_back_complete(finished):
    store = RunStore(finished)
    records = store.records()
    assert [r.config["model"] for r in records] == ["ae-mlp", "vae-mlp"]
    for r in records:
        assert r.done and r.corrupt is None and r.format_version == FORMAT_VERSION
        assert r.status == "done" and r.started and r.finished
        assert [row["epoch"] for row in r.history] == [1.0]
        assert set(r.images) == {"recon", "samples", "interp"} and len(r.epoch_frames) == 1
        assert r.file("latents.npz") and r.file("weights.safetensors")
        assert r.config["resolved_model_config"]["hidden_dims"] == [512, 256]
        assert r.run_id.endswith(r.key) and store.find(r.key).run_id == r.run_id
    ae = records[0]
    assert {"test_reg", "nll", "nll_bpd"} <= ae.not_applicable
    assert ae.metrics["test_reg"] is None and ae.metrics["sampler"].startswith("GaussianMixture")


def test_model_round_trips_through_the_store(finished):
    store = RunStore(finished)
    record = store.records()[1]
    model = load_model(store, record.run_id)
    x = aebench.get_dataset("digits", "test").batch(slice(0, 3))
    assert model.reconstruct(x).shape == x.shape and not model.training


@pytest.mark.parametrize(
    ("file", "content", "why"),
    [
        ("metrics.json", "{not json", "metrics.json is not valid JSON"),
        ("config.json", "[1, 2", "config.json is not valid JSON"),
        ("status.json", '{"status": "exploded"}', "status.json has an unknown status 'exploded'"),
        ("status.json", "\x00\x01garbage", "status.json is not valid JSON"),
        ("history.csv", "epoch,train_total\n1,abc\n", "history.csv line 2: 'train_total'"),
        ("history.csv", "\x00\x01\x02,\n\xff", "history.csv is"),
        ("metrics.json", "[]", "metrics.json is not a JSON object"),
    ],
)
def test_a_corrupt_run_is_named_and_skipped_by_the_table(bench, file, content, why):
    target = run_dir(bench, "vae-mlp")
    (target / file).write_text(content)
    record = RunStore(bench).read(target.name)
    assert record.corrupt is not None and why in record.corrupt and not record.done
    table = results.write(bench)
    assert list(table["model"]) == ["ae-mlp"]  # the other run still makes the table
    assert table.attrs["corrupt"] == [(target.name, record.corrupt)]
    assert list(pd.read_csv(bench / "results.csv")["model"]) == ["ae-mlp"]
    with pytest.raises(RunFormatError, match=f"run '{target.name}' is corrupt"):
        RunStore(bench).get(target.name)


def test_report_warns_about_corrupt_runs_and_builds_from_the_others(bench, cli):
    (run_dir(bench, "vae-mlp") / "metrics.json").write_text("{")
    code, out, err = cli("report", str(bench))
    assert code == 0, err
    assert "warning: run digits_vae-mlp_" in err and "metrics.json is not valid JSON" in err
    assert Path(out.strip()).is_file()
    assert "ae-mlp" in Path(out.strip()).read_text()


def test_unknown_format_version_is_one_line(bench, cli):
    target = run_dir(bench, "ae-mlp")
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    record = RunStore(bench).read(target.name)
    assert "run format 99" in record.corrupt and "upgrade aebench" in record.corrupt
    code, _, err = cli("generate", str(target))
    assert code == 2 and "run format 99" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_generate_on_corrupt_weights_is_one_line(bench, cli):
    target = run_dir(bench, "vae-mlp")
    (target / "weights.safetensors").write_bytes(b"\x00" * 40)
    code, _, err = cli("generate", str(target), "--n", "4")
    assert code == 2
    assert "weights.safetensors is corrupt" in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1


def test_generate_writes_samples_and_explains_a_wrong_path(bench, cli):
    target = run_dir(bench, "vae-mlp")
    code, out, err = cli("generate", str(target), "--n", "4")
    assert code == 0, err
    assert Path(out.strip()) == target / "images" / "generated.png"
    assert "generated" in RunStore(bench).read(target.name).images
    # 8x8 digits, 2x2 grid: tiles enlarged 12x to 96 px (sharp), 2 px padding
    from PIL import Image

    with Image.open(target / "images" / "generated.png") as png:
        assert png.size == (2 * 96 + 3 * 2, 2 * 96 + 3 * 2)
    code, _, err = cli("generate", str(bench))
    assert code == 2 and "give one run" in err and str(bench / "runs") in err
    code, _, err = cli("generate", str(bench / "nope"))
    assert code == 2 and "does not exist" in err


def test_unfinished_runs_are_listed_not_corrupt(bench):
    target = run_dir(bench, "vae-mlp")
    (target / "status.json").unlink()
    record = RunStore(bench).read(target.name)
    assert record.corrupt is None and record.status == "incomplete" and not record.done
    table = results.write(bench)
    assert set(table["status"]) == {"done", "incomplete"}
    assert pd.isna(table.set_index("model").loc["vae-mlp", "test_total"])


def test_format_1_runs_of_aebench_0_1_0_still_load(bench):
    """Rewrite a run in the layout aebench 0.1.0 wrote (no format_version, flat options,
    a 0 for the AE's KL): it reads, upgrades in memory, and its model loads."""
    target = run_dir(bench, "ae-mlp")
    config = json.loads((target / "config.json").read_text())
    legacy = {
        k: v
        for k, v in config.items()
        if k not in ("format_version", "metric_options", "shown_options", "resolved_model_config")
    }
    legacy.update(config["metric_options"])
    legacy.update(latent_dim=16, beta=None, likelihood="bernoulli")
    legacy["model_config"] = {**config["model_config"], "hidden_dims": None}
    (target / "config.json").write_text(json.dumps(legacy))
    metrics = json.loads((target / "metrics.json").read_text())
    metrics.pop("not_applicable")
    metrics.update(test_reg=0.0, prior=metrics.pop("sampler"))
    (target / "metrics.json").write_text(json.dumps(metrics))

    store = RunStore(bench)
    record = store.read(target.name)
    assert record.done and record.format_version == 1
    assert record.config["metric_options"]["fid_samples"] == 0
    assert record.metrics["test_reg"] is None and "test_reg" in record.not_applicable
    assert record.metrics["sampler"].startswith("GaussianMixture")
    assert load_model(store, record.run_id).latent_dim == 16
    table = results.write(bench)
    assert pd.isna(table.set_index("model").loc["ae-mlp", "test_reg"])


def test_locate_accepts_the_output_its_runs_folder_and_a_run(finished):
    run = run_dir(finished, "ae-mlp")
    assert RunStore.locate(finished)[0].root == finished
    assert RunStore.locate(finished / "runs")[0].root == finished
    store, run_id = RunStore.locate(run)
    assert store.root == finished and run_id == run.name
    with pytest.raises(aebench.errors.DataError, match="not an aebench output folder"):
        RunStore.locate(run / "images")


def test_stored_files_are_readable_like_any_new_file(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the stored file gets the mode a
    plain open() gives, so a shared results folder stays readable by the group."""
    from aebench import files

    mask = os.umask(0o022)
    os.umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    files.write_json(tmp_path / "metrics.json", {"a": 1})
    files.save_with(tmp_path / "w.bin", lambda p: p.write_bytes(b"0"))
    for name in ("metrics.json", "w.bin"):
        mode = (tmp_path / name).stat().st_mode & 0o777
        assert mode == plain.stat().st_mode & 0o777 == 0o666 & ~mask, name
