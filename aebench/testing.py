"""Conformance checks every model, dataset and metric must pass, built-in or third-party.

Plugin authors run the same suite the built-in models run (timm-style)::

    # tests/test_my_plugin.py
    import pytest
    from aebench import testing

    @pytest.mark.parametrize("name", testing.model_names("my-family"))
    @pytest.mark.parametrize("check", testing.check_names())
    def test_conformance(name, check):
        testing.run_check(check, name)

or all at once: ``testing.check_model("my-vae-cnn")`` (also accepts a
:class:`~aebench.specs.ModelSpec` that is not registered yet). Dataset plugins:
``testing.check_dataset("my-dataset")``. Metric plugins:
``testing.check_metric("my-metric")`` (or a :class:`~aebench.specs.MetricSpec`
not registered yet; one check: ``testing.run_metric_check(check, name)`` with
``testing.metric_check_names()``). A broken rule raises ``AssertionError`` naming
the model or metric and the rule, in one line, e.g.
``vae-cnn: loss_terms()['recon'] must have shape (B,) = (4,), got (4, 1)``.

Model checks follow what the model *declares* (see :mod:`aebench.models.base`),
never a particular family: nothing assumes a β-VAE, a KL term, one Adam or a
likelihood bound. A model that trains its own way (``configure_optimizers``,
``training_step``, ``objective``) is stepped through its own code
(:func:`aebench.train.train_step`, :func:`aebench.train.fit`), and a rule about a
declaration it does not make (a ``kl`` regulariser, a ``bound``, discrete codes,
``batch_columns``) does not apply to it. In the order :func:`check_model` runs
them (each function's docstring says more):

* ``declarations``: the class attributes have allowed values: ``latent_kind`` one
  of gaussian/deterministic/discrete, ``objective_group`` a known group or None,
  ``bound`` and ``samplers`` tuples of names,
  ``batch_columns`` keyed ``test_<name>`` and distinct, an objective label.
* ``meta_device``: the model builds under ``with torch.device("meta")``, as
  aebench builds every model when it plans a run (before anything trains): a
  constructor that reads a tensor's value (``.item()``, ``float(t)``, ``.tolist()``)
  fails here, in one line naming the cause, not in every ``aebench run``.
* ``shapes``: ``encode``/``decode``/``reconstruct`` and every term ``loss_terms``
  returns have the right shapes for each input shape of :data:`DEFAULT_SHAPES`;
  ``recon`` and the terms ``bound`` names are returned.
* ``loss_terms``: the per-image terms are ``(B,)`` and finite for every likelihood
  the config offers.
* ``objective``: ``objective(x, step)`` (and ``step=None``) is a finite,
  differentiable scalar with scalar logs; a model that keeps the default objective
  returns ``total`` and ``objective(x)[0] == loss_terms(x)["total"].mean()``.
* ``batch_independence``: the per-image evaluation terms do not depend on the
  evaluation batch: :func:`aebench.metrics._util.loss_metrics` on the same
  :data:`BATCH_CHECK_IMAGES` images in one batch and in batches of
  :data:`BATCH_CHECK_CHUNK`, in eval mode under one seed, gives the same means.
* ``batch_terms``: ``batch_terms(x)`` returns exactly the values ``batch_columns``
  declares (key ``test_<name>`` for a returned ``<name>``), as finite scalars,
  the same twice in eval mode under one seed.
* ``latents``: ``latent_kind`` agrees with ``encode``: gaussian, a log-variance of
  the mean's shape; deterministic, none; discrete, ``int64`` codes in
  ``[0, num_codes)`` with ``latents_from_codes(codes) == encode(x).mean``.
* ``log_prior``: ``log_prior(z)`` is ``(B,)`` and finite.
* ``gradients``: the objective sends finite gradients; with the default
  ``training_step``, a non-zero one to every trainable parameter.
* ``regulariser``: ``kl``: ``reg`` equals a Monte-Carlo estimate of
  KL(q(z|x) || p(z)) with p the model's own ``log_prior``; ``none``: ``reg``, if
  returned, is zero; any other regulariser has no generic rule.
* ``optimizers``: ``configure_optimizers(lr)`` returns a list of optimisers that
  together cover every trainable parameter.
* ``training_step``: :func:`aebench.train.train_step` returns a finite ``total``,
  and a few steps change every trainable parameter.
* ``training``: 100 steps on a real batch lower the logged ``total`` below 0.8x
  its first value.
* ``fit``: :func:`aebench.train.fit` (the loop of ``aebench run``, with
  ``on_train_start``, validation and the choice of the best epoch) trains it for
  2 epochs on 96 ``digits`` images.
* ``determinism``: the same seed gives identical weights, losses and trained weights.
* ``sampling``: after ``fit_prior``, ``sample(n)`` is ``(n, C, H, W)`` in [0, 1] and
  reproducible per generator.
* ``log_likelihood``: when not None, the IWAE-style bound grows with k and is at
  least minus the sum of the ``bound`` terms.
* ``state_dict``: a model loaded from ``state_dict()`` reconstructs and samples
  identically.

Everything runs on CPU in a few seconds per model: the real-data checks use
scikit-learn's bundled 8x8 ``digits``. A check a family cannot meet for a good
reason is left out with ``check_model(..., skip=[...])``.

Metric checks (``check_metric_*``, in :data:`METRIC_CHECKS`): ``declaration``,
``options`` (each option converts its own defaults), ``setup`` (its ``check`` and
``prepare`` steps), ``applies_to``, ``keys`` (``fn`` returns exactly its declared
columns and ``details``), ``values`` (finite numbers or None), ``not_applicable``,
``json``, ``determinism``. They evaluate the metric once on a VAE trained for a few
steps on 200 ``digits`` images with small budgets (:data:`METRIC_BUDGETS`), in a few
seconds per metric; FID's offline extractor is trained once per cache
(``$AEBENCH_CACHE_DIR``). A metric with ``fn=None`` gets the declaration checks only.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields, replace
from fnmatch import fnmatch
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import torch

from aebench.catalog import (
    create_model,
    get_dataset,
    list_models,
    metric_specs,
    model_spec,
    resolve_metric_options,
    sampler_specs,
)
from aebench.datasets.base import ImageSet

# Dataset plugins get the same treatment: `check_dataset("my-dataset")` raises
# AssertionError naming the broken rule (see aebench.datasets.conformance).
from aebench.datasets.conformance import RULES as DATASET_RULES
from aebench.datasets.conformance import check_dataset, offline_dataset_names
from aebench.files import write_json
from aebench.metrics._util import batch_term_metrics, eval_mode, loss_metrics, seeded
from aebench.metrics.context import NOT_APPLICABLE, EvalContext, MetricSetup
from aebench.metrics.evaluate import evaluate
from aebench.models.base import (
    LATENT_KINDS,
    OBJECTIVE_GROUPS,
    AutoEncoder,
    StepInfo,
    overrides,
)
from aebench.profiles import PROFILES
from aebench.specs import MetricColumn, MetricSpec, ModelSpec
from aebench.train import TrainSettings, fit, train_step

DEFAULT_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 28, 28),
    (3, 32, 32),
    (1, 8, 8),
    (1, 30, 30),
)
"""Input shapes the shape checks use: MNIST, CIFAR/SVHN, digits and a size not divisible by 4."""

DIGITS_SHAPE = (1, 8, 8)

BATCH_CHECK_IMAGES = 80
BATCH_CHECK_CHUNK = 16
"""The ``batch_independence`` check evaluates :data:`BATCH_CHECK_IMAGES` images in one
batch and in batches of :data:`BATCH_CHECK_CHUNK`. A multiple of 16: PyTorch's CPU
normal generator fills blocks of 16 values, so a model that draws its noise once per
batch (``torch.randn_like(mean)``) gets the same draw for every image either way and
the two evaluations agree to float precision. A model whose draws still differ (several
draws per batch) is compared over :data:`BATCH_CHECK_SEEDS` seeds instead, within the
Monte-Carlo error."""
BATCH_CHECK_SEEDS = 8


# -- helpers -----------------------------------------------------------------
def model_names(pattern: str | None = None) -> list[str]:
    """Names of registered models (all, or matching a glob/family): for ``parametrize``."""
    return [spec.name for spec in list_models(pattern)]


def _spec(spec_or_name: ModelSpec | str) -> ModelSpec:
    if isinstance(spec_or_name, ModelSpec):
        return spec_or_name
    return model_spec(spec_or_name)


def _input_shape(shape: Iterable[int]) -> tuple[int, int, int]:
    return cast("tuple[int, int, int]", tuple(int(s) for s in shape))


def _iwae(model: AutoEncoder, spec: ModelSpec, x: torch.Tensor, k: int) -> torch.Tensor:
    """``model.log_likelihood(x, k)``, which a model that gave one before must give."""
    value = model.log_likelihood(x, k=k)
    if value is None:
        raise AssertionError(f"{spec.name}: log_likelihood() gave None after giving a value")
    return value


def _require(ok: bool, spec: ModelSpec | MetricSpec, rule: str) -> None:
    if not ok:
        raise AssertionError(f"{spec.name}: {rule}")


def _cause(exc: BaseException) -> str:
    """``Type: first line of the message``: an exception in one line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def build(
    spec_or_name: ModelSpec | str,
    input_shape: tuple[int, int, int] = DIGITS_SHAPE,
    seed: int | None = 0,
    **config: Any,
) -> AutoEncoder:
    """Build a model from its spec with config overrides, seeding torch first if ``seed``."""
    spec = _spec(spec_or_name)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = create_model(spec, _input_shape(input_shape), **config)
    except TypeError as exc:  # the factory returned something other than an AutoEncoder
        raise AssertionError(f"{spec.name}: {exc}") from None
    _require(
        isinstance(model, AutoEncoder),
        spec,
        f"factory must return an aebench AutoEncoder, got {type(model).__name__}",
    )
    return model


