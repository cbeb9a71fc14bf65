"""The disentanglement families (β-TCVAE, FactorVAE, AnnealedVAE) against independent
references, on identical weights, batches and random draws, in float64.

* β-TCVAE against pythae 0.1.2's ``BetaTCVAE`` (MWS as it is; MSS with pythae's weight
  matrix replaced by the paper's, see below), against Appendix C.2's stratified
  weights written out here image by image, and known answers (posteriors equal to the
  prior: MSS gives MI = TC = dim-wise KL = 0, MWS gives log N, (d - 1)·log N and
  -d·log N).
* FactorVAE against pythae 0.1.2's ``FactorVAE``: a whole training step (the batch
  split in halves, the draws, the permutation, the VAE and discriminator losses) under
  one seed, and the per-image evaluation terms against its ``loss_function``.
* AnnealedVAE, which pythae lacks, against disentanglement_lib's ``anneal`` and
  ``AnnealedVAE.regularizer`` formulas written out here, at steps 0, half, the
  threshold and beyond, and the per-image form of Burgess et al.'s eq. 8.

pythae runs around aebench's own encoder, decoder and discriminator modules (weights
shared) and draws its noise in the same order as aebench's models. Conversions
(deliberate differences):

* pythae's ``"bce"`` reconstruction is the summed binary cross-entropy on the decoder's
  probabilities (``sigmoid`` of aebench's logits); aebench computes it from the logits
  (the same number, without pythae's clamp of log at -100).
* pythae's ``reg_loss`` for β-TCVAE is the weighted decomposition α·MI + β·TC + γ·dwKL;
  aebench's ``reg`` is the exact per-image KL (its ``bound``), and the weighted sum is
  compared with aebench's logged ``mi``, ``tc``, ``dwkl``.
* pythae's MSS matrix (``_log_importance_weight_matrix``, from the authors' code)
  strides by the batch size, so it puts 1/N in column 0 rather than on the diagonal
  (rtqichen/beta-tcvae pull request #1); aebench follows the paper, so pythae's MSS is
  compared after replacing that matrix with the paper's.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from aebench import testing
from aebench.models.annealed_vae import AnnealedVAE
from aebench.models.base import AutoEncoder, StepInfo
from aebench.models.beta_tcvae import BetaTCVAE, log_importance_weights
from aebench.models.factor_vae import FactorVAE, permute_dims
from aebench.train import TrainSettings, fit

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (1, 8, 8)
SMALL = {"latent_dim": 4, "hidden_dims": (32, 16)}
B = 16
N = 1000  # training-set size for the minibatch estimators


PYTHAE_RTOL = 1e-6
"""pythae's β-TCVAE keeps log(2π) and log(N·B) (and its MSS weights) as float32 tensors,
so in float64 it agrees to float32 rounding of those constants (~1e-7 relative)."""


def close(a: Any, b: Any, atol: float = 1e-9, rtol: float = 1e-9) -> float:
    """Assert ``a`` ≈ ``b`` (float64) elementwise; return the largest absolute difference."""
    a64, b64 = (
        v.detach().double() if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.float64)
        for v in (a, b)
    )
    assert a64.shape == b64.shape, (a64.shape, b64.shape)
    assert torch.allclose(a64, b64, rtol=rtol, atol=atol), (a64, b64)
    return float((a64 - b64).abs().max())


def build(name: str, **config: Any) -> AutoEncoder:
    """A small float64 model; its posterior moved a few nats away from the prior, so the
    KL parts and the discriminator's inputs are not all near zero."""
    model = testing.build(name, SHAPE, **{**SMALL, **config}).double()
    testing.away_from_prior(model, testing.digits_batch(B).double(), target_nats=4.0)
    model.train()
    return model


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return testing.digits_batch(B).double()


def draw(model: Any, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, ...]:
    """(mean, logvar, z) with z drawn as the models draw it, under ``seed``."""
    mean, logvar = model.posterior(x)
    torch.manual_seed(seed)
    return mean, logvar, mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


