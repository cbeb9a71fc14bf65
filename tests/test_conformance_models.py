"""Every registered model, built-in or plugin, passes the conformance suite in aebench.testing,
and every check of the suite fails, naming the model and the rule, on a model that breaks
it (so none of them is toothless)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from aebench import testing
from aebench.catalog import model_spec
from aebench.models.ae import AE, AEConfig
from aebench.models.base import Encoding, StepInfo, default_step
from aebench.models.nets import make_spec
from aebench.models.vae import VAE, VAEConfig
from aebench.specs import MetricColumn

pytestmark = pytest.mark.usefixtures("one_thread")


SLOW_CHECKS = ("training", "fit", "determinism")
"""Checks that train for many steps. A family's objective and step are the same code on
its MLP and CNN bodies, so a built-in family's CNN variant skips them (the CNN bodies
train through them as ae-cnn, vae-cnn and beta-vae-cnn): that keeps the default test
run within its time budget as families are added."""
FULL_CNN = {"ae-cnn", "vae-cnn", "beta-vae-cnn"}


def _cases() -> list[tuple[str, str]]:
    names = testing.model_names()
    cases = []
    for name in names:
        family_mlp = name.removesuffix("-cnn") + "-mlp"
        twin = name.endswith("-cnn") and name not in FULL_CNN and family_mlp in names
        builtin = model_spec(name).plugin.endswith("(built-in)")
        for check in testing.check_names():
            if twin and builtin and check in SLOW_CHECKS:
                continue
            cases.append((name, check))
    return cases


@pytest.mark.parametrize(("name", "check"), _cases())
def test_conformance(name: str, check: str) -> None:
    testing.run_check(check, name)


def test_every_builtin_model_is_checked() -> None:
    names = set(testing.model_names())
    builtins = {"ae-mlp", "ae-cnn", "vae-mlp", "vae-cnn", "beta-vae-mlp", "beta-vae-cnn"}
    assert builtins <= names


def test_no_check_assumes_a_beta_vae() -> None:
    assert "beta" not in testing.check_names()
    assert {"meta_device", "batch_independence", "objective", "fit"} <= set(testing.check_names())


# -- models that break one rule each -------------------------------------------
class _UnknownKind(AE):
    latent_kind = "continuous"


class _UnknownGroup(AE):
    objective_group = "elbo"


class _ItemInInit(AE):
    """Reads a tensor's value in its constructor: fine on CPU, impossible on meta."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("scale", torch.ones(1))
        self.scale_value = self.scale.item()


class _ColumnRecon(VAE):
    def loss_terms(self, x):
        terms = super().loss_terms(x)
        terms["recon"] = terms["recon"].unsqueeze(1)
        return terms


class _BoundNamesAMissingTerm(VAE):
    bound = ("recon", "kl")  # loss_terms() calls it "reg"


class _NoTotal(AE):
    """Keeps the default objective (the mean of 'total') but returns no 'total'."""

    def loss_terms(self, x):
        return {"recon": super().loss_terms(x)["recon"]}


class _VectorObjective(AE):
    def objective(self, x, step=None):
        return self.loss_terms(x)["total"], {}


def _kde(z: torch.Tensor, bandwidth: float = 0.03) -> torch.Tensor:
    """Per image: -log of a Gaussian kernel density of its code among the batch's codes,
    a batch-coupled value (like a minibatch estimate of the aggregate posterior). The
    bandwidth is narrow for a fresh encoder's codes (~0.1 apart), so the value moves by
    about a nat between batches of 16 and of 80."""
    d2 = torch.cdist(z, z).pow(2) / bandwidth**2
    return -(torch.logsumexp(-0.5 * d2, dim=1) - math.log(z.shape[0]))


class _BatchCoupled(AE):
    """A batch-level penalty reported as a per-image term."""

    def loss_terms(self, x):
        z = self.encoder(x)
        recon = self.recon_nats(self.decoder(z), x)
        reg = _kde(z)
        return {"total": recon + reg, "recon": recon, "reg": reg}

    regulariser = "kde"


class _BatchCoupledVAE(VAE):
    """The same coupling on top of a random (reparameterised) VAE loss."""

    def loss_terms(self, x):
        terms = super().loss_terms(x)
        coupled = _kde(self.encode(x).mean)
        return {**terms, "total": terms["total"] + coupled, "coupled": coupled}


