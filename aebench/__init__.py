"""aebench: benchmark autoencoder families against each other.

Public API (mirrors the CLI)::

    import aebench
    aebench.list_models("vae")               # specs, fnmatch glob or family
    model = aebench.get_model("vae-cnn", input_shape=(1, 28, 28), latent_dim=8)
    aebench.list_datasets()
    train = aebench.get_dataset("digits", split="train")

Plugin authors import ``aebench.hookimpl`` and the spec classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aebench.hookspecs import hookimpl

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover  (names for type checkers; loaded lazily below)
    from aebench.api import (  # noqa: F401
        dataset_spec,
        get_dataset,
        get_model,
        list_datasets,
        list_models,
        load_splits,
        model_spec,
    )
    from aebench.datasets.base import ImageSet  # noqa: F401
    from aebench.models.base import AutoEncoder, Encoding, ModelConfig  # noqa: F401
    from aebench.specs import DatasetSpec, MetricSpec, ModelSpec  # noqa: F401

_LAZY = {
    "list_models": "aebench.api",
    "get_model": "aebench.api",
    "model_spec": "aebench.api",
    "list_datasets": "aebench.api",
    "get_dataset": "aebench.api",
    "dataset_spec": "aebench.api",
    "load_splits": "aebench.api",
    "ImageSet": "aebench.datasets.base",
    "AutoEncoder": "aebench.models.base",
    "Encoding": "aebench.models.base",
    "ModelConfig": "aebench.models.base",
    "ModelSpec": "aebench.specs",
    "DatasetSpec": "aebench.specs",
    "MetricSpec": "aebench.specs",
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    # Heavy modules (torch) load on first use, so `aebench --version` stays fast.
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aebench' has no attribute {name!r}")
