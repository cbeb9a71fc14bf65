"""Native code a bad input can crash, run in a helper process the crash cannot take down.

scikit-learn's t-SNE (Cython, Barnes-Hut) ends the whole process with a
segmentation fault on some inputs (every latent equal, or spread over 1e-300):
no exception, no message, and every later report died with it. The figures
check their inputs first; :func:`call` is the second line of defence: it runs
an estimator in one helper process, a fresh interpreter (``_worker.py`` run by
its path: it imports neither aebench nor torch, and inherits no OpenMP state),
kept for the life of this process and restarted after a crash, and turns a
crash or a hang into a reason to show (``"crashed (signal 11)"``,
``"timed out after 300 s"``).

Hand-written rather than ``concurrent.futures.ProcessPoolExecutor``: a spawn or
forkserver pool re-imports the caller's ``__main__`` and the executors' shared
forkserver preload (torch, every plugin) in its child, seconds per start where
this helper needs scikit-learn alone; ``fork`` would copy torch's OpenMP state.
The helper ends when this process does (EOF on its request pipe).

The helper imports scikit-learn once per process (about 2 s on a free 2-core
CPU); each call then costs the transfer of its arguments and result
(milliseconds for the report's 2000 x d latents). Where no process can be
started, :func:`call` runs the estimator here.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aebench.report.plots._worker import run

TIMEOUT = 300.0
"""Seconds one call may take (the helper's start included) before it is killed."""
PRELOAD = ("sklearn.manifold",)
"""What the helper imports before its first call."""
WORKER = Path(__file__).with_name("_worker.py")
ONE_THREAD = {
    k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
}  # as aebench.threads.single_threaded: OpenMP spin-waiting on a busy CPU is 5-40x slower

_lock = threading.Lock()
_helper: dict[str, Any] = {}


def _start() -> tuple[subprocess.Popen[bytes], Connection, Connection] | None:
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    env = {**os.environ, **ONE_THREAD}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the same libraries
    try:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(req_r), str(ans_w), *PRELOAD],
            pass_fds=(req_r, ans_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except (OSError, ValueError):
        for fd in (req_r, req_w, ans_r, ans_w):
            os.close(fd)
        return None
    os.close(req_r)
    os.close(ans_w)
    return proc, Connection(req_w, readable=False), Connection(ans_r, writable=False)


def _stop() -> None:
    proc = _helper.pop("proc", None)
    for conn in (_helper.pop("requests", None), _helper.pop("answers", None)):
        if conn is not None:
            conn.close()  # the helper reads EOF and ends
    if proc is not None:
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


atexit.register(_stop)


def _crashed(proc: subprocess.Popen[bytes]) -> str:
    try:
        code = proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    return f"crashed (signal {-code})" if code < 0 else f"crashed (exit status {code})"


def _ensure() -> bool:
    """A helper running (started if need be; called with the lock held); False where
    none can be started."""
    if _helper.get("proc") is None or _helper["proc"].poll() is not None:
        _stop()
        started = _start()
        if started is None:
            return False
        _helper.update(zip(("proc", "requests", "answers"), started, strict=True))
    return True


def warm() -> None:
    """Start the helper now, without waiting for it: its imports then overlap the
    caller's other work (the site build calls this before its run pages)."""
    with _lock:
        _ensure()


def call(
    target: str,
    kwargs: dict[str, Any],
    method: str | None,
    *args: Any,
    timeout: float = TIMEOUT,
) -> tuple[Any, str | None]:
    """``target(**kwargs).method(*args)`` (``target`` ``"module:Class"``; with ``method``
    None, ``target(*args, **kwargs)``) computed in the helper process: ``(value, None)``,
    or ``(None, reason)`` when it raised (``"ValueError: ..."``), crashed
    (``"crashed (signal 11)"``) or took longer than ``timeout`` seconds (``"timed out
    after 300 s"``; the helper is killed and the next call starts another)."""
    job = (target, kwargs, method, args)
    with _lock:
        if not _ensure():
            return _here(job)
        proc, requests, answers = _helper["proc"], _helper["requests"], _helper["answers"]
        try:
            requests.send(job)
            if answers.poll(timeout):
                ok, value = answers.recv()
                return (value, None) if ok else (None, value)
        except (EOFError, OSError):
            _stop_dead()
            return None, _crashed(proc)
        _stop_dead()
        proc.kill()
        proc.wait()
        return None, f"timed out after {timeout:g} s"


def _stop_dead() -> None:
    """Forget a helper that crashed or hung (its pipes closed; the caller reaps it)."""
    for key in ("requests", "answers"):
        conn = _helper.pop(key, None)
        if conn is not None:
            conn.close()
    _helper.pop("proc", None)


def _here(job: tuple[str, dict[str, Any], str | None, tuple[Any, ...]]) -> tuple[Any, str | None]:
    """The job run in this process: where no helper can be started."""
    try:
        return run(*job), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
