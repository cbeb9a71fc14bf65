"""Imported once by the worker-pool's fork server, so that every worker it forks
starts with torch, the metrics' libraries and the plugins already loaded."""

import torch  # noqa: F401

import aebench.execute  # noqa: F401
from aebench.metrics.evaluate import import_libraries
from aebench.plugins import get_plugins

import_libraries()
get_plugins()
