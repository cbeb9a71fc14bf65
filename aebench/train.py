"""The one training loop, for every model family."""

from __future__ import annotations

import torch

from aebench.models.base import AutoEncoder


def train_step(
    model: AutoEncoder, optimizer: torch.optim.Optimizer, x: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One optimisation step on batch ``x``; returns the per-image loss terms (detached)."""
    optimizer.zero_grad(set_to_none=True)
    terms = model.loss_terms(x)
    terms["total"].mean().backward()
    optimizer.step()
    return {k: v.detach() for k, v in terms.items()}
