"""Throughput of aebench's whole training loop vs a bare PyTorch loop.

`aebench.train.fit` (shuffling, uint8 -> float batches, progress reporting,
per-epoch validation on a small set) against a hand-written loop doing the
same batching and optimisation on the same network, same batch size, same
data. Issue target: ratio >= 0.95.

    python benchmarks/bench_train_loop.py [--models vae-mlp,vae-cnn] [--images 12800]

Exits 1 if any ratio is below 0.95 (disable with --no-check). Measurements
alternate between the two loops and keep the best of --repeats epochs each,
so background load affects both alike.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import aebench
from aebench.datasets.base import ImageSet
from aebench.train import TrainSettings, fit


def bare_epoch(model, images: torch.Tensor, batch_size: int, seed: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    n = len(images)
    steps = n // batch_size
    perm = torch.randperm(n, generator=gen)
    t0 = time.perf_counter()
    for s in range(steps):
        x = images[perm[s * batch_size : (s + 1) * batch_size]].float().div_(255.0)
        opt.zero_grad(set_to_none=True)
        terms = model.loss_terms(x)
        terms["total"].mean().backward()
        opt.step()
    return time.perf_counter() - t0


def aebench_epoch(model, train: ImageSet, val: ImageSet, batch_size: int, seed: int) -> float:
    settings = TrainSettings(
        epochs=1, batch_size=batch_size, seed=seed, metric_images=128, snapshot_images=4
    )
    t0 = time.perf_counter()
    fit(model, train, val, settings)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vae-mlp,vae-cnn,ae-mlp")
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 1, 28, 28), generator=g, dtype=torch.uint8)
    val_images = torch.randint(0, 256, (256, 1, 28, 28), generator=g, dtype=torch.uint8)
    train, val = ImageSet(images, None), ImageSet(val_images, None)
    print(
        f"{args.images} images/epoch, batch {args.batch_size}, threads "
        f"{torch.get_num_threads()}, best of {args.repeats}"
    )
    print(f"{'model':14} {'aebench img/s':>14} {'bare img/s':>11} {'ratio':>6}")
    worst = float("inf")
    for name in aebench.list_models():
        if name.name not in args.models.split(","):
            continue
        model = aebench.create_model(name.name, (1, 28, 28))
        bare_epoch(model, images[: 8 * args.batch_size], args.batch_size, 0)  # warm-up
        ours, bare = [], []
        for r in range(args.repeats):
            ours.append(aebench_epoch(model, train, val, args.batch_size, r))
            bare.append(bare_epoch(model, images, args.batch_size, r))
        steps_imgs = (args.images // args.batch_size) * args.batch_size
        ours_ips, bare_ips = steps_imgs / min(ours), steps_imgs / min(bare)
        ratio = ours_ips / bare_ips
        worst = min(worst, ratio)
        print(f"{name.name:14} {ours_ips:14.0f} {bare_ips:11.0f} {ratio:6.3f}")
    if not args.no_check and worst < 0.95:
        print(f"FAIL: ratio {worst:.3f} < 0.95", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
