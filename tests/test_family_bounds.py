"""IWAE, the VampPrior VAE and VQ-VAE checked against references on identical weights,
batches and noise: pythae 0.1.2's implementations (its models are built around aebench's
own encoder and decoder modules, so the weights are shared), formulas written here with
torch.distributions, and cases with a known answer. Also each schedule and each option.

Deliberate differences from pythae, converted explicitly where they are compared:

* IWAE: pythae's ``loss`` is the surrogate ``-sum_i w~_i log w_i`` (normalised weights
  detached): it has the k-sample bound's gradient but not its value, and its
  ``recon_loss`` averages all k draws. aebench's ``total`` is the bound itself and
  ``recon`` is the first draw's. So the gradients are compared at k = 5, the values at
  k = 1 (where the two coincide), and the bound's value against a formula written here.
* VampPrior: pythae's log-density constants (log 2π) are omitted on both sides of the
  KL estimate and cancel; its ``log C`` is a float32 constant (6.6e-8 off in float64).
  Its Gaussian reconstruction is ``0.5 * sum (x - x̂)^2``: aebench's with variance 1
  less the normalising constant ``D/2 log 2π``.
* VQ-VAE: pythae reduces the codebook and commitment terms by a mean over the batch,
  positions and dimensions; aebench's per-image ``reg`` sums them over positions and
  dimensions (the paper's squared norms), so ``reg.mean() / (P * D)`` equals pythae's
  ``vq_loss``, and pythae's ``loss`` weighs them P*D times less against the
  reconstruction. Its reconstruction is ``sum (x - x̂)^2``: aebench's Gaussian with
  variance 0.5 less ``D/2 log π``. pythae's EMA quantiser stores the Laplace-smoothed
  cluster sizes back into its running counts; aebench keeps the counts unsmoothed and
  smooths only where it divides (as Sonnet does), so the codebooks agree exactly and the
  stored counts differ by the smoothing (about 1e-5 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import distributions as D
from torch import nn

from aebench import testing
from aebench.catalog import model_spec, sampler_specs
from aebench.errors import ConfigError
from aebench.models.base import StepInfo
from aebench.models.iwae import IWAE
from aebench.models.nets import make_spec
from aebench.models.vamp import VampVAE, warmup_weight
from aebench.models.vq_vae import LAPLACE_EPS, VQVAE, VQVAEConfig
from aebench.samplers.base import select

pythae = pytest.importorskip("pythae")
from pythae.models import IWAE as PythaeIWAE  # noqa: E402
from pythae.models import VAMP, IWAEConfig, VAMPConfig  # noqa: E402
from pythae.models import VQVAE as PythaeVQVAE  # noqa: E402
from pythae.models import VQVAEConfig as PythaeVQConfig  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseDecoder, BaseEncoder  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (1, 8, 8)
PIXELS = 64
LATENT = 16


# -- pythae wrappers around aebench's own modules ----------------------------------------
class GaussianEncoder(BaseEncoder):
    """pythae's encoder interface over an aebench VAE's ``posterior``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mean, logvar = self.model.posterior(x)
        return ModelOutput(embedding=mean, log_covariance=logvar)


class SigmoidDecoder(BaseDecoder):
    """pythae's decoder interface: the mean image, sigmoid of aebench's logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.model.decoder(z)))


class FieldEncoder(BaseEncoder):
    """A VQ-VAE encoder as pythae wants it: a (B, D, 1, P) feature map, whose P "pixels"
    are aebench's P code positions."""

    def __init__(self, model: VQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> ModelOutput:
        m = self.model
        z = m.encoder(x).view(x.shape[0], 1, m.positions, m.code_dim)
        return ModelOutput(embedding=z.permute(0, 3, 1, 2))


class FieldDecoder(BaseDecoder):
    def __init__(self, model: VQVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> ModelOutput:
        flat = z.permute(0, 2, 3, 1).reshape(z.shape[0], -1)
        return ModelOutput(reconstruction=torch.sigmoid(self.model.decoder(flat)))


def max_diff(a: torch.Tensor | float, b: torch.Tensor | float) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).detach().abs().max())


def grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, params, allow_unused=False))


def last_linear(module: nn.Module) -> nn.Linear:
    return [m for m in module.modules() if isinstance(m, nn.Linear)][-1]


# -- IWAE ---------------------------------------------------------------------------------
def iwae_pair(k: int) -> tuple[IWAE, PythaeIWAE, torch.Tensor]:
    model = testing.build("iwae-mlp", SHAPE, k=k).double()
    x = testing.digits_batch(16).double()
    testing.away_from_prior(model, x)  # a few nats of KL, so the weights are uneven
    model.train()
    config = IWAEConfig(
        input_dim=SHAPE, latent_dim=LATENT, reconstruction_loss="bce", number_samples=k
    )
    ref = PythaeIWAE(config, encoder=GaussianEncoder(model), decoder=SigmoidDecoder(model))
    ref.train()
    return model, ref, x


def test_iwae_gradient_equals_pythae_at_k5() -> None:
    """Same noise (both draw one (B, k, d) tensor from the seeded global stream): the
    gradient of the mean negative k-bound equals that of pythae's surrogate loss."""
    model, ref, x = iwae_pair(5)
    params = list(model.parameters())
    torch.manual_seed(0)
    theirs = grads(ref({"data": x}).loss, params)
    torch.manual_seed(0)
    ours = grads(model.objective(x, StepInfo(0, 1, 1, 1, 16))[0], params)
    worst = max(max_diff(a, b) for a, b in zip(ours, theirs, strict=True))
    assert worst < 1e-10, worst  # seen: 1.8e-15


def test_iwae_value_equals_pythae_at_k1() -> None:
    model, ref, x = iwae_pair(1)
    torch.manual_seed(0)
    out = ref({"data": x})
    torch.manual_seed(0)
    terms = model.loss_terms(x)
    assert max_diff(terms["total"].mean(), out.loss) < 1e-9
    assert max_diff(terms["recon"].mean(), out.recon_loss) < 1e-9


def test_iwae_bound_equals_the_formula() -> None:
    """-log 1/k sum_i p(x|z_i) p(z_i) / q(z_i|x), written with torch.distributions on the
    same draws; ``recon`` is the first draw's -log p(x|z); ``reg`` the analytic KL."""
    model, _, x = iwae_pair(5)
    model.eval()
    with torch.no_grad():
        torch.manual_seed(3)
        terms = model.loss_terms(x)
        torch.manual_seed(3)
        mean, logvar = model.posterior(x)
        eps = torch.randn(16, 5, LATENT, dtype=x.dtype)
        q = D.Normal(mean.unsqueeze(1), torch.exp(0.5 * logvar).unsqueeze(1))
        z = q.loc + q.scale * eps
        logits = model.decoder(z.reshape(80, LATENT)).reshape(16, 5, -1)
        bernoulli = D.Bernoulli(logits=logits, validate_args=False)  # x in [0, 1]: -BCE
        log_px = bernoulli.log_prob(x.reshape(16, 1, -1)).sum(-1)
        log_pz = D.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_w = log_px + log_pz - q.log_prob(z).sum(-1)
        bound = -(torch.logsumexp(log_w, 1) - math.log(5))
        kl = D.kl_divergence(D.Normal(mean, torch.exp(0.5 * logvar)), D.Normal(0.0, 1.0)).sum(1)
    assert max_diff(terms["total"], bound) < 1e-9
    assert max_diff(terms["iwae"], bound) < 1e-9
    assert max_diff(terms["recon"], -log_px[:, 0]) < 1e-9
    assert max_diff(terms["reg"], kl) < 1e-9


