"""The ``twostage`` sampler: a second VAE fitted on the training latent means
(Dai & Wipf 2019, "Diagnosing and enhancing VAE models").

After the autoencoder has trained, a small VAE (:class:`SecondStage`: MLP
encoder and decoder with :data:`HIDDEN` units in two hidden layers, a latent
of the same size as the model's, a Gaussian decoder whose variance γ is
learned, as in the paper) is trained with gradients on the standardised latent
means of the first :data:`~aebench.metrics.context.EXPOST_FIT_IMAGES` training
images: :data:`STEPS` Adam steps on minibatches of :data:`BATCH`, seeded with
the run seed, so the same run gives the same sampler. Sampling draws u ~ N(0, I)
and z from the second decoder, z = decoder(u) + √γ ε, and decodes z with the
model. (The paper decodes the second decoder's mean, which is the same thing
once γ has gone to 0 in a long second stage; with this small budget γ is still
about 0.1, and leaving out its noise shrinks the samples towards the latents'
centre: a smoke-profile AE on digits had a clearly worse FID without it.) It
applies to continuous latents (gaussian and deterministic). The budget is fixed
(it does not grow with the dataset or the profile), so its cost is about the
same for every run: 1.2 to 1.8 s on a 2-core CPU (it trains on one torch thread).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from aebench.metrics._util import seeded
from aebench.samplers.base import LatentDraw, hook, train_steps
from aebench.samplers.expost import APPLIES, continuous
from aebench.specs import SamplerSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext

HIDDEN = 64
"""Units in each of the two hidden layers of the second encoder and decoder."""
STEPS = 400
BATCH = 128
LR = 5e-3
MIN_LOG_GAMMA = math.log(1e-4)
"""Lower bound of the learned decoder log-variance (keeps the loss finite)."""
_LOG_2PI = math.log(2 * math.pi)

LABEL = "two-stage VAE"
SAMPLES = (
    "samples decoded from a second VAE trained on the training latent means "
    "(two-stage VAE, Dai & Wipf 2019)"
)
DENSITY = (
    f"two-stage VAE (Dai & Wipf 2019; MLP {HIDDEN}x2, {STEPS} Adam steps) "
    "fitted on training latent means"
)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SecondStage(nn.Module):
    """The second VAE, on latents ``z`` of dimension ``dim`` standardised with the
    training latents' per-dimension mean and standard deviation (buffers)."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, dim: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.dim = dim
        self.encoder = _mlp([dim, hidden, hidden, 2 * dim])
        self.decoder = _mlp([dim, hidden, hidden, dim])
        self.log_gamma = nn.Parameter(torch.zeros(()))
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def loss(self, z: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mean negative ELBO (nats) of standardised latents ``z`` ``(B, dim)``, with the
        reparameterisation noise ``noise`` ``(B, dim)``."""
        mean, logvar = self.encoder(z).chunk(2, dim=1)
        u = mean + torch.exp(0.5 * logvar) * noise
        log_gamma = self.log_gamma.clamp(min=MIN_LOG_GAMMA)
        sq = (z - self.decoder(u)).pow(2).sum(1)
        recon = 0.5 * sq * torch.exp(-log_gamma) + 0.5 * self.dim * (log_gamma + _LOG_2PI)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return (recon + kl).mean()

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` latents ``(n, dim)`` on this module's device, drawn from the second
        stage's generative model: u ~ N(0, I), z = decoder(u) + √γ ε with ε ~ N(0, I)
        (both drawn on the generator's device), un-standardised."""
        where, device = generator.device, self.shift.device
        u = torch.randn(n, self.dim, generator=generator, device=where).to(device)
        eps = torch.randn(n, self.dim, generator=generator, device=where).to(device)
        std = torch.exp(0.5 * self.log_gamma.clamp(min=MIN_LOG_GAMMA))
        return (self.decoder(u) + std * eps) * self.scale + self.shift


def fit_second_stage(
    latents: torch.Tensor,
    seed: int = 0,
    *,
    steps: int = STEPS,
    batch_size: int = BATCH,
    hidden: int = HIDDEN,
) -> tuple[SecondStage, list[float]]:
    """(the trained :class:`SecondStage`, its training losses) for ``latents``
    ``(N, d)``, on the CPU, deterministic given ``seed``."""
    z = latents.detach().to("cpu", torch.float32)
    if z.dim() != 2 or len(z) < 2:
        raise ValueError(
            f"a two-stage VAE needs latents of shape (N >= 2, d), got {tuple(z.shape)}"
        )
    with seeded(seed):
        net = SecondStage(z.shape[1], hidden)
    net.shift.copy_(z.mean(0))
    net.scale.copy_(z.std(0).clamp(min=1e-6))
    data = (z - net.shift) / net.scale
    gen = torch.Generator().manual_seed(seed)

    def loss(index: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(len(index), net.dim, generator=gen)
        return net.loss(data[index], noise)

    losses = train_steps(
        net, loss, len(data), steps=steps, batch_size=batch_size, lr=LR, generator=gen
    )
    return net, losses


def fit(ctx: EvalContext) -> LatentDraw:
    """The second stage trained on ``ctx.latents("train")`` with ``ctx.seed``."""
    net, _ = fit_second_stage(ctx.latents("train"), ctx.seed)
    net.to(ctx.model.device)
    return net.generate


SAMPLER = SamplerSpec(
    "twostage",
    fit,
    label=LABEL,
    description=SAMPLES,
    suffix="_twostage",
    applies=continuous,
    applies_text=APPLIES,
    describe_model=lambda model: DENSITY,
)
register_samplers = hook(SAMPLER)
