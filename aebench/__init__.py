"""aebench: benchmark autoencoder families against each other.

Public API (mirrors the CLI)::

    import aebench
    aebench.list_models("vae")               # specs, fnmatch glob or family
    model = aebench.create_model("beta-vae-cnn", (1, 28, 28), latent_dim=8, beta=2)
    aebench.list_datasets()
    train = aebench.get_dataset("digits", split="train")
    aebench.list_metrics()                   # what every run is measured with
    summary = aebench.run("vae,ae", "digits", profile="smoke", model_options={"latent_dim": [2, 8]})

Plugin authors import ``aebench.hookimpl`` and the spec classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aebench._version import __version__

if TYPE_CHECKING:  # pragma: no cover  (names for type checkers; loaded lazily below)
    from aebench.catalog import (  # noqa: F401
        create_model,
        dataset_spec,
        get_dataset,
        list_datasets,
        list_models,
        load_model,
        load_splits,
        model_spec,
    )
    from aebench.catalog import metric_specs as list_metrics  # noqa: F401
    from aebench.datasets.base import ImageSet  # noqa: F401
    from aebench.hookspecs import hookimpl  # noqa: F401
    from aebench.models.base import AutoEncoder, Encoding, ModelConfig, StepInfo  # noqa: F401
    from aebench.runner import run  # noqa: F401
    from aebench.specs import (  # noqa: F401
        DatasetOption,
        DatasetSpec,
        MetricColumn,
        MetricOption,
        MetricSpec,
        ModelSpec,
        SamplerSpec,
    )

# Lazy even for hookimpl (pluggy): the `aebench` command imports this package before
# its entry point can catch Ctrl-C, so the package itself imports nothing.
_LAZY = {
    "hookimpl": "aebench.hookspecs",
    "list_models": "aebench.catalog",
    "create_model": "aebench.catalog",
    "run": "aebench.runner",
    "model_spec": "aebench.catalog",
    "list_datasets": "aebench.catalog",
    "get_dataset": "aebench.catalog",
    "dataset_spec": "aebench.catalog",
    "load_splits": "aebench.catalog",
    "load_model": "aebench.catalog",
    "ImageSet": "aebench.datasets.base",
    "AutoEncoder": "aebench.models.base",
    "Encoding": "aebench.models.base",
    "ModelConfig": "aebench.models.base",
    "ModelSpec": "aebench.specs",
    "DatasetSpec": "aebench.specs",
    "MetricSpec": "aebench.specs",
    "MetricColumn": "aebench.specs",
    "MetricOption": "aebench.specs",
    "DatasetOption": "aebench.specs",
    "SamplerSpec": "aebench.specs",
    "StepInfo": "aebench.models.base",
}
_RENAMED = {"list_metrics": ("aebench.catalog", "metric_specs")}

__all__ = ["__version__", *_LAZY, *_RENAMED]


def __getattr__(name: str) -> Any:
    # Heavy modules (torch) load on first use, so `aebench --version` stays fast.
    if name in _LAZY or name in _RENAMED:
        import importlib

        module, attr = _RENAMED.get(name, (_LAZY.get(name, ""), name))
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aebench' has no attribute {name!r}")