def test_iwae_k_tightens_the_bound_and_k1_is_the_elbo() -> None:
    model, _, x = iwae_pair(1)
    model.eval()
    with torch.no_grad():
        torch.manual_seed(0)
        one = model.loss_terms(x)
        torch.manual_seed(0)
        elbo = model.log_likelihood(x, k=1)  # the VAE's estimator, same draw
        assert elbo is not None
        assert max_diff(one["total"], -elbo) < 1e-9
        means = {}
        for k in (1, 50):
            model.config.k = k  # type: ignore[attr-defined]
            torch.manual_seed(1)
            means[k] = float(torch.stack([model.loss_terms(x)["total"] for _ in range(4)]).mean())
    assert means[50] < means[1] - 0.5, means  # a tighter (lower) negative bound
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        testing.build("iwae-mlp", SHAPE, k=0)


def test_iwae_declarations() -> None:
    assert IWAE.bound == ("iwae",)
    assert IWAE.regulariser == "kl"
    assert model_spec("iwae-cnn").objective_options == (("k", "k"),)
    assert testing.build("iwae-mlp", SHAPE).k == 5


# -- VampPrior ----------------------------------------------------------------------------
def vamp_pair(
    components: int = 7, warmup: int = 10, **config: object
) -> tuple[VampVAE, VAMP, torch.Tensor]:
    model = testing.build(
        "vamp-vae-mlp", SHAPE, n_components=components, warmup_epochs=warmup, **config
    ).double()
    x = testing.digits_batch(16).double()
    likelihood = "mse" if config.get("likelihood") == "gaussian" else "bce"
    ref_config = VAMPConfig(
        input_dim=SHAPE,
        latent_dim=LATENT,
        reconstruction_loss=likelihood,
        number_components=components,
        linear_scheduling_steps=warmup,
    )
    ref = VAMP(ref_config, encoder=GaussianEncoder(model), decoder=SigmoidDecoder(model)).double()
    with torch.no_grad():  # pythae's pseudo-inputs: hardtanh(Linear(one-hot)): ours, exactly
        layer = ref.pseudo_inputs[0]
        layer.weight.copy_(model.pseudo_inputs.reshape(components, -1).T)
        layer.bias.zero_()
    ref.idle_input = ref.idle_input.double()
    return model, ref, x


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vamp_equals_pythae_through_the_warmup(likelihood: str) -> None:
    """Loss, reconstruction and KL estimate at epochs before, at and after the warm-up,
    and outside training (pythae in eval mode, aebench with step=None)."""
    extra = {"likelihood": "gaussian", "gaussian_var": 1.0} if likelihood == "gaussian" else {}
    model, ref, x = vamp_pair(**extra)
    const = 0.5 * PIXELS * math.log(2 * math.pi) if likelihood == "gaussian" else 0.0
    worst = 0.0
    for epoch in (1, 5, 10, 20, None):
        for m in (model, ref):
            m.train(epoch is not None)
        torch.manual_seed(0)
        out = ref({"data": x}, epoch=epoch or 1)
        torch.manual_seed(0)
        step = None if epoch is None else StepInfo(3 * (epoch - 1), epoch, 3, 30, 48)
        loss, logs = model.objective(x, step)
        torch.manual_seed(0)
        terms = model.loss_terms(x)
        weight = 1.0 if epoch is None else min(1.0, epoch / 10)
        assert float(logs["kl_weight"]) == pytest.approx(weight)
        for ours, theirs in (
            (loss - const, out.loss),
            (terms["recon"].mean() - const, out.recon_loss),
            (terms["reg"].mean(), out.reg_loss),
        ):
            worst = max(worst, max_diff(ours, theirs))
    assert worst < 1e-6, worst  # seen: 6.6e-8 (pythae's float32 log C)


def test_warmup_schedule() -> None:
    def at(epoch: int) -> StepInfo:
        return StepInfo((epoch - 1) * 10, epoch, 10, 200, 1000)

    assert warmup_weight(StepInfo(0, 1, 10, 200, 1000), 100) == pytest.approx(0.01)  # step 0
    assert warmup_weight(at(50), 100) == pytest.approx(0.5)  # midway
    assert warmup_weight(at(100), 100) == 1.0  # end
    assert warmup_weight(at(150), 100) == 1.0
    assert warmup_weight(None, 100) == 1.0  # evaluation: the final objective
    assert warmup_weight(at(1), 0) == 1.0  # no warm-up
    model = testing.build("vamp-vae-mlp", SHAPE)
    assert model.warmup_epochs == 100 and model.n_components == 50
    x = testing.digits_batch(8)
    torch.manual_seed(0)
    loss, logs = model.objective(x, at(25))
    torch.manual_seed(0)
    terms = model.loss_terms(x)
    expected = (terms["recon"] + 0.25 * terms["reg"]).mean()
    assert float(logs["kl_weight"]) == pytest.approx(0.25)
    assert max_diff(loss, expected) < 1e-4


