"""evaluate(): keys, determinism, bits/dim, NLL, linear probe, plugin metrics."""

from __future__ import annotations

import json
import math

import pytest
import torch

import aebench
from aebench.catalog import column_specs, metric_specs, resolve_metric_options
from aebench.metrics import disentanglement
from aebench.metrics._util import loss_metrics
from aebench.metrics.context import EvalContext
from aebench.metrics.evaluate import evaluate, make_context
from aebench.models.base import AutoEncoder, Encoding, ModelConfig
from aebench.specs import MetricColumn, MetricSpec


class PixelAE(AutoEncoder):
    """Test-local model: the latent is the image itself, slightly shrunk towards 0.5.

    ``reg`` is a constant 1 nat per image so bits/dim formulas can be checked."""

    family = "pixel"
    regulariser = "none"

    def encode(self, x: torch.Tensor) -> Encoding:
        return Encoding(x.flatten(1) * self.scale)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        p = (0.05 + 0.9 * z / self.scale).reshape(-1, *self.input_shape)
        return torch.logit(p)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        recon = self.recon_nats(self.decode_logits(self.encode(x).mean), x)
        reg = torch.ones_like(recon)
        return {"total": recon + reg, "recon": recon, "reg": reg}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, *self.input_shape, generator=generator, device=self.device)

    def __init__(self, input_shape: tuple[int, int, int]) -> None:
        super().__init__(ModelConfig(latent_dim=math.prod(input_shape)), input_shape)
        self.scale = torch.nn.Parameter(torch.ones(()))


class PixelKL(PixelAE):
    regulariser = "kl"
    bound = ("recon", "reg")


def test_bits_per_dim_definition(digits):
    _, test = digits
    d = 64 * math.log(2)
    ae = loss_metrics(PixelAE((1, 8, 8)), test)
    assert ae["total"] == pytest.approx(ae["recon"] + 1)
    assert "bpd" not in ae  # no bound, no bits/dim
    kl = loss_metrics(PixelKL((1, 8, 8)), test)
    assert kl["bpd"] == pytest.approx((kl["recon"] + kl["reg"]) / d)  # negative ELBO
    x = test.batch(slice(None))
    direct = PixelAE((1, 8, 8)).loss_terms(x)["recon"].detach().double().mean()
    assert ae["recon"] == pytest.approx(float(direct), rel=1e-6)


def _evaluate(model, train, test, **kwargs):
    return evaluate(make_context(model, train, test, **kwargs))


def test_evaluate_without_fid_keys_and_json(digits):
    train, test = digits
    model = PixelAE((1, 8, 8))
    model.train()
    out = _evaluate(model, train, test, fid_samples=0, probe_samples=500)
    assert model.training  # mode restored
    json.dumps(out, allow_nan=False)
    assert out["fid"] is None and out["fid_extractor"] is None and out["fid_samples"] is None
    # no IWAE bound and no regulariser: not applicable, stored as null, never 0
    assert out["nll"] is None and out["nll_bpd"] is None and out["test_reg"] is None
    # nor latent health measured on a Gaussian encoder's variances
    assert {"test_reg", "nll", "nll_bpd", "collapsed_fraction"} <= set(out["not_applicable"])
    assert "active_units" not in out["not_applicable"]  # posterior means: every encoder has them
    assert "fid" not in out["not_applicable"]  # skipped by its budget, not inapplicable
    # reconstruction is 0.05 + 0.9 x: MSE per pixel is mean((0.05 - 0.1 x)^2)
    x = test.batch(slice(None)).double()
    assert out["test_mse"] == pytest.approx(float(((0.05 - 0.1 * x) ** 2).mean()))
    assert out["test_ssim"] > 0.9 and out["test_psnr"] > 20
    assert set(out["per_class"]) == set(test.class_names)
    assert 0.85 < out["probe_acc"] <= 1.0  # pixels are linearly separable digits
    assert out["eval_seconds"] > 0
    assert set(out["eval_timings"]) >= {"losses", "reconstruction", "probe"}
    numeric = {k for k, v in out.items() if isinstance(v, float)}
    assert numeric <= {c.key for c in column_specs()}  # every number is a declared column


