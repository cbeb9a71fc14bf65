"""A test family with discrete latents: a small VQ-VAE-style autoencoder (van den
Oord et al. 2017), small enough for the test suite.

Its encoder (an aebench MLP or CNN body) gives ``positions`` vectors of
``latent_dim // positions`` values; each is replaced by its nearest entry of a
codebook of ``codebook_size`` vectors (16 by default), and the decoder reads the
quantised vectors. Gradients pass the quantisation by the straight-through
estimator; the codebook and commitment terms pull codebook entries and encoder
outputs together. It declares ``latent_kind = "discrete"`` (``encode`` returns
the code indices beside the quantised vectors), no prior of its own
(``has_prior = False``: its ``sample`` draws codes uniformly, for the run's
sample grid) and no likelihood bound: the evaluation samples it with the learned
code prior (the ``codes`` sampler), and the ex-post mixture, the two-stage VAE,
the KL and bits/dim do not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.errors import ConfigError
from aebench.hookspecs import hookimpl
from aebench.models.base import AutoEncoder, Encoding, ModelConfig
from aebench.models.nets import ARCH_SUMMARY, build_bodies, make_spec
from aebench.specs import ModelSpec


@dataclass
class VQConfig(ModelConfig):
    positions: int = field(default=4, metadata={"help": "code positions per image"})
    codebook_size: int = field(default=16, metadata={"help": "codebook entries K"})
    commitment: float = field(default=0.25, metadata={"help": "weight of the commitment term"})

    def validate(self) -> None:
        super().validate()
        if self.positions < 1 or self.latent_dim % self.positions:
            raise ConfigError(
                f"latent_dim ({self.latent_dim}) must be a multiple of positions ({self.positions})"
            )
        if self.codebook_size < 2:
            raise ConfigError(f"codebook_size must be >= 2, got {self.codebook_size}")


class VQAutoEncoder(AutoEncoder):
    family: ClassVar[str] = "vq-test"
    regulariser: ClassVar[str] = "vq"
    objective_name: ClassVar[str] = "VQ"
    bound: ClassVar[tuple[str, ...]] = ()
    latent_kind: ClassVar[str] = "discrete"
    has_prior: ClassVar[bool] = False

    config: VQConfig

    def __init__(
        self, config: VQConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape)
        self.arch = arch
        self.encoder, self.decoder = build_bodies(arch, self.input_shape, config, config.latent_dim)
        self.positions = config.positions
        self.code_dim = config.latent_dim // config.positions
        self.codebook = torch.nn.Parameter(torch.randn(config.codebook_size, self.code_dim))

    @property
    def num_codes(self) -> int:
        return self.config.codebook_size

    def _continuous(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder outputs ``(B, P, D)`` before quantisation."""
        return self.encoder(x).view(-1, self.positions, self.code_dim)

    def _nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index ``(B, P)`` of the nearest codebook entry of each vector."""
        flat = z_e.reshape(-1, self.code_dim)
        d = torch.cdist(flat, self.codebook)
        return d.argmin(1).view(-1, self.positions)

    def encode(self, x: torch.Tensor) -> Encoding:
        codes = self._nearest(self._continuous(x))
        return Encoding(self.latents_from_codes(codes), codes=codes)

    def latents_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook[codes].flatten(1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z_e = self._continuous(x)
        z_q = self.codebook[self._nearest(z_e)]
        straight = z_e + (z_q - z_e).detach()
        recon = self.recon_nats(self.decoder(straight.flatten(1)), x)
        codebook = (z_e.detach() - z_q).pow(2).sum((1, 2))
        commit = (z_e - z_q.detach()).pow(2).sum((1, 2))
        reg = codebook + self.config.commitment * commit
        return {"total": recon + reg, "recon": recon, "reg": reg}

    def on_train_start(self, train_size: int, first_batch: torch.Tensor) -> None:
        """The codebook starts as evenly spaced encoder outputs of the first batch."""
        with torch.no_grad():
            flat = self._continuous(first_batch).reshape(-1, self.code_dim)
            pick = torch.linspace(0, len(flat) - 1, self.num_codes).long()
            self.codebook.copy_(flat[pick])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        where = generator.device if generator is not None else self.device
        codes = torch.randint(
            self.num_codes, (n, self.positions), generator=generator, device=where
        )
        return self.decode(self.latents_from_codes(codes.to(self.device)))

    @property
    def prior_description(self) -> str:
        return f"uniform codes ({self.positions} positions x {self.num_codes} codes; no prior)"


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``vq-test-mlp`` and ``vq-test-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"vq-test-{arch}",
                "vq-test",
                arch,
                VQAutoEncoder,
                VQConfig,
                f"VQ autoencoder (test family), {ARCH_SUMMARY[arch]}; discrete codes",
            )
        )
