"""The ``codes`` sampler: a learned autoregressive prior over a discrete model's codes.

For a model with ``latent_kind == "discrete"`` (``encode(x).codes``: ``(B, P)``
indices into a codebook of ``model.num_codes`` entries), a small MADE (Germain
et al. 2015: a masked MLP whose output for position p sees only positions < p;
here on learned embeddings of the codes, so that its cost grows with the number
of positions and codes, not with their product squared) is trained with
gradients, after the autoencoder, on the codes of the first
:data:`~aebench.metrics.context.EXPOST_FIT_IMAGES` training images:
:data:`STEPS` Adam steps of cross-entropy on minibatches of :data:`BATCH`,
seeded with the run seed (1.2 to 1.8 s on a 2-core CPU for 4 positions and 16
codes; about 2.5 s for 64 codes, 6 s for 512). It plays the part of the
PixelCNN prior of VQ-VAE (van den Oord et al. 2017). Sampling draws the codes
position by position from its categorical outputs with the evaluation's seeded
generator, and decodes ``model.latents_from_codes(codes)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from aebench.metrics._util import eval_mode, seeded
from aebench.metrics.context import EXPOST_FIT_IMAGES
from aebench.samplers.base import LatentDraw, hook, train_steps
from aebench.specs import SamplerSpec

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext
    from aebench.models.base import AutoEncoder

HIDDEN = 128
"""Units of the MADE's hidden layer."""
EMBEDDING = 16
"""Values of the learned embedding of each (position, code) the MADE reads."""
STEPS = 500
BATCH = 128
LR = 1e-2
LABEL = "code prior"
SAMPLES = (
    "samples decoded from codes drawn from an autoregressive prior (MADE) trained on "
    "the training images' codes"
)
APPLIES = "models with discrete latents (codes)"


def density(model: AutoEncoder) -> str:
    return (
        f"autoregressive MADE over code positions (embedding {EMBEDDING}, hidden {HIDDEN}, "
        f"{STEPS} Adam steps, {model.num_codes} codes) fitted on training codes"
    )


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask ``(out, in)``."""

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class CodePrior(nn.Module):
    """MADE over ``positions`` categorical variables with ``num_codes`` values each.

    It reads a learned embedding of :data:`EMBEDDING` values for each (position,
    code), ``(B, P*E)``; one masked hidden layer of ``hidden`` units (unit i has
    degree ``i mod (P-1)`` and sees positions ``<=`` its degree) maps it to ``E``
    values for each position p, which see only hidden units of degree ``< p``;
    position p's logits are their products with p's own output embedding of the
    K codes. So position p depends on positions ``< p`` only (position 0's logits
    are its learned marginal), and a step costs about ``B P E (2 H + K)``
    multiply-adds: linear, not quadratic, in the number of positions and codes.
    """

    offset: torch.Tensor

    def __init__(self, positions: int, num_codes: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.positions, self.num_codes = positions, num_codes
        e = EMBEDDING
        self.embed = nn.Embedding(positions * num_codes, e)
        self.register_buffer("offset", torch.arange(positions) * num_codes, persistent=False)
        pos = torch.arange(positions).repeat_interleave(e)  # (P*E,)
        degree = torch.arange(hidden) % max(positions - 1, 1)  # (H,)
        self.hidden = MaskedLinear(degree[:, None] >= pos[None, :])
        self.out = MaskedLinear(pos[:, None] > degree[None, :])
        self.code_weight = nn.Parameter(torch.randn(positions, num_codes, e) / e**0.5)
        self.code_bias = nn.Parameter(torch.zeros(positions, num_codes))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, P, K)`` of each position given the earlier ones."""
        x = self.embed(codes + self.offset).flatten(1)
        y = self.out(torch.relu(self.hidden(x))).view(-1, self.positions, EMBEDDING)
        return torch.einsum("bpe,pke->bpk", y, self.code_weight) + self.code_bias

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """-log p(codes) per row, in nats."""
        logits = self(codes)
        return F.cross_entropy(logits.transpose(1, 2), codes, reduction="none").sum(1)

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` code rows ``(n, P)`` (long, on this module's device), drawn position by
        position; the randomness comes from ``generator``, on its device."""
        device = self.out.weight.device
        codes = torch.zeros(n, self.positions, dtype=torch.long, device=device)
        for p in range(self.positions):
            probs = torch.softmax(self(codes)[:, p].double(), dim=1)
            drawn = torch.multinomial(probs.to(generator.device), 1, generator=generator)
            codes[:, p] = drawn.squeeze(1).to(device)
        return codes


def fit_code_prior(
    codes: torch.Tensor,
    num_codes: int,
    seed: int = 0,
    *,
    steps: int = STEPS,
    batch_size: int = BATCH,
    hidden: int = HIDDEN,
) -> tuple[CodePrior, list[float]]:
    """(the trained :class:`CodePrior`, its training losses in nats per row) for code
    rows ``(N, P)`` in ``[0, num_codes)``, on the CPU, deterministic given ``seed``."""
    data = codes.detach().to("cpu", torch.long)
    if data.dim() != 2 or len(data) < 1:
        raise ValueError(f"a code prior needs codes of shape (N, P), got {tuple(data.shape)}")
    if int(data.min()) < 0 or int(data.max()) >= num_codes:
        raise ValueError(
            f"codes must lie in [0, {num_codes}), got [{int(data.min())}, {int(data.max())}]"
        )
    with seeded(seed):
        net = CodePrior(data.shape[1], num_codes, hidden)
    gen = torch.Generator().manual_seed(seed)

    def loss(index: torch.Tensor) -> torch.Tensor:
        return net.nll(data[index]).mean()

    losses = train_steps(
        net, loss, len(data), steps=steps, batch_size=batch_size, lr=LR, generator=gen
    )
    return net, losses


@torch.no_grad()
def encode_codes(
    model: AutoEncoder, data: Any, device: torch.device | str = "cpu", batch_size: int = 1000
) -> torch.Tensor:
    """The code indices ``(N, P)`` (long, CPU) of every image of ``data``."""
    parts = []
    with eval_mode(model):
        for i in range(0, len(data), batch_size):
            codes = model.encode(data.batch(slice(i, i + batch_size), device)).codes
            if codes is None:
                raise TypeError(
                    f"{type(model).__name__} declares discrete latents, but encode() "
                    "returned no codes"
                )
            parts.append(codes.long().cpu())
    return torch.cat(parts)


def uniform_nll(positions: int, num_codes: int) -> float:
    """-log p of any code row under the uniform prior (nats): ``P log K``."""
    return positions * math.log(num_codes)


def is_discrete(model: AutoEncoder) -> bool:
    return model.latent_kind == "discrete"


def fit(ctx: EvalContext) -> LatentDraw:
    """The code prior trained on the codes of ``ctx``'s first training images."""
    model = ctx.model
    codes = encode_codes(model, ctx.train.subset(slice(0, EXPOST_FIT_IMAGES)), ctx.device)
    net, _ = fit_code_prior(codes, model.num_codes, ctx.seed)
    net.to(model.device)
    return lambda n, generator: model.latents_from_codes(net.generate(n, generator))


SAMPLER = SamplerSpec(
    "codes",
    fit,
    label=LABEL,
    description=SAMPLES,
    suffix="_codes",
    applies=is_discrete,
    applies_text=APPLIES,
    describe_model=density,
)
register_samplers = hook(SAMPLER)