def test_evaluate_vae_with_fid_is_deterministic(digits):
    train, test = digits
    torch.manual_seed(0)
    model = aebench.create_model("vae-mlp", (1, 8, 8), latent_dim=4)
    kw = {"fid_samples": 200, "nll_k": 5, "nll_samples": 50, "probe_samples": 300}
    small_train = train.subset(slice(0, 600))  # classifier trains on this: cheap
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = _evaluate(model, small_train, test, seed=3, **kw)
        b = _evaluate(model, small_train, test, seed=3, **kw)
        c = _evaluate(model, small_train, test, seed=4, **kw)
    finally:
        torch.set_num_threads(threads)
    drop = {"eval_seconds", "eval_timings"}
    assert {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }
    assert a["fid"] != c["fid"] and a["nll"] != c["nll"]
    assert a["fid_extractor"].startswith("aebench-classifier:digits:v1:")
    assert a["fid_samples"] == 200 and a["fid_reference"] == len(test)
    assert a["fid_grayscale"].startswith("native") and a["fid_prior"]
    assert a["nll_k"] == 5 and a["nll_samples"] == 50 and a["nll"] > 0
    assert a["nll_bpd"] == pytest.approx(a["nll"] / (64 * math.log(2)))
    # every metric applies to a VAE on digits except those needing generative factors,
    # and the sample metrics of the code prior (discrete latents only)
    codes = {c.key for c in column_specs() if c.key.endswith("_codes")}
    factors = {c.key for s in disentanglement.METRICS for c in s.columns}
    batch = {c.key for s in metric_specs() if s.name == "batch-terms" for c in s.columns}
    assert set(a["not_applicable"]) == factors | codes | batch
    json.dumps(a, allow_nan=False)


def test_plugin_metrics_get_context_and_are_isolated(digits):
    train, test = digits
    seen: list[EvalContext] = []

    def good(ctx: EvalContext) -> dict[str, float]:
        seen.append(ctx)
        return {"n_pixels": float(math.prod(ctx.test.shape)), "test_mse": torch.tensor(1.0)}

    def bad(ctx: EvalContext) -> dict[str, float]:
        raise RuntimeError("boom")

    specs = [
        *metric_specs(),
        MetricSpec("good", good, columns=(MetricColumn("n_pixels", "Pixels"),)),
        MetricSpec("bad", bad, columns=(MetricColumn("bad_value", "Bad"),)),
    ]
    ctx = make_context(PixelAE((1, 8, 8)), train, test, fid_samples=0, probe_samples=200)
    ctx.seed = 7
    out = evaluate(ctx, specs)
    assert seen[0].seed == 7 and seen[0].dataset == "digits" and seen[0].device.type == "cpu"
    assert out["n_pixels"] == 64.0
    assert out["good.test_mse"] == 1.0 and out["test_mse"] != 1.0  # no silent overwrite
    assert out["bad_error"] == "RuntimeError: boom" and out["bad_value"] is None


def test_a_failing_builtin_metric_fails_the_evaluation(digits):
    train, test = digits

    class Exploding(PixelAE):
        def loss_terms(self, x):
            terms = super().loss_terms(x)
            terms["recon"] = terms["recon"] * float("inf")
            return terms

    with pytest.raises(FloatingPointError, match="test_recon is not finite"):
        _evaluate(Exploding((1, 8, 8)), train, test, fid_samples=0, probe_samples=0)


def test_inapplicable_metric_is_not_called(digits):
    train, test = digits
    calls = []

    def never(ctx):
        calls.append(ctx)
        return {"only_kl": 1.0}

    spec = MetricSpec(
        "kl-only",
        never,
        columns=(MetricColumn("only_kl", "Only KL"),),
        applies_to=lambda ctx: ctx.model.regulariser == "kl",
    )
    out = evaluate(make_context(PixelAE((1, 8, 8)), train, test), [spec])
    assert calls == [] and out["only_kl"] is None and out["not_applicable"] == ["only_kl"]
    out = evaluate(make_context(PixelKL((1, 8, 8)), train, test), [spec])
    assert len(calls) == 1 and out["only_kl"] == 1.0 and out["not_applicable"] == []


def test_bad_budgets_are_rejected_before_work(digits):
    train, test = digits
    with pytest.raises(aebench.errors.ConfigError, match=r"expected one of .*, got 'nope'"):
        _evaluate(PixelAE((1, 8, 8)), train, test, fid_extractor="nope")
    with pytest.raises(aebench.errors.ConfigError, match="--nll-k must be >= 1"):
        _evaluate(PixelAE((1, 8, 8)), train, test, nll_k=0)
    with pytest.raises(aebench.errors.ConfigError, match=r"did you mean fid_samples\?"):
        _evaluate(PixelAE((1, 8, 8)), train, test, fid_sample=3)


def test_profiles_set_each_metrics_budget():
    smoke, full = resolve_metric_options("smoke"), resolve_metric_options("full")
    assert smoke["fid_samples"] < full["fid_samples"] and smoke["nll_k"] < full["nll_k"]
    assert resolve_metric_options("smoke", {"fid_samples": "0"})["fid_samples"] == 0


def test_a_plugin_cannot_redeclare_a_builtin_column():
    from aebench.plugins import get_plugins

    class Clash:
        @aebench.hookimpl
        def register_metrics(self, register):
            register(MetricSpec("mine", lambda ctx: {}, columns=(MetricColumn("test_mse", "M"),)))

    plugins = get_plugins()
    with pytest.warns(UserWarning, match="metric column 'test_mse' is declared twice"):
        plugins.register(Clash(), "clash")
    try:
        assert "mine" not in plugins.metrics and plugins.infos["clash"].error
        assert "reconstruction" in plugins.metrics  # the built-in keeps working
    finally:
        plugins.unregister("clash")