def digits_batch(n: int = 64) -> torch.Tensor:
    """``n`` real images (1x8x8, in [0, 1]) from the bundled ``digits`` train split."""
    return get_dataset("digits", split="train").batch(slice(0, n))


def digits_set(n: int, split: str = "train", start: int = 0) -> ImageSet:
    """Images ``start`` to ``start + n`` of a ``digits`` split, as an :class:`ImageSet`."""
    return get_dataset("digits", split=split).subset(slice(start, start + n))


def train(
    model: AutoEncoder, x: torch.Tensor, steps: int, lr: float = 1e-3, seed: int = 0
) -> list[float]:
    """Train on ``x`` as ``aebench run`` does: the model's own optimisers
    (``configure_optimizers(lr)``), ``on_train_start``, then ``steps`` calls of
    :func:`aebench.train.train_step` (one epoch of ``steps`` steps). Returns the
    logged ``total`` of each step."""
    torch.manual_seed(seed)
    model.train()
    optimizers = list(model.configure_optimizers(lr))
    n = int(x.shape[0])
    model.on_train_start(n, x)
    losses = []
    for i in range(steps):
        logs = train_step(model, optimizers, x, StepInfo(i, 1, steps, 1, n))
        losses.append(float(logs["total"].float().mean()))
    return losses


def away_from_prior(
    model: AutoEncoder, x: torch.Tensor, target_nats: float = 5.0, max_steps: int = 100
) -> float:
    """Adam steps that *increase* ``reg`` on ``x`` until it averages ``target_nats``.

    A fresh encoder sits near the prior (KL ~ 0.01 nats), which makes checks on
    the KL or on the IWAE/ELBO gap too weak to fail; this moves the posterior
    away first. Returns the mean ``reg`` reached. Needs a ``reg`` term.
    """
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(max_steps):
        opt.zero_grad(set_to_none=True)
        reg = model.loss_terms(x)["reg"]
        if float(reg.detach().mean()) > target_nats:
            break
        (-reg.mean()).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float(model.loss_terms(x)["reg"].mean())


def _shape(t: Any) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def _required_terms(model: AutoEncoder) -> list[str]:
    """``recon`` and the terms the model's ``bound`` names, in order, once each."""
    return list(dict.fromkeys(("recon", *type(model).bound)))


def _why_required(key: str) -> str:
    return "it is required" if key == "recon" else "the model's bound names it"


