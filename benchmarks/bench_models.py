"""Training-step throughput of every model next to a bare PyTorch loop on the same network.

For each model, on MNIST-shaped random data in [0, 1] (fixed batch shape), this
times warm steps of :func:`aebench.train.train_step` (the model's own
``training_step`` with the optimisers of its ``configure_optimizers``: for the
built-in families one Adam on ``objective``) and a hand-written loop over the *same* encoder/decoder
modules (zero_grad, encoder, reparameterise, decoder, BCE + beta * KL written
inline, backward, Adam step), each with its own copy of the weights and its
own Adam. Steps of the two loops are interleaved one by one and the median
step time of each is reported, so background load hits both alike. Exits 1
if any ratio (aebench / bare) is below ``--min-ratio`` (0.95) unless
``--no-check``. On a shared machine, ``--threads 1`` gives steadier numbers.

    .venv/bin/python benchmarks/bench_models.py
    .venv/bin/python benchmarks/bench_models.py --models vae --steps 20 --rounds 5
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import aebench
from aebench.models.base import AutoEncoder, StepInfo
from aebench.plugins import get_plugins
from aebench.train import train_step


def bare_step_fn(model: AutoEncoder, opt: torch.optim.Optimizer) -> Callable[[torch.Tensor], None]:
    """A hand-written training step on ``model.encoder`` / ``model.decoder``.

    Supports the built-in layout: a VAE-style encoder emitting ``2 * latent``
    features (mean, logvar) when ``regulariser == "kl"``, else a deterministic
    latent; Bernoulli likelihood.
    """
    encoder, decoder = model.encoder, model.decoder
    beta = float(getattr(model.config, "beta", 1.0))

    if model.regulariser == "kl":

        def step(x: torch.Tensor) -> None:
            opt.zero_grad(set_to_none=True)
            mu, logvar = encoder(x).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = decoder(z)
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
            (bce + beta * kl).mean().backward()
            opt.step()

    else:

        def step(x: torch.Tensor) -> None:
            opt.zero_grad(set_to_none=True)
            logits = decoder(encoder(x))
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
            bce.mean().backward()
            opt.step()

    return step


def time_step(step: Callable[[torch.Tensor], object], x: torch.Tensor) -> float:
    """Seconds taken by one call of ``step(x)``."""
    start = time.perf_counter()
    step(x)
    return time.perf_counter() - start


def bench_model(
    name: str, batch_size: int, steps: int, rounds: int, warmup: int, shape: tuple[int, int, int]
) -> tuple[float, float]:
    """(aebench img/s, bare img/s) for model ``name`` from median step times."""
    torch.manual_seed(0)
    model = aebench.create_model(name, shape, likelihood="bernoulli")
    bare_model = copy.deepcopy(model)
    model.train()
    bare_model.train()
    optimizers = list(model.configure_optimizers(1e-3))
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=1e-3)
    x = torch.rand(batch_size, *shape)
    model.on_train_start(batch_size, x)
    info = StepInfo(0, 1, 1, 1, batch_size)

    def ours(batch: torch.Tensor) -> None:
        train_step(model, optimizers, batch, info)

    bare = bare_step_fn(bare_model, bare_opt)
    for _ in range(warmup):
        ours(x)
        bare(x)
    ours_t: list[float] = []
    bare_t: list[float] = []
    for r in range(rounds):
        # Interleave single steps, swapping who goes first each round, so that
        # background load (the machine may be shared) hits both loops alike; the
        # median step time then ignores the occasional stall.
        first, second = (
            ((ours, ours_t), (bare, bare_t)) if r % 2 == 0 else ((bare, bare_t), (ours, ours_t))
        )
        for _ in range(steps):
            first[1].append(time_step(first[0], x))
            second[1].append(time_step(second[0], x))
    return batch_size / statistics.median(ours_t), batch_size / statistics.median(bare_t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="*", help="comma-separated names, families or globs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per round and loop")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (order swaps each round)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--shape", default="1,28,28", help="C,H,W (default MNIST)")
    parser.add_argument("--min-ratio", type=float, default=0.95)
    parser.add_argument("--no-check", action="store_true", help="never fail on the ratio")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(int(s) for s in args.shape.split(","))
    specs = get_plugins().models.select(args.models)
    print(
        f"batch {args.batch_size}, input {shape}, {args.steps} x {args.rounds} interleaved steps "
        f"per loop (median), {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    header = f"{'model':<14} {'aebench img/s':>14} {'bare img/s':>12} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    failed = []
    for spec in specs:
        probe = aebench.create_model(spec.name, shape)
        if not (hasattr(probe, "encoder") and hasattr(probe, "decoder")):
            print(f"{spec.name:<14} skipped: no .encoder/.decoder modules for the bare loop")
            continue
        ours, bare = bench_model(
            spec.name,
            args.batch_size,
            args.steps,
            args.rounds,
            args.warmup,
            shape,  # type: ignore[arg-type]
        )
        ratio = ours / bare
        flag = "" if ratio >= args.min_ratio else "  < min"
        print(f"{spec.name:<14} {ours:>14.0f} {bare:>12.0f} {ratio:>7.3f}{flag}", flush=True)
        if ratio < args.min_ratio:
            failed.append(spec.name)
    if failed and not args.no_check:
        print(f"ratio below {args.min_ratio} for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
