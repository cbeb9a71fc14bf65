"""The helper process of :mod:`aebench.report.plots.isolated`, run as a script by its path
(so that it imports none of aebench): ``python _worker.py READ_FD WRITE_FD``.

Each request is ``(target, kwargs, method, args)``: ``target`` is ``"module:Class"``
(or ``"module:function"`` with ``method`` None); the answer is ``(True, value)`` or
``(False, "ValueError: ...")``. ``None`` ends the loop.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from multiprocessing.connection import Connection
from typing import Any


def run(target: str, kwargs: dict[str, Any], method: str | None, args: tuple[Any, ...]) -> Any:
    module, _, name = target.partition(":")
    obj = getattr(importlib.import_module(module), name)
    if method is None:
        return obj(*args, **kwargs)
    return getattr(obj(**kwargs), method)(*args)


def serve(read_fd: int, write_fd: int, preload: list[str]) -> None:
    warnings.simplefilter("ignore")  # the parent shows what matters: the reason of a failure
    requests, answers = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    for name in preload:
        importlib.import_module(name)
    while True:
        try:
            job = requests.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            answers.send((True, run(*job)))
        except Exception as exc:
            answers.send((False, f"{type(exc).__name__}: {exc}".strip().splitlines()[0]))


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