def test_vamp_prior_with_one_component_is_its_posterior() -> None:
    """K = 1: log p(z) is the density of q(z|u_1), and the mean of the one-draw KL
    estimate ``reg`` converges to the closed-form KL between two diagonal Gaussians."""
    model, _, x = vamp_pair(components=1)
    testing.away_from_prior(model, x)
    model.eval()
    with torch.no_grad():
        (pm, plv), (mean, logvar) = model.prior_components(), model.posterior(x[:4])
        z = torch.randn(5, LATENT, dtype=x.dtype)
        density = D.Normal(pm[0], torch.exp(0.5 * plv[0])).log_prob(z).sum(-1)
        assert max_diff(model.log_prior(z), density) < 1e-9
        q = D.Normal(mean, torch.exp(0.5 * logvar))
        closed = D.kl_divergence(q, D.Normal(pm[0], torch.exp(0.5 * plv[0]))).sum(1)
        torch.manual_seed(0)  # 2000 draws per image, in one batch (the terms are per image)
        draws = model.loss_terms(x[:4].repeat(2000, 1, 1, 1))["reg"].view(2000, 4)
    se = draws.std(0) / math.sqrt(len(draws))
    assert bool(((draws.mean(0) - closed).abs() < 5 * se + 1e-6).all()), (draws.mean(0), closed)
    # K identical pseudo-inputs: the same density as one of them.
    many = testing.build("vamp-vae-mlp", SHAPE, n_components=3).double()
    repeated = model.pseudo_params.detach().repeat(3, 1, 1, 1)
    many.load_state_dict(model.state_dict() | {"pseudo_params": repeated})
    with torch.no_grad():
        assert max_diff(many.log_prior(z), density) < 1e-9


def test_vamp_log_likelihood_uses_the_mixture() -> None:
    """k = 1 and the same draw: log w = -(recon + reg), the mixture's one-draw ELBO."""
    model, _, x = vamp_pair()
    model.eval()
    with torch.no_grad():
        torch.manual_seed(2)
        terms = model.loss_terms(x)
        torch.manual_seed(2)
        ll = model.log_likelihood(x, k=1)
    assert ll is not None
    assert max_diff(ll, -(terms["recon"] + terms["reg"])) < 1e-9


def test_vamp_samples_come_from_the_mixture() -> None:
    """With the encoder's variance squeezed to ~0, every prior draw is a component mean,
    and every component is drawn."""
    model = testing.build("vamp-vae-mlp", SHAPE, n_components=4).double().eval()
    head = last_linear(model.encoder)
    with torch.no_grad():
        head.weight[LATENT:].zero_()
        head.bias[LATENT:].fill_(-30.0)
        means, _ = model.prior_components()
        z = model.sample_latents(200, torch.Generator().manual_seed(0))
        again = model.sample_latents(200, torch.Generator().manual_seed(0))
    nearest = torch.cdist(z, means).min(1)
    assert float(nearest.values.max()) < 1e-4
    assert set(nearest.indices.tolist()) == {0, 1, 2, 3}
    assert torch.equal(z, again)
    assert model.sample(3, torch.Generator().manual_seed(0)).shape == (3, *SHAPE)


