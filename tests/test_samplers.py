"""Samplers as plugins: the registry and its listing, which samplers apply to which
latent kind, the two-stage VAE and the code prior (seeded, finite, and the code prior
learns), and a discrete family evaluated with its code prior through ``aebench.run``."""

from __future__ import annotations

import json
import math
import types
import warnings

import pytest
import torch
from families import discrete

import aebench
from aebench.catalog import sampler_specs
from aebench.hookspecs import registering
from aebench.metrics import fid
from aebench.metrics import samples as sm
from aebench.metrics.evaluate import make_context
from aebench.models.base import Encoding, ModelConfig
from aebench.plugins import PluginWarning, get_plugins
from aebench.samplers import codes, twostage
from aebench.samplers.base import select
from aebench.specs import SamplerSpec

BUILTIN = ("prior", "expost", "twostage", "codes")


@pytest.fixture
def vq_plugin():
    """The discrete test family, registered for one test."""
    plugins = get_plugins()
    plugins.register(discrete, "vq-test")
    try:
        yield
    finally:
        plugins.unregister("vq-test")


def _builtins() -> dict[str, SamplerSpec]:
    return {s.name: s for s in sampler_specs() if s.name in BUILTIN}


# -- the registry and its listing ---------------------------------------------------------
def test_builtin_samplers_are_registered_in_order_with_their_suffixes():
    specs = _builtins()
    assert tuple(specs) == BUILTIN
    assert {n: s.key_suffix for n, s in specs.items()} == {
        "prior": "",
        "expost": "_expost",
        "twostage": "_twostage",
        "codes": "_codes",
    }
    assert all(s.plugin == f"aebench {aebench.__version__} (built-in)" for s in specs.values())
    assert tuple(s.name for s in fid.SAMPLERS) == BUILTIN  # their columns are declared


def test_aebench_samplers_lists_them(cli):
    code, out, _ = cli("samplers", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(BUILTIN) <= set(rows)
    assert rows["codes"]["suffix"] == "_codes" and "discrete" in rows["codes"]["applies_to"]
    code, out, _ = cli("samplers")
    assert code == 0 and all(name in out for name in BUILTIN) and "fid_twostage" in out


def test_a_plugin_sampler_with_a_taken_suffix_is_disabled():
    spec = SamplerSpec("my-gmm", lambda ctx: None, suffix="_expost")
    module = types.SimpleNamespace(register_samplers=registering("register_samplers", spec))
    plugins = get_plugins()
    with pytest.warns(PluginWarning, match="suffix '_expost' is declared twice"):
        plugins.register(module, "clash")
    try:
        assert "my-gmm" not in plugins.samplers
    finally:
        plugins.unregister("clash")
    assert "my-gmm" not in plugins.samplers and "expost" in plugins.samplers


def _gaussian_fit(ctx):
    """A plugin's sampler: one diagonal Gaussian fitted on the training latent means."""
    z = ctx.latents("train")
    mean, std = z.mean(0), z.std(0)
    return lambda n, g: mean + std * torch.randn(n, len(mean), generator=g)


def test_a_plugin_sampler_gets_its_values_stored_under_its_suffix(offline, digits):
    from aebench.metrics.evaluate import evaluate

    spec = SamplerSpec(
        "diag-gauss",
        _gaussian_fit,
        label="diagonal Gaussian",
        description="samples decoded from a diagonal Gaussian",
        applies=lambda model: model.latent_kind != "discrete",
    )
    module = types.SimpleNamespace(register_samplers=registering("register_samplers", spec))
    plugins = get_plugins()
    plugins.register(module, "diag-gauss")
    try:
        train, test = digits
        ae = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=2, hidden_dims=(16,))
        ctx = make_context(ae, train, test, fid_samples=100, kid_subsets=2, novelty_train=0)
        ae.fit_prior(ctx.latents("train"))
        assert ctx.samplers()[-1] == "diag-gauss"
        narrowed = (*(s for s in ctx.sampler_specs if s.name == "expost"), spec)
        ctx.sampler_specs = narrowed  # skip the two-stage fit: this test is about the plugin's
        out = evaluate(ctx, [fid.METRIC, sm.METRIC])
    finally:
        plugins.unregister("diag-gauss")
    assert "fid_error" not in out, out.get("fid_error")
    assert out["fid_diag_gauss"] > 0 and out["fid_diag_gauss_sampler"] == spec.description
    assert out["kid_diag_gauss"] is not None and out["precision_diag_gauss"] is not None
    assert out["fid_diag_gauss"] != out["fid_expost"]


def test_spec_validation_and_default_suffix():
    assert SamplerSpec("flow-prior", lambda ctx: None).key_suffix == "_flow_prior"
    with pytest.raises(ValueError, match="suffix"):
        SamplerSpec("bad", lambda ctx: None, suffix="expost")


