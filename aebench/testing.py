"""Conformance checks every model must pass, built-in or third-party.

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
``testing.check_dataset("my-dataset")``. A broken rule
raises ``AssertionError`` naming the model and the rule, e.g.
``vae-cnn: loss_terms()['recon'] must have shape (B,) = (4,), got (4, 1)``.

Checks (see each function): ``shapes``, ``loss_terms``, ``gradients``,
``regulariser``, ``beta``, ``training``, ``determinism``, ``sampling``,
``log_likelihood``, ``state_dict``. Everything runs on CPU in a few seconds
per model: the real-data checks use scikit-learn's bundled 8x8 ``digits``.

Assumptions a family must meet (or ``skip`` the check): a ``regulariser="kl"``
family's ``reg`` is KL(q(z|x) || N(0, I)) for the diagonal Gaussian q that
``encode`` returns, and its ``total`` is ``recon + beta * reg`` with ``beta``
the config's ``beta`` (1 when the config has none).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from typing import Any

import torch

from aebench.models.base import AutoEncoder
from aebench.specs import ModelSpec

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
    import aebench

    return [spec.name for spec in aebench.list_models(pattern)]


def _spec(spec_or_name: ModelSpec | str) -> ModelSpec:
    if isinstance(spec_or_name, ModelSpec):
        return spec_or_name
    import aebench

    return aebench.model_spec(spec_or_name)


def _require(ok: bool, spec: ModelSpec, rule: str) -> None:
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
    from aebench.api import create_model

    try:
        model = create_model(spec, tuple(input_shape), **config)
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
    import aebench

    return aebench.get_dataset("digits", split="train").batch(slice(0, n))


def train(
    model: AutoEncoder, x: torch.Tensor, steps: int, lr: float = 1e-3, seed: int = 0
) -> list[float]:
    """``steps`` Adam steps of :func:`aebench.train.train_step` on ``x``; mean total per step."""
    from aebench.train import train_step

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
        cfg = {} if likelihood is None else {"likelihood": likelihood}
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
        _require(p.grad is not None, spec, f"no gradient reaches parameter {pname!r}")
        _require(bool(torch.isfinite(p.grad).all()), spec, f"gradient of {pname!r} is not finite")
        _require(bool(p.grad.abs().sum() > 0), spec, f"gradient of {pname!r} is all zero")


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
        mean, logvar = model.encode(x)
        _require(logvar is not None, spec, "a 'kl' model's encode() must return logvar")
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
    model2 = spec.factory(replace(model.config, beta=other), model.input_shape)
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
            iw1.append(float(model.log_likelihood(x, k=1).mean()))
            iwk.append(float(model.log_likelihood(x, k=k).mean()))
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


# Dataset plugins get the same treatment: `check_dataset("my-dataset")` raises
# AssertionError naming the broken rule (see aebench.datasets.conformance).
from aebench.datasets.conformance import RULES as DATASET_RULES  # noqa: E402
from aebench.datasets.conformance import check_dataset  # noqa: E402

__all__ = [
    "CHECKS",
    "DATASET_RULES",
    "build",
    "check_dataset",
    "check_model",
    "check_names",
    "digits_batch",
    "model_names",
    "run_check",
]
