"""The VAE with a VampPrior, as ``vamp-vae-mlp`` and ``vamp-vae-cnn``.

Reference: J. M. Tomczak and M. Welling (2018), "VAE with a VampPrior", AISTATS 2018.

The encoder, decoder and likelihood are the VAE's; the prior is the "variational
mixture of posteriors"

    p(z) = 1/K sum_k q(z | u_k)

with ``K = n_components`` learned pseudo-inputs ``u_k`` (images of the data's
shape), the sigmoid of free parameters learned with the rest of the model by the
same optimiser (the authors' code for binary and grey-scale data). They start
(``pseudo_init="data"``, the default) as K training images: in
:meth:`VampVAE.on_train_start`, the first K images of the first (shuffled) batch,
pixels clamped to [0.01, 0.99] before the logit; the authors' code offers this
too (``use_training_data_init``), though its default, ``pseudo_init="random"``
here, starts them as N(-0.05, 0.01^2) before the sigmoid (grey images of about
0.49). Data is the default because aebench's training budgets are short: in the
smoke profile on digits (20 epochs), random pseudo-inputs had barely moved from
grey and the mixture's samples were blurred means (FID 623), against FID 31 from
data-initialised ones, with a better test ELBO (26.2 against 27.4 nats). The
paper uses K = 500; the default here is 50 (pythae's default) because every training
step encodes all K pseudo-inputs: on MNIST (MLP, batches of 128, one CPU thread)
a step took 140 ms at K = 500 and 50 ms at K = 50, against 40 ms for the VAE.
``-o n_components=500`` gives the paper's setting.

The KL has no closed form under a mixture prior, so the per-image ``reg`` is the
single-sample Monte-Carlo estimate ``log q(z|x) - log p(z)`` at the same draw
``z ~ q(z|x)`` that ``recon`` decodes (regulariser ``"kl-mc"``): unbiased, so
``recon + reg`` (the ``bound``) is an unbiased estimate of the negative ELBO and
its test mean an estimate of the rate. The training objective is
``recon + beta * reg`` with the paper's linear KL warm-up: ``beta = epoch /
warmup_epochs`` (1-based epoch, capped at 1; 100 epochs in the paper, and in its
code ``beta`` is constant within an epoch, as here), ``beta = 1`` outside
training (``step=None``) and when ``warmup_epochs = 0``. So a run shorter than
``warmup_epochs`` epochs never trains on the full ELBO; its per-image ``total``
(what validation and the test table report) is always the full one.

``log_prior(z)`` is the mixture's density (so the per-dimension KL and collapse
columns, defined against N(0, I), are not applicable), ``sample`` draws a
component uniformly and then z from it, and ``log_likelihood(x, k)`` is the IWAE
bound under the mixture prior.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import StepInfo
from aebench.models.nets import ARCH_SUMMARY, make_spec
from aebench.models.vae import VAE, VAEConfig, gaussian_log_density
from aebench.specs import ModelSpec

PSEUDO_INITS = ("data", "random")
PSEUDO_INIT_MEAN = -0.05
PSEUDO_INIT_STD = 0.01
"""``pseudo_init="random"``: the pseudo-inputs' parameters start as N(mean, std^2) draws
(then a sigmoid), as in the authors' code."""
PIXEL_CLAMP = 0.01
"""``pseudo_init="data"``: pixels are clamped to [0.01, 0.99] before the logit, so that
the sigmoid's gradient is not vanishingly small at black and white pixels."""
_LOG_2PI = math.log(2 * math.pi)


@dataclass
class VampConfig(VAEConfig):
    """:class:`VAEConfig` plus the number of pseudo-inputs and the KL warm-up."""

    n_components: int = field(
        default=50,
        metadata={
            "help": "pseudo-inputs K of the VampPrior mixture (the paper uses 500; 50 keeps "
            "the per-step cost of encoding them small)"
        },
    )
    pseudo_init: str = field(
        default="data",
        metadata={
            "help": "pseudo-inputs start as images of the first training batch (data) or as "
            "random grey images (random, the authors' code default)"
        },
    )
    warmup_epochs: int = field(
        default=100,
        metadata={
            "help": "epochs of linear KL warm-up, weight epoch/warmup_epochs capped at 1 "
            "(100 in the paper; 0 disables it)"
        },
    )

    def validate(self) -> None:
        super().validate()
        for name in ("n_components", "warmup_epochs"):
            value = getattr(self, name)
            low = 1 if name == "n_components" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.pseudo_init not in PSEUDO_INITS:
            raise ConfigError(
                f"pseudo_init must be one of {', '.join(PSEUDO_INITS)}, got {self.pseudo_init!r}"
            )


