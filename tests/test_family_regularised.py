"""The regularised families (DIP-VAE-I/II, InfoVAE-MMD, WAE-MMD, RAE-L2/GP) against
independent references, on identical weights, batches and noise.

* InfoVAE-MMD, WAE-MMD, RAE-L2 and RAE-GP against pythae 0.1.2 (``INFOVAE_MMD``,
  ``WAE_MMD``, ``RAE_L2``, ``RAE_GP``), built around aebench's own encoder and decoder
  modules (so the weights are shared) and run under the same seed as aebench's
  model, whose draws come in the same order (posterior noise, then prior draws).
* WAE-MMD also against the example plugin ``aebench-wae`` (the same definition).
* DIP-VAE, which pythae lacks, against disentanglement_lib's published formulas
  (``compute_covariance_z_mean``, ``regularize_diag_off_diag_dip``, the DIP-VAE-II
  covariance) written out here in float64, and known answers.
* RAE-GP's gradient penalty, which pythae defines differently, against a Jacobian
  computed image by image.

Conversions (deliberate differences, explained where they are made): pythae's
``"mse"`` reconstruction is the summed squared error, without the Gaussian
normalising constant, so it equals aebench's Gaussian ``recon`` at
``gaussian_var=0.5`` minus ``D/2 · log(π)``; pythae's ``"bce"`` is the summed binary
cross-entropy on the decoder's probabilities, aebench's Bernoulli ``recon``.
None of these families has a schedule (no warm-up or annealing): ``step`` changes
nothing, which is tested too.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from aebench import testing
from aebench.errors import ConfigError
from aebench.models import kernels
from aebench.models.base import AutoEncoder, StepInfo
from aebench.models.dip_vae import DIPVAE, covariance_of_means, dip_penalty
from aebench.models.rae import RAE, RAEGP

pythae_models = pytest.importorskip("pythae.models")
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseDecoder, BaseEncoder  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (1, 8, 8)
D = math.prod(SHAPE)
SMALL = {"latent_dim": 4, "hidden_dims": (32, 16)}
STEP = StepInfo(3, 1, 10, 1, 16)
MSE_CONSTANT = 0.5 * D * math.log(math.pi)
"""aebench's Gaussian recon at variance 0.5 minus the summed squared error:
``½·D·log(2π·0.5)``, the normalising constant pythae's "mse" leaves out."""


def close(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-4) -> float:
    """Assert ``a`` ≈ ``b`` elementwise; return the largest absolute difference."""
    a64, b64 = (
        v.detach().double() if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=torch.float64)
        for v in (a, b)
    )
    assert a64.shape == b64.shape, (a64.shape, b64.shape)
    assert torch.allclose(a64, b64, rtol=rtol, atol=atol), (a64, b64)
    return float((a64 - b64).abs().max())


def build(name: str, **config: Any) -> AutoEncoder:
    return testing.build(name, SHAPE, **{**SMALL, **config})


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return testing.digits_batch(16)


# -- pythae around aebench's modules ---------------------------------------------------
class _Encoder(BaseEncoder):
    """pythae encoder that calls an aebench model's ``encode`` (weights shared)."""

    def __init__(self, model: AutoEncoder) -> None:
        BaseEncoder.__init__(self)
        self.model = model

    def forward(self, x: torch.Tensor) -> ModelOutput:
        enc = self.model.encode(x)
        if enc.logvar is None:
            return ModelOutput(embedding=enc.mean)
        return ModelOutput(embedding=enc.mean, log_covariance=enc.logvar)


class _Decoder(BaseDecoder):
    """pythae decoder that returns an aebench model's ``decode`` (probabilities)."""

    def __init__(self, model: AutoEncoder) -> None:
        BaseDecoder.__init__(self)
        self.model = model

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.model.decode(z))


def pythae_twin(model: AutoEncoder, cls_name: str, **config: Any) -> Any:
    """pythae's ``cls_name`` model on ``model``'s encoder and decoder."""
    cls = getattr(pythae_models, cls_name)
    cfg = getattr(pythae_models, f"{cls_name}_Config")(
        input_dim=SHAPE, latent_dim=model.latent_dim, **config
    )
    twin = cls(cfg, encoder=_Encoder(model), decoder=_Decoder(model))
    twin.train(model.training)
    return twin


