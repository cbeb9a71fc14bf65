"""Every registered metric, built-in or plugin, passes the metric conformance checks in
aebench.testing, and the checks catch broken metrics.

The metrics are evaluated on a VAE trained for a few steps on 200 digits images with
small budgets; FID's offline extractor comes from the session's classifier cache
(conftest's ``offline`` fixture), trained once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from aebench import testing
from aebench.catalog import get_dataset, metric_specs
from aebench.datasets.base import ImageSet
from aebench.metrics.context import EvalContext
from aebench.specs import MetricColumn, MetricOption, MetricSpec

pytestmark = pytest.mark.usefixtures("one_thread")


# -- every registered metric ---------------------------------------------------------
@pytest.mark.parametrize("name", testing.metric_names())
def test_conformance(name: str, offline) -> None:
    testing.check_metric(name)


@pytest.mark.parametrize("name", testing.metric_names())
def test_conformance_on_an_autoencoder(name: str, offline) -> None:
    """A plain AE has no prior, KL term or likelihood bound: some columns and metrics do
    not apply to it (the not-applicable paths of the same rules)."""
    testing.check_metric(name, model="ae-mlp")


def factored_digits() -> tuple[ImageSet, ImageSet]:
    """The first 300 digits train and 200 test images with two generative factors: the
    digit (discrete) and the mean ink (continuous)."""
    out = []
    for split, n in (("train", 300), ("test", 200)):
        ds = get_dataset("digits", split).subset(slice(0, n))
        ink = ds.images.float().mean(dim=(1, 2, 3))
        out.append(
            dataclasses.replace(
                ds,
                factors=torch.stack([ds.labels.float(), ink], dim=1),
                factor_names=("digit", "ink"),
                factor_kinds=("discrete", "continuous"),
            )
        )
    return out[0], out[1]


def _conditional_metrics() -> list[str]:
    """Metrics that declare when they apply (the disentanglement ones need factors)."""
    return [s.name for s in metric_specs() if s.fn is not None and s.applies_to is not None]


@pytest.mark.parametrize("name", _conditional_metrics())
def test_conformance_with_factors(name: str) -> None:
    """Metrics that declare when they apply, on data with factors, where the
    disentanglement metrics (which do not apply on digits) compute their columns."""
    case = testing.MetricCase(name, data=factored_digits())
    if not case.applies():
        pytest.skip(f"{name} applies to neither digits nor digits with factors")
    for run in testing.METRIC_CHECKS.values():
        run(case)


# -- the checks catch broken metrics ---------------------------------------------------
def _columns(*keys: str) -> tuple[MetricColumn, ...]:
    return tuple(MetricColumn(k, k.upper(), direction="min") for k in keys)


def _spec(fn: Any, keys: tuple[str, ...] = ("x", "y"), **kwargs: Any) -> MetricSpec:
    return MetricSpec("broken", fn, columns=_columns(*keys), **kwargs)


def _mean_pixel(ctx: EvalContext) -> float:
    return float(ctx.test.batch(slice(0, 8)).mean())


@pytest.mark.parametrize(
    ("fn", "rule"),
    [
        (
            lambda ctx: {"x": 1.0, "y": 2.0, "z": 3.0},
            r"key\(s\) \['z'\] it does not declare",
        ),
        (lambda ctx: {"x": 1.0}, "must return column 'y'"),
        (lambda ctx: {"x": 1.0, "y": None}, "column 'y' may be None only where"),
        (lambda ctx: {"x": float("nan"), "y": 2.0}, "column 'x' must be a finite number"),
        (lambda ctx: {"x": 1.0, "y": "two"}, "column 'y' must be a finite number"),
        (lambda ctx: [1.0, 2.0], "fn\\(ctx\\) must return a dict"),
        (lambda ctx: {"x": 1.0, "y": 1 / 0}, "fn\\(ctx\\) must not raise .*ZeroDivisionError"),
        (lambda ctx: {"x": 1.0, "y": float(torch.rand(()))}, "same seed must give the same"),
        (lambda ctx: {"x": 1.0, "y": 2.0, "n": {"a": torch.zeros(2)}}, "JSON-serialisable"),
    ],
    ids=["undeclared", "missing", "none", "nan", "text", "list", "raises", "random", "json"],
)
def test_check_metric_catches(fn: Any, rule: str) -> None:
    spec = _spec(fn, details=("n",))
    with pytest.raises(AssertionError, match=rf"^broken: .*{rule}"):
        testing.check_metric(spec)


def test_check_metric_catches_broken_declarations() -> None:
    ok = {"x": 1.0, "y": 2.0}
    cases = [
        (_spec(lambda ctx: ok, details=("x",)), "a column or a detail, not both"),
        (_spec(lambda ctx: ok, keys=("x", "test_mse")), "already declared by metric"),
        (
            _spec(lambda ctx: ok, options=(MetricOption("broken_n", int, "many"),)),
            "option 'broken_n' must convert its default 'many'",
        ),
        (
            _spec(
                lambda ctx: ok, options=(MetricOption("broken_n", int, 1, profiles={"quik": 2}),)
            ),
            r"unknown profile\(s\) \['quik'\]",
        ),
        (
            _spec(lambda ctx: ok, options=(MetricOption("fid_samples", int, 1),)),
            "option 'fid_samples' is already declared by metric 'fid'",
        ),
        (_spec(lambda ctx: ok, applies_to=lambda ctx: ctx.test.labels), "must return a bool"),
    ]
    for spec, rule in cases:
        with pytest.raises(AssertionError, match=rf"^broken: .*{rule}"):
            testing.check_metric(spec)


def test_integer_columns_hold_whole_numbers() -> None:
    cols = (MetricColumn("x", "X", integer=True),)
    with pytest.raises(AssertionError, match="integer column 'x' must be a whole number"):
        testing.check_metric(MetricSpec("broken", lambda ctx: {"x": 1.5}, columns=cols))


def test_a_conforming_metric_passes_with_its_options_and_not_applicable_columns() -> None:
    def fn(ctx: EvalContext) -> dict[str, Any]:
        return {"x": _mean_pixel(ctx) * ctx.option("broken_n"), "n": ctx.option("broken_n")}

    never = MetricColumn("y", "Y", applies_to=lambda ctx: False)
    spec = MetricSpec(
        "broken",
        fn,
        columns=(*_columns("x"), never),
        details=("n",),
        options=(MetricOption("broken_n", int, 3, profiles={"smoke": 2}, minimum=1),),
    )
    testing.check_metric(spec)
    testing.check_metric(spec, broken_n=5)
    case = testing.MetricCase(spec, broken_n=5)
    returned, stored = case.outcome
    assert returned is not None and returned["n"] == 5 and stored["y"] is None
    assert stored["not_applicable"] == ["y"]


def test_a_metric_that_does_not_apply_stores_none_and_is_not_called() -> None:
    def fn(ctx: EvalContext) -> dict[str, Any]:
        raise AssertionError("fn must not run where the metric does not apply")

    spec = _spec(fn, applies_to=lambda ctx: False)
    testing.check_metric(spec)
    returned, stored = testing.MetricCase(spec).outcome
    assert returned is None and stored["x"] is None and stored["not_applicable"] == ["x", "y"]


def test_declaration_only_metric_needs_no_evaluation() -> None:
    spec = MetricSpec("broken", None, columns=_columns("x"), details=("n",))
    testing.check_metric(spec)
    with pytest.raises(AssertionError, match="already declared by metric 'cost'"):
        testing.check_metric(MetricSpec("broken", None, columns=_columns("train_seconds")))


def test_unknown_names_are_key_errors() -> None:
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        testing.check_metric("nope")
    with pytest.raises(KeyError, match="unknown metric check 'nope'"):
        testing.run_metric_check("nope", "losses")
    with pytest.raises(KeyError, match="unknown metric check"):
        testing.check_metric("losses", skip=["nope"])
    assert testing.metric_check_names()[:2] == ["declaration", "options"]
    assert "losses" in testing.metric_names() and testing.metric_names("los*") == ["losses"]
