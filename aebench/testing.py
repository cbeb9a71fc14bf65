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
the model or metric and the rule, e.g.
``vae-cnn: loss_terms()['recon'] must have shape (B,) = (4,), got (4, 1)``.

Model checks (see each function): ``shapes``, ``loss_terms``, ``gradients``,
``regulariser``, ``beta``, ``training``, ``determinism``, ``sampling``,
``log_likelihood``, ``state_dict``. Everything runs on CPU in a few seconds
per model: the real-data checks use scikit-learn's bundled 8x8 ``digits``.

Assumptions a family must meet (or ``skip`` the check): a ``regulariser="kl"``
family's ``reg`` is KL(q(z|x) || N(0, I)) for the diagonal Gaussian q that
``encode`` returns, and its ``total`` is ``recon + beta * reg`` with ``beta``
the config's ``beta`` (1 when the config has none).

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
from collections.abc import Callable, Iterable, Mapping
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
)
from aebench.datasets.base import ImageSet

# Dataset plugins get the same treatment: `check_dataset("my-dataset")` raises
# AssertionError naming the broken rule (see aebench.datasets.conformance).
from aebench.datasets.conformance import RULES as DATASET_RULES
from aebench.datasets.conformance import check_dataset, offline_dataset_names
from aebench.files import write_json
from aebench.metrics.context import NOT_APPLICABLE, EvalContext, MetricSetup
from aebench.metrics.evaluate import evaluate
from aebench.models.base import AutoEncoder
from aebench.profiles import PROFILES
from aebench.specs import MetricColumn, MetricSpec, ModelSpec
from aebench.train import train_step

DEFAULT_SHAPES: tuple[tuple[int, int, int], ...] = (
    (1, 28, 28),
    (3, 32, 32),
    (1, 8, 8),
    (1, 30, 30),
)
"""Input shapes the shape checks use: MNIST, CIFAR/SVHN, digits and a size not divisible by 4."""

DIGITS_SHAPE = (1, 8, 8)


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


def _bound(model: AutoEncoder, spec: ModelSpec, x: torch.Tensor, k: int) -> torch.Tensor:
    """``model.log_likelihood(x, k)``, which a model with a bound must give."""
    bound = model.log_likelihood(x, k=k)
    if bound is None:
        raise AssertionError(f"{spec.name}: log_likelihood() gave None for a model with a bound")
    return bound


def _require(ok: bool, spec: ModelSpec | MetricSpec, rule: str) -> None:
    if not ok:
        raise AssertionError(f"{spec.name}: {rule}")


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


def train(
    model: AutoEncoder, x: torch.Tensor, steps: int, lr: float = 1e-3, seed: int = 0
) -> list[float]:
    """``steps`` Adam steps of :func:`aebench.train.train_step` on ``x``; mean total per step."""
    torch.manual_seed(seed)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return [float(train_step(model, opt, x)["total"].mean()) for _ in range(steps)]