# -- which samplers apply ---------------------------------------------------------------
class _Toy(aebench.AutoEncoder):
    """Test-local model whose declarations the test sets."""

    family = "toy"

    def __init__(self) -> None:
        super().__init__(ModelConfig(latent_dim=2), (1, 8, 8))
        self.anchor = torch.nn.Parameter(torch.zeros(()))


def _toy(**declared) -> _Toy:
    cls = type("Declared", (_Toy,), declared)
    return cls()


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ({"latent_kind": "gaussian", "has_prior": True}, ("prior", "expost", "twostage")),
        ({"latent_kind": "deterministic", "has_prior": False}, ("expost", "twostage")),
        ({"latent_kind": "discrete", "has_prior": False}, ("codes",)),
        ({"latent_kind": "discrete", "has_prior": True}, ("prior", "codes")),
        ({"latent_kind": "gaussian", "samplers": ("expost", "codes")}, ("expost",)),
    ],
)
def test_samplers_apply_by_latent_kind_and_declaration(declared, expected):
    model = _toy(**declared)
    assert tuple(s.name for s in select(_builtins().values(), model)) == expected


def test_the_context_uses_the_registered_samplers(digits):
    train, test = digits
    vae = aebench.create_model("vae-mlp", (1, 8, 8), latent_dim=2, hidden_dims=(16,))
    ae = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=2, hidden_dims=(16,))
    assert make_context(vae, train, test).samplers()[:3] == ("prior", "expost", "twostage")
    ctx = make_context(ae, train, test)
    assert ctx.samplers()[:2] == ("expost", "twostage") and "prior" not in ctx.samplers()
    with pytest.raises(ValueError, match="does not apply"):
        ctx.samples(10, "prior")
    with pytest.raises(ValueError, match="not a registered sampler"):
        ctx.samples(10, "nosuch")
    narrowed = make_context(vae, train, test, sampler_specs=(_builtins()["expost"],))
    assert narrowed.samplers() == ("expost",)


def test_columns_of_every_builtin_sampler_are_declared():
    keys = {c.key for c in (*fid.METRIC.columns, *sm.METRIC.columns)}
    for sfx in ("", "_expost", "_twostage", "_codes"):
        assert {f"fid{sfx}", f"kid{sfx}", f"precision{sfx}", f"novelty{sfx}"} <= keys
    columns = {c.key: c for c in fid.METRIC.columns}
    assert columns["fid_twostage"].label == "FID (two-stage VAE)"
    assert columns["fid_codes"].applies_text == codes.APPLIES


# -- the two-stage VAE ---------------------------------------------------------------------
def test_two_stage_samples_are_seeded_and_finite(digits):
    train, test = digits
    torch.manual_seed(0)
    vae = aebench.create_model("vae-mlp", (1, 8, 8), latent_dim=4, hidden_dims=(32,))

    def draw(seed: int) -> torch.Tensor:
        ctx = make_context(vae, train.subset(slice(0, 300)), test, seed=seed)
        return ctx.samples(64, "twostage")

    first = draw(1)
    assert first.dtype == torch.uint8 and first.shape == (64, 1, 8, 8)
    assert torch.equal(first, draw(1))
    latents = torch.randn(300, 4) * torch.tensor([3.0, 1.0, 0.1, 0.01]) + 5
    state = torch.random.get_rng_state()
    net, losses = twostage.fit_second_stage(latents, seed=0, steps=100)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)
    z = net.generate(2000, torch.Generator().manual_seed(0))
    assert torch.isfinite(z).all()
    other, _ = twostage.fit_second_stage(latents, seed=1, steps=10)  # the seed matters
    assert not torch.equal(other.generate(5, torch.Generator()), net.generate(5, torch.Generator()))
    # standardised and un-standardised: the draws have the latents' scale per dimension
    ratio = z.std(0) / latents.std(0)
    assert ((ratio > 0.2) & (ratio < 3)).all(), ratio


# -- the code prior --------------------------------------------------------------------------
def _structured_codes(n: int, generator: torch.Generator) -> torch.Tensor:
    """Codes of 4 positions with K = 16: the first from a skewed marginal over 4
    values, every later one a function of the one before."""
    first = torch.multinomial(torch.tensor([0.4, 0.3, 0.2, 0.1]), n, True, generator=generator)
    rows = [first]
    for p in range(1, 4):
        rows.append((rows[-1] * 3 + p) % 16)
    return torch.stack(rows, 1)


def test_the_code_prior_learns_structured_codes():
    gen = torch.Generator().manual_seed(0)
    data = _structured_codes(1000, gen)
    prior, _ = codes.fit_code_prior(data, 16, seed=0)
    with torch.no_grad():
        nll = float(prior.nll(data).mean())
    entropy = -sum(p * math.log(p) for p in (0.4, 0.3, 0.2, 0.1))  # ~1.28 nats
    assert nll < entropy + 0.3 < codes.uniform_nll(4, 16)  # far below 4 log 16 ~ 11.09
    drawn = prior.generate(2000, torch.Generator().manual_seed(1))
    assert torch.equal(drawn, prior.generate(2000, torch.Generator().manual_seed(1)))
    for p in range(4):  # each position's histogram is the training one's
        want = torch.bincount(data[:, p], minlength=16).double() / len(data)
        got = torch.bincount(drawn[:, p], minlength=16).double() / len(drawn)
        assert 0.5 * (want - got).abs().sum() < 0.06, p
    # and the rows are the training rows (the dependence between positions is learned)
    seen = {tuple(r) for r in data.tolist()}
    assert sum(tuple(r) in seen for r in drawn.tolist()) / len(drawn) > 0.95


