"""Running the registered metrics on one trained model.

:func:`make_context` builds an :class:`~aebench.metrics.context.EvalContext`
whose budgets are a profile's defaults; :func:`evaluate` runs every applicable
registered metric on a context. This is the evaluation framework; the metrics
themselves are plugins (the built-in ones are the other modules of
:mod:`aebench.metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from aebench.catalog import metric_specs, option_specs, resolve_metric_options, sampler_specs
from aebench.metrics.context import NOT_APPLICABLE, EvalContext
from aebench.progress import Stage

if TYPE_CHECKING:
    from aebench.datasets.base import ImageSet
    from aebench.models.base import AutoEncoder
    from aebench.specs import MetricSpec

__all__ = ["evaluate", "import_libraries", "make_context"]


def make_context(
    model: AutoEncoder,
    train: ImageSet,
    test: ImageSet,
    *,
    profile: str = "quick",
    **kwargs: Any,
) -> EvalContext:
    """A context whose metric options are ``profile``'s defaults, overridden by
    any metric option among ``kwargs`` (``fid_samples=0``, ``nll_k=16``); the
    other ``kwargs`` are fields (``device``, ``seed``, ``reference_train``;
    ``sampler_specs``, default every registered sampler)."""
    names = set(EvalContext.__dataclass_fields__)
    given = {k: v for k, v in kwargs.items() if k not in names}
    fields_ = {k: v for k, v in kwargs.items() if k in names}
    if fields_.get("sampler_specs") is None:
        fields_["sampler_specs"] = tuple(sampler_specs())
    return EvalContext(
        model, train, test, options=resolve_metric_options(profile, given), **fields_
    )


def import_libraries() -> None:
    """Import the libraries the built-in metrics use: torch-fidelity (with the
    torchvision models it loads) and scikit-learn's estimators, about 2 s on a
    2-core CPU. The local executor calls it before its first in-process cell (its
    worker pool preloads it), so that this cost is not counted in the first run's
    ``eval_seconds``."""
    import sklearn.linear_model
    import sklearn.mixture  # noqa: F401
    import torch_fidelity  # noqa: F401


def evaluate(ctx: EvalContext, metrics: Iterable[MetricSpec] | None = None) -> dict[str, Any]:
    """Run every applicable metric on ``ctx``; a flat JSON-serialisable dict.

    ``metrics``: the specs to run (default: every registered one). A metric
    that does not apply to the run writes ``None`` for its columns and lists
    them under ``"not_applicable"``; so does a column whose own ``applies_to``
    says no. A metric with ``on_error="record"`` that raises is stored as
    ``"<name>_error"``; one with ``on_error="fail"`` fails the evaluation. A key
    that another metric already wrote is stored as ``"<name>.<key>"`` (no
    silent overwrite). Adds ``eval_timings`` (seconds per metric) and
    ``eval_seconds``. Deterministic given ``ctx.seed``. A context without
    ``sampler_specs`` gets every registered sampler.
    """
    specs = metric_specs() if metrics is None else list(metrics)
    if ctx.sampler_specs is None:
        ctx.sampler_specs = tuple(sampler_specs())
    _check_budgets(ctx, specs)
    out: dict[str, Any] = {}
    not_applicable: list[str] = []
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for spec in specs:
        if spec.fn is None:
            continue
        if spec.applies_to is not None and not spec.applies_to(ctx):
            for col in spec.columns:
                out[col.key] = None
                not_applicable.append(col.key)
            continue
        t = time.perf_counter()
        if ctx.on_event is not None:
            ctx.on_event(Stage(f"evaluating: {spec.name}"))
        try:
            values = dict(spec.fn(ctx))
        except Exception as exc:
            if spec.on_error == "fail":
                raise
            out[f"{spec.name}_error"] = f"{type(exc).__name__}: {exc}"
            for col in spec.columns:
                out.setdefault(col.key, None)
            continue
        own = {c.key for c in spec.columns}
        for col in spec.columns:
            if col.applies_to is not None and not col.applies_to(ctx):
                values[col.key] = None
                not_applicable.append(col.key)
            values.setdefault(col.key, None)
        for key, value in values.items():
            target = key if key in own or key not in out else f"{spec.name}.{key}"
            out[target] = _jsonable(value)
        timings[spec.name] = round(time.perf_counter() - t, 4)
    out[NOT_APPLICABLE] = not_applicable
    out["eval_timings"] = timings
    out["eval_seconds"] = time.perf_counter() - started
    return out


def _check_budgets(ctx: EvalContext, specs: list[MetricSpec]) -> None:
    """Bad budget options fail before any metric runs."""
    for opt in option_specs(specs):
        value = ctx.options.get(opt.name)
        ctx.options[opt.name] = opt.default if value is None else opt.convert(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value
