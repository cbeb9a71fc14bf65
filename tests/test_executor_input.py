"""Bad executor and tracker input fails in one line before any work, instead of
hanging or ending in an internal error; worker processes end with `aebench run`."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aebench.errors import ConfigError
from aebench.executors import ExecutionSettings, die_with_parent
from aebench.executors.ray import check_fits

GRID = ["--models", "ae-mlp", "--datasets", "digits", "--profile", "smoke", "--threads", "1"]
FAST = ["--fid-samples", "0", "--no-report"]


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    return lines[0]


# -- executors --------------------------------------------------------------------
@pytest.mark.parametrize(
    "executor, address, expected",
    [
        ("ray", f"127.0.0.1:{closed_port()}", "Connection refused"),
        ("ray", "ray://no-such-host.invalid:10001", "no Ray cluster answers at no-such-host"),
    ],
)
def test_an_unreachable_ray_address_is_one_line(cli, tmp_path, executor, address, expected):
    pytest.importorskip("ray")
    start = time.monotonic()
    code, _, err = cli("run", *GRID, *FAST, "--executor", executor, "--ray-address", address,
                       "--out", str(tmp_path))  # fmt: skip
    assert time.monotonic() - start < 20
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"aebench: error: --ray-address {address}: ") and expected in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_resources_this_machine_lacks_are_one_line(cli, tmp_path, executor):
    cpus = os.cpu_count() or 1
    cases = [(("--cpus-per-cell", str(cpus + 1)), f"--cpus-per-cell {cpus + 1}: this machine")]
    if not torch.cuda.is_available():
        cases.append((("--gpus-per-cell", "1"), "--gpus-per-cell 1: this machine has no GPU"))
    else:
        many = torch.cuda.device_count() + 1
        cases.append((("--gpus-per-cell", str(many)), f"--gpus-per-cell {many}: this machine"))
    if executor == "ray":  # a Ray cell asks for --threads CPUs unless told
        cases.append((("--threads", str(cpus + 1)), f"--threads {cpus + 1}: a Ray cell asks"))
    for args, message in cases:
        start = time.monotonic()
        code, _, err = cli("run", *GRID, *FAST, "--executor", executor, *args,
                           "--out", str(tmp_path))  # fmt: skip
        assert time.monotonic() - start < 20
        assert code == 2 and message in one_line(err), err
    assert not (tmp_path / "runs").exists()


def test_a_ray_cluster_without_a_node_that_fits_is_one_line():
    """What the Ray executor checks once it has joined a running cluster, before it
    queues a cell Ray would keep pending for ever."""
    nodes = [
        {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}},
        {"Alive": True, "Resources": {"CPU": 32.0}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},
    ]
    check_fits(nodes, 8, 1, ExecutionSettings(gpus_per_cell=1))
    check_fits(nodes, 32, 0, ExecutionSettings(cpus_per_cell=32))
    with pytest.raises(ConfigError, match=r"^--gpus-per-cell: .* the largest Ray node has 1 GPU"):
        check_fits(nodes, 1, 2, ExecutionSettings(gpus_per_cell=2))
    with pytest.raises(ConfigError, match=r"^--cpus-per-cell: a cell asks for 16 CPU"):
        check_fits(nodes, 16, 1, ExecutionSettings(cpus_per_cell=16, gpus_per_cell=1))
    with pytest.raises(
        ConfigError, match=r"^--threads: a cell asks for 33 CPU.*the largest has 32 CPU"
    ):
        check_fits(nodes, 33, 0, ExecutionSettings(threads=33))


@pytest.mark.parametrize(
    "line, message",
    [
        ("slurm_time = 'x'", "[execution] slurm_time: expected an integer, got 'x'"),
        ('cpus_per_cell = "x"', "[execution] cpus_per_cell: expected a number, got 'x'"),
        ("executor = 5", "[execution] executor: expected text, got 5"),
        ('executor = "dask"', "[execution] executor: expected one of local, ray, slurm"),
        ("workers = 0", "[execution] workers must be a positive integer, got 0"),
        ("workers = true", "[execution] workers: expected an integer, got True"),
        ("gpus_per_cell = -1", "[execution] gpus_per_cell must be > 0"),
        ("slurm_time = 0", "[execution] slurm_time must be >= 1 minute"),
        ("devices = 3", "[execution] devices: expected a non-empty list"),
        ("slurm_extra = 3", "[execution] slurm_extra: expected a table"),
        ("ray_address = 3", "[execution] ray_address: expected text, got 3"),
    ],
)
def test_suite_execution_values_are_typed_and_range_checked(cli, tmp_path, line, message):
    suite = tmp_path / "s.toml"
    suite.write_text(f"[execution]\n{line}\n")
    code, _, err = cli("run", *GRID, *FAST, "--suite", str(suite), "--out", str(tmp_path / "o"))
    assert code == 2
    assert one_line(err).startswith(f"aebench: error: --suite {suite}: {message}"), err


def test_suite_execution_values_given_as_text_are_converted():
    settings = ExecutionSettings().merged(
        {"threads": "2", "devices": "cpu", "cpus_per_cell": 1}, "--suite s.toml: [execution]"
    )
    assert settings.threads == 2 and settings.devices == ["cpu"] and settings.cpus_per_cell == 1.0


# -- worker processes end with aebench run ------------------------------------------
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def _session(sid: int) -> list[int]:
    """Live processes in session ``sid`` (the children of a process started with
    start_new_session keep its session after they are re-parented)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid and _alive(int(entry)):
                    out.append(int(entry))
            except (ProcessLookupError, PermissionError):
                pass
    return out