class _TwoDraws(VAE):
    """Per image, but draws its noise twice per batch, so an image's draws differ with
    the batch size: not coupled, and the check must not say it is."""

    def loss_terms(self, x):
        mean, logvar = self.posterior(x)
        eps = (torch.randn_like(mean) + torch.randn_like(mean)) / math.sqrt(2)
        recon = self.recon_nats(self.decoder(mean + torch.exp(0.5 * logvar) * eps), x)
        kl = super().loss_terms(x)["reg"]
        return {"total": recon + kl, "recon": recon, "reg": kl}


class _UndeclaredBatchTerm(AE):
    def batch_terms(self, x):
        return {"spread": self.encoder(x).var()}


_FREE = torch.Generator().manual_seed(0)  # never reseeded: its stream runs on across calls


class _UnseededBatchTerm(AE):
    batch_columns = (MetricColumn("test_noise", "noise", "", None, "a random number"),)

    def batch_terms(self, x):
        return {"noise": torch.rand((), generator=_FREE)}


class _GaussianWithoutLogvar(AE):
    latent_kind = "gaussian"


class _Quantised(AE):
    """A small discrete model: each latent coordinate snaps to one of 8 learned levels
    (a scalar VQ-VAE with a straight-through gradient)."""

    latent_kind = "discrete"
    regulariser = "vq"
    objective_name = "VQ reconstruction"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.levels = nn.Parameter(torch.linspace(-2.0, 2.0, 8))

    @property
    def num_codes(self) -> int:
        return 8

    def latents_from_codes(self, codes):
        return self.levels[codes]

    def _quantise(self, h):
        codes = (h.unsqueeze(-1) - self.levels).abs().argmin(-1)
        return codes, self.levels[codes]

    def encode(self, x):
        codes, q = self._quantise(self.encoder(x))
        return Encoding(q, codes=codes)

    def loss_terms(self, x):
        h = self.encoder(x)
        _, q = self._quantise(h)
        recon = self.recon_nats(self.decoder(h + (q - h).detach()), x)
        reg = (q - h.detach()).pow(2).sum(1) + 0.25 * (h - q.detach()).pow(2).sum(1)
        return {"total": recon + reg, "recon": recon, "reg": reg}


class _WrongCodes(_Quantised):
    def latents_from_codes(self, codes):
        return self.levels[(codes + 1) % 8]


class _ScalarPrior(AE):
    def log_prior(self, z):
        return -0.5 * z.pow(2).sum()


class _UnusedParameter(AE):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unused = torch.nn.Parameter(torch.zeros(3))


class _HalfKL(VAE):
    """KL off by a factor of two."""

    def loss_terms(self, x):
        terms = super().loss_terms(x)
        terms["reg"] = 2 * terms["reg"]
        terms["total"] = terms["recon"] + terms["reg"]
        return terms


class _DecoderOnlyOptimiser(AE):
    def configure_optimizers(self, lr):
        return [torch.optim.Adam(self.decoder.parameters(), lr=lr)]


class _NeverSteps(AE):
    """Computes and logs its loss but never steps an optimiser."""

    def training_step(self, x, step, optimizers):
        loss, _ = self.objective(x, step)
        return {"total": loss.detach()}


class _IgnoresLr(AE):
    def configure_optimizers(self, lr):
        return [torch.optim.Adam(self.parameters(), lr=1e-7)]


class _ChangingLogs(AE):
    """Logs a discriminator loss on even steps only: the loop sums the same keys each step."""

    def training_step(self, x, step: StepInfo, optimizers: Sequence[torch.optim.Optimizer]):
        logs = default_step(self.objective, x, step, optimizers[0])
        if step.step % 2 == 0:
            logs["d_loss"] = logs["total"] * 0
        return logs


class _Unseeded(AE):
    def loss_terms(self, x):
        terms = super().loss_terms(x)
        noise = 1e-3 * torch.rand(x.shape[0], generator=_FREE)
        return {**terms, "total": terms["total"] + noise}


class _IgnoresGenerator(AE):
    def sample(self, n, generator=None):
        return super().sample(n, generator=None)


class _IgnoresK(VAE):
    def log_likelihood(self, x, k=100, max_batch=4096):
        return super().log_likelihood(x, k=1)