def _scalar(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.numel() == 1


# -- the checks --------------------------------------------------------------
def check_declarations(spec_or_name: ModelSpec | str) -> None:
    """The declarations have allowed values: ``latent_kind`` one of
    :data:`~aebench.models.base.LATENT_KINDS`; ``objective_group`` None or one of
    :data:`~aebench.models.base.OBJECTIVE_GROUPS`; ``bound`` a tuple of term names;
    ``samplers`` None or a tuple of names; ``has_prior`` a bool; ``batch_columns``
    :class:`~aebench.specs.MetricColumn` s keyed ``test_<name>``, each once; a
    non-empty objective label (``objective_name`` or ``regulariser``)."""
    spec = _spec(spec_or_name)
    cls = type(build(spec, DIGITS_SHAPE))
    _require(
        cls.latent_kind in LATENT_KINDS,
        spec,
        f"latent_kind must be one of {', '.join(LATENT_KINDS)}, got {cls.latent_kind!r}",
    )
    _require(
        isinstance(cls.bound, tuple) and all(isinstance(k, str) and k for k in cls.bound),
        spec,
        f"bound must be a tuple of loss_terms() names (() for none), got {cls.bound!r}",
    )
    _require(
        cls.samplers is None
        or (isinstance(cls.samplers, tuple) and all(isinstance(s, str) for s in cls.samplers)),
        spec,
        f"samplers must be None or a tuple of sampler names, got {cls.samplers!r}",
    )
    _require(
        isinstance(cls.has_prior, bool),
        spec,
        f"has_prior must be a bool, got {cls.has_prior!r}",
    )
    _require(
        cls.objective_group is None or cls.objective_group in OBJECTIVE_GROUPS,
        spec,
        f"objective_group must be None or one of {', '.join(OBJECTIVE_GROUPS)}, "
        f"got {cls.objective_group!r}",
    )
    label = cls.objective_label()
    _require(
        isinstance(label, str) and bool(label),
        spec,
        f"objective_name (or regulariser) must name the objective it trains, got {label!r}",
    )
    keys: list[str] = []
    for col in cls.batch_columns:
        _require(
            isinstance(col, MetricColumn),
            spec,
            f"batch_columns must hold MetricColumns, got {type(col).__name__}",
        )
        _require(
            col.key.startswith("test_") and len(col.key) > len("test_"),
            spec,
            f"batch_columns key {col.key!r} must be 'test_<name>' for a value <name> "
            "that batch_terms() returns",
        )
        keys.append(col.key)
    twice = sorted({k for k in keys if keys.count(k) > 1})
    _require(not twice, spec, f"batch_columns must declare each key once; twice: {twice}")


def check_meta_device(
    spec_or_name: ModelSpec | str,
    input_shapes: Iterable[tuple[int, int, int]] = DEFAULT_SHAPES,
) -> None:
    """The model builds under ``with torch.device("meta")`` for every input shape.

    aebench builds every model of a run on PyTorch's meta device when it plans
    the run, before anything trains (shapes only, no memory, no values), so a
    constructor that reads a tensor's value (``.item()``, ``float(t)``,
    ``.tolist()``, numpy) cannot run. The failure is one line naming the cause.
    """
    spec = _spec(spec_or_name)
    for shape in input_shapes:
        shape = _input_shape(shape)
        size = "x".join(map(str, shape))
        try:
            with torch.device("meta"):
                create_model(spec, shape)
        except Exception as exc:
            try:  # a model that does not build on the CPU either: not the meta device
                create_model(spec, shape)
            except Exception as cpu_exc:
                raise AssertionError(
                    f"{spec.name}: cannot be built for {size} images: {_cause(cpu_exc)}"
                ) from None
            raise AssertionError(
                f"{spec.name}: cannot be built on PyTorch's meta device for {size} images "
                f"({_cause(exc)}); aebench builds every model there when it plans a run, so "
                "every `aebench run` with it would stop: do not read tensor values (.item(), "
                "float(t), .tolist()) in the constructor"
            ) from None


def check_shapes(
    spec_or_name: ModelSpec | str,
    input_shapes: Iterable[tuple[int, int, int]] = DEFAULT_SHAPES,
    batch: int = 3,
) -> None:
    """encode/decode/reconstruct and every term of loss_terms have the right shapes for
    every input shape; ``recon`` and the terms ``bound`` names are returned."""
    spec = _spec(spec_or_name)
    for shape in input_shapes:
        model = build(spec, shape)
        x = torch.rand(batch, *shape)
        where = f"for input (B, C, H, W) = {(batch, *shape)}"
        with torch.no_grad():
            enc = model.encode(x)
            _require(
                tuple(enc.mean.shape) == (batch, model.latent_dim),
                spec,
                f"encode(x).mean must have shape (B, latent_dim) = {(batch, model.latent_dim)} "
                f"{where}, got {_shape(enc.mean)}",
            )
            if enc.logvar is not None:
                _require(
                    enc.logvar.shape == enc.mean.shape,
                    spec,
                    f"encode(x).logvar must have the shape of mean {where}, "
                    f"got {_shape(enc.logvar)}",
                )
            for what, out in (
                ("decode_logits(z)", model.decode_logits(enc.mean)),
                ("decode(z)", model.decode(enc.mean)),
                ("reconstruct(x)", model.reconstruct(x)),
            ):
                _require(
                    tuple(out.shape) == tuple(x.shape),
                    spec,
                    f"{what} must have shape {tuple(x.shape)} {where}, got {_shape(out)}",
                )
            rec = model.reconstruct(x)
            _require(
                bool(((rec >= 0) & (rec <= 1)).all()),
                spec,
                f"reconstruct(x) must lie in [0, 1] {where}",
            )
            terms = model.loss_terms(x)
            _require(isinstance(terms, dict), spec, "loss_terms() must return a dict")
            for key in _required_terms(model):
                _require(
                    key in terms,
                    spec,
                    f"loss_terms() must return {key!r} ({_why_required(key)}) {where}, "
                    f"got {sorted(terms)}",
                )
            for key, value in terms.items():
                _require(
                    isinstance(value, torch.Tensor) and tuple(value.shape) == (batch,),
                    spec,
                    f"loss_terms()[{key!r}] must have shape (B,) = ({batch},) {where}, "
                    f"got {_shape(value)}",
                )


def check_loss_terms(spec_or_name: ModelSpec | str, batch: int = 4) -> None:
    """loss_terms returns ``recon`` and the ``bound`` terms, and every term it returns
    is ``(B,)`` and finite, for every likelihood the config offers."""
    spec = _spec(spec_or_name)
    names = {f.name for f in fields(spec.config_cls)}
    likelihoods = ("bernoulli", "gaussian") if "likelihood" in names else (None,)
    x = digits_batch(batch)
    for likelihood in likelihoods:
        cfg: dict[str, Any] = {} if likelihood is None else {"likelihood": likelihood}
        model = build(spec, DIGITS_SHAPE, **cfg)
        terms = model.loss_terms(x)
        _require(isinstance(terms, dict), spec, "loss_terms() must return a dict")
        for key in _required_terms(model):
            _require(
                key in terms,
                spec,
                f"loss_terms() must return {key!r} ({_why_required(key)}), got {sorted(terms)}",
            )
        for key, t in terms.items():
            _require(
                isinstance(t, torch.Tensor) and tuple(t.shape) == (batch,),
                spec,
                f"loss_terms()[{key!r}] must have shape (B,) = ({batch},), got {_shape(t)}",
            )
            _require(
                bool(torch.isfinite(t).all()),
                spec,
                f"loss_terms()[{key!r}] must be finite (likelihood={likelihood}), got {t.tolist()}",
            )


def check_objective(spec_or_name: ModelSpec | str, batch: int = 8) -> None:
    """``objective(x, step)`` (during training) and ``objective(x, None)`` (its final
    form) return a finite scalar that back-propagates and a dict of scalars to log.

    A model that keeps the default ``objective`` (the batch mean of the per-image
    ``total``) must return ``total`` from ``loss_terms``, and under one seed
    ``objective(x)[0] == loss_terms(x)["total"].mean()``.
    """
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    model.train()
    x = digits_batch(batch)
    default = not overrides(model, "objective")
    if default:
        _require(
            "total" in model.loss_terms(x),
            spec,
            "keeps the default objective(), loss_terms(x)['total'].mean(), so loss_terms() "
            "must return 'total' (or the model overrides objective())",
        )
    for step in (StepInfo(0, 1, 10, 1, batch), None):
        which = "a StepInfo" if step is not None else "None"
        try:
            out = model.objective(x, step)
        except Exception as exc:
            raise AssertionError(
                f"{spec.name}: objective(x, step={which}) must not raise: {_cause(exc)}"
            ) from exc
        _require(
            isinstance(out, tuple) and len(out) == 2,
            spec,
            f"objective(x, step) must return (a scalar tensor, a dict of scalars to log), "
            f"got {type(out).__name__}",
        )
        loss, logs = out
        _require(
            isinstance(loss, torch.Tensor) and loss.dim() == 0,
            spec,
            f"objective(x, step={which})[0] must be a scalar tensor (shape ()), got {_shape(loss)}",
        )
        _require(
            bool(torch.isfinite(loss)),
            spec,
            f"objective(x, step={which}) must be finite, got {float(loss.detach())}",
        )
        _require(
            loss.requires_grad,
            spec,
            f"objective(x, step={which})[0] must be differentiable (requires_grad)",
        )
        _require(isinstance(logs, Mapping), spec, "objective(x, step)[1] must be a dict")
        for key, value in logs.items():
            _require(
                _scalar(value),
                spec,
                f"objective() logs {key!r} must be a scalar tensor, got {_shape(value)}",
            )
    if default:
        with torch.no_grad():
            torch.manual_seed(1)
            loss = model.objective(x, None)[0]
            torch.manual_seed(1)
            mean = model.loss_terms(x)["total"].mean()
        _require(
            torch.allclose(loss, mean, rtol=1e-5, atol=1e-5),
            spec,
            "with the default objective(), objective(x)[0] must equal "
            f"loss_terms(x)['total'].mean() under one seed: {float(loss)} vs {float(mean)}",
        )


def check_batch_independence(
    spec_or_name: ModelSpec | str,
    images: int = BATCH_CHECK_IMAGES,
    chunk: int = BATCH_CHECK_CHUNK,
    seeds: int = BATCH_CHECK_SEEDS,
) -> None:
    """The per-image evaluation terms do not depend on the evaluation batch size.

    :func:`aebench.metrics._util.loss_metrics` (what ``aebench run`` reports as
    ``test_recon``, ``test_reg``, ``test_total``, ``test_bpd``) on the same ``images``
    ``digits`` images, in eval mode under one seed, in one batch and in batches of
    ``chunk``, must give the same means (to float precision). Each image's terms
    may depend on that image alone: a batch-level quantity (MMD, total correlation)
    belongs in ``batch_terms`` (declared in ``batch_columns``), the training loss in
    ``objective``.

    When the two differ, the model's evaluation may simply be random with draws that
    fall differently in other batch sizes; then (only if two seeds give different
    values) the mean difference over ``seeds`` seeds must be within 4 standard
    errors of zero.
    """
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    data = digits_set(images)

    def measure(batch_size: int, seed: int) -> dict[str, float]:
        try:
            return loss_metrics(model, data, batch_size=batch_size, seed=seed)
        except Exception as exc:
            raise AssertionError(
                f"{spec.name}: loss_metrics() (aebench's evaluation of loss_terms) must run "
                f"in batches of {batch_size}: {_cause(exc)}"
            ) from exc

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-4 * max(1.0, abs(a), abs(b))

    whole, parts = measure(images, 0), measure(chunk, 0)
    _require(
        set(whole) == set(parts),
        spec,
        f"loss_terms() must return the same terms at every batch size: {sorted(whole)} in a "
        f"batch of {images}, {sorted(parts)} in batches of {chunk}",
    )
    differ = [k for k in whole if not close(whole[k], parts[k])]
    if not differ:
        return
    again = measure(images, 1)
    random = any(not close(whole[k], again[k]) for k in whole)
    if random:
        diffs: dict[str, list[float]] = {k: [] for k in differ}
        for seed in range(seeds):
            a, b = measure(images, seed), measure(chunk, seed)
            for k in differ:
                diffs[k].append(a[k] - b[k])
        differ = []
        for k, d in diffs.items():
            t = torch.tensor(d, dtype=torch.float64)
            se = float(t.std()) / math.sqrt(seeds)
            if abs(float(t.mean())) > 4 * se + 1e-4 * max(1.0, abs(whole[k])):
                differ.append(k)
        if not differ:
            return
    key = next((k for k in differ if k not in ("total", "bpd")), differ[0])  # a cause
    how = (
        "in eval mode under one seed"
        if not random
        else f"on average over {seeds} seeds, beyond the Monte-Carlo error"
    )
    raise AssertionError(
        f"{spec.name}: per-image evaluation terms must not depend on the evaluation batch "
        f"size: loss_metrics() over the same {images} images gives {key!r} = "
        f"{whole[key]:.6g} in one batch of {images} but {parts[key]:.6g} in batches of "
        f"{chunk} ({how}; terms that differ: {', '.join(differ)}); each image's terms may "
        "use that image alone (report a "
        "batch-level quantity from batch_terms(), declared in batch_columns, and train on "
        "it in objective())"
    )


def check_batch_terms(spec_or_name: ModelSpec | str, batch: int = 32) -> None:
    """``batch_terms(x)`` returns exactly the values ``batch_columns`` declares (key
    ``test_<name>`` for each returned ``<name>``), each a finite scalar, and
    :func:`~aebench.metrics._util.batch_term_metrics` gives the same values twice
    under one seed (in eval mode its random draws must come from the seeded global
    RNG or a fixed seed)."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    declared = sorted(c.key for c in type(model).batch_columns)
    data = digits_set(2 * batch)
    with torch.no_grad(), eval_mode(model), seeded(0):
        out = model.batch_terms(data.batch(slice(0, batch)))
    _require(
        isinstance(out, Mapping),
        spec,
        f"batch_terms() must return a dict, got {type(out).__name__}",
    )
    columns = sorted(f"test_{k}" for k in out)
    _require(
        columns == declared,
        spec,
        f"batch_terms() must return exactly what batch_columns declares (key test_<name> "
        f"for a returned <name>): it returned {sorted(out)}, columns {columns}; "
        f"batch_columns declare {declared}",
    )
    for key, value in out.items():
        _require(
            _scalar(value),
            spec,
            f"batch_terms()[{key!r}] must be a scalar tensor, got {_shape(value)}",
        )
        _require(
            bool(torch.isfinite(value).all()),
            spec,
            f"batch_terms()[{key!r}] must be finite, got {float(value)}",
        )
    if not declared:
        return
    first, _ = batch_term_metrics(model, data, batch_size=batch, seed=0)
    second, _ = batch_term_metrics(model, data, batch_size=batch, seed=0)
    _require(
        first == second,
        spec,
        f"batch_terms() must give the same values twice in eval mode under one seed: "
        f"{first} vs {second}",
    )


def check_latents(spec_or_name: ModelSpec | str, batch: int = 6) -> None:
    """``latent_kind`` agrees with ``encode``: ``gaussian``, a finite log-variance of the
    mean's shape; ``deterministic``, none; ``discrete``, ``int64`` codes ``(B, P)`` in
    ``[0, num_codes)`` that ``latents_from_codes`` turns into ``encode(x).mean``. Only
    a discrete model returns codes."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE).eval()
    kind = type(model).latent_kind
    x = digits_batch(batch)
    with torch.no_grad():
        enc = model.encode(x)
    if kind == "gaussian":
        _require(
            enc.logvar is not None,
            spec,
            "latent_kind 'gaussian' needs encode(x).logvar (the log-variances of q(z|x)); "
            "a model without them is 'deterministic'",
        )
        assert enc.logvar is not None
        _require(
            enc.logvar.shape == enc.mean.shape,
            spec,
            f"encode(x).logvar must have the shape of mean {_shape(enc.mean)}, "
            f"got {_shape(enc.logvar)}",
        )
        _require(bool(torch.isfinite(enc.logvar).all()), spec, "encode(x).logvar must be finite")
    elif kind == "deterministic":
        _require(
            enc.logvar is None,
            spec,
            "latent_kind 'deterministic' must not return encode(x).logvar; a model with "
            "log-variances is 'gaussian'",
        )
    if kind != "discrete":
        _require(
            enc.codes is None,
            spec,
            f"encode(x).codes is for latent_kind 'discrete'; this model declares {kind!r}",
        )
        return
    codes = enc.codes
    _require(
        isinstance(codes, torch.Tensor),
        spec,
        "latent_kind 'discrete' needs encode(x).codes (the code indices, (B, P))",
    )
    assert codes is not None
    _require(
        codes.dtype == torch.long and codes.dim() == 2 and codes.shape[0] == batch,
        spec,
        f"encode(x).codes must be int64 of shape (B, P) with B = {batch}, got "
        f"{codes.dtype} {_shape(codes)}",
    )
    try:
        k = model.num_codes
    except Exception as exc:
        raise AssertionError(
            f"{spec.name}: latent_kind 'discrete' needs num_codes (the codebook size): "
            f"{_cause(exc)}"
        ) from None
    _require(
        isinstance(k, int) and k >= 1,
        spec,
        f"num_codes must be a positive int, got {k!r}",
    )
    _require(
        bool(((codes >= 0) & (codes < k)).all()),
        spec,
        f"encode(x).codes must lie in [0, num_codes) = [0, {k}), got "
        f"{int(codes.min())}..{int(codes.max())}",
    )
    with torch.no_grad():
        try:
            latents = model.latents_from_codes(codes)
        except Exception as exc:
            raise AssertionError(
                f"{spec.name}: latent_kind 'discrete' needs latents_from_codes(codes): "
                f"{_cause(exc)}"
            ) from None
    _require(
        isinstance(latents, torch.Tensor) and latents.shape == enc.mean.shape,
        spec,
        f"latents_from_codes(codes) must have the shape of encode(x).mean "
        f"{_shape(enc.mean)}, got {_shape(latents)}",
    )
    _require(
        torch.allclose(latents, enc.mean, rtol=1e-5, atol=1e-5),
        spec,
        "latents_from_codes(encode(x).codes) must equal encode(x).mean (the quantised "
        f"vectors the decoder reads); largest difference "
        f"{float((latents - enc.mean).abs().max()):.4g}",
    )


def check_log_prior(spec_or_name: ModelSpec | str, batch: int = 6) -> None:
    """``log_prior(z)`` is ``(B,)`` and finite for the latent means of real images and,
    for a continuous latent, for N(0, I) draws."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE).eval()
    with torch.no_grad():
        z = model.encode(digits_batch(batch)).mean
        cases = [("the latent means of real images", z)]
        if type(model).latent_kind != "discrete":
            draws = torch.randn(batch, z.shape[1], generator=torch.Generator().manual_seed(0))
            cases.append(("N(0, I) draws", draws.to(z.dtype)))
        for what, latents in cases:
            lp = model.log_prior(latents)
            _require(
                isinstance(lp, torch.Tensor) and tuple(lp.shape) == (batch,),
                spec,
                f"log_prior(z) must have shape (B,) = ({batch},) for {what}, got {_shape(lp)}",
            )
            _require(
                bool(torch.isfinite(lp).all()),
                spec,
                f"log_prior(z) must be finite for {what}, got {lp.tolist()}",
            )


def check_gradients(spec_or_name: ModelSpec | str, batch: int = 8) -> None:
    """The objective sends finite gradients; with the default ``training_step`` (one
    optimiser step on the objective), a non-zero one to every trainable parameter. (A
    model with its own ``training_step`` may train parts of itself on other losses:
    ``training_step`` checks that every parameter moves.)"""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    model.train()
    model.zero_grad(set_to_none=True)
    model.objective(digits_batch(batch), None)[0].backward()
    every = not overrides(model, "training_step")
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        grad = p.grad
        if grad is None:
            if every:
                raise AssertionError(f"{spec.name}: no gradient reaches parameter {pname!r}")
            continue
        _require(bool(torch.isfinite(grad).all()), spec, f"gradient of {pname!r} is not finite")
        _require(
            not every or bool(grad.abs().sum() > 0), spec, f"gradient of {pname!r} is all zero"
        )


def check_regulariser(
    spec_or_name: ModelSpec | str, samples: int = 4000, target_nats: float = 5.0
) -> None:
    """``kl``: ``reg`` equals a Monte-Carlo estimate of KL(q(z|x) || p(z)), with q the
    diagonal Gaussian ``encode`` returns and p the model's own ``log_prior``; ``none``:
    ``reg``, if returned, is exactly zero. Other regularisers have no generic rule.

    A freshly initialised encoder sits close to the prior (KL ~ 0.01 nats), which
    would make the comparison toothless, so the model is first pushed away from
    the prior by a few Adam steps that *increase* ``reg`` until it averages a
    few nats. The analytic ``reg`` is then compared per image with ``samples``
    draws of log q(z|x) - log p(z).
    """
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    x = digits_batch(16)
    kind = type(model).regulariser
    if kind == "none":
        with torch.no_grad():
            terms = model.loss_terms(x)
        if "reg" in terms:
            reg = terms["reg"]
            _require(bool((reg == 0).all()), spec, f"regulariser 'none' needs reg == 0, got {reg}")
        return
    if kind != "kl":
        return  # other regularisers have no generic check
    with torch.no_grad():
        _require(
            "reg" in model.loss_terms(x),
            spec,
            "regulariser 'kl' names the per-image term 'reg' (the KL): loss_terms() must return it",
        )
    away_from_prior(model, x, target_nats)
    with torch.no_grad():
        enc = model.encode(x)
        mean, logvar = enc.mean, enc.logvar
        if logvar is None:
            raise AssertionError(f"{spec.name}: a 'kl' model's encode() must return logvar")
        analytic = model.loss_terms(x)["reg"]
        gen = torch.Generator().manual_seed(0)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn((samples, *mean.shape), generator=gen, dtype=mean.dtype)
        z = mean + std * eps
        # log q(z|x) - log p(z), per draw and image
        log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_p = model.log_prior(z.reshape(-1, mean.shape[1])).reshape(samples, -1)
        log_ratio = (log_q - log_p).double()
        mc = log_ratio.mean(0)
        se = log_ratio.std(0) / math.sqrt(samples)
        analytic = analytic.double()
    _require(
        float(analytic.mean()) > 1.0,
        spec,
        "reg must grow when trained to grow (the KL check moves the posterior away from "
        f"the prior); it stayed at {float(analytic.mean()):.3f} nats",
    )
    tol = 5 * se + 1e-3 * (1 + mc.abs())
    bad = ((analytic - mc).abs() > tol).nonzero().flatten()
    _require(
        len(bad) == 0,
        spec,
        "analytic KL (loss_terms()['reg']) must match a Monte-Carlo estimate of "
        "KL(q(z|x) || p(z)), p the model's log_prior; image "
        + (
            f"{int(bad[0])}: analytic {float(analytic[bad[0]]):.4f} vs MC "
            f"{float(mc[bad[0]]):.4f} ± {float(se[bad[0]]):.4f}"
            if len(bad)
            else ""
        ),
    )


def check_optimizers(spec_or_name: ModelSpec | str, lr: float = 1e-3) -> None:
    """``configure_optimizers(lr)`` returns a non-empty list (or tuple) of
    :class:`torch.optim.Optimizer` that together cover every trainable parameter."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    opts = model.configure_optimizers(lr)
    _require(
        isinstance(opts, Sequence)
        and len(opts) > 0
        and all(isinstance(o, torch.optim.Optimizer) for o in opts),
        spec,
        "configure_optimizers(lr) must return a non-empty list of torch.optim.Optimizer, "
        f"got {opts!r}"[:300],
    )
    covered = {id(p) for o in opts for group in o.param_groups for p in group["params"]}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    _require(
        not missing,
        spec,
        f"configure_optimizers() must cover every trainable parameter; no optimiser has "
        f"{missing[:5]}{more} (freeze one with requires_grad_(False))",
    )


def check_training_step(spec_or_name: ModelSpec | str, steps: int = 4, batch: int = 32) -> None:
    """:func:`aebench.train.train_step` (the model's ``training_step`` with its own
    optimisers, after ``on_train_start``) returns a finite scalar ``total`` at every
    step, and ``steps`` steps change every trainable parameter."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    x = digits_batch(batch)
    torch.manual_seed(0)
    model.train()
    optimizers = list(model.configure_optimizers(1e-3))
    model.on_train_start(batch, x)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for i in range(steps):
        try:
            logs = train_step(model, optimizers, x, StepInfo(i, 1, steps, 1, batch))
        except TypeError as exc:  # no "total"
            raise AssertionError(f"{spec.name}: {exc}") from exc
        _require(isinstance(logs, Mapping), spec, "training_step() must return a dict")
        total = logs["total"]
        _require(
            _scalar(total),
            spec,
            f"training_step() must log 'total' as a scalar tensor, got {_shape(total)}",
        )
        _require(
            bool(torch.isfinite(total).all()),
            spec,
            f"training_step() logged a non-finite total {float(total)} at step {i}",
        )
    params = dict(model.named_parameters())
    still = [n for n, old in before.items() if torch.equal(params[n].detach(), old)]
    more = f" and {len(still) - 5} more" if len(still) > 5 else ""
    _require(
        not still,
        spec,
        f"{steps} training_step() calls must change every trainable parameter; unchanged: "
        f"{still[:5]}{more} (does every optimiser step? does a loss reach them?)",
    )


def check_training(
    spec_or_name: ModelSpec | str, steps: int = 100, batch: int = 64, factor: float = 0.8
) -> None:
    """``steps`` training steps (:func:`train`) on a real digits batch bring the logged
    ``total`` below ``factor`` x its first value."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    losses = train(model, digits_batch(batch), steps=steps)
    first, last = losses[0], sum(losses[-10:]) / len(losses[-10:])
    _require(
        all(math.isfinite(v) for v in losses),
        spec,
        "training produced a non-finite loss",
    )
    _require(
        last < factor * first,
        spec,
        f"{steps} training steps must lower the loss below {factor}x initial: "
        f"{first:.2f} -> {last:.2f}",
    )


def check_fit(
    spec_or_name: ModelSpec | str, epochs: int = 2, images: int = 96, batch: int = 32
) -> None:
    """:func:`aebench.train.fit`, the loop of ``aebench run`` (``on_train_start``, the
    model's optimisers and ``training_step``, validation through ``loss_metrics`` or
    the objective, the best epoch's weights), trains it for ``epochs`` epochs on
    ``images`` digits images and records a finite validation loss every epoch."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    train_set, val = digits_set(images), digits_set(batch, split="test")
    settings = TrainSettings(
        epochs=epochs, batch_size=batch, seed=0, metric_images=batch, snapshot_images=4
    )
    try:
        result = fit(model, train_set, val, settings)
    except Exception as exc:
        raise AssertionError(
            f"{spec.name}: aebench.train.fit() (the training loop of `aebench run`) must "
            f"train it for {epochs} epochs on {images} digits images: {_cause(exc)}"
        ) from exc
    _require(
        len(result.history) == epochs,
        spec,
        f"fit() must record {epochs} epochs, got {len(result.history)}",
    )
    for row in result.history:
        for key in ("val_total", "val_recon"):
            _require(
                key in row and math.isfinite(row[key]),
                spec,
                f"fit() must record a finite {key} every epoch, got {row.get(key, '<missing>')}",
            )


def check_determinism(spec_or_name: ModelSpec | str, steps: int = 5) -> None:
    """Same seed -> identical initial weights, identical losses and weights after training."""
    spec = _spec(spec_or_name)
    x = digits_batch(32)
    runs = []
    for _ in range(2):
        model = build(spec, DIGITS_SHAPE, seed=123)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        losses = train(model, x, steps=steps, seed=7)
        runs.append((init, losses, model.state_dict()))
    (init_a, loss_a, end_a), (init_b, loss_b, end_b) = runs
    for key in init_a:
        _require(
            torch.equal(init_a[key], init_b[key]),
            spec,
            f"same seed must give identical initial weights; {key!r} differs",
        )
    _require(loss_a == loss_b, spec, f"same seed must give identical losses: {loss_a} vs {loss_b}")
    for key in end_a:
        _require(
            torch.equal(end_a[key], end_b[key]),
            spec,
            f"same seed must give identical weights after training; {key!r} differs",
        )


def _fit_prior(model: AutoEncoder, n: int = 200) -> None:
    with torch.no_grad():
        latents = model.encode(digits_batch(n)).mean
    model.fit_prior(latents)


def check_sampling(spec_or_name: ModelSpec | str, n: int = 7) -> None:
    """After ``fit_prior``, ``sample(n)`` is (n, C, H, W) in [0, 1], reproducible per generator."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    train(model, digits_batch(64), steps=10)
    model.eval()
    _fit_prior(model)
    _require(
        isinstance(model.prior_description, str) and bool(model.prior_description),
        spec,
        "prior_description must be a non-empty string",
    )
    a = model.sample(n, generator=torch.Generator().manual_seed(3))
    _require(
        tuple(a.shape) == (n, *model.input_shape),
        spec,
        f"sample({n}) must have shape {(n, *model.input_shape)}, got {_shape(a)}",
    )
    _require(bool(torch.isfinite(a).all()), spec, "sample() must be finite")
    _require(bool(((a >= 0) & (a <= 1)).all()), spec, "sample() must lie in [0, 1]")
    b = model.sample(n, generator=torch.Generator().manual_seed(3))
    _require(torch.equal(a, b), spec, "sample() with equally seeded generators must be identical")
    c = model.sample(n, generator=torch.Generator().manual_seed(4))
    _require(not torch.equal(a, c), spec, "sample() must depend on the generator")


def check_log_likelihood(
    spec_or_name: ModelSpec | str, k: int = 64, repeats: int = 8, batch: int = 32
) -> None:
    """If not None: IWAE(k) > IWAE(1) by > 3 standard errors and, for a model with a
    ``bound``, IWAE(k) >= minus the sum of its bound terms (the ELBO of a VAE).

    Both are compared on batch means averaged over ``repeats`` evaluations. A model
    with a ``reg`` term is first moved away from its prior (:func:`away_from_prior`),
    so that the gap the bound must show is several nats, far above the Monte-Carlo
    noise.
    """
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    x = digits_batch(batch)
    with torch.no_grad():
        probe = model.log_likelihood(x[:2], k=2)
    if probe is None:
        return
    _require(
        tuple(probe.shape) == (2,),
        spec,
        f"log_likelihood(x, k) must have shape (B,) = (2,), got {_shape(probe)}",
    )
    bound = type(model).bound
    with torch.no_grad():
        has_reg = "reg" in model.loss_terms(x[:2])
    if has_reg:
        away_from_prior(model, x)
    model.eval()
    torch.manual_seed(5)
    with torch.no_grad():
        elbos, iw1, iwk = [], [], []
        for _ in range(repeats):
            if bound:
                t = model.loss_terms(x)
                elbos.append(-float(torch.stack([t[key] for key in bound]).sum(0).mean()))
            iw1.append(float(_iwae(model, spec, x, 1).mean()))
            iwk.append(float(_iwae(model, spec, x, k).mean()))
    l1, lk = sum(iw1) / repeats, sum(iwk) / repeats
    # standard error of the difference of the two IWAE means
    se = math.sqrt((torch.tensor(iw1).var().item() + torch.tensor(iwk).var().item()) / repeats)
    _require(
        all(math.isfinite(v) for v in (l1, lk)),
        spec,
        "log_likelihood() must be finite",
    )
    if bound:
        elbo = sum(elbos) / repeats
        _require(
            lk >= elbo,
            spec,
            f"IWAE bound with k={k} must be >= minus the sum of the bound terms "
            f"{' + '.join(bound)} (batch mean): {lk:.3f} < {elbo:.3f}",
        )
    _require(
        lk - l1 > 3 * se,
        spec,
        f"IWAE bound must grow with k (batch mean over {repeats} repeats): "
        f"k=1 {l1:.3f}, k={k} {lk:.3f} (standard error {se:.3f})",
    )


def check_state_dict(spec_or_name: ModelSpec | str) -> None:
    """``state_dict`` round-trips into a fresh model: same reconstructions and samples."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE, seed=0)
    train(model, digits_batch(64), steps=5)
    model.eval()
    _fit_prior(model)
    state = copy.deepcopy(model.state_dict())
    fresh = build(spec, DIGITS_SHAPE, seed=99)
    fresh.load_state_dict(state)
    fresh.eval()
    x = digits_batch(8)
    with torch.no_grad():
        _require(
            torch.equal(model.reconstruct(x), fresh.reconstruct(x)),
            spec,
            "a model loaded from state_dict() must reconstruct identically",
        )
        a = model.sample(4, generator=torch.Generator().manual_seed(0))
        b = fresh.sample(4, generator=torch.Generator().manual_seed(0))
    _require(
        torch.equal(a, b),
        spec,
        "a model loaded from state_dict() must sample identically (is the fitted prior "
        "stored in buffers?)",
    )


CHECKS: dict[str, Callable[..., None]] = {
    "declarations": check_declarations,
    "meta_device": check_meta_device,
    "shapes": check_shapes,
    "loss_terms": check_loss_terms,
    "objective": check_objective,
    "batch_independence": check_batch_independence,
    "batch_terms": check_batch_terms,
    "latents": check_latents,
    "log_prior": check_log_prior,
    "gradients": check_gradients,
    "regulariser": check_regulariser,
    "optimizers": check_optimizers,
    "training_step": check_training_step,
    "training": check_training,
    "fit": check_fit,
    "determinism": check_determinism,
    "sampling": check_sampling,
    "log_likelihood": check_log_likelihood,
    "state_dict": check_state_dict,
}
"""Every check by name, in the order :func:`check_model` runs them."""

_SHAPED = ("shapes", "meta_device")
"""Checks that take ``input_shapes``."""


def check_names() -> list[str]:
    """Names of all checks: for ``pytest.mark.parametrize``."""
    return list(CHECKS)


def run_check(name: str, spec_or_name: ModelSpec | str, **kwargs: Any) -> None:
    """Run one named check on one model."""
    try:
        check = CHECKS[name]
    except KeyError:
        raise KeyError(f"unknown check {name!r}; checks: {', '.join(CHECKS)}") from None
    check(spec_or_name, **kwargs)


def check_model(
    spec_or_name: ModelSpec | str,
    input_shapes: Iterable[tuple[int, int, int]] = DEFAULT_SHAPES,
    skip: Iterable[str] = (),
) -> None:
    """Run every check (except ``skip``) on one model; the first broken rule raises."""
    skipped = set(skip)
    unknown = skipped - set(CHECKS)
    if unknown:
        raise KeyError(f"unknown check(s) to skip: {', '.join(sorted(unknown))}")
    shapes = list(input_shapes)
    for name, check in CHECKS.items():
        if name in skipped:
            continue
        if name in _SHAPED:
            check(spec_or_name, shapes)
        else:
            check(spec_or_name)


# -- metrics -----------------------------------------------------------------
METRIC_MODEL = "vae-mlp"
"""The model :func:`check_metric` evaluates by default: a VAE, so that the columns of
models with a prior, a KL term and a likelihood bound all apply."""
METRIC_DATASET = "digits"
METRIC_IMAGES = 200
"""Images of each split (the first ones) a metric is checked on, by default."""
METRIC_TRAIN_STEPS = 20
"""Adam steps a model built by :class:`MetricCase` trains for (on its images) before
its prior is fitted."""

METRIC_BUDGETS: dict[str, Any] = {
    "fid_samples": 100,
    "fid_extractor": "classifier",
    "kid_subsets": 2,
    "novelty_train": 200,
    "nll_k": 4,
    "nll_samples": 50,
    "probe_samples": 200,
    "mig_samples": 200,
    "dci_samples": 200,
    "dci_estimators": 5,
    "sap_samples": 200,
    "factorvae_votes": 50,
}
"""Small but valid budgets for the built-in metric options, over the ``smoke`` profile's
defaults, so that each metric checks in seconds on CPU; options not named here keep
their ``smoke`` defaults. FID uses the offline classifier extractor, trained on the
first use for a dataset and cached under ``$AEBENCH_CACHE_DIR``."""

_TIMING_KEYS = ("eval_timings", "eval_seconds")
_TRAINED: dict[tuple[str, str], AutoEncoder] = {}
"""The models :class:`MetricCase` trained, by (model name, dataset name): each is trained
once per process (training is seeded, so every case would get the same weights) and
every case gets its own copy."""


def metric_names(pattern: str | None = None) -> list[str]:
    """Names of registered metrics (all, or matching a glob): for ``parametrize``."""
    return [s.name for s in metric_specs() if pattern is None or fnmatch(s.name, pattern)]


def _metric_spec(spec_or_name: MetricSpec | str) -> MetricSpec:
    if isinstance(spec_or_name, MetricSpec):
        return spec_or_name
    specs = {s.name: s for s in metric_specs()}
    try:
        return specs[spec_or_name]
    except KeyError:
        raise KeyError(f"unknown metric {spec_or_name!r}; metrics: {', '.join(specs)}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class MetricCase:
    """One metric on one trained model and one dataset: what the metric checks look at.

    ``model``: an :class:`~aebench.models.base.AutoEncoder`, used as given (trained,
    prior fitted); a model name, built for the data's image shape, trained for
    :data:`METRIC_TRAIN_STEPS` steps and its prior fitted, as a run does; ``None``:
    :data:`METRIC_MODEL`. ``data``: a dataset name (its first :data:`METRIC_IMAGES`
    train and test images; the full train split is the context's
    ``reference_train``), a ``(train, test)`` pair of ImageSets used as given, or
    ``None``: :data:`METRIC_DATASET`. ``options``: metric budgets, over
    :data:`METRIC_BUDGETS`, over the ``smoke`` profile's defaults.

    The metric's ``check`` and ``prepare`` steps run once, before the first
    evaluation; :attr:`outcome` evaluates it once for all the checks, through
    :func:`aebench.metrics.evaluate.evaluate`.
    """

    def __init__(
        self,
        spec_or_name: MetricSpec | str,
        model: AutoEncoder | str | None = None,
        data: str | tuple[ImageSet, ImageSet] | None = None,
        **options: Any,
    ) -> None:
        self.spec = _metric_spec(spec_or_name)
        self._model = METRIC_MODEL if model is None else model
        self._data = METRIC_DATASET if data is None else data
        self._options = options
        self._prepared = False

    @cached_property
    def splits(self) -> tuple[ImageSet, ImageSet, ImageSet, ImageSet]:
        """(train, test, full train, full test): what the context and the setup steps get."""
        if isinstance(self._data, str):
            train = get_dataset(self._data, "train")
            test = get_dataset(self._data, "test")
            n = slice(0, METRIC_IMAGES)
            return train.subset(n), test.subset(n), train, test
        train, test = self._data
        return train, test, train, test

    @cached_property
    def model(self) -> AutoEncoder:
        """The model evaluated (built, trained and its prior fitted when given by name)."""
        if not isinstance(self._model, str):
            return self._model
        key = (self._model, self._data) if isinstance(self._data, str) else None
        if key is not None and key in _TRAINED:
            return copy.deepcopy(_TRAINED[key])
        images = self.splits[0]
        model = build(self._model, images.shape)
        x = images.batch(slice(0, METRIC_IMAGES))
        train(model, x, steps=METRIC_TRAIN_STEPS)
        model.eval()
        with torch.no_grad():
            model.fit_prior(model.encode(x).mean)
        if key is not None:
            _TRAINED[key] = copy.deepcopy(model)
        return model

    @property
    def where(self) -> str:
        """The model and data, in words, for messages."""
        model = self._model if isinstance(self._model, str) else type(self._model).__name__
        data = self._data if isinstance(self._data, str) else self.splits[1].name or "data"
        return f"{model} on {len(self.splits[1])} {data} test images"

    @cached_property
    def options(self) -> dict[str, Any]:
        """Every metric option, resolved: this metric's and every registered one's."""
        specs = [s for s in metric_specs() if s.name != self.spec.name] + [self.spec]
        known = {o.name for s in specs for o in s.options}
        given = {k: v for k, v in METRIC_BUDGETS.items() if k in known}
        given.update(self._options)
        return resolve_metric_options("smoke", given, specs)

    def context(self) -> EvalContext:
        """A fresh context (its own cache) on the model and the data."""
        train, test, reference, _ = self.splits
        return EvalContext(
            self.model,
            train,
            test,
            options=dict(self.options),
            reference_train=reference,
            sampler_specs=tuple(sampler_specs()),
        )

    @cached_property
    def ctx(self) -> EvalContext:
        """The context of :attr:`outcome`."""
        return self.context()

    def setup(self) -> None:
        """Run the metric's ``check`` and ``prepare`` steps, once; a failure is a broken rule."""
        if self._prepared:
            return
        spec = self.spec
        _, _, train, test = self.splits
        dataset = self._data if isinstance(self._data, str) else test.name
        setup = MetricSetup(dataset, train, test, dict(self.options), on_event=lambda _: None)
        for step in ("check", "prepare"):
            fn = getattr(spec, step)
            if fn is None:
                continue
            try:
                fn(setup)
            except Exception as exc:
                raise AssertionError(
                    f"{spec.name}: its {step}(setup) step must accept {self.where}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        self._prepared = True

    def applies(self, ctx: EvalContext | None = None) -> bool:
        """Whether the metric applies to the context (default :attr:`ctx`)."""
        return self.spec.applies_to is None or bool(self.spec.applies_to(ctx or self.ctx))

    def column_applies(self, column: MetricColumn, ctx: EvalContext | None = None) -> bool:
        """Whether ``column``'s own ``applies_to`` says yes (or it has none)."""
        return column.applies_to is None or bool(column.applies_to(ctx or self.ctx))

    def evaluate(self, ctx: EvalContext) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(what ``fn`` returned, None if it was not called; what ``evaluate`` stored)
        for this metric alone on ``ctx``; an exception is a broken rule."""
        spec = self.spec
        self.setup()
        returned: list[dict[str, Any]] = []

        def record(ctx: EvalContext) -> Mapping[str, Any]:
            out = spec.fn(ctx)  # type: ignore[misc]
            _require(
                isinstance(out, Mapping),
                spec,
                f"fn(ctx) must return a dict of its values, got {type(out).__name__}",
            )
            returned.append(dict(out))
            return out

        try:
            stored = evaluate(ctx, [replace(spec, fn=record, on_error="fail")])
        except AssertionError:
            raise
        except Exception as exc:
            raise AssertionError(
                f"{spec.name}: fn(ctx) must not raise on {self.where}: {type(exc).__name__}: {exc}"
            ) from exc
        return (returned[0] if returned else None), stored

    @cached_property
    def outcome(self) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """:meth:`evaluate` on :attr:`ctx`, once."""
        return self.evaluate(self.ctx)


def check_metric_declaration(case: MetricCase) -> None:
    """Details are declared once and are not columns; no registered metric declares one of
    its column keys (``evaluate`` would store the second as ``<metric>.<key>``)."""
    spec = case.spec
    columns = {c.key for c in spec.columns}
    twice = sorted({d for d in spec.details if spec.details.count(d) > 1})
    _require(not twice, spec, f"details must be declared once; declared twice: {twice}")
    both = sorted(columns & set(spec.details))
    _require(not both, spec, f"a key is a column or a detail, not both: {both}")
    for other in metric_specs():
        if other.name == spec.name:
            continue
        shared = sorted(columns & {c.key for c in other.columns})
        _require(
            not shared,
            spec,
            f"column key(s) {shared} are already declared by metric {other.name!r}",
        )


def check_metric_options(case: MetricCase) -> None:
    """Every option converts its default and each per-profile default to itself (they are
    already typed and allowed), names only known profiles, and is this metric's alone."""
    spec = case.spec
    for opt in spec.options:
        defaults = {"default": opt.default} | {
            f"{profile} default": value for profile, value in opt.profiles.items()
        }
        for what, value in defaults.items():
            try:
                converted = opt.convert(value)
            except Exception as exc:
                raise AssertionError(
                    f"{spec.name}: option {opt.name!r} must convert its {what} {value!r}: {exc}"
                ) from None
            _require(
                converted == value,
                spec,
                f"option {opt.name!r}: its {what} {value!r} must already have its type "
                f"({getattr(opt.type, '__name__', opt.type)}); it converts to {converted!r}",
            )
        unknown = sorted(set(opt.profiles) - set(PROFILES))
        _require(
            not unknown,
            spec,
            f"option {opt.name!r} has defaults for unknown profile(s) {unknown}; "
            f"profiles: {', '.join(PROFILES)}",
        )
        for other in metric_specs():
            _require(
                other.name == spec.name or opt.name not in {o.name for o in other.options},
                spec,
                f"option {opt.name!r} is already declared by metric {other.name!r}",
            )


def check_metric_setup(case: MetricCase) -> None:
    """The metric's ``check`` and ``prepare`` steps accept the case's data and budgets."""
    if case.spec.check is not None or case.spec.prepare is not None:
        case.setup()


def check_metric_applies_to(case: MetricCase) -> None:
    """The metric's ``applies_to`` and each column's return a bool (and do not raise)."""
    spec = case.spec
    if spec.fn is None:
        return
    tests = [("applies_to", spec.applies_to)]
    tests += [(f"column {c.key!r}'s applies_to", c.applies_to) for c in spec.columns]
    for what, fn in tests:
        if fn is None:
            continue
        try:
            value = fn(case.ctx)
        except Exception as exc:
            raise AssertionError(
                f"{spec.name}: {what}(ctx) must not raise on {case.where}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _require(
            isinstance(value, bool),
            spec,
            f"{what}(ctx) must return a bool, got {type(value).__name__}",
        )


def check_metric_keys(case: MetricCase) -> None:
    """Where the metric applies, ``fn`` returns exactly its declared keys: every column
    whose own ``applies_to`` says yes, not None, and otherwise only declared columns and
    ``details``."""
    spec = case.spec
    if spec.fn is None:
        return
    returned, _ = case.outcome
    if returned is None:  # it does not apply: see check_metric_not_applicable
        return
    declared = {c.key for c in spec.columns}
    extra = sorted(set(returned) - declared - set(spec.details))
    _require(
        not extra,
        spec,
        f"fn(ctx) returned key(s) {extra} it does not declare: declare each as a column "
        "or in details",
    )
    for col in spec.columns:
        if not case.column_applies(col):
            continue
        _require(
            col.key in returned,
            spec,
            f"fn(ctx) must return column {col.key!r} on {case.where} (it applies)",
        )
        _require(
            returned[col.key] is not None,
            spec,
            f"column {col.key!r} may be None only where its own applies_to says no; it "
            f"applies on {case.where}",
        )


def check_metric_values(case: MetricCase) -> None:
    """Every value ``evaluate`` stores for a column is a finite number (an integral one for
    an ``integer`` column) or None."""
    spec = case.spec
    if spec.fn is None:
        return
    _, stored = case.outcome
    for col in spec.columns:
        value = stored.get(col.key)
        if value is None:
            continue
        _require(
            _is_number(value) and math.isfinite(value),
            spec,
            f"column {col.key!r} must be a finite number or None, got {value!r}",
        )
        _require(
            not col.integer or float(value).is_integer(),
            spec,
            f"integer column {col.key!r} must be a whole number, got {value!r}",
        )


def check_metric_not_applicable(case: MetricCase) -> None:
    """Where the metric does not apply, ``evaluate`` stores None for every column and lists
    it under ``not_applicable`` (and ``fn`` is not called); where it applies, exactly the
    columns whose own ``applies_to`` says no are so."""
    spec = case.spec
    if spec.fn is None:
        return
    returned, stored = case.outcome
    listed = set(stored.get(NOT_APPLICABLE, ()))
    applies = case.applies()
    _require(
        (returned is not None) == applies,
        spec,
        "evaluate() must call fn exactly when applies_to says the metric applies",
    )
    for col in spec.columns:
        na = not applies or not case.column_applies(col)
        why = "the metric" if not applies else f"column {col.key!r}"
        if na:
            _require(
                col.key in stored and stored[col.key] is None,
                spec,
                f"{why} does not apply on {case.where}: evaluate() must store None for "
                f"{col.key!r}, got {stored.get(col.key, '<missing>')!r}",
            )
        _require(
            (col.key in listed) == na,
            spec,
            f"column {col.key!r} must be listed under {NOT_APPLICABLE!r} exactly when "
            f"{why} does not apply (applies: {not na}; listed: {col.key in listed})",
        )


def check_metric_json(case: MetricCase) -> None:
    """What ``evaluate`` stores for the metric can be written to ``metrics.json``."""
    spec = case.spec
    if spec.fn is None:
        return
    _, stored = case.outcome
    with tempfile.TemporaryDirectory() as tmp:
        try:
            write_json(Path(tmp) / "metrics.json", stored)
        except Exception as exc:
            raise AssertionError(
                f"{spec.name}: its values must be JSON-serialisable for metrics.json: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def check_metric_determinism(case: MetricCase) -> None:
    """A second evaluation on a fresh context (same model, data, seed) stores the same values."""
    spec = case.spec
    if spec.fn is None:
        return
    _, first = case.outcome
    _, second = case.evaluate(case.context())
    for key in sorted(set(first) | set(second)):
        if key in _TIMING_KEYS:
            continue
        a, b = first.get(key, "<missing>"), second.get(key, "<missing>")
        _require(
            a == b or (_is_number(a) and _is_number(b) and math.isnan(a) and math.isnan(b)),
            spec,
            f"the same seed must give the same values: {key!r} was {a!r}, then {b!r}",
        )


METRIC_CHECKS: dict[str, Callable[[MetricCase], None]] = {
    "declaration": check_metric_declaration,
    "options": check_metric_options,
    "setup": check_metric_setup,
    "applies_to": check_metric_applies_to,
    "keys": check_metric_keys,
    "values": check_metric_values,
    "not_applicable": check_metric_not_applicable,
    "json": check_metric_json,
    "determinism": check_metric_determinism,
}
"""Every metric check by name, in the order :func:`check_metric` runs them. Each takes a
:class:`MetricCase`; those that need values share its one evaluation. A metric with
``fn=None`` (columns another part of aebench writes) gets only the declaration checks."""


def metric_check_names() -> list[str]:
    """Names of all metric checks: for ``pytest.mark.parametrize``."""
    return list(METRIC_CHECKS)


def run_metric_check(
    name: str,
    spec_or_name: MetricSpec | str,
    model: AutoEncoder | str | None = None,
    data: str | tuple[ImageSet, ImageSet] | None = None,
    **options: Any,
) -> None:
    """Run one named metric check on one metric (arguments as :class:`MetricCase`'s)."""
    try:
        check = METRIC_CHECKS[name]
    except KeyError:
        raise KeyError(
            f"unknown metric check {name!r}; checks: {', '.join(METRIC_CHECKS)}"
        ) from None
    check(MetricCase(spec_or_name, model, data, **options))


def check_metric(
    spec_or_name: MetricSpec | str,
    model: AutoEncoder | str | None = None,
    data: str | tuple[ImageSet, ImageSet] | None = None,
    skip: Iterable[str] = (),
    **options: Any,
) -> None:
    """Run every metric check (except ``skip``) on one metric, registered or not; the first
    broken rule raises ``AssertionError("<metric>: <rule>")``.

    By default the metric is evaluated on a :data:`METRIC_MODEL` trained briefly on the
    first :data:`METRIC_IMAGES` images of ``digits``, with :data:`METRIC_BUDGETS`;
    ``model``, ``data`` and ``options`` (metric budgets) change that, as in
    :class:`MetricCase`. Checks that need values evaluate the metric once (twice for
    ``determinism``), through :func:`aebench.metrics.evaluate.evaluate`.
    """
    skipped = set(skip)
    unknown = skipped - set(METRIC_CHECKS)
    if unknown:
        raise KeyError(f"unknown metric check(s) to skip: {', '.join(sorted(unknown))}")
    case = MetricCase(spec_or_name, model, data, **options)
    for name, check in METRIC_CHECKS.items():
        if name not in skipped:
            check(case)


__all__ = [
    "CHECKS",
    "DATASET_RULES",
    "METRIC_BUDGETS",
    "METRIC_CHECKS",
    "MetricCase",
    "build",
    "check_dataset",
    "check_metric",
    "check_model",
    "check_names",
    "digits_batch",
    "metric_check_names",
    "metric_names",
    "model_names",
    "offline_dataset_names",
    "run_check",
    "run_metric_check",
]