def _gone(sid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _session(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_process_that_asked_dies_with_its_parent():
    """die_with_parent, which the fork server and each worker call: the kernel kills
    the process when its parent is killed with SIGKILL (no cleanup code can run)."""
    read, write = os.pipe()
    parent = os.fork()
    if parent == 0:  # pragma: no cover (a child)
        try:
            child = os.fork()
            if child == 0:
                die_with_parent()
                os.write(write, b"ready\n")
                time.sleep(60)
            else:
                os.write(write, f"{child}\n".encode())
                time.sleep(60)
        finally:
            os._exit(0)
    os.close(write)
    lines = os.fdopen(read)
    child = int(lines.readline()) if (first := lines.readline()) == "ready\n" else int(first)
    if first != "ready\n":
        assert lines.readline() == "ready\n"
    try:
        assert _alive(child)
        os.kill(parent, signal.SIGKILL)
        os.waitpid(parent, 0)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        lines.close()
        for pid in (parent, child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_aebench_run_leaves_no_worker_process(tmp_path, sig):
    """`aebench run --workers 2`, killed while its cells run: the fork server, both
    workers and the resource tracker end with it."""
    args = [sys.executable, "-m", "aebench", "run", *GRID, *FAST, "--latent-dims", "2,4",
            "--workers", "2", "--epochs", "50", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "AEBENCH_PLUGINS": ""}
    proc = subprocess.Popen(
        args, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        seen = []
        for line in proc.stderr:  # "[w1] [1/2] ae-mlp on digits ...": a worker's cell runs
            seen.append(line)
            if re.match(r"\[w\d\] \[\d/2\]", line) or time.monotonic() > deadline:
                break
        assert any(re.match(r"\[w\d\] \[\d/2\]", s) for s in seen), "".join(seen)
        assert len(_session(proc.pid)) >= 4  # aebench, fork server, 2 workers (+ tracker)
        proc.send_signal(sig)
        proc.wait(10)
        assert not _gone(proc.pid, 10)
    finally:
        for pid in _session(proc.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_finished_pool_leaves_no_fork_server(cli, tmp_path):
    from multiprocessing import forkserver

    code, _, err = cli("run", *GRID, *FAST, "--latent-dims", "2,4", "--epochs", "1",
                       "--workers", "2", "--out", str(tmp_path))  # fmt: skip
    assert code == 0 and "[w1]" in err, err
    pid = forkserver._forkserver._forkserver_pid
    assert pid is None or not _alive(pid)


# -- trackers ---------------------------------------------------------------------------
@pytest.fixture
def some_out(tmp_path) -> Path:
    """A benchmark folder (no finished runs: every check here comes before any work)."""
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    return out


def test_an_unreachable_mlflow_server_is_one_line(cli, some_out):
    pytest.importorskip("mlflow")
    uri = f"http://127.0.0.1:{closed_port()}"
    start = time.monotonic()
    code, _, err = cli("export", str(some_out), "--mlflow", uri)
    assert time.monotonic() - start < 20
    assert code == 2
    assert one_line(err).startswith(f"aebench: error: --mlflow {uri}: no MLflow server answers")


def test_bad_mlflow_targets_are_one_line(cli, some_out, tmp_path):
    pytest.importorskip("mlflow")
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [
        (("--mlflow", str(afile)), f"--mlflow {afile}: a file, not a folder"),
        (("--mlflow", str(afile / "sub")), f"--mlflow {afile / 'sub'}: cannot create or write"),
        (("--mlflow", str(tmp_path / "m"), "--experiment", ""), "--experiment is empty"),
        (("--mlflow", str(tmp_path / "m"), "--experiment", " "), "--experiment is empty"),
    ]
    for args, message in cases:
        code, _, err = cli("export", str(some_out), *args)
        assert code == 2 and message in one_line(err), err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anyway")
def test_a_read_only_mlflow_folder_is_one_line(cli, some_out, tmp_path):
    pytest.importorskip("mlflow")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = cli("export", str(some_out), "--mlflow", str(folder))
    finally:
        folder.chmod(0o700)
    assert code == 2 and f"--mlflow {folder}: cannot create or write" in one_line(err)


def test_an_sqlite_store_works_or_is_one_line(cli, some_out, tmp_path):
    """MLflow's SQLite store needs SQLAlchemy and Alembic, which aebench[mlflow]
    (mlflow-skinny) leaves out: with them the export works, without them it is refused
    in one line (it was an internal error: UnsupportedModelRegistryStoreURIException)."""
    pytest.importorskip("mlflow")
    import importlib.util

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, _, err = cli("export", str(some_out), "--mlflow", uri, "--experiment", "mine")
    if all(importlib.util.find_spec(m) for m in ("sqlalchemy", "alembic")):
        from mlflow.tracking import MlflowClient

        assert code == 0, err
        assert MlflowClient(uri).get_experiment_by_name("mine") is not None
    else:
        assert code == 2
        line = one_line(err)
        assert f"--mlflow {uri}: MLflow's database stores need sqlalchemy" in line
        assert "pip install" in line


def test_run_checks_the_mlflow_target_before_training(cli, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    afile = tmp_path / "afile"
    afile.write_text("")
    out = tmp_path / "out"
    trained: list[object] = []
    monkeypatch.setattr("aebench.runner.run_benchmark", lambda *a, **k: trained.append(a))
    for args, message in [
        (("--mlflow", str(afile)), "a file, not a folder"),
        (("--mlflow", f"http://127.0.0.1:{closed_port()}"), "no MLflow server answers"),
        (("--mlflow", str(tmp_path / "m"), "--mlflow-experiment", ""), "--mlflow-experiment is"),
    ]:
        code, _, err = cli("run", *GRID, *FAST, *args, "--out", str(out))
        assert code == 2 and message in one_line(err), err
    assert not trained and not out.exists()