def away_from_prior(
    model: AutoEncoder, x: torch.Tensor, target_nats: float = 5.0, max_steps: int = 100
) -> float:
    """Adam steps that *increase* ``reg`` on ``x`` until it averages ``target_nats``.

    A fresh encoder sits near the prior (KL ~ 0.01 nats), which makes checks on
    the KL or on the IWAE/ELBO gap too weak to fail; this moves the posterior
    away first. Returns the mean ``reg`` reached.
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


# -- the checks --------------------------------------------------------------
def check_shapes(
    spec_or_name: ModelSpec | str,
    input_shapes: Iterable[tuple[int, int, int]] = DEFAULT_SHAPES,
    batch: int = 3,
) -> None:
    """encode/decode/reconstruct/loss_terms have the right shapes for every input shape."""
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
            for key in ("total", "recon", "reg"):
                _require(key in terms, spec, f"loss_terms() must return {key!r} {where}")
                _require(
                    tuple(terms[key].shape) == (batch,),
                    spec,
                    f"loss_terms()[{key!r}] must have shape (B,) = ({batch},) {where}, "
                    f"got {_shape(terms[key])}",
                )


def check_loss_terms(spec_or_name: ModelSpec | str, batch: int = 4) -> None:
    """loss_terms returns total/recon/reg of shape (B,), finite, for every likelihood."""
    spec = _spec(spec_or_name)
    names = {f.name for f in fields(spec.config_cls)}
    likelihoods = ("bernoulli", "gaussian") if "likelihood" in names else (None,)
    x = digits_batch(batch)
    for likelihood in likelihoods:
        cfg: dict[str, Any] = {} if likelihood is None else {"likelihood": likelihood}
        model = build(spec, DIGITS_SHAPE, **cfg)
        terms = model.loss_terms(x)
        _require(isinstance(terms, dict), spec, "loss_terms() must return a dict")
        for key in ("total", "recon", "reg"):
            _require(key in terms, spec, f"loss_terms() must return {key!r}, got {sorted(terms)}")
            t = terms[key]
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
        _require(
            terms["total"].requires_grad,
            spec,
            "loss_terms()['total'] must be differentiable (requires_grad)",
        )


def check_gradients(spec_or_name: ModelSpec | str, batch: int = 8) -> None:
    """The mean total loss sends a finite, non-zero gradient to every parameter."""
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    model.zero_grad(set_to_none=True)
    model.loss_terms(digits_batch(batch))["total"].mean().backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        grad = p.grad
        if grad is None:
            raise AssertionError(f"{spec.name}: no gradient reaches parameter {pname!r}")
        _require(bool(torch.isfinite(grad).all()), spec, f"gradient of {pname!r} is not finite")
        _require(bool(grad.abs().sum() > 0), spec, f"gradient of {pname!r} is all zero")


def check_regulariser(
    spec_or_name: ModelSpec | str, samples: int = 4000, target_nats: float = 5.0
) -> None:
    """``kl``: reg equals a Monte-Carlo KL estimate; ``none``: reg is exactly zero.

    A freshly initialised encoder sits close to the prior (KL ~ 0.01 nats), which
    would make the comparison toothless, so the model is first pushed away from
    the prior by a few Adam steps that *increase* ``reg`` until it averages a
    few nats. The analytic ``reg`` is then compared per image with ``samples``
    draws of log q(z|x) - log N(z; 0, I) from the encoder's diagonal Gaussian.
    """
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    x = digits_batch(16)
    kind = type(model).regulariser
    if kind == "none":
        reg = model.loss_terms(x)["reg"]
        _require(bool((reg == 0).all()), spec, f"regulariser 'none' needs reg == 0, got {reg}")
        return
    if kind != "kl":
        return  # other regularisers have no generic check
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
        log_ratio = (-0.5 * eps.pow(2) - 0.5 * logvar + 0.5 * z.pow(2)).sum(-1)
        mc = log_ratio.mean(0)
        se = log_ratio.std(0) / math.sqrt(samples)
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
        "KL(q(z|x) || N(0, I)); image "
        + (
            f"{int(bad[0])}: analytic {float(analytic[bad[0]]):.4f} vs MC "
            f"{float(mc[bad[0]]):.4f} ± {float(se[bad[0]]):.4f}"
            if len(bad)
            else ""
        ),
    )


def check_beta(spec_or_name: ModelSpec | str, batch: int = 8) -> None:
    """``total == recon + beta * reg`` (beta from the config, else 1), and beta changes only total.

    For a config with ``beta``, the same weights and the same random draws under
    two values of beta must give identical ``recon`` and ``reg``.
    """
    spec = _spec(spec_or_name)
    model = build(spec, DIGITS_SHAPE)
    x = digits_batch(batch)
    kind = type(model).regulariser
    has_beta = "beta" in {f.name for f in fields(spec.config_cls)}
    beta = float(getattr(model.config, "beta", 1.0))
    torch.manual_seed(1)
    terms = model.loss_terms(x)
    if kind == "none":
        _require(
            torch.allclose(terms["total"], terms["recon"]),
            spec,
            "regulariser 'none' needs total == recon",
        )
        return
    if kind != "kl":
        return
    expected = terms["recon"] + beta * terms["reg"]
    _require(
        torch.allclose(terms["total"], expected, rtol=1e-5, atol=1e-4),
        spec,
        f"total must equal recon + beta * reg with beta={beta}; "
        f"got total - recon = {(terms['total'] - terms['recon'])[:3].tolist()} vs "
        f"beta * reg = {(beta * terms['reg'])[:3].tolist()}",
    )
    if not has_beta:
        return
    other = beta + 2.5
    config: Any = model.config  # a config with a beta field (has_beta)
    model2 = spec.factory(replace(config, beta=other), model.input_shape)
    model2.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    terms2 = model2.loss_terms(x)
    for key in ("recon", "reg"):
        _require(
            torch.allclose(terms[key], terms2[key]),
            spec,
            f"beta must multiply only the KL term: loss_terms()[{key!r}] changed with beta",
        )
    _require(
        torch.allclose(terms2["total"] - terms["total"], (other - beta) * terms["reg"], atol=1e-4),
        spec,
        "beta must multiply exactly the KL term: total(beta2) - total(beta1) != (beta2-beta1)*reg",
    )


def check_training(
    spec_or_name: ModelSpec | str, steps: int = 100, batch: int = 64, factor: float = 0.8
) -> None:
    """``steps`` Adam steps on a real digits batch bring the loss below ``factor`` x initial."""
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
    """If not None: IWAE(k) >= ELBO, and IWAE(k) > IWAE(1) by > 3 standard errors.

    Both are compared on batch means averaged over ``repeats`` evaluations.

    The ELBO is ``-(recon + reg)`` from ``loss_terms`` (beta = 1 whatever the
    config says), averaged over ``repeats`` draws. The model is first moved away
    from its prior (:func:`away_from_prior`), so that the gap the bound must
    show is several nats, far above the Monte-Carlo noise.
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
    away_from_prior(model, x)
    torch.manual_seed(5)
    with torch.no_grad():
        elbos, iw1, iwk = [], [], []
        for _ in range(repeats):
            t = model.loss_terms(x)
            elbos.append(float(-(t["recon"] + t["reg"]).mean()))
            iw1.append(float(_bound(model, spec, x, 1).mean()))
            iwk.append(float(_bound(model, spec, x, k).mean()))
    elbo, l1, lk = (sum(v) / repeats for v in (elbos, iw1, iwk))
    # standard error of the difference of the two IWAE means
    se = math.sqrt((torch.tensor(iw1).var().item() + torch.tensor(iwk).var().item()) / repeats)
    _require(
        all(math.isfinite(v) for v in (elbo, l1, lk)),
        spec,
        "log_likelihood() must be finite",
    )
    _require(
        lk >= elbo,
        spec,
        f"IWAE bound with k={k} must be >= the ELBO (batch mean): {lk:.3f} < {elbo:.3f}",
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
    "shapes": check_shapes,
    "loss_terms": check_loss_terms,
    "gradients": check_gradients,
    "regulariser": check_regulariser,
    "beta": check_beta,
    "training": check_training,
    "determinism": check_determinism,
    "sampling": check_sampling,
    "log_likelihood": check_log_likelihood,
    "state_dict": check_state_dict,
}
"""Every check by name, in the order :func:`check_model` runs them."""


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
    for name, check in CHECKS.items():
        if name in skipped:
            continue
        if name == "shapes":
            check_shapes(spec_or_name, input_shapes)
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
            self.model, train, test, options=dict(self.options), reference_train=reference
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