class _PriorNotInState(AE):
    """Keeps the fitted mixture means out of state_dict()."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        means = self._buffers.pop("prior_means")
        self.register_buffer("prior_means", means, persistent=False)


BROKEN = [
    ("declarations", _UnknownKind, "latent_kind must be one of gaussian, deterministic"),
    ("declarations", _UnknownGroup, "objective_group must be None or one of likelihood"),
    ("meta_device", _ItemInInit, "cannot be built on PyTorch's meta device"),
    ("shapes", _ColumnRecon, "loss_terms()['recon'] must have shape (B,)"),
    ("loss_terms", _ColumnRecon, "loss_terms()['recon'] must have shape (B,)"),
    ("loss_terms", _BoundNamesAMissingTerm, "must return 'kl' (the model's bound names it)"),
    ("objective", _NoTotal, "so loss_terms() must return 'total'"),
    ("objective", _VectorObjective, "must be a scalar tensor (shape ())"),
    ("batch_independence", _BatchCoupled, "must not depend on the evaluation batch size"),
    ("batch_independence", _BatchCoupledVAE, "beyond the Monte-Carlo error"),
    ("batch_terms", _UndeclaredBatchTerm, "must return exactly what batch_columns declares"),
    ("batch_terms", _UnseededBatchTerm, "the same values twice in eval mode under one seed"),
    ("latents", _GaussianWithoutLogvar, "latent_kind 'gaussian' needs encode(x).logvar"),
    ("latents", _WrongCodes, "latents_from_codes(encode(x).codes) must equal encode(x).mean"),
    ("log_prior", _ScalarPrior, "log_prior(z) must have shape (B,)"),
    ("gradients", _UnusedParameter, "no gradient reaches parameter 'unused'"),
    ("regulariser", _HalfKL, "analytic KL"),
    ("optimizers", _DecoderOnlyOptimiser, "must cover every trainable parameter"),
    ("training_step", _NeverSteps, "must change every trainable parameter"),
    ("training", _IgnoresLr, "must lower the loss below"),
    ("fit", _ChangingLogs, "aebench.train.fit() (the training loop of `aebench run`)"),
    ("determinism", _Unseeded, "same seed must give identical losses"),
    ("sampling", _IgnoresGenerator, "equally seeded generators must be identical"),
    ("log_likelihood", _IgnoresK, "must grow with k"),
    ("state_dict", _PriorNotInState, "must sample identically"),
]


def _spec(cls: type) -> object:
    config_cls = VAEConfig if issubclass(cls, VAE) else AEConfig
    return make_spec("broken-mlp", "broken", "mlp", cls, config_cls, "deliberately broken")


@pytest.mark.parametrize(
    ("check", "cls", "message"), BROKEN, ids=[f"{c}-{m.__name__}" for c, m, _ in BROKEN]
)
def test_each_check_fails_on_a_model_that_breaks_it(check, cls, message) -> None:
    kwargs = {"input_shapes": [(1, 8, 8)]} if check in ("shapes", "meta_device") else {}
    with pytest.raises(AssertionError, match=r"^broken-mlp: ") as info:
        testing.run_check(check, _spec(cls), **kwargs)
    text = str(info.value)
    assert message in text
    assert "\n" not in text  # one line


def test_every_check_has_a_model_that_fails_it() -> None:
    assert {check for check, _, _ in BROKEN} == set(testing.check_names())


def test_the_broken_models_pass_the_other_checks_they_are_meant_for() -> None:
    """The bad models break only what they are named for: the rule, not an accident."""
    testing.run_check("meta_device", _spec(_UnknownKind), input_shapes=[(1, 8, 8)])
    testing.run_check("shapes", _spec(_ItemInInit), input_shapes=[(1, 8, 8)])
    testing.run_check("batch_independence", _spec(_UnseededBatchTerm))
    testing.run_check("training_step", _spec(_ChangingLogs))


def test_per_image_noise_that_falls_differently_is_not_batch_coupling() -> None:
    testing.run_check("batch_independence", _spec(_TwoDraws))


def test_batch_coupling_message_names_the_term_and_both_batch_sizes() -> None:
    with pytest.raises(AssertionError) as info:
        testing.run_check("batch_independence", _spec(_BatchCoupled))
    text = str(info.value)
    assert "gives 'reg' = " in text and "one batch of 80" in text and "batches of 16" in text
    assert "terms that differ: total, reg)" in text
    assert "batch_terms()" in text


def test_a_discrete_model_passes_every_check() -> None:
    spec = make_spec("vq-tiny", "vq", "mlp", _Quantised, AEConfig, "scalar VQ")
    testing.check_model(spec, input_shapes=[(1, 8, 8), (1, 5, 7)], skip=["training"])


def test_check_model_runs_everything_on_a_spec() -> None:
    spec = make_spec("vae-tiny", "vae", "mlp", VAE, VAEConfig, "")
    testing.check_model(spec, input_shapes=[(1, 8, 8), (1, 5, 7)], skip=["training"])
    with pytest.raises(KeyError, match="unknown check"):
        testing.check_model(spec, skip=["nope"])
    with pytest.raises(AssertionError, match="cannot be built on PyTorch's meta device"):
        testing.check_model(_spec(_ItemInInit), input_shapes=[(1, 8, 8)])