def warmup_weight(step: StepInfo | None, warmup_epochs: int) -> float:
    """The KL weight of the paper's warm-up: ``min(1, epoch / warmup_epochs)`` during
    training (``epoch`` 1-based), 1 without warm-up and outside training."""
    if step is None or warmup_epochs <= 0:
        return 1.0
    return min(1.0, step.epoch / warmup_epochs)


def log_mixture(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log (1/K sum_k N(z; means_k, diag(exp(logvars_k)))) per row of ``z`` ``(B, d)``,
    for components ``(K, d)``."""
    comp = gaussian_log_density(z.unsqueeze(1), means.unsqueeze(0), logvars.unsqueeze(0))
    return torch.logsumexp(comp, dim=1) - math.log(means.shape[0])


class VampVAE(VAE):
    """A :class:`VAE` whose prior is the mixture of its posteriors at learned pseudo-inputs."""

    objective_group: ClassVar[str | None] = "likelihood"
    family: ClassVar[str] = "vamp-vae"
    regulariser: ClassVar[str] = "kl-mc"  # a one-draw Monte-Carlo KL estimate per image
    objective_name: ClassVar[str] = "ELBO (VampPrior)"
    bound: ClassVar[tuple[str, ...]] = ("recon", "reg")  # unbiased estimate of -ELBO

    def __init__(
        self, config: VampConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape, arch)
        k = config.n_components
        init = torch.randn(k, *self.input_shape) * PSEUDO_INIT_STD + PSEUDO_INIT_MEAN
        self.pseudo_params = torch.nn.Parameter(init)

    @torch.no_grad()
    def on_train_start(self, train_size: int, first_batch: torch.Tensor) -> None:
        """``pseudo_init="data"``: the pseudo-inputs become the first K images of the first
        batch (cycled, with a little noise on repeats, when the batch has fewer)."""
        if getattr(self.config, "pseudo_init", "random") != "data":
            return
        k, n = self.n_components, first_batch.shape[0]
        images = first_batch[torch.arange(k, device=first_batch.device) % n]
        logits = torch.logit(images.clamp(PIXEL_CLAMP, 1 - PIXEL_CLAMP))
        if k > n:  # repeats of the same image would stay identical components
            noise = torch.randn(logits[n:].shape).to(logits)
            logits[n:] += 0.1 * noise
        self.pseudo_params.copy_(logits)

    @property
    def n_components(self) -> int:
        return int(self.pseudo_params.shape[0])

    @property
    def warmup_epochs(self) -> int:
        return int(getattr(self.config, "warmup_epochs", 0))

    @property
    def pseudo_inputs(self) -> torch.Tensor:
        """The K pseudo-inputs ``u_k``, images in (0, 1) ``(K, C, H, W)``."""
        return torch.sigmoid(self.pseudo_params)

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and log-variances ``(K, d)`` of the prior's components q(z | u_k)."""
        return self.posterior(self.pseudo_inputs)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return log_mixture(z, *self.prior_components())

    def _terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, logvar = self.posterior(x)
        eps = torch.randn_like(mean)
        z = mean + torch.exp(0.5 * logvar) * eps
        recon = self.recon_nats(self.decoder(z), x)
        log_q = -0.5 * (eps.pow(2) + logvar + _LOG_2PI).sum(1)
        reg = log_q - self.log_prior(z)
        return {"recon": recon, "reg": reg}

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self._terms(x)
        return {"total": terms["recon"] + terms["reg"], **terms}

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Batch mean of ``recon + beta * reg``, ``beta`` the warm-up's KL weight."""
        terms = self._terms(x)
        weight = warmup_weight(step, self.warmup_epochs)
        recon, reg = terms["recon"].mean(), terms["reg"].mean()
        logs = {"recon": recon, "reg": reg, "kl_weight": recon.new_tensor(weight)}
        return recon + weight * reg, logs

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, latent_dim)`` from the prior: a component ``c`` drawn
        uniformly, then ``z ~ q(z | u_c)``."""
        means, logvars = self.prior_components()
        where = generator.device if generator is not None else self.device
        comp = torch.randint(self.n_components, (n,), generator=generator, device=where)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=where)
        comp, eps = comp.to(self.device), eps.to(self.device, means.dtype)
        return means[comp] + torch.exp(0.5 * logvars[comp]) * eps

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.sample_latents(n, generator))

    @property
    def prior_description(self) -> str:
        return f"VampPrior: mixture of the posteriors of {self.n_components} learned pseudo-inputs"


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``vamp-vae-mlp`` and ``vamp-vae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"vamp-vae-{arch}",
                "vamp-vae",
                arch,
                VampVAE,
                VampConfig,
                f"VAE with a VampPrior (Tomczak & Welling 2018), {ARCH_SUMMARY[arch]}; "
                "mixture-of-posteriors prior at 50 learned pseudo-inputs, 100-epoch KL warm-up",
            )
        )