def seeded(fn: Callable[[], Any], seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return fn()


# -- kernels -------------------------------------------------------------------------
def test_kernels_known_answers() -> None:
    a = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    b = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    sq = torch.tensor([[0.0, 9.0], [5.0, 8.0]])
    assert torch.equal(kernels.squared_distances(a, b), sq)
    c = 2.0 * 2 * 1.5**2  # 2 · d · σ²
    assert torch.allclose(kernels.rbf_kernel(a, b, 1.5), torch.exp(-sq / c))
    imq = sum(c * s / (c * s + sq) for s in kernels.DEFAULT_SCALES)
    assert torch.allclose(kernels.imq_kernel(a, b, 1.5), imq)
    assert torch.allclose(kernels.imq_kernel(a, a).diagonal(), torch.tensor([7.0, 7.0]))


@pytest.mark.parametrize("kernel", kernels.KERNELS)
def test_mmd_is_the_unbiased_u_statistic(kernel: str) -> None:
    gen = torch.Generator().manual_seed(1)
    z, p = torch.randn(5, 3, generator=gen).double(), torch.randn(4, 3, generator=gen).double()

    def k(u: torch.Tensor, v: torch.Tensor) -> float:
        sq, c = float((u - v).pow(2).sum()), 2.0 * 3
        if kernel == "rbf":
            return math.exp(-sq / c)
        return sum(c * s / (c * s + sq) for s in kernels.DEFAULT_SCALES)

    n, m = len(z), len(p)
    zz = sum(k(z[i], z[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    pp = sum(k(p[i], p[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    zp = sum(k(z[i], p[j]) for i in range(n) for j in range(m)) / (n * m)
    assert close(kernels.mmd(z, p, kernel), zz + pp - 2 * zp, atol=1e-12) < 1e-12
    with pytest.raises(ValueError, match="at least 2"):
        kernels.mmd(z[:1], p, kernel)
    zero = kernels.batch_mmd(z[:1].requires_grad_(True), training=False, kernel=kernel)
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def test_prior_draws_are_fixed_in_eval_and_random_in_training() -> None:
    like = torch.zeros(6, 3)
    assert torch.equal(kernels.prior_draws(like, False), kernels.prior_draws(like, False))
    assert not torch.equal(kernels.prior_draws(like, True), kernels.prior_draws(like, True))


# -- DIP-VAE ---------------------------------------------------------------------------
def ref_covariance(mean: np.ndarray) -> np.ndarray:
    """disentanglement_lib's compute_covariance_z_mean: E[μμᵀ] - E[μ]E[μ]ᵀ."""
    e_mmt = (mean[:, :, None] * mean[:, None, :]).mean(0)
    e_m = mean.mean(0)
    return e_mmt - e_m[:, None] * e_m[None, :]


def ref_dip(cov: np.ndarray, lambda_od: float, lambda_d: float) -> float:
    """disentanglement_lib's regularize_diag_off_diag_dip."""
    diag = np.diag(cov)
    off = cov - np.diag(diag)
    return float(lambda_od * (off**2).sum() + lambda_d * ((diag - 1) ** 2).sum())


def ref_dip_objective(
    model: DIPVAE, x: torch.Tensor, eps: torch.Tensor, dip_type: str
) -> tuple[float, float, float, float]:
    """(loss, mean recon, mean KL, penalty) of disentanglement_lib's DIPVAE, float64:
    mean Bernoulli NLL + mean KL + the covariance penalty, with noise ``eps``."""
    with torch.no_grad():
        mean_t, logvar_t = model.posterior(x)
        logits = model.decode_logits(mean_t + torch.exp(0.5 * logvar_t) * eps).double()
    mean, logvar = mean_t.double().numpy(), logvar_t.double().numpy()
    p = torch.sigmoid(logits).numpy().reshape(len(x), -1)
    t = x.double().numpy().reshape(len(x), -1)
    recon = -(t * np.log(p) + (1 - t) * np.log1p(-p)).sum(1).mean()
    kl = (0.5 * (mean**2 + np.exp(logvar) - 1 - logvar).sum(1)).mean()
    cov = ref_covariance(mean)
    if dip_type == "ii":
        cov = cov + np.diag(np.exp(logvar).mean(0))
    penalty = ref_dip(cov, model.lambda_od, model.lambda_d)
    return recon + kl + penalty, recon, kl, penalty


@pytest.mark.parametrize(
    ("name", "dip_type", "config"),
    [
        ("dip-vae-i-mlp", "i", {}),
        ("dip-vae-ii-mlp", "ii", {}),
        ("dip-vae-i-cnn", "i", {"lambda_od": 3.0, "lambda_d": 7.0, "hidden_dims": (4, 8, 16)}),
        ("dip-vae-ii-mlp", "ii", {"lambda_od": 2.0, "lambda_d": 0.5}),
    ],
)
def test_dip_vae_matches_disentanglement_lib(
    x: torch.Tensor, name: str, dip_type: str, config: dict[str, Any]
) -> None:
    model = build(name, **config)
    assert isinstance(model, DIPVAE)
    model.train()
    with torch.no_grad():
        mean, _ = model.posterior(x)
    eps = seeded(lambda: torch.randn_like(mean))
    with torch.no_grad():
        loss, logs = seeded(lambda: model.objective(x, STEP))
    ref = ref_dip_objective(model, x, eps, dip_type)
    close(loss, ref[0])
    close(logs["recon"], ref[1])
    close(logs["reg"], ref[2])
    close(logs["dip_penalty"], ref[3], rtol=1e-5, atol=1e-3)
    # The batch column is the penalty on the posterior of a test batch (no noise).
    model.eval()
    with torch.no_grad():
        close(model.batch_terms(x)["dip_penalty"], ref[3], rtol=1e-5, atol=1e-3)
        terms = seeded(lambda: model.loss_terms(x))
    assert set(terms) == {"recon", "reg"}  # no per-image total: the objective is batch-level
    assert type(model).bound == ("recon", "reg")
    # step changes nothing (no schedule): the same noise gives the same objective
    with torch.no_grad():
        a, _ = seeded(lambda: model.objective(x, None))
        b, _ = seeded(lambda: model.objective(x, StepInfo(0, 1, 10, 1, 16)))
    assert torch.equal(a, b)


def _whitened(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``n`` float64 rows whose biased batch covariance is exactly I."""
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n, d, generator=gen, dtype=torch.float64) + 3.0
    c = m - m.mean(0)
    cov = c.T @ c / n
    evals, evecs = torch.linalg.eigh(cov)
    return c @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T + 5.0


def test_dip_penalty_known_answers() -> None:
    means = _whitened(32, 4)
    assert close(covariance_of_means(means), torch.eye(4, dtype=torch.float64)) < 1e-12
    # DIP-VAE-I: means with identity covariance cost nothing
    assert abs(float(dip_penalty(covariance_of_means(means), 10.0, 100.0))) < 1e-20
    # DIP-VAE-II: Cov[μ] = (1 - s²) I and every σ² = s²: the aggregate covariance is I
    model = build("dip-vae-ii-mlp")
    s2 = 0.36
    logvar = torch.full((32, 4), math.log(s2), dtype=torch.float64)
    cov = model.covariance(means * math.sqrt(1 - s2), logvar)
    assert close(cov, torch.eye(4, dtype=torch.float64)) < 1e-12
    assert float(model.penalty(means * math.sqrt(1 - s2), logvar)) < 1e-20
    # the same batch costs DIP-VAE-I λ_d·d·s⁴ (its diagonal is 1 - s²)
    dip1 = build("dip-vae-i-mlp", lambda_d=3.0)
    expect = 3.0 * 4 * s2**2
    assert math.isclose(float(dip1.penalty(means * math.sqrt(1 - s2), logvar)), expect)
    # off-diagonal and diagonal parts, each with its own weight
    cov2 = torch.tensor([[1.0, 0.5], [0.5, 2.0]])
    assert math.isclose(float(dip_penalty(cov2, 2.0, 3.0)), 2.0 * 2 * 0.25 + 3.0 * 1.0)


def test_dip_vae_options() -> None:
    one = build("dip-vae-i-mlp")
    two = build("dip-vae-ii-mlp")
    assert (one.lambda_od, one.lambda_d) == (10.0, 100.0)  # λ_d = 10·λ_od
    assert (two.lambda_od, two.lambda_d) == (10.0, 10.0)  # λ_d = λ_od
    means = _whitened(16, 3).float() * 2.0  # covariance 4·I: only the diagonal part
    logvar = torch.zeros(16, 3)
    base = float(one.penalty(means, logvar))
    assert math.isclose(base, 100.0 * 3 * 9.0, rel_tol=1e-4)
    assert math.isclose(
        float(build("dip-vae-i-mlp", lambda_d=50.0).penalty(means, logvar)), base / 2, rel_tol=1e-4
    )
    assert math.isclose(
        float(build("dip-vae-i-mlp", lambda_od=0.0).penalty(means, logvar)), base, rel_tol=1e-4
    )
    with pytest.raises(ConfigError, match="lambda_od"):
        build("dip-vae-i-mlp", lambda_od=-1.0)


# -- InfoVAE-MMD -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        {},  # the paper's: α = 0, λ = 1000, Gaussian kernel
        {"kernel": "imq", "alpha": 0.5, "lbd": 3.0},
        {"kernel": "rbf", "alpha": -1.0, "lbd": 10.0, "kernel_bandwidth": 2.0},
    ],
)
def test_info_vae_matches_pythae(x: torch.Tensor, config: dict[str, Any]) -> None:
    model = build("info-vae-mlp", **config)
    model.train()
    cfg = model.config
    twin = pythae_twin(
        model,
        "INFOVAE_MMD",
        reconstruction_loss="bce",
        kernel_choice=cfg.kernel,
        alpha=cfg.alpha,
        lbd=cfg.lbd,
        kernel_bandwidth=cfg.kernel_bandwidth,
        scales=list(kernels.DEFAULT_SCALES),
    )
    with torch.no_grad():
        loss, logs = seeded(lambda: model.objective(x, STEP))
        out = seeded(lambda: twin({"data": x}))
    # pythae: mean(recon + (1-α)·KL + (α+λ-1)·MMD), recon the summed BCE, the same
    # posterior noise and prior draws (drawn in the same order under the same seed)
    close(logs["recon"], out.recon_loss)
    close(logs["reg"], out.reg_loss)
    close(logs["mmd"], out.mmd_loss, atol=1e-6)
    close(loss, out.loss, atol=5e-4)
    # the batch column: the MMD of a batch's draws against the fixed eval prior draws
    model.eval()
    twin.eval()
    with torch.no_grad():
        mmd = seeded(lambda: model.batch_terms(x))["mmd"]
        mean, logvar = model.posterior(x)
        z = seeded(lambda: mean + torch.exp(0.5 * logvar) * torch.randn_like(mean))
        recon_x = model.decode(z)
        ref = twin.loss_function(recon_x, x, z, kernels.prior_draws(z, False), mean, logvar)
    close(mmd, ref[3], atol=1e-6)
    terms = seeded(lambda: model.loss_terms(x))
    assert set(terms) == {"recon", "reg"}
    close(terms["reg"].mean(), ref[2])


def test_info_vae_options(x: torch.Tensor) -> None:
    model = build("info-vae-mlp")
    assert (model.alpha, model.lbd, model.config.kernel) == (0.0, 1000.0, "rbf")
    assert (model.kl_weight, model.mmd_weight) == (1.0, 999.0)
    model.train()
    for alpha, lbd in ((0.0, 1000.0), (0.5, 2.0), (1.0, 1.0)):
        model.config.alpha, model.config.lbd = alpha, lbd
        with torch.no_grad():
            loss, logs = seeded(lambda: model.objective(x, STEP))
        expect = logs["recon"] + (1 - alpha) * logs["reg"] + (alpha + lbd - 1) * logs["mmd"]
        close(loss, expect)
    # pythae's defaults (α = 0, λ = 1e-3) weigh the MMD α + λ - 1 < 0: refused
    with pytest.raises(ConfigError, match="alpha \\+ lbd"):
        build("info-vae-mlp", alpha=0.0, lbd=1e-3)
    with pytest.raises(ConfigError, match="alpha"):
        build("info-vae-mlp", alpha=2.0)
    with pytest.raises(ConfigError, match="kernel"):
        build("info-vae-mlp", kernel="laplace")


# -- WAE-MMD -----------------------------------------------------------------------------
@pytest.mark.parametrize("config", [{}, {"kernel": "rbf", "mmd_weight": 3.0}])
def test_wae_mmd_matches_pythae(x: torch.Tensor, config: dict[str, Any]) -> None:
    model = build("wae-mmd-mlp", likelihood="gaussian", gaussian_var=0.5, **config)
    model.train()
    twin = pythae_twin(
        model,
        "WAE_MMD",
        kernel_choice=model.config.kernel,
        reg_weight=model.mmd_weight,
        kernel_bandwidth=1.0,
        scales=list(kernels.DEFAULT_SCALES),
    )
    with torch.no_grad():
        loss, logs = seeded(lambda: model.objective(x, STEP))
        out = seeded(lambda: twin({"data": x}))
    # pythae's recon is the summed squared error; aebench's Gaussian recon (variance
    # 0.5) adds the normalising constant ½·D·log(π)
    close(logs["recon"], out.recon_loss + MSE_CONSTANT)
    close(logs["mmd"], out.mmd_loss, atol=1e-6)
    close(loss, out.loss + MSE_CONSTANT)


def test_wae_mmd_options(x: torch.Tensor) -> None:
    model = build("wae-mmd-mlp")
    assert (model.mmd_weight, model.config.kernel, model.config.kernel_bandwidth) == (
        10.0,
        "imq",
        1.0,
    )
    assert type(model).bound == () and type(model).latent_kind == "deterministic"
    model.eval()
    with torch.no_grad():
        recon = model.loss_terms(x)["recon"].mean()
        mmd = model.batch_terms(x)["mmd"]
        for weight in (0.0, 10.0, 100.0):
            model.config.mmd_weight = weight
            close(model.objective(x)[0], recon + weight * mmd)
        assert set(model.loss_terms(x)) == {"recon"}
        # each kernel is its own objective; the bandwidth changes the MMD
        model.config.kernel = "rbf"
        rbf = model.batch_terms(x)["mmd"]
        model.config.kernel_bandwidth = 3.0
        assert not torch.equal(rbf, model.batch_terms(x)["mmd"])
    assert not torch.equal(rbf, mmd)


# -- RAE-L2 / RAE-GP -----------------------------------------------------------------
def test_rae_l2_matches_pythae(x: torch.Tensor) -> None:
    model = build("rae-l2-mlp", likelihood="gaussian", embedding_weight=0.3)
    assert isinstance(model, RAE)
    twin = pythae_twin(model, "RAE_L2", embedding_weight=0.3, reg_weight=1e-7)
    with torch.no_grad():
        terms = model.loss_terms(x)
        out = twin({"data": x})
        z = model.encode(x).mean
    close(terms["recon"].mean(), out.recon_loss + MSE_CONSTANT)
    close(terms["reg"].mean(), 0.3 * out.embedding_loss)
    close(terms["reg"], 0.3 * 0.5 * z.pow(2).sum(1), atol=1e-6)  # per image: β·½||z||²
    close(terms["total"], terms["recon"] + terms["reg"], atol=1e-6)
    close(model.objective(x)[0], out.loss + MSE_CONSTANT)


def test_rae_l2_weight_decay_is_the_decoders_alone(x: torch.Tensor) -> None:
    """One step of the model's optimiser equals pythae's coupled optimisers (an Adam
    for the encoder, an Adam with ``weight_decay = λ`` for the decoder)."""
    lam = 0.5  # large, so that its effect shows in one step
    model = build("rae-l2-mlp", reg_weight=lam)
    (opt,) = model.configure_optimizers(1e-2)
    groups = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    decoder = {id(p) for p in model.decoder.parameters()}
    assert all(groups[i] == lam for i in decoder)
    assert all(groups[id(p)] == 0.0 for p in model.encoder.parameters())
    assert len(groups) == len(list(model.parameters()))

    ref = copy.deepcopy(model)
    ref_opts = [
        torch.optim.Adam(ref.encoder.parameters(), lr=1e-2),
        torch.optim.Adam(ref.decoder.parameters(), lr=1e-2, weight_decay=lam),
    ]
    no_decay = copy.deepcopy(model)
    plain = [torch.optim.Adam(no_decay.parameters(), lr=1e-2)]
    for m, opts in ((model, [opt]), (ref, ref_opts), (no_decay, plain)):
        for o in opts:
            o.zero_grad()
        m.objective(x)[0].backward()
        for o in opts:
            o.step()
    moved = 0.0
    for (name, p), q, r in zip(
        model.named_parameters(), ref.parameters(), no_decay.parameters(), strict=True
    ):
        assert torch.allclose(p, q, atol=1e-7), name
        if name.startswith("encoder."):
            assert torch.equal(p, r), name  # no decay on the encoder
        else:
            moved = max(moved, float((p - r).detach().abs().max()))
    assert moved > 1e-3  # the decay changed the decoder's step


def ref_gradient_penalty(model: AutoEncoder, z: torch.Tensor) -> torch.Tensor:
    """||∇_z Σ D(z)||² image by image, from the full Jacobian of D at each code (float64)."""
    twin = copy.deepcopy(model).double()
    out = []
    for row in z.double():
        jac = torch.autograd.functional.jacobian(lambda v: twin.decode(v[None])[0], row)
        out.append(jac.reshape(-1, row.numel()).sum(0).pow(2).sum())
    return torch.stack(out)


def test_rae_gp_against_pythae_and_a_jacobian(x: torch.Tensor) -> None:
    model = build("rae-gp-mlp", likelihood="gaussian", embedding_weight=0.3, reg_weight=0.0)
    assert isinstance(model, RAEGP)
    # pythae's RAE_GP penalises the gradient with respect to the *input* x, through the
    # encoder (∇_x Σ D(E(x))); the paper and aebench penalise the decoder's gradient at
    # the code. With λ = 0 the rest of the objective is the same.
    twin = pythae_twin(model, "RAE_GP", embedding_weight=0.3, reg_weight=0.0)
    out = twin({"data": x.clone()})
    with torch.no_grad():
        terms = model.loss_terms(x)
    close(terms["recon"].mean(), out.recon_loss + MSE_CONSTANT)
    close(terms["reg"].mean(), 0.3 * out.embedding_loss)
    close(terms["total"].mean(), out.loss + MSE_CONSTANT)

    model.config.reg_weight = 2.0
    with torch.no_grad():
        z = model.encode(x).mean
        gp_terms = model.loss_terms(x)  # evaluation: under no_grad
    gp = (gp_terms["reg"] - 0.3 * 0.5 * z.pow(2).sum(1)) / 2.0
    ref = ref_gradient_penalty(model, z)
    close(gp, ref, rtol=1e-4, atol=1e-6)
    # in training it is differentiable: double back-propagation reaches the decoder
    model.train()
    model.zero_grad()
    model.objective(x)[0].backward()
    with_gp = [p.grad.clone() for p in model.decoder.parameters() if p.grad is not None]
    model.config.reg_weight = 0.0
    model.zero_grad()
    model.objective(x)[0].backward()
    without = [p.grad for p in model.decoder.parameters() if p.grad is not None]
    assert any(not torch.allclose(a, b) for a, b in zip(with_gp, without, strict=True))
    # and it equals the evaluation value
    model.config.reg_weight = 2.0
    close(model.loss_terms(x)["reg"], gp_terms["reg"], atol=1e-6)


def test_rae_options_and_declarations() -> None:
    l2, gp = build("rae-l2-mlp"), build("rae-gp-mlp")
    for m in (l2, gp):
        assert (m.embedding_weight, m.reg_weight) == (1e-4, 1e-7)
        cls = type(m)
        assert cls.latent_kind == "deterministic" and not cls.has_prior and cls.bound == ()
    (opt,) = gp.configure_optimizers(1e-3)
    assert all(g["weight_decay"] == 0 for g in opt.param_groups)
    with pytest.raises(ConfigError, match="embedding_weight"):
        build("rae-l2-mlp", embedding_weight=-1.0)
    with pytest.raises(ConfigError, match="reg_weight"):
        build("rae-gp-mlp", reg_weight=float("nan"))


# -- declarations ----------------------------------------------------------------------
def test_objectives_are_distinct_and_name_their_options() -> None:
    from aebench.catalog import model_spec

    names = {
        "dip-vae-i-mlp": ("lambda_od", "lambda_d"),
        "dip-vae-ii-mlp": ("lambda_od", "lambda_d"),
        "info-vae-mlp": ("alpha", "lbd", "kernel", "kernel_bandwidth"),
        "wae-mmd-mlp": ("mmd_weight", "kernel", "kernel_bandwidth"),
        "rae-l2-mlp": ("embedding_weight", "reg_weight"),
        "rae-gp-mlp": ("embedding_weight", "reg_weight"),
    }
    labels = set()
    for name, options in names.items():
        spec = model_spec(name)
        assert tuple(o for o, _ in spec.objective_options) == options
        labels.add(type(build(name)).objective_label())
    assert len(labels) == len(names)