def test_vamp_pseudo_inputs_start_from_data_or_at_random() -> None:
    x = testing.digits_batch(6)
    torch.manual_seed(0)
    model = testing.build("vamp-vae-mlp", SHAPE, n_components=4)
    grey = model.pseudo_inputs.detach().clone()
    assert float((grey - 0.49).abs().max()) < 0.02  # sigmoid(N(-0.05, 0.01^2))
    model.on_train_start(100, x)  # pseudo_init="data": the batch's first K images
    clamped = x[:4].clamp(0.01, 0.99)
    assert max_diff(model.pseudo_inputs, clamped) < 1e-5
    more = testing.build("vamp-vae-mlp", SHAPE, n_components=9)
    more.on_train_start(100, x)  # K > batch: all six, then three noisy repeats
    assert max_diff(more.pseudo_inputs[:6], x.clamp(0.01, 0.99)) < 1e-5
    repeats = more.pseudo_inputs[6:].detach() - x[:3].clamp(0.01, 0.99)
    assert 0 < float(repeats.abs().max()) < 0.1
    torch.manual_seed(0)
    random = testing.build("vamp-vae-mlp", SHAPE, n_components=4, pseudo_init="random")
    random.on_train_start(100, x)
    assert torch.equal(random.pseudo_inputs, grey)
    with pytest.raises(ConfigError, match="pseudo_init"):
        testing.build("vamp-vae-mlp", SHAPE, pseudo_init="kmeans")


def test_vamp_declarations() -> None:
    assert VampVAE.bound == ("recon", "reg")
    assert VampVAE.regulariser == "kl-mc"
    model = testing.build("vamp-vae-mlp", SHAPE, n_components=9)
    assert model.pseudo_inputs.shape == (9, *SHAPE)
    assert bool(((model.pseudo_inputs > 0) & (model.pseudo_inputs < 1)).all())
    for bad in ({"n_components": 0}, {"warmup_epochs": -1}):
        with pytest.raises(ConfigError):
            testing.build("vamp-vae-mlp", SHAPE, **bad)


# -- VQ-VAE -------------------------------------------------------------------------------
P, DIM, K = 4, 4, 8


def vq_pair(ema: bool, x: torch.Tensor) -> tuple[VQVAE, PythaeVQVAE]:
    """An aebench VQ-VAE (Gaussian likelihood, variance 0.5: summed squared error), its
    codebook initialised from ``x``, and pythae's around the same modules and codebook."""
    torch.manual_seed(0)
    model = testing.build(
        "vq-vae-mlp", SHAPE, num_embeddings=K, embedding_dim=DIM, likelihood="gaussian", ema=ema
    )
    config = PythaeVQConfig(
        input_dim=SHAPE,
        latent_dim=LATENT,
        num_embeddings=K,
        commitment_loss_factor=0.25,
        use_ema=ema,
        decay=0.99,
    )
    ref = PythaeVQVAE(config, encoder=FieldEncoder(model), decoder=FieldDecoder(model))
    model.on_train_start(len(x), x)
    with torch.no_grad():
        quantizer = ref.quantizer
        if ema:
            quantizer.embeddings.copy_(model.codebook)
            quantizer.ema_embed.copy_(model.ema_sum)
            quantizer.cluster_size.copy_(model.ema_count)
        else:
            quantizer.embeddings.weight.copy_(model.codebook)
    return model, ref


SQ_CONST = 0.5 * PIXELS * math.log(math.pi)  # aebench's Gaussian constant at variance 0.5


def test_vq_equals_pythae_without_ema() -> None:
    """Terms (converted, see the module docstring), codes, and the gradient of every
    weight and of the codebook, with pythae's loss reweighted to aebench's sums."""
    x = testing.digits_batch(16)
    model, ref = vq_pair(False, x)
    model.train()
    ref.train()
    out = ref({"data": x})
    terms = model.loss_terms(x)
    assert torch.equal(out.quantized_indices.reshape(16, P), model.encode(x).codes)
    assert max_diff(terms["recon"].mean() - SQ_CONST, out.recon_loss) < 1e-4  # seen 3.8e-6
    assert max_diff(terms["reg"].mean() / (P * DIM), out.vq_loss) < 1e-6
    weights = [p for n, p in model.named_parameters() if n != "codebook"]
    theirs = grads(
        out.recon_loss + P * DIM * out.vq_loss, [*weights, ref.quantizer.embeddings.weight]
    )
    ours = grads(terms["total"].mean(), [*weights, model.codebook])
    worst = max(
        max_diff(a, b) / (1 + float(b.abs().max())) for a, b in zip(ours, theirs, strict=True)
    )
    assert worst < 1e-5, worst