def recon_bce(model: Any, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z), Bernoulli, summed over pixels, per image."""
    probs = torch.sigmoid(model.decoder(z))
    return -(x * probs.log() + (1 - x) * (1 - probs).log()).flatten(1).sum(1)


def kl_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)


# -- pythae around aebench's modules ------------------------------------------------
@pytest.fixture(scope="module")
def pythae() -> Any:
    models = pytest.importorskip("pythae.models")
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.body = model.encoder

        def forward(self, x: torch.Tensor) -> Any:
            mean, logvar = self.body(x).chunk(2, dim=1)  # what VAE.encode does
            return ModelOutput(embedding=mean, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.body = model.decoder

        def forward(self, z: torch.Tensor) -> Any:
            return ModelOutput(reconstruction=torch.sigmoid(self.body(z)))

    class Discriminator(BaseDiscriminator):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.body = model.discriminator

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.body(z)  # pythae's FactorVAE reads the logits directly

    class Namespace:
        pass

    ns = Namespace()
    ns.models, ns.Encoder, ns.Decoder, ns.Discriminator = models, Encoder, Decoder, Discriminator
    return ns


def pythae_beta_tcvae(pythae: Any, model: BetaTCVAE, use_mss: bool) -> Any:
    cfg = model.config
    config = pythae.models.BetaTCVAEConfig(
        input_dim=SHAPE,
        latent_dim=cfg.latent_dim,
        reconstruction_loss="bce",
        alpha=cfg.alpha,
        beta=cfg.beta,
        gamma=cfg.gamma,
        use_mss=use_mss,
    )
    return pythae.models.BetaTCVAE(
        config, encoder=pythae.Encoder(model), decoder=pythae.Decoder(model)
    )


# -- β-TCVAE ------------------------------------------------------------------------------
def paper_mss_log_weights(batch: int, n: int) -> torch.Tensor:
    """Appendix C.2, row by row: image i's own posterior 1/N, one other image of the batch
    (here the next one) (N - M)/(N M), the remaining M - 1 images 1/M, M = B - 1."""
    m = batch - 1
    w = torch.empty(batch, batch, dtype=torch.float64)
    for i in range(batch):
        for j in range(batch):
            if j == i:
                w[i, j] = 1 / n
            elif j == (i + 1) % batch:
                w[i, j] = (n - m) / (n * m)
            else:
                w[i, j] = 1 / m
    return w.log()


def paper_decomposition(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, log_w: torch.Tensor
) -> dict[str, torch.Tensor]:
    """MI, TC and dim-wise KL per image, written out with loops over images and dimensions:
    log q(z_i) = log Σ_j w_ij q(z_i|x_j), log q(z_ik) = log Σ_j w_ij q(z_ik|x_j)."""

    def log_normal(v: torch.Tensor, mu: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
        return -0.5 * (math.log(2 * math.pi) + lv + (v - mu) ** 2 / lv.exp())

    b, d = z.shape
    out: dict[str, list[torch.Tensor]] = {"mi": [], "tc": [], "dwkl": []}
    for i in range(b):
        joint = [log_w[i, j] + log_normal(z[i], mean[j], logvar[j]).sum() for j in range(b)]
        log_qz = torch.logsumexp(torch.stack(joint), 0)
        log_prod = sum(
            torch.logsumexp(
                torch.stack(
                    [log_w[i, j] + log_normal(z[i, k], mean[j, k], logvar[j, k]) for j in range(b)]
                ),
                0,
            )
            for k in range(d)
        )
        log_qzx = log_normal(z[i], mean[i], logvar[i]).sum()
        zero = torch.zeros((), dtype=torch.float64)
        log_pz = log_normal(z[i], zero, zero).sum()
        out["mi"].append(log_qzx - log_qz)
        out["tc"].append(log_qz - log_prod)
        out["dwkl"].append(log_prod - log_pz)
    return {k: torch.stack(v) for k, v in out.items()}


def test_beta_tcvae_mws_equals_pythae(pythae: Any, x: torch.Tensor) -> None:
    model = build("beta-tcvae-mlp", estimator="mws", alpha=0.5, beta=6.0, gamma=2.0)
    reference = pythae_beta_tcvae(pythae, model, use_mss=False)
    torch.manual_seed(3)
    out = reference({"data": x}, dataset_size=N)
    torch.manual_seed(3)
    loss, logs = model.objective(x, StepInfo(0, 1, 10, 1, N))
    close(loss, out.loss, rtol=PYTHAE_RTOL)
    close(logs["recon"], out.recon_loss, rtol=PYTHAE_RTOL)
    weighted = 0.5 * logs["mi"] + 6.0 * logs["tc"] + 2.0 * logs["dwkl"]
    # pythae's reg_loss is the weighted decomposition, aebench's reg the exact KL
    close(weighted, out.reg_loss, rtol=PYTHAE_RTOL)
    close(logs["reg"], kl_normal(*model.posterior(x)).mean())  # aebench's reg: the exact KL


def test_beta_tcvae_mss_follows_the_paper(pythae: Any, x: torch.Tensor) -> None:
    model = build("beta-tcvae-mlp", estimator="mss", alpha=1.5, beta=6.0, gamma=0.5)
    log_w = paper_mss_log_weights(B, N)
    close(log_importance_weights(B, N, "mss", x), log_w, atol=1e-12)
    assert torch.allclose(log_w.exp().sum(1), torch.ones(B, dtype=torch.float64))

    # the estimates, image by image, against the formula written out above
    mean, logvar, z = draw(model, x, seed=5)
    torch.manual_seed(5)
    mine = model.decomposed_terms(x, N)
    paper = paper_decomposition(z, mean, logvar, log_w)
    for key in ("mi", "tc", "dwkl"):
        close(mine[key], paper[key])

    # pythae's MSS path around the paper's matrix (its own matrix is not the paper's)
    reference = pythae_beta_tcvae(pythae, model, use_mss=True)
    theirs = reference._log_importance_weight_matrix(B, N).double()
    assert not torch.allclose(theirs, log_w)  # e.g. row 1 puts 1/N on image 0, not image 1
    assert math.isclose(float(theirs[1, 0].exp()), 1 / N, rel_tol=1e-6)
    reference._log_importance_weight_matrix = lambda batch, n: paper_mss_log_weights(batch, n)
    torch.manual_seed(7)
    out = reference({"data": x}, dataset_size=N)
    torch.manual_seed(7)
    loss, logs = model.objective(x, StepInfo(0, 1, 10, 1, N))
    close(loss, out.loss, rtol=PYTHAE_RTOL)
    close(1.5 * logs["mi"] + 6.0 * logs["tc"] + 0.5 * logs["dwkl"], out.reg_loss, rtol=PYTHAE_RTOL)


def test_beta_tcvae_known_answers_and_stored_n() -> None:
    """Posteriors all equal to the prior N(0, I): MSS (weights summing to one) gives zero
    for all three parts; MWS gives log N, (d - 1)·log N and -d·log N. Evaluation uses the
    N stored by on_train_start (also after a reload); N is at least the batch size."""
    xb = testing.digits_batch(B)
    d = SMALL["latent_dim"]
    for estimator in ("mss", "mws"):
        model = testing.build("beta-tcvae-mlp", SHAPE, estimator=estimator, **SMALL)
        last = model.encoder[-1][-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
        model.eval()

        def parts(n: int | None, m: Any = model) -> dict[str, float]:
            with torch.no_grad():
                if n is None:
                    return {k: float(v) for k, v in m.batch_terms(xb).items()}
                logs = m.objective(xb, StepInfo(0, 1, 1, 1, n))[1]
                return {k: float(logs[k]) for k in ("mi", "tc", "dwkl")}

        model.on_train_start(N, xb)
        for n in (None, 50, 3):  # stored N, a step's N, an N below the batch size
            got = parts(n)
            big_n = max(N if n is None else n, B)
            if estimator == "mss":
                want = {"mi": 0.0, "tc": 0.0, "dwkl": 0.0}
            else:
                log_n = math.log(big_n)
                want = {"mi": log_n, "tc": (d - 1) * log_n, "dwkl": -d * log_n}
            for key, value in want.items():
                assert math.isclose(got[key], value, abs_tol=1e-4), (estimator, n, key, got)
        reloaded = testing.build("beta-tcvae-mlp", SHAPE, estimator=estimator, **SMALL)
        reloaded.load_state_dict(model.state_dict())
        assert int(reloaded.dataset_size) == N
        assert parts(None, reloaded.eval()) == pytest.approx(parts(None), abs=1e-4)


def test_beta_tcvae_weights(x: torch.Tensor) -> None:
    """α = β = γ = 1 is the one-draw ELBO (the three parts sum to log q(z|x) - log p(z))
    for either estimator; each weight adds exactly its part."""
    for estimator in ("mss", "mws"):
        model = build("beta-tcvae-mlp", estimator=estimator, alpha=1.0, beta=1.0, gamma=1.0)
        mean, logvar, z = draw(model, x, seed=11)
        log_q = (-0.5 * (math.log(2 * math.pi) + logvar + (z - mean) ** 2 / logvar.exp())).sum(1)
        log_p = (-0.5 * (math.log(2 * math.pi) + z**2)).sum(1)
        elbo = (recon_bce(model, z, x) + log_q - log_p).mean()
        torch.manual_seed(11)
        base, logs = model.objective(x, StepInfo(0, 1, 1, 1, N))
        close(base, elbo)
        for name in ("alpha", "beta", "gamma"):
            setattr(model.config, name, 3.0)
            torch.manual_seed(11)
            moved = model.objective(x, StepInfo(0, 1, 1, 1, N))[0]
            setattr(model.config, name, 1.0)
            part = {"alpha": "mi", "beta": "tc", "gamma": "dwkl"}[name]
            close(moved - base, 2.0 * logs[part])
    terms = model.loss_terms(x)
    assert set(terms) == {"recon", "reg"}  # batch-level objective: no per-image total


# -- FactorVAE -----------------------------------------------------------------------------
def pythae_factor_vae(pythae: Any, model: FactorVAE) -> Any:
    config = pythae.models.FactorVAEConfig(
        input_dim=SHAPE,
        latent_dim=model.config.latent_dim,
        reconstruction_loss="bce",
        gamma=model.config.gamma,
    )
    reference = pythae.models.FactorVAE(
        config, encoder=pythae.Encoder(model), decoder=pythae.Decoder(model)
    )
    reference.set_discriminator(pythae.Discriminator(model))
    return reference.double()


def test_factor_vae_training_step_equals_pythae(pythae: Any, x: torch.Tensor) -> None:
    """One training step under one seed: the same halves, draws and permutation, so the
    VAE loss, reconstruction and discriminator loss pythae computes are the ones aebench
    logs (before its two updates)."""
    model = build("factor-vae-mlp", gamma=10.0, discriminator_hidden=32)
    reference = pythae_factor_vae(pythae, model)
    torch.manual_seed(13)
    out = reference({"data": x})
    torch.manual_seed(13)
    logs = model.training_step(x, StepInfo(0, 1, 1, 1, B), model.configure_optimizers(1e-3))
    close(logs["total"], out.autoencoder_loss)
    close(logs["recon"], out.recon_loss)
    close(logs["disc_loss"], out.discriminator_loss)


def test_factor_vae_per_image_terms_equal_pythae(pythae: Any, x: torch.Tensor) -> None:
    model = build("factor-vae-mlp", gamma=6.4, discriminator_hidden=32)
    reference = pythae_factor_vae(pythae, model)
    mean, logvar, z = draw(model, x, seed=17)
    torch.manual_seed(17)
    terms = model.loss_terms(x)
    z_perm = permute_dims(z.detach())
    recon_x = torch.sigmoid(model.decoder(z))
    recon, vae_loss, disc_loss = reference.loss_function(recon_x, x, mean, logvar, z, z_perm)
    close(terms["recon"].mean(), recon)
    close(terms["total"].mean(), vae_loss)
    close(model.discriminator_loss(z, z_perm), disc_loss)
    # the per-image pieces, independently: recon + KL + γ·log D/(1 - D)
    probs = torch.softmax(model.discriminator(z), dim=1)
    log_odds = (probs[:, 0] / probs[:, 1]).log()
    close(terms["recon"], recon_bce(model, z, x))
    close(terms["reg"], kl_normal(mean, logvar))
    close(terms["disc_tc"], log_odds)
    close(terms["total"], recon_bce(model, z, x) + kl_normal(mean, logvar) + 6.4 * log_odds)


def test_factor_vae_gamma_weighs_the_log_odds(x: torch.Tensor) -> None:
    for gamma in (0.0, 40.0):
        model = testing.build("factor-vae-mlp", SHAPE, gamma=gamma, discriminator_hidden=32)
        model = model.double().eval()
        with torch.no_grad():
            t = model.loss_terms(x)
            close(t["total"], t["recon"] + t["reg"] + gamma * t["disc_tc"])
            accuracy = float(model.batch_terms(x)["disc_accuracy"])
        assert 0.0 <= accuracy <= 1.0


def test_factor_vae_discriminator_and_optimisers() -> None:
    """The paper's discriminator by default (6 linear layers, 1000 units, LeakyReLU 0.2),
    its own Adam (1e-4, betas (0.5, 0.9)) beside the VAE's; a run records both."""
    with torch.device("meta"):
        default = testing.build("factor-vae-mlp", SHAPE, seed=None)
    linears = [m for m in default.discriminator if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (16, 1000),
        *[(1000, 1000)] * 4,
        (1000, 2),
    ]
    slopes = {m.negative_slope for m in default.discriminator if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2} and len(default.discriminator) == 11

    model = testing.build("factor-vae-mlp", SHAPE, discriminator_hidden=16, **SMALL)
    vae_opt, disc_opt = model.configure_optimizers(3e-3)
    disc = {id(p) for p in model.discriminator.parameters()}
    vae_params = [p for g in vae_opt.param_groups for p in g["params"]]
    assert vae_opt.param_groups[0]["lr"] == 3e-3 and not disc & {id(p) for p in vae_params}
    assert {id(p) for g in disc_opt.param_groups for p in g["params"]} == disc
    assert disc_opt.param_groups[0]["lr"] == 1e-4
    assert tuple(disc_opt.param_groups[0]["betas"]) == (0.5, 0.9)

    settings = TrainSettings(epochs=1, batch_size=16, metric_images=16, snapshot_images=2)
    result = fit(model, testing.digits_set(48), testing.digits_set(16, split="test"), settings)
    assert len(result.optimizers) == 2
    assert "betas=(0.5, 0.9)" in result.optimizers[1] and "lr=0.0001" in result.optimizers[1]
    assert {"train_disc_loss", "val_disc_tc", "val_total"} <= set(result.history[0])