def test_the_code_prior_refuses_codes_out_of_range():
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 4\)"):
        codes.fit_code_prior(torch.tensor([[0, 4]]), 4)


class _Lookup(aebench.AutoEncoder):
    """Test-local discrete model: the code of each of 2 positions is the image's mean
    brightness bucket, decoded to a flat image of that brightness."""

    family = "lookup"
    latent_kind = "discrete"
    has_prior = False

    def __init__(self) -> None:
        super().__init__(ModelConfig(latent_dim=2), (1, 8, 8))
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    @property
    def num_codes(self) -> int:
        return 8

    def encode(self, x: torch.Tensor) -> Encoding:
        bucket = (x.mean((1, 2, 3)) * 8).long().clamp(0, 7)
        codes = torch.stack([bucket, 7 - bucket], 1)
        return Encoding(self.latents_from_codes(codes), codes=codes)

    def latents_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.float() / 8

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        level = torch.logit(z[:, :1].clamp(0.01, 0.99))
        return level[:, :, None, None].expand(-1, 1, 8, 8) + self.anchor


def test_code_prior_samples_through_the_context_are_seeded(digits):
    train, test = digits
    model = _Lookup()
    ctx = make_context(model, train, test, seed=3)
    assert ctx.samplers() == ("codes",)
    first = ctx.samples(200, "codes")
    again = make_context(model, train, test, seed=3).samples(200, "codes")
    assert torch.equal(first, again)
    # the decoded brightness levels are (nearly all) those of the training codes
    levels = first.float().mean((1, 2, 3)).div(255).mul(8).floor().long()
    train_levels = torch.unique(model.encode(train.images.float() / 255).codes[:, 0])
    assert torch.isin(levels, train_levels).double().mean() > 0.97


# -- a discrete family through aebench.run ---------------------------------------------------
def test_a_discrete_family_trains_and_is_evaluated_with_its_code_prior(
    offline, vq_plugin, tmp_path
):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        summary = aebench.run(
            "vq-test-mlp",
            "digits",
            out=tmp_path,
            profile="smoke",
            epochs=2,
            report=False,
            metric_options={"fid_samples": 200, "novelty_train": 200, "probe_samples": 200},
        )
    assert [o.status for o in summary.outcomes] == ["done"], summary.outcomes
    (run,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["latent_kind"] == "discrete"
    for key in ("fid_codes", "kid_codes", "precision_codes", "coverage_codes", "novelty_codes"):
        assert metrics[key] is not None and math.isfinite(metrics[key]), key
    assert "MADE" in metrics["fid_codes_sampler"]
    na = set(metrics["not_applicable"])
    for key in ("fid", "fid_expost", "fid_twostage", "kid_expost", "test_bpd"):
        assert metrics[key] is None and key in na, key
    # the latent-health columns (active units, collapse: KL per dimension) do not apply
    for key in ("active_units", "collapsed_fraction"):
        assert metrics[key] is None and key in na, key


# -- the leaderboard knows a value's sampler by its key -------------------------------------
def test_the_leaderboard_compares_sample_metrics_sampler_by_sampler():
    from pathlib import Path

    from aebench.report.columns import Column, facet, mark_leads, sampler_suffix
    from aebench.store import RunRecord

    metrics = {
        "fid_sampler": "N(0, I)",
        "fid_twostage_sampler": "two-stage VAE (...)",
        "fid_flow_sampler": "a plugin's flow",  # a sampler that is not installed here
    }
    record = RunRecord(Path("r"), "r", config={}, status="done", metrics=metrics)
    assert sampler_suffix("kid_std_twostage") == "_twostage" and sampler_suffix("kid_std") == ""
    assert facet("sampler", "kid_twostage", record) == "two-stage VAE (...)"
    assert facet("sampler", "precision", record) == "N(0, I)"
    assert facet("sampler", "kid_flow", record) == "a plugin's flow"
    assert facet("sampler", "kid_codes", record) == "codes"  # stored without its description
    columns = [
        Column(key=k, metric=k, label=k, direction="min", group="samples", source=source)
        for k, source in (
            ("fid_expost", "fid"),  # a leaderboard of AEs has no plain fid column
            ("fid_twostage", "fid"),
            ("kid", "samples"),
            ("kid_codes", "samples"),
        )
    ]
    assert all(c.lead for c in mark_leads(columns))
