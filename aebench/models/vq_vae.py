"""The vector-quantised VAE, as ``vq-vae-mlp`` and ``vq-vae-cnn``.

Reference: A. van den Oord, O. Vinyals and K. Kavukcuoglu (2017), "Neural Discrete
Representation Learning", NeurIPS 2017.

The encoder (an aebench MLP or CNN body) outputs ``latent_dim`` values, read as
``P = latent_dim / embedding_dim`` vectors z_e of ``embedding_dim`` (D) values.
Each is replaced by its nearest entry e of a codebook of ``num_embeddings`` (K)
vectors, and the decoder reads the quantised vectors z_q. Per image, the
paper's loss (its equation (3)) is

    log-likelihood term + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2

with squared distances summed over the P positions and D dimensions, gradients
copied from z_q to z_e by the straight-through estimator, and the commitment
cost ``beta = commitment`` 0.25 (the paper's value). With ``ema = True`` the
codebook term is dropped and the codebook follows exponential moving averages
of the encoder outputs assigned to each entry, decay ``decay`` = 0.99 (the
paper's appendix A.1): counts N_i and sums m_i are averaged and e_i = m_i / N_i
(with N_i Laplace-smoothed by 1e-5, as in Sonnet's implementation, to avoid a
division by zero). The averages are updated in :meth:`VQVAE.training_step`,
without gradients, after each optimiser step, from the assignments of the batch
the step trained on.

The codebook is K = 64 entries of D = 4 values, so the default ``latent_dim`` 16
is 4 code positions. The paper's K is 512 (``-o num_embeddings=512``); 64 is the
default because with a few code positions most of 512 entries go unused: in the
smoke profile on digits (20 epochs), K = 512 used 17% of its entries (K = 64:
80%) for the same test reconstruction (23.9 and 24.0 nats) and the same FID of
code-prior samples (231 and 226), while the learned code prior every VQ-VAE run
is sampled with (the ``codes`` sampler) costs more to fit as K grows (about 2 s
at K = 64, 6 s at K = 512 on 2 CPU cores). It is initialised from data: in
:meth:`VQVAE.on_train_start`, K encoder outputs of the first training batch
(drawn at random; when the batch has fewer than K vectors the remainder repeat
drawn ones with a little noise), so that entries start where the encoder's
outputs are instead of the small uniform initialisation of Sonnet's and pythae's
implementations (the paper does not give one), which leaves most entries
unused. With EMA, the averages start at one pseudo-count at each entry (N_i = 1,
m_i = e_i), so an entry no vector is assigned to stays where it is.

Per-image evaluation terms: ``recon`` (-log p(x|z_q) in nats) and ``reg``, the
VQ part of the objective: codebook plus commitment term, ``(1 + beta) ||z_e -
z_q||^2`` in value, or ``beta ||z_e - z_q||^2`` with EMA. It is a squared
distance in latent units, not nats (regulariser ``"vq"``, not a KL), and
``total = recon + reg``. VQ-VAE has no likelihood bound without a prior over
its codes (``bound = ()``: bits/dim and NLL are not applicable), and no prior of
its own (``has_prior = False``): it is sampled by the learned code prior (the
``codes`` sampler). Its own :meth:`VQVAE.sample` (the run's sample grid) draws
each position's code independently from that position's code frequencies in
training, set by :meth:`VQVAE.fit_prior` (uniform before). Batch-level columns:
the codebook perplexity and usage of a test batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import AutoEncoder, Encoding, ModelConfig, StepInfo, default_step
from aebench.models.nets import ARCH_SUMMARY, build_bodies, make_spec
from aebench.specs import MetricColumn, ModelSpec

LAPLACE_EPS = 1e-5
"""Additive smoothing of the EMA counts before dividing by them."""
INIT_JITTER = 0.01
"""Noise (times the vectors' per-dimension std) on repeated vectors of the data init."""


@dataclass
class VQVAEConfig(ModelConfig):
    """:class:`ModelConfig` plus the codebook (K entries of D values), the commitment
    cost and the EMA codebook option. ``latent_dim`` is the encoder's output,
    ``P * D`` for P code positions."""

    num_embeddings: int = field(
        default=64,
        metadata={"help": "codebook entries K (512 in the paper; 64 keeps the code prior cheap)"},
    )
    embedding_dim: int = field(
        default=4,
        metadata={"help": "values D per codebook entry; latent_dim / D code positions"},
    )
    commitment: float = field(
        default=0.25, metadata={"help": "commitment cost β (0.25 in the paper)"}
    )
    ema: bool = field(
        default=False,
        metadata={"help": "update the codebook by exponential moving averages (paper App. A.1)"},
    )
    decay: float = field(
        default=0.99, metadata={"help": "decay γ of the EMA codebook updates (0.99 in the paper)"}
    )

    def validate(self) -> None:
        super().validate()
        for name, low in (("num_embeddings", 2), ("embedding_dim", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.latent_dim % self.embedding_dim:
            raise ConfigError(
                f"latent_dim ({self.latent_dim}) must be a multiple of embedding_dim "
                f"({self.embedding_dim}): the encoder's output is read as latent_dim / "
                "embedding_dim code positions"
            )
        if isinstance(self.commitment, bool) or not isinstance(self.commitment, (int, float)):
            raise ConfigError(f"commitment must be a number, got {self.commitment!r}")
        if not 0 <= self.commitment < float("inf"):
            raise ConfigError(f"commitment must be a finite number >= 0, got {self.commitment!r}")
        if not isinstance(self.ema, bool):
            raise ConfigError(f"ema must be true or false, got {self.ema!r}")
        if isinstance(self.decay, bool) or not 0 < self.decay < 1:
            raise ConfigError(f"decay must lie in (0, 1), got {self.decay!r}")

    @property
    def positions(self) -> int:
        return self.latent_dim // self.embedding_dim


class VQVAE(AutoEncoder):
    """VQ-VAE on an MLP or CNN body: P code positions, a codebook of K entries of D values."""

    family: ClassVar[str] = "vq-vae"
    regulariser: ClassVar[str] = "vq"  # a squared distance, not nats
    objective_name: ClassVar[str] = "VQ-VAE"
    bound: ClassVar[tuple[str, ...]] = ()  # no likelihood bound without a prior over codes
    latent_kind: ClassVar[str] = "discrete"
    has_prior: ClassVar[bool] = False
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (
        MetricColumn(
            "test_codebook_perplexity",
            "Codebook perplexity",
            "codes",
            None,
            "exp(entropy) of the codes' histogram over a test batch (all positions): the "
            "effective number of codebook entries in use, at most K",
            group="representation",
        ),
        MetricColumn(
            "test_codebook_usage",
            "Codebook usage",
            "share",
            None,
            "Fraction of the K codebook entries that at least one code of a test batch uses",
            group="representation",
        ),
    )

    config: VQVAEConfig
    codebook: torch.Tensor
    ema_count: torch.Tensor
    ema_sum: torch.Tensor
    code_probs: torch.Tensor
    prior_fitted: torch.Tensor

    def __init__(
        self, config: VQVAEConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape)
        self.arch = arch
        self.encoder, self.decoder = build_bodies(arch, self.input_shape, config, config.latent_dim)
        k, d = config.num_embeddings, config.embedding_dim
        self.positions, self.code_dim = config.positions, d
        # The paper's small uniform initialisation; on_train_start replaces it with data.
        init = (torch.rand(k, d) * 2 - 1) / k
        if config.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.ones(k))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = torch.nn.Parameter(init)
        self.register_buffer("code_probs", torch.full((self.positions, k), 1.0 / k))
        self.register_buffer("prior_fitted", torch.tensor(False))

    @property
    def num_codes(self) -> int:
        return self.config.num_embeddings

    @property
    def commitment(self) -> float:
        return float(self.config.commitment)

    # -- quantisation ----------------------------------------------------------------
    def _continuous(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder outputs z_e ``(B, P, D)`` before quantisation."""
        return self.encoder(x).view(x.shape[0], self.positions, self.code_dim)

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index ``(B, P)`` of the codebook entry nearest (Euclidean) to each vector."""
        flat = z_e.reshape(-1, self.code_dim)
        book = self.codebook
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.T + book.pow(2).sum(1)
        return dist.argmin(1).view(z_e.shape[0], self.positions)

    def latents_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook[codes].flatten(1)

    def encode(self, x: torch.Tensor) -> Encoding:
        codes = self.nearest(self._continuous(x))
        return Encoding(self.latents_from_codes(codes), codes=codes)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    # -- the loss --------------------------------------------------------------------
    def _forward(
        self, x: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(per-image terms, z_e ``(B, P, D)``, codes ``(B, P)``)."""
        z_e = self._continuous(x)
        codes = self.nearest(z_e)
        z_q = self.codebook[codes]
        straight = z_e + (z_q - z_e).detach()  # straight-through: dz_q passes to z_e
        recon = self.recon_nats(self.decoder(straight.flatten(1)), x)
        reg = self.commitment * (z_e - z_q.detach()).pow(2).sum((1, 2))
        if not self.config.ema:  # the codebook term; EMA moves the codebook instead
            reg = reg + (z_e.detach() - z_q).pow(2).sum((1, 2))
        return {"total": recon + reg, "recon": recon, "reg": reg}, z_e, codes

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._forward(x)[0]

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        codes = self.encode(x).codes
        assert codes is not None
        counts = torch.bincount(codes.flatten(), minlength=self.num_codes).double()
        p = counts / counts.sum()
        entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()
        return {
            "codebook_perplexity": torch.exp(entropy),
            "codebook_usage": (counts > 0).double().mean(),
        }

    # -- training --------------------------------------------------------------------
    @torch.no_grad()
    def on_train_start(self, train_size: int, first_batch: torch.Tensor) -> None:
        """The codebook starts as K encoder outputs of the first batch, drawn at random."""
        flat = self._continuous(first_batch).reshape(-1, self.code_dim)
        k, n = self.num_codes, flat.shape[0]
        if n >= k:
            init = flat[torch.randperm(n)[:k].to(flat.device)]
        else:
            extra = flat[torch.randint(n, (k - n,)).to(flat.device)]
            scale = flat.std(0) if n > 1 else torch.ones_like(flat[0])
            jitter = INIT_JITTER * scale * torch.randn(extra.shape).to(flat)
            init = torch.cat([flat, extra + jitter])
        self.codebook.copy_(init)
        if self.config.ema:
            self.ema_sum.copy_(init)
            self.ema_count.fill_(1.0)

    @torch.no_grad()
    def ema_update(self, z_e: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step of the codebook from encoder outputs ``(B, P, D)`` and their codes."""
        flat = z_e.reshape(-1, self.code_dim)
        onehot = F.one_hot(codes.reshape(-1), self.num_codes).to(flat.dtype)
        gamma = self.config.decay
        self.ema_count.mul_(gamma).add_(onehot.sum(0), alpha=1 - gamma)
        self.ema_sum.mul_(gamma).add_(onehot.T @ flat, alpha=1 - gamma)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + LAPLACE_EPS) / (total + self.num_codes * LAPLACE_EPS) * total
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(1))

    def training_step(
        self, x: torch.Tensor, step: StepInfo, optimizers: Sequence[torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """One optimiser step on the batch mean of ``total``; with ``ema``, then the
        codebook's EMA update from this batch's encoder outputs and assignments."""
        if not self.config.ema:
            return default_step(self.objective, x, step, optimizers[0])
        opt = optimizers[0]
        opt.zero_grad(set_to_none=True)
        terms, z_e, codes = self._forward(x)
        loss = terms["total"].mean()
        loss.backward()
        opt.step()
        self.ema_update(z_e.detach(), codes)
        return {
            "total": loss.detach(),
            "recon": terms["recon"].detach().mean(),
            "reg": terms["reg"].detach().mean(),
        }

    # -- sampling --------------------------------------------------------------------
    @torch.no_grad()
    def fit_prior(self, latents: torch.Tensor) -> None:
        """Each position's code frequencies over training latents ``(N, latent_dim)``
        (quantised vectors, mapped back to their codes)."""
        if latents.dim() != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(
                f"fit_prior expects latents of shape (N, {self.latent_dim}), "
                f"got {tuple(latents.shape)}"
            )
        latents = latents.to(self.codebook)
        codes = self.nearest(latents.view(-1, self.positions, self.code_dim))
        onehot = F.one_hot(codes, self.num_codes).to(self.code_probs.dtype)  # (N, P, K)
        self.code_probs.copy_(onehot.mean(0))
        self.prior_fitted.fill_(True)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        where = generator.device if generator is not None else self.device
        probs = self.code_probs.to(where, torch.float64)
        codes = torch.multinomial(probs, n, replacement=True, generator=generator).T
        return self.decode(self.latents_from_codes(codes.to(self.device)))

    @property
    def prior_description(self) -> str:
        if bool(self.prior_fitted):
            return (
                f"independent code frequencies of each of {self.positions} positions in "
                f"training ({self.num_codes} codes); the learned code prior is the codes sampler"
            )
        return f"uniform codes ({self.positions} positions x {self.num_codes} codes)"


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``vq-vae-mlp`` and ``vq-vae-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"vq-vae-{arch}",
                "vq-vae",
                arch,
                VQVAE,
                VQVAEConfig,
                f"VQ-VAE (van den Oord et al. 2017), {ARCH_SUMMARY[arch]}; codebook of 64, "
                "commitment 0.25, straight-through; optional EMA codebook",
                objective_options=(("commitment", "β"), ("ema", "EMA")),
            )
        )