def test_factor_vae_step_moves_both_networks(x: torch.Tensor) -> None:
    model = testing.build("factor-vae-mlp", SHAPE, discriminator_hidden=16, **SMALL).double()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.training_step(x, StepInfo(0, 1, 1, 1, B), model.configure_optimizers(1e-3))
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == set(before)
    with pytest.raises(ValueError, match="at least 2"):
        model.training_step(x[:1], StepInfo(0, 1, 1, 1, 1), model.configure_optimizers(1e-3))


# -- AnnealedVAE ---------------------------------------------------------------------------
def dlib_anneal(c_max: float, step: int, iteration_threshold: float) -> float:
    """disentanglement_lib's ``anneal``: min(c_max, c_max · step / iteration_threshold)."""
    return min(c_max * 1.0, c_max * 1.0 * step / iteration_threshold)


def test_annealed_capacity_schedule() -> None:
    model = testing.build(
        "annealed-vae-mlp", SHAPE, c_max=25.0, iteration_threshold=1000, anneal_fraction=None
    )
    assert isinstance(model, AnnealedVAE)
    known = {0: 0.0, 250: 6.25, 500: 12.5, 1000: 25.0, 5000: 25.0}
    for step, want in known.items():
        got = model.capacity(StepInfo(step, 1, 100, 100, 10))
        assert got == pytest.approx(want) == dlib_anneal(25.0, step, 1000)
    assert model.capacity(None) == 25.0
    # the default: the paper's absolute count, 100,000 iterations, whatever the run's length
    default = testing.build("annealed-vae-mlp", SHAPE)
    assert default.capacity(StepInfo(50_000, 1, 10, 1, 10)) == pytest.approx(12.5)
    assert default.capacity(StepInfo(99, 1, 100, 1, 10)) == pytest.approx(25 * 99 / 100_000)
    # disentanglement_lib's proportion: C_max a third of the way through (300 steps: 100)
    third = testing.build("annealed-vae-mlp", SHAPE, anneal_fraction="0.3333333333333333")
    for step, want in {0: 0.0, 50: 12.5, 100: 25.0, 299: 25.0}.items():
        assert third.capacity(StepInfo(step, 1, 100, 3, 10)) == pytest.approx(want)
    # another fraction: 200 steps, C reaches c_max after half of them
    frac = testing.build("annealed-vae-mlp", SHAPE, c_max=10.0, anneal_fraction=0.5)
    run = {0: 0.0, 50: 5.0, 100: 10.0, 150: 10.0}
    for step, want in run.items():
        assert frac.capacity(StepInfo(step, 1 + step // 100, 100, 2, 10)) == pytest.approx(want)
    assert frac.capacity(None) == 10.0


@pytest.mark.parametrize("mode", ["batch", "image"])
def test_annealed_objective_equals_the_formula(x: torch.Tensor, mode: str) -> None:
    """``batch``: disentanglement_lib's loss, mean recon + γ·|mean KL - C|; ``image``:
    Burgess et al.'s eq. 8 per image, mean of recon + γ·|KL - C|; at steps 0, half the
    threshold, the threshold and beyond, and step=None (C = c_max)."""
    gamma, c_max, threshold = 7.0, 6.0, 200
    model = build(
        "annealed-vae-mlp",
        gamma=gamma,
        c_max=c_max,
        iteration_threshold=threshold,
        anneal_fraction=None,
        capacity_mode=mode,
    )
    for step in (0, 100, 200, 1000, None):
        info = None if step is None else StepInfo(step, 1, 10, 1, 100)
        c = c_max if step is None else dlib_anneal(c_max, step, threshold)
        mean, logvar, z = draw(model, x, seed=19)
        recon, kl = recon_bce(model, z, x), kl_normal(mean, logvar)
        if mode == "batch":
            want = recon.mean() + gamma * (kl.mean() - c).abs()
        else:
            want = (recon + gamma * (kl - c).abs()).mean()
        torch.manual_seed(19)
        loss, logs = model.objective(x, info)
        close(loss, want)
        close(logs["capacity"], c)
        close(logs["reg"], kl.mean())
    torch.manual_seed(19)
    terms = model.loss_terms(x)
    if mode == "image":  # the per-image total is the final objective, C = c_max
        close(terms["total"], recon + gamma * (kl - c_max).abs())
    else:  # a batch-coupled objective has no per-image total
        assert set(terms) == {"recon", "reg"}


def test_annealed_modes_differ_when_kls_straddle_c(x: torch.Tensor) -> None:
    """Per image, |KL_i - C| averages to more than |mean KL - C| when C lies between the
    images' KLs (Jensen): the two published forms are different objectives."""
    model = build("annealed-vae-mlp", gamma=1.0, capacity_mode="image")
    with torch.no_grad():
        kl = kl_normal(*model.posterior(x))
    model.config.c_max = float(kl.median())
    assert float(kl.min()) < model.config.c_max < float(kl.max())
    torch.manual_seed(0)
    per_image = model.objective(x)[0]
    model.config.capacity_mode = "batch"
    torch.manual_seed(0)
    per_batch = model.objective(x)[0]
    assert float(per_image.detach()) > float(per_batch.detach()) + 1e-3
