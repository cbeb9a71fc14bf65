"""Executors: worker processes, Ray and SLURM (submitit) give the serial run's numbers;
cells are claimed so none trains twice; a dead worker's cell is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from aebench.cli import main
from aebench.errors import ConfigError
from aebench.executors import ExecutionSettings
from aebench.store import CLAIMS, RunStore

GRID = ["--models", "vae-mlp,ae-mlp", "--datasets", "digits", "--latent-dims", "2,4"]
FAST = ["--profile", "smoke", "--epochs", "2", "--no-report", "--fid-samples", "200"]
VOLATILE = ["finished", "train_seconds", "eval_seconds", "eval_timings", "threads"]


def table(out: Path) -> pd.DataFrame:
    frame = pd.read_csv(out / "results.csv")
    return frame.drop(columns=[c for c in VOLATILE if c in frame.columns])


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial")
    try:
        main(["run", *GRID, *FAST, "--out", str(out)])
    except SystemExit as exc:
        assert not exc.code
    return out


def test_worker_processes_give_the_serial_numbers(serial, cli, tmp_path):
    code, _, err = cli("run", *GRID, *FAST, "--workers", "2", "--out", str(tmp_path))
    assert code == 0, err
    assert "4 run(s) done" in err and "[w1]" in err and "[w2]" in err
    pd.testing.assert_frame_equal(table(serial), table(tmp_path))
    threads = pd.read_csv(tmp_path / "results.csv")["threads"]
    assert (threads == max(1, (os.cpu_count() or 1) // 2)).all()  # each its share of the CPUs


def test_ray_executor_gives_the_serial_numbers(serial, cli, tmp_path):
    """A local Ray cluster (what `--executor ray` starts without --ray-address)."""
    pytest.importorskip("ray")
    grid = [*GRID[:-1], "2"]  # two cells: every Ray worker is a fresh interpreter
    code, _, err = cli("run", *grid, *FAST, "--executor", "ray", "--out", str(tmp_path))
    assert code == 0, err
    expected = table(serial)
    pd.testing.assert_frame_equal(
        expected[expected.latent_dim == 2].reset_index(drop=True), table(tmp_path)
    )


def test_slurm_executor_through_submitit_gives_the_serial_numbers(serial, cli, tmp_path):
    pytest.importorskip("submitit")
    suite = tmp_path / "slurm.toml"
    suite.write_text('[execution]\nexecutor = "slurm"\nslurm_cluster = "local"\nworkers = 2\n')
    out = tmp_path / "out"
    grid = [*GRID[:-1], "2"]  # two cells: each SLURM task is a fresh interpreter
    code, _, err = cli("run", *grid, *FAST, "--suite", str(suite), "--out", str(out))
    assert code == 0, err
    assert "submitted 2 cell(s) as SLURM job array" in err
    expected = table(serial)
    pd.testing.assert_frame_equal(
        expected[expected.latent_dim == 2].reset_index(drop=True), table(out)
    )
    assert any((out / ".slurm").iterdir())  # submitit's logs


def test_a_cell_claimed_by_a_live_process_is_left_to_it(serial, cli, tmp_path):
    runs = ["run", "--models", "ae-mlp", "--datasets", "digits", *FAST]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from aebench.plan import Grid, plan

        (cell,) = plan([Grid(models=["ae-mlp"], datasets=["digits"], profile="smoke")], "cpu")
        claims = tmp_path / CLAIMS
        claims.mkdir(parents=True)
        host = __import__("socket").gethostname()
        claim = {"host": host, "pid": holder.pid, "token": "x"}
        (claims / f"{_key(cell, epochs=2, fid=200)}.claim").write_text(json.dumps(claim))
        code, _, err = cli(*runs, "--out", str(tmp_path))
        assert code == 0, err
        assert "0 run(s) done, 1 skipped" in err and "running in another process" in err
    finally:
        holder.kill()
        holder.wait()
    # its process is gone: the next command takes the cell over
    code, _, err = cli(*runs, "--out", str(tmp_path))
    assert code == 0 and "1 run(s) done" in err, err
    assert not list((tmp_path / CLAIMS).glob("*.claim"))  # released


def _key(cell, epochs: int, fid: int) -> str:
    import dataclasses

    options = {**cell.metric_options, "fid_samples": fid}
    return dataclasses.replace(cell, epochs=epochs, metric_options=options).key


def test_two_commands_on_one_output_never_train_a_cell_twice(tmp_path):
    env = {**os.environ, "AEBENCH_PLUGINS": ""}
    grid = ["--models", "ae-mlp", "--datasets", "digits", "--latent-dims", "2,4,8"]
    args = [sys.executable, "-m", "aebench.cli", "run", *grid, *FAST, "--out", str(tmp_path)]
    args += ["--threads", "1", "--epochs", "1"]  # two processes on a small machine
    procs = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    trained = sum(int(e.split(" run(s) done")[0].split()[-1]) for e in errs)
    assert trained == 3, errs  # each of the 3 cells trained by exactly one of them
    records = RunStore(tmp_path).records(history=False)
    assert len(records) == 3 and all(r.done for r in records)


def test_execution_settings_are_checked_up_front(cli, tmp_path):
    for args, message in [
        (("--workers", "0"), "--workers must be a positive integer"),
        (("--executor", "dask"), "unknown executor 'dask'"),
        (("--devices", "cuda:0"), "--devices cuda:0: the runs are on cpu"),
        (("--gpus-per-cell", "0"), "--gpus-per-cell must be > 0"),
    ]:
        code, _, err = cli("run", *GRID, *FAST, *args, "--out", str(tmp_path))
        assert code == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1
    suite = tmp_path / "s.toml"
    suite.write_text("[execution]\nworker = 2\n")
    code, _, err = cli("run", *GRID, "--suite", str(suite), "--out", str(tmp_path))
    assert code == 2 and "unknown key 'worker' (did you mean workers?)" in err
    with pytest.raises(ConfigError, match="must be a positive integer"):
        ExecutionSettings(workers=-1).check()


def test_a_missing_optional_extra_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if `aebench[ray]` were not installed
    code, _, err = cli("run", *GRID, *FAST, "--executor", "ray", "--out", str(tmp_path))
    assert code == 2 and "pip install 'aebench[ray]'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_stale_claims_are_taken_over(tmp_path):
    store = RunStore(tmp_path)
    with store.claim("k1") as first:
        assert first is not None and store.claimed("k1")
        with store.claim("k1") as second:
            assert second is None  # held by a live worker (this process)
    path = tmp_path / CLAIMS / "k2.claim"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "t"}))
    old = time.time() - 1000
    os.utime(path, (old, old))  # not renewed for longer than the lease
    with store.claim("k2") as taken:
        assert taken is not None and json.loads(path.read_text())["token"] == taken.token
    assert not path.exists()


@pytest.mark.slow
def test_compiled_training_step_trains_like_eager(tmp_path):
    """--compile: the same training, through torch.compile (CUDA graphs on CUDA).
    Fused kernels and the compiled RNG change the last digits, not the outcome."""
    import aebench

    results = {}
    for compiled in (False, True):
        out = tmp_path / str(compiled)
        summary = aebench.run(
            "ae-mlp,vae-mlp",
            "digits",
            out=out,
            epochs=5,
            report=False,
            compile=compiled,
            metric_options={"fid_samples": 0, "nll_samples": 0, "probe_samples": 0},
        )
        assert [o.status for o in summary.outcomes] == ["done", "done"]
        results[compiled] = pd.read_csv(out / "results.csv").set_index("model")
        configs = [json.loads(p.read_text()) for p in out.glob("runs/*/config.json")]
        assert all(c["compile"] is compiled for c in configs)
    eager, fast = results[False], results[True]
    assert set(eager.run_id) != set(fast.run_id)  # --compile is another run, not a resume
    for model in ("ae-mlp", "vae-mlp"):
        assert fast.loc[model, "test_total"] == pytest.approx(
            eager.loc[model, "test_total"], rel=0.05
        )
