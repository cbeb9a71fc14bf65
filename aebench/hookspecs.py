"""The aebench hook specifications.

Every hook is documented here and in README.md ("Hook reference"); a test fails
when one is missing from the README. Plugins implement hooks with
``@aebench.hookimpl``; the built-in models and datasets use the very same hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("aebench")
hookimpl = pluggy.HookimplMarker("aebench")


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Register model specifications.

    Call ``register(spec)`` once per model, where ``spec`` is an
    :class:`aebench.ModelSpec` (name, family, arch, config class, factory).
    Names must be unique across all plugins; a duplicate is an error naming
    both plugins.
    """


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Register dataset specifications.

    Call ``register(spec)`` once per dataset, where ``spec`` is an
    :class:`aebench.DatasetSpec` (name, image shape, splits, classes, loader).
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add sub-commands to the ``aebench`` command line.

    ``cli`` is the :class:`typer.Typer` application; decorate functions with
    ``@cli.command()``.
    """


@hookspec
def register_metrics(register: Callable[..., None]) -> None:
    """Register extra evaluation metrics computed for every finished run.

    Call ``register(spec)`` with an :class:`aebench.MetricSpec`: a name, a
    function ``fn(context) -> dict[str, float]`` that receives an
    :class:`aebench.metrics.EvalContext` (trained model, test images, labels,
    device), and for each returned key its unit and whether lower is better.
    """


@hookspec
def register_samplers(register: Callable[..., None]) -> None:
    """Register samplers: where the latents of a model's generated samples come from.

    Call ``register(spec)`` with an :class:`aebench.specs.SamplerSpec`: a name, a
    ``fit(context)`` that runs once per evaluation after the model has trained and
    returns ``draw(n, generator) -> latents`` (decoded by ``model.decode``; None:
    the model's own ``sample``), ``applies(model)`` (by latent kind, prior) and
    the ``suffix`` of its metric keys (``fid_<name>``, ``kid_<name>``, ...). Every
    sample metric is computed once per sampler that applies to a run.
    """


def registering(hook: str, *specs: Any) -> Callable[[Callable[[Any], None]], None]:
    """An implementation of ``hook`` (``"register_metrics"``, ``"register_datasets"``,
    ``"register_models"``, ``"register_samplers"``) that registers ``specs``: a plugin
    module that only registers specs ends with
    ``register_metrics = registering("register_metrics", METRIC)`` (the metric, dataset
    and sampler contracts wrap it as ``hook(...)``)."""

    @hookimpl(specname=hook)
    def register_specs(register: Callable[[Any], None]) -> None:
        for spec in specs:
            register(spec)

    return register_specs
