"""Imported once by the worker-pool's fork server, so that every worker it forks
starts with torch, the metrics' libraries and the plugins already loaded."""

import sklearn.linear_model
import sklearn.mixture  # noqa: F401  (the AE's sampling density)
import torch  # noqa: F401
import torch_fidelity  # noqa: F401

import aebench.execute  # noqa: F401
from aebench.plugins import get_plugins

get_plugins()
