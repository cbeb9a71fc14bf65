"""Imported once by the worker-pool's fork server, so that every worker it forks
starts with torch, the metrics' libraries and the plugins already loaded. The fork
server ends with the process that started it (``aebench run``), even when that one
is killed with SIGKILL; its workers end with it in turn."""

import sys

from aebench.executors import die_with_parent

if sys.argv[:1] == ["-c"] and "multiprocessing.forkserver" in sys.modules:  # the fork server
    die_with_parent()  # (a parent killed before this line leaves EOF on its pipe: it ends too)

import torch  # noqa: F401

import aebench.execute  # noqa: F401
from aebench.metrics.evaluate import import_libraries
from aebench.plugins import get_plugins

import_libraries()
get_plugins()