def test_vq_equals_pythae_with_ema() -> None:
    """Commitment-only loss, then one EMA update from the same assignments: the same
    codebook and sums; pythae's stored counts are aebench's, Laplace-smoothed."""
    x = testing.digits_batch(32)
    model, ref = vq_pair(True, x)
    model.train()
    ref.train()
    out = ref({"data": x})  # pythae updates its codebook inside forward
    terms, z_e, codes = model._forward(x)
    assert max_diff(terms["recon"].mean() - SQ_CONST, out.recon_loss) < 1e-4
    assert max_diff(terms["reg"].mean() / (P * DIM), out.vq_loss) < 1e-6
    model.ema_update(z_e.detach(), codes)
    q = ref.quantizer
    assert max_diff(model.codebook, q.embeddings) < 1e-5
    assert max_diff(model.ema_sum, q.ema_embed) < 1e-6
    n = model.ema_count.sum()
    smoothed = (model.ema_count + LAPLACE_EPS) / (n + K * LAPLACE_EPS) * n
    assert max_diff(smoothed, q.cluster_size) < 1e-5
    assert max_diff(model.ema_count, q.cluster_size) > 0  # the documented difference


def test_vq_terms_equal_the_formula_and_follow_the_options() -> None:
    """reg = (1 + β) d² without EMA and β d² with it, d² the squared distance of each
    encoder output to its nearest entry (found here by brute force); total = recon + reg."""
    x = testing.digits_batch(16)
    for ema in (False, True):
        for beta in (0.0, 0.25, 2.0):
            torch.manual_seed(0)
            model = testing.build(
                "vq-vae-mlp", SHAPE, num_embeddings=K, embedding_dim=DIM, ema=ema, commitment=beta
            )
            model.on_train_start(16, x)
            with torch.no_grad():
                z_e = model.encoder(x).view(16, P, DIM)
                d2 = torch.cdist(z_e.reshape(-1, DIM), model.codebook).pow(2).min(1).values
                d2 = d2.view(16, P).sum(1)
                terms = model.loss_terms(x)
            weight = beta if ema else 1 + beta
            assert max_diff(terms["reg"], weight * d2) < 1e-4
            assert max_diff(terms["total"], terms["recon"] + terms["reg"]) < 1e-4
            codebook_is_param = any(n == "codebook" for n, _ in model.named_parameters())
            assert codebook_is_param == (not ema)


def test_vq_ema_training_step() -> None:
    """With EMA the optimiser never sees the codebook; after a step the codebook is the
    EMA update from the batch's pre-step encoder outputs."""
    x = testing.digits_batch(32)
    torch.manual_seed(0)
    model = testing.build("vq-vae-mlp", SHAPE, num_embeddings=K, embedding_dim=DIM, ema=True)
    model.train()
    (opt,) = model.configure_optimizers(1e-3)
    model.on_train_start(32, x)
    expected = VQVAE(model.config, SHAPE)
    expected.load_state_dict(model.state_dict())
    with torch.no_grad():
        _, z_e, codes = expected._forward(x)
    expected.ema_update(z_e, codes)
    logs = model.training_step(x, StepInfo(0, 1, 1, 1, 32), [opt])
    assert set(logs) == {"total", "recon", "reg"}
    assert max_diff(model.codebook, expected.codebook) < 1e-6
    assert not torch.equal(model.encoder[1][0].weight, expected.encoder[1][0].weight)
    assert all(p is not model.codebook for g in opt.param_groups for p in g["params"])


