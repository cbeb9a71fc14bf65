"""Specifics of the built-in models: registry, configs, nets, the AE prior, IWAE, and the
conformance suite's ability to catch broken models."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch

import aebench
from aebench import testing
from aebench.errors import ConfigError
from aebench.models.ae import AE, AEConfig
from aebench.models.base import ModelConfig
from aebench.models.beta_vae import BetaVAE, BetaVAEConfig
from aebench.models.nets import (
    build_decoder,
    build_encoder,
    cnn_spatial_sizes,
    make_spec,
    transpose_output_padding,
)
from aebench.models.vae import VAE, VAEConfig, gaussian_kl
from aebench.plugins import get_plugins

BUILTINS = ["ae-mlp", "ae-cnn", "vae-mlp", "vae-cnn", "beta-vae-mlp", "beta-vae-cnn"]


pytestmark = pytest.mark.usefixtures("one_thread")


# -- registry ----------------------------------------------------------------
def test_builtin_models_registered_with_family_and_arch() -> None:
    specs = {s.name: s for s in aebench.list_models()}
    assert [n for n in specs if n in BUILTINS] == BUILTINS
    for name in BUILTINS:
        family, arch = name.rsplit("-", 1)
        assert specs[name].family == family
        assert specs[name].arch == arch
        assert specs[name].description
        assert "built-in" in specs[name].plugin


def test_family_and_glob_selection() -> None:
    assert [s.name for s in aebench.list_models("vae")] == ["vae-mlp", "vae-cnn"]
    assert [s.name for s in aebench.list_models("beta-vae")] == ["beta-vae-mlp", "beta-vae-cnn"]
    builtin = [s for s in aebench.list_models() if s.plugin.endswith("(built-in)")]
    cnn = [s.name for s in aebench.list_models("*-cnn") if s.plugin.endswith("(built-in)")]
    assert cnn == [s.name for s in builtin if s.arch == "cnn"]
    assert {"ae-cnn", "beta-vae-cnn", "vae-cnn"} <= set(cnn)
    assert all(name.endswith("-cnn") for name in cnn)
    chosen = get_plugins().models.select("vae-*,ae-cnn")
    assert [s.name for s in chosen] == ["vae-mlp", "vae-cnn", "ae-cnn"]


def test_create_model_builds_the_right_class() -> None:
    m = aebench.create_model("vae-cnn", (1, 28, 28), latent_dim=8)
    assert type(m) is VAE and m.arch == "cnn" and m.latent_dim == 8
    assert m.encode(torch.rand(2, 1, 28, 28)).mean.shape == (2, 8)
    b = aebench.create_model("beta-vae-mlp", (1, 8, 8), beta=2.5)
    assert isinstance(b, BetaVAE) and isinstance(b, VAE) and b.family == "beta-vae"
    assert b.beta == 2.5
    assert aebench.create_model("vae-mlp", (1, 8, 8)).beta == 1.0
    a = aebench.create_model("ae-cnn", (3, 17, 23))
    assert isinstance(a, AE) and a.regulariser == "none" and a.log_likelihood(torch.rand(1)) is None


# -- configs -----------------------------------------------------------------
def _field_names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def test_config_inheritance_follows_the_families() -> None:
    assert issubclass(VAEConfig, ModelConfig)
    assert issubclass(BetaVAEConfig, VAEConfig)
    assert issubclass(AEConfig, ModelConfig)
    assert _field_names(BetaVAEConfig) - _field_names(VAEConfig) == {"beta"}
    assert _field_names(AEConfig) - _field_names(ModelConfig) == {"prior", "prior_components"}
    cfg = BetaVAEConfig()
    assert (cfg.latent_dim, cfg.beta, cfg.likelihood) == (16, 4.0, "bernoulli")
    assert aebench.model_spec("beta-vae-cnn").config_cls is BetaVAEConfig
    assert aebench.model_spec("ae-mlp").config_cls is AEConfig


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("beta-vae-mlp", {"beta": -1.0}, "beta must be"),
        ("beta-vae-mlp", {"beta": "big"}, "option beta: expected a number"),
        ("ae-mlp", {"prior": "flow"}, "prior must be one of gmm, gaussian"),
        ("ae-mlp", {"prior_components": 0}, "prior_components must be"),
        ("vae-mlp", {"latent_dim": 0}, "latent_dim"),
        ("vae-mlp", {"likelihood": "poisson"}, "likelihood"),
        ("vae-mlp", {"beta": 2.0}, "has no option 'beta'"),
        ("vae-cnn", {"hidden_dims": (32, 64)}, "cnn hidden_dims must be"),
    ],
)
def test_bad_config_raises_config_error(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        aebench.create_model(name, (1, 8, 8), **options)
    assert "\n" not in str(info.value)


def test_hidden_dims_are_used() -> None:
    m = aebench.create_model("ae-mlp", (1, 8, 8), hidden_dims=[40, 30, 20], latent_dim=4)
    widths = [layer.out_features for layer in m.encoder.modules() if hasattr(layer, "out_features")]
    assert widths == [40, 30, 20, 4]
    c = aebench.create_model("vae-cnn", (1, 28, 28), hidden_dims=(8, 16, 24))
    convs = [layer.out_channels for layer in c.encoder.modules() if hasattr(layer, "out_channels")]
    assert convs == [8, 16]
    assert c.loss_terms(torch.rand(2, 1, 28, 28))["total"].shape == (2,)


# -- nets --------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8), (1, 30, 30), (3, 17, 23), (2, 5, 3), (1, 1, 1)]
)
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_nets_round_trip_any_shape(arch: str, shape: tuple[int, int, int]) -> None:
    enc = build_encoder(arch, shape, None, out_dim=6)
    dec = build_decoder(arch, shape, None, latent_dim=5)
    x = torch.rand(2, *shape)
    assert enc(x).shape == (2, 6)
    assert dec(torch.randn(2, 5)).shape == (2, *shape)


def test_cnn_sizes_and_output_padding() -> None:
    assert cnn_spatial_sizes((1, 28, 28)) == [(28, 28), (14, 14), (7, 7)]
    assert cnn_spatial_sizes((3, 17, 23)) == [(17, 23), (9, 12), (5, 6)]
    assert transpose_output_padding(7, 14) == 1
    assert transpose_output_padding(5, 9) == 0
    with pytest.raises(ValueError):
        transpose_output_padding(5, 12)
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_encoder("rnn", (1, 8, 8), None, 4)


# -- the AE's fitted prior ---------------------------------------------------
def test_ae_sample_before_fit_prior_raises() -> None:
    m = aebench.create_model("ae-mlp", (1, 8, 8))
    with pytest.raises(RuntimeError, match="fit_prior"):
        m.sample(2)


def test_ae_gaussian_prior_recovers_mean_and_covariance() -> None:
    m = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=3, prior="gaussian")
    assert m.prior_description.startswith("Gaussian (full covariance)")
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, -2.0, 0.5])
    lower = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [-0.3, 0.2, 0.3]])
    data = mu + torch.randn(5000, 3, generator=gen) @ lower.T
    m.fit_prior(data)
    z = m.sample_latents(20000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(z.mean(0), mu, atol=0.05)
    assert torch.allclose(torch.cov(z.T), lower @ lower.T, atol=0.06)


def test_ae_gmm_prior_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    m = aebench.create_model("ae-cnn", (1, 8, 8), latent_dim=4, prior_components=3)
    assert m.prior_description == "GaussianMixture(3, full) fitted on training latent means"
    centres = torch.tensor([[5.0, 0, 0, 0], [-5.0, 0, 0, 0], [0, 5.0, 0, 0]])
    data = centres.repeat(100, 1) + 0.1 * torch.randn(300, 4)
    m.fit_prior(data)
    assert sorted(m.prior_weights.tolist()) == pytest.approx([1 / 3] * 3, abs=1e-3)
    z = m.sample_latents(600, generator=torch.Generator().manual_seed(2))
    nearest = torch.cdist(z, centres).min(1).values
    assert float(nearest.max()) < 1.0  # every draw comes from one of the three clusters

    fresh = aebench.create_model("ae-cnn", (1, 8, 8), latent_dim=4, prior_components=3)
    fresh.load_state_dict(m.state_dict())
    a = m.sample(5, generator=torch.Generator().manual_seed(3))
    b = fresh.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (5, 1, 8, 8)


def test_ae_fit_prior_rejects_too_few_latents() -> None:
    m = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=4)
    with pytest.raises(ValueError, match="at least 10"):
        m.fit_prior(torch.randn(5, 4))


# -- VAE ---------------------------------------------------------------------
def test_gaussian_kl_closed_form() -> None:
    mean = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]])
    # KL(N(1, 4) || N(0, 1)) = 0.5 (4 + 1 - 1 - log 4); KL(N(-2, 1) || N(0, 1)) = 2
    expected = torch.tensor([0.0, 0.5 * (4 + 1 - 1 - math.log(4.0)) + 2.0])
    assert torch.allclose(gaussian_kl(mean, logvar), expected)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_iwae_with_k1_equals_elbo_in_expectation(likelihood: str) -> None:
    model = testing.build("vae-mlp", (1, 8, 8), likelihood=likelihood, latent_dim=4)
    x = testing.digits_batch(16)
    testing.train(model, testing.digits_batch(64), steps=60, lr=3e-3)
    model.eval()
    torch.manual_seed(0)
    repeats = 200
    with torch.no_grad():
        elbo = torch.stack(
            [-(t["recon"] + t["reg"]).mean() for t in (model.loss_terms(x) for _ in range(repeats))]
        )
        iw1 = torch.stack([model.log_likelihood(x, k=1).mean() for _ in range(repeats)])
        iw16 = torch.stack([model.log_likelihood(x, k=16).mean() for _ in range(20)])
    se = math.sqrt(float(elbo.var() + iw1.var()) / repeats)
    assert abs(float(elbo.mean() - iw1.mean())) < 4 * se + 1e-3
    assert float(iw16.mean()) > float(iw1.mean())


def test_iwae_chunking_shape_and_sampling_determinism() -> None:
    model = aebench.create_model("vae-cnn", (1, 8, 8), latent_dim=4)
    x = testing.digits_batch(5)
    ll = model.log_likelihood(x, k=7, max_batch=10)  # chunks of 2 draws, last one short
    assert ll.shape == (5,) and bool(torch.isfinite(ll).all())
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    b = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and bool(((a >= 0) & (a <= 1)).all())


# -- the conformance suite (its broken models: tests/test_conformance_models.py) ------
@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
def test_beta_weights_exactly_the_kl_term(beta: float) -> None:
    """β-VAE: total = recon + β·KL per image, and the bound (bits/dim) stays recon + KL."""
    torch.manual_seed(0)
    model = aebench.create_model("beta-vae-mlp", (1, 8, 8), latent_dim=3, beta=beta).eval()
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(1)
    terms = model.loss_terms(x)
    torch.testing.assert_close(terms["total"], terms["recon"] + beta * terms["reg"])
    assert model.bound == ("recon", "reg")
    assert model.objective_name == "β-ELBO"


def test_check_model_runs_everything_on_a_spec() -> None:
    spec = make_spec("vae-tiny", "vae", "mlp", VAE, VAEConfig, "")
    testing.check_model(spec, input_shapes=[(1, 8, 8), (1, 5, 7)], skip=["training"])
    with pytest.raises(KeyError, match="unknown check"):
        testing.check_model(spec, skip=["nope"])


def test_gmm_fit_does_not_depend_on_blas_threads() -> None:
    """The ex-post mixture is fitted with one BLAS thread (faster and the same on every
    machine): the caller's thread pool setting does not change it."""
    from threadpoolctl import threadpool_limits

    from aebench.models.density import fit_gmm

    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 16, generator=g) + 3 * torch.randint(0, 4, (4000, 1), generator=g)
    with threadpool_limits(limits=1):
        one = fit_gmm(z, 10)
    with threadpool_limits(limits=2):
        two = fit_gmm(z, 10)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
