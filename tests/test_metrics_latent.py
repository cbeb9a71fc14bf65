"""Latent health: active units (Burda et al. 2016) and KL per dimension, on known answers."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import aebench
from aebench.metrics.evaluate import evaluate, make_context
from aebench.metrics.latent import METRIC, active_units, kl_per_dim


def test_active_units_counts_dimensions_whose_mean_varies():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(500, 5, generator=g)
    means[:, 1] = 3.0  # constant: inactive
    means[:, 3] *= 0.05  # variance 0.0025 < 0.01: inactive
    assert active_units(means) == 3
    assert active_units(means, threshold=0.001) == 4
    assert active_units(means[:1]) == 0


def test_kl_per_dim_equals_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)
    torch.testing.assert_close(kl_per_dim(mu, logvar), expected.double(), rtol=1e-6, atol=1e-9)


def test_a_vae_with_dead_dimensions_is_flagged(digits):
    train, test = digits
    torch.manual_seed(0)
    model = aebench.create_model("vae-mlp", (1, 8, 8), latent_dim=4)
    last = model.encoder[-1][-1]  # the Linear producing (mean, logvar)
    with torch.no_grad():
        last.weight[:2] *= 30.0  # dims 0 and 1: means spread far from the prior's
        for row in (2, 3, 6, 7):  # dims 2 and 3: mean 0, log-variance 0 for every image
            last.weight[row] = 0.0
            last.bias[row] = 0.0
    out = evaluate(make_context(model, train, test), [METRIC])
    assert out["collapsed_fraction"] == 0.5 and out["kl_per_dim"][2:] == [0.0, 0.0]
    assert out["active_units"] == 2
    # the per-dimension KL adds up to the model's own KL term
    with torch.no_grad():
        enc = model.encode(test.batch(slice(None)))
        mean, logvar = enc.mean, enc.logvar
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
    assert sum(out["kl_per_dim"]) == pytest.approx(float(kl), rel=1e-5)


def test_an_autoencoder_has_active_units_but_no_collapse(digits):
    train, test = digits
    torch.manual_seed(0)
    model = aebench.create_model("ae-mlp", (1, 8, 8), latent_dim=3)
    out = evaluate(make_context(model, train, test), [METRIC])
    assert out["active_units"] <= 3 and "kl_per_dim" not in out
    assert out["collapsed_fraction"] is None and out["not_applicable"] == ["collapsed_fraction"]
