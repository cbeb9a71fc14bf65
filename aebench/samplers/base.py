"""What samplers share: choosing a model's samplers, their hook, and a seeded
minibatch loop for samplers that train a small network after the autoencoder.

This module knows no registry: the evaluation hands the registered
:class:`~aebench.specs.SamplerSpec` s to
:class:`~aebench.metrics.context.EvalContext`, which asks :func:`select` which
of them a model is evaluated with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import torch

from aebench.hookspecs import registering

if TYPE_CHECKING:
    from aebench.metrics.context import EvalContext
    from aebench.models.base import AutoEncoder
    from aebench.specs import SamplerSpec

LatentDraw = Callable[[int, torch.Generator], torch.Tensor]
"""``draw(n, generator) -> (n, d)`` latents, decoded by ``model.decode``."""


def hook(*specs: SamplerSpec) -> Callable[[Callable[[SamplerSpec], None]], None]:
    """A ``register_samplers`` hook implementation registering ``specs``: a sampler
    module ends with ``register_samplers = hook(SAMPLER)``."""
    return registering("register_samplers", *specs)


def select(specs: Iterable[SamplerSpec], model: AutoEncoder) -> tuple[SamplerSpec, ...]:
    """The samplers ``model`` is evaluated with, in registration order: those that
    apply to it, limited to ``model.samplers`` when it names some (a name it gives
    that is not registered, or does not apply, is left out)."""
    wanted = getattr(model, "samplers", None)
    return tuple(s for s in specs if s.applies_to(model) and (wanted is None or s.name in wanted))


def uses(sampler: str) -> Callable[[EvalContext], bool]:
    """``applies_to`` of a sample metric's column for ``sampler``: the run is
    evaluated with that sampler."""
    return lambda ctx: sampler in ctx.samplers()


def minibatches(
    n: int, batch_size: int, steps: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """``steps`` index batches of ``min(batch_size, n)`` rows of ``range(n)``, from
    successive permutations drawn from ``generator`` (a CPU generator)."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"minibatches need n >= 1 and batch_size >= 1, got {n}, {batch_size}")
    size = min(batch_size, n)
    done = 0
    while done < steps:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):
            yield perm[start : start + size]
            done += 1
            if done == steps:
                return


def train_steps(
    net: torch.nn.Module,
    loss: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> list[float]:
    """Adam at learning rate ``lr`` on ``loss(index batch)`` for ``steps`` minibatches
    of ``range(n)`` (see :func:`minibatches`), with gradients on even inside
    ``torch.no_grad``, on one torch thread; ``net`` is left in eval mode. Returns the
    losses (floats), for tests and diagnostics.

    One thread: the networks are tiny, so torch's second thread only adds its
    spin-waits (on a busy 2-core CPU a 500-step fit took 28 s on two threads and
    4.6 s on one), and the numbers are the same whatever the machine's thread
    count."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses: list[float] = []
    net.train()
    with torch.enable_grad(), one_torch_thread():
        for index in minibatches(n, batch_size, steps, generator):
            value = loss(index)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            losses.append(float(value.detach()))
    net.eval()
    return losses


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch's intra-op pool set to one thread inside the block, restored after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