def test_vq_data_dependent_initialisation() -> None:
    torch.manual_seed(0)
    model = testing.build("vq-vae-mlp", SHAPE, num_embeddings=K, embedding_dim=DIM, ema=True)
    x = testing.digits_batch(4)  # 16 vectors >= K = 8: K of them
    model.on_train_start(4, x)
    with torch.no_grad():
        flat = model.encoder(x).view(-1, DIM)
    assert float(torch.cdist(model.codebook, flat).min(1).values.max()) < 1e-6
    assert torch.equal(model.ema_sum, model.codebook)
    assert torch.equal(model.ema_count, torch.ones(K))
    small = testing.build("vq-vae-mlp", SHAPE, num_embeddings=40, embedding_dim=DIM)
    small.on_train_start(4, x)  # 16 vectors < K = 40: all of them, then jittered repeats
    with torch.no_grad():
        flat = small.encoder(x).view(-1, DIM)
        assert torch.equal(small.codebook[:16], flat)
        near = torch.cdist(small.codebook[16:], flat).min(1).values
    assert float(near.max()) < 0.1 and float(near.min()) > 0


def test_vq_batch_terms_known_answers() -> None:
    model = testing.build("vq-vae-mlp", SHAPE, num_embeddings=K, embedding_dim=DIM).eval()
    x = testing.digits_batch(16)
    with torch.no_grad():
        model.codebook.fill_(1e3)
        model.codebook[2] = 0.0  # every vector's nearest entry
        out = model.batch_terms(x)
        assert float(out["codebook_perplexity"]) == pytest.approx(1.0)
        assert float(out["codebook_usage"]) == pytest.approx(1 / K)
        model.codebook.copy_(torch.randn(K, DIM))
        codes = model.encode(x).codes
        assert codes is not None
        freq = torch.bincount(codes.flatten(), minlength=K).double() / codes.numel()
        entropy = -sum(float(p * p.log()) for p in freq if p > 0)
        out = model.batch_terms(x)
    assert float(out["codebook_perplexity"]) == pytest.approx(math.exp(entropy))
    assert float(out["codebook_usage"]) == pytest.approx(float((freq > 0).double().mean()))


def test_vq_fit_prior_and_sample() -> None:
    """fit_prior stores each position's code frequencies; sample draws only seen codes."""
    model = testing.build("vq-vae-mlp", SHAPE, num_embeddings=K, embedding_dim=DIM).eval()
    codes = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 5], [0, 6, 2, 5], [0, 6, 2, 5]])
    with torch.no_grad():
        model.codebook.copy_(torch.randn(K, DIM) * 10)
        model.fit_prior(model.latents_from_codes(codes))
    probs = model.code_probs
    assert probs[0, 0] == 1 and probs[1, 1] == 0.5 and probs[1, 6] == 0.5 and probs[3, 5] == 0.75
    gen = torch.Generator().manual_seed(0)
    drawn = torch.multinomial(probs.double(), 100, replacement=True, generator=gen).T
    assert bool((probs.gather(1, drawn.T).T > 0).all())
    assert model.sample(5, torch.Generator().manual_seed(0)).shape == (5, *SHAPE)
    assert "code frequencies" in model.prior_description


def test_vq_declarations_and_samplers() -> None:
    model = testing.build("vq-vae-cnn", SHAPE)
    assert (model.latent_kind, model.bound, model.has_prior, model.regulariser) == (
        "discrete",
        (),
        False,
        "vq",
    )
    assert model.num_codes == 64 and model.positions == 4 and model.config.commitment == 0.25
    assert model.log_likelihood(testing.digits_batch(2)) is None  # no NLL, no bits/dim
    assert [s.name for s in select(sampler_specs(), model)] == ["codes"]
    assert model_spec("vq-vae-mlp").objective_options == (("commitment", "β"), ("ema", "EMA"))
    for bad in ({"embedding_dim": 5}, {"num_embeddings": 1}, {"decay": 1.0}):
        with pytest.raises(ConfigError):
            testing.build("vq-vae-mlp", SHAPE, **bad)


@dataclass
class _EMAConfig(VQVAEConfig):
    ema: bool = True


def test_vq_ema_passes_the_kit() -> None:
    spec = make_spec("vq-vae-ema-mlp", "vq-vae", "mlp", VQVAE, _EMAConfig, "VQ-VAE with EMA")
    testing.check_model(spec, input_shapes=[SHAPE, (1, 5, 7)])
