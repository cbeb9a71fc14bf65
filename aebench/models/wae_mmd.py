"""The Wasserstein autoencoder with an MMD penalty (WAE-MMD), as ``wae-mmd-mlp/cnn``.

Tolstikhin, Bousquet, Gelly & Schölkopf, "Wasserstein Auto-Encoders", ICLR 2018
(Algorithm 2). A deterministic encoder maps x to a code z; instead of a per-image
KL, the *aggregate* distribution of the codes is pulled towards the prior N(0, I)
by an MMD penalty (:func:`aebench.models.kernels.mmd`, the unbiased estimate)
between each batch of codes and as many prior draws:

    objective = mean(recon) + λ · MMD²(codes, N(0, I) draws)

with ``recon`` -log p(x|z) in nats at z = encoder(x) (the reconstruction cost),
``λ = mmd_weight = 10`` (the paper's choice for MNIST) and the multi-scale inverse
multiquadratic kernel ``C = 2·d·σ²·s`` summed over the scales 0.1 ... 10 (the
authors' code). Samples decode draws of that same prior.

This is the same definition as the example plugin ``plugins/aebench-wae``
(``wae-mlp/cnn``), built in: equal numbers on equal weights and draws. It adds the
kernel options of :class:`~aebench.models.kernels.MMDKernelConfig` (defaults give the
plugin's kernel). pythae 0.1.2's ``WAE_MMD`` computes the same MMD and objective
with a summed squared error for the reconstruction and ``reg_weight = 3e-2`` as
its default λ (tuned for that cost, not for nats).

The penalty couples the images of a batch, so the per-image evaluation term is the
reconstruction alone (there is no likelihood bound); the MMD is in ``objective``
and reported as the batch column ``test_mmd``. In training the prior draws come
from the global torch RNG; in eval mode from a fixed seed, so validation losses
are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from aebench.hookspecs import hookimpl
from aebench.models.base import AutoEncoder, Encoding, StepInfo
from aebench.models.kernels import MMD_COLUMN, MMDKernelConfig, batch_mmd, require_weight
from aebench.models.nets import ARCH_SUMMARY, build_bodies, make_spec
from aebench.specs import MetricColumn, ModelSpec


@dataclass
class WAEMMDConfig(MMDKernelConfig):
    """:class:`MMDKernelConfig` (the IMQ kernel) plus the MMD weight λ (``mmd_weight``)."""

    mmd_weight: float = field(
        default=10.0, metadata={"help": "λ, weight of the MMD penalty (10, the paper's for MNIST)"}
    )

    def validate(self) -> None:
        super().validate()
        require_weight("mmd_weight", self.mmd_weight)


class WAEMMD(AutoEncoder):
    """WAE-MMD on an MLP or CNN body (``arch``), built from :mod:`aebench.models.nets`."""

    family: ClassVar[str] = "wae-mmd"
    regulariser: ClassVar[str] = "mmd"
    objective_name: ClassVar[str] = "WAE-MMD"
    latent_kind: ClassVar[str] = "deterministic"
    batch_columns: ClassVar[tuple[MetricColumn, ...]] = (MMD_COLUMN,)

    def __init__(
        self, config: WAEMMDConfig, input_shape: tuple[int, int, int], arch: str = "mlp"
    ) -> None:
        super().__init__(config, input_shape)
        self.arch = arch
        self.encoder, self.decoder = build_bodies(arch, self.input_shape, config, config.latent_dim)

    @property
    def mmd_weight(self) -> float:
        return float(getattr(self.config, "mmd_weight", 10.0))

    def encode(self, x: torch.Tensor) -> Encoding:
        return Encoding(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def mmd(self, z: torch.Tensor) -> torch.Tensor:
        """MMD² between codes ``z`` and as many N(0, I) draws (0 for a batch of one)."""
        bandwidth = float(getattr(self.config, "kernel_bandwidth", 1.0))
        kernel = str(getattr(self.config, "kernel", "imq"))
        return batch_mmd(z, self.training, kernel, bandwidth)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"recon": self.recon_nats(self.decoder(self.encoder(x)), x)}

    def objective(
        self, x: torch.Tensor, step: StepInfo | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = self.encoder(x)
        recon = self.recon_nats(self.decoder(z), x)
        penalty = self.mmd(z)
        return recon.mean() + self.mmd_weight * penalty, {"recon": recon.mean(), "mmd": penalty}

    def batch_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mmd": self.mmd(self.encoder(x))}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # Drawn on the generator's device, then moved: a CPU generator also works
        # for a model on the GPU.
        where = generator.device if generator is not None else self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=where)
        return self.decode(z.to(self.device))

    @property
    def prior_description(self) -> str:
        return "N(0, I) (the WAE's fixed prior, matched by the MMD penalty)"


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register ``wae-mmd-mlp`` and ``wae-mmd-cnn``."""
    for arch in ("mlp", "cnn"):
        register(
            make_spec(
                f"wae-mmd-{arch}",
                "wae-mmd",
                arch,
                WAEMMD,
                WAEMMDConfig,
                f"Wasserstein AE (Tolstikhin et al. 2018), {ARCH_SUMMARY[arch]}; deterministic "
                "encoder, MMD² penalty (multi-scale IMQ kernel, λ 10) to N(0, I)",
                objective_options=(
                    ("mmd_weight", "λ"),
                    ("kernel", "kernel"),
                    ("kernel_bandwidth", "σ"),
                ),
            )
        )
