"""Grid throughput: the same grid with --workers 1 and --workers N, cells per hour.

Runs a grid of independent cells (default: an 8-cell digits grid, vae and ae,
MLP and CNN, latent sizes 2 and 8, smoke profile) twice through
``aebench.run``: one cell at a time, then ``--workers N`` worker processes
(each with its share of the CPU threads), into fresh output folders, after one
warm-up run so that dataset caches and the offline FID extractor already
exist. Reports wall time, cells per hour and aggregate training images per
second for each, the speed-up, and checks that the two results tables hold
identical numbers. States the hardware. Exit status 1 when the tables differ
or (with --check) the speed-up is below --target.

    python benchmarks/bench_grid.py                     # 2 workers on this machine
    python benchmarks/bench_grid.py --workers 4 --device cuda --data mnist --data-dir ...
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

import aebench

VOLATILE = ["finished", "train_seconds", "eval_seconds", "eval_timings", "threads", "device"]


def hardware(device: str) -> str:
    cpu = f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})"
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{cpu}, {torch.cuda.device_count()} x {torch.cuda.get_device_name()}"
    return cpu


def run(out: Path, args: argparse.Namespace, workers: int) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    summary = aebench.run(
        args.models,
        args.data,
        out=out,
        data_dir=args.data_dir,
        device=args.device,
        profile=args.profile,
        model_options={"latent_dim": [int(d) for d in args.latent_dims.split(",")]},
        report=False,
        workers=workers,
    )
    wall = time.perf_counter() - t0
    failed = [o for o in summary.outcomes if o.status != "done"]
    if failed:
        sys.exit(f"{len(failed)} cell(s) did not finish: {failed[0].reason}")
    return wall, pd.read_csv(out / "results.csv")


def train_images(args: argparse.Namespace) -> int:
    """Images the grid's training loops process: epochs x training-set size, per cell."""
    from aebench.data import DataCache
    from aebench.plan import Grid, plan

    runs = plan(
        [
            Grid(
                models=args.models.split(","),
                datasets=[args.data],
                profile=args.profile,
                model_options={"latent_dim": args.latent_dims},
            )
        ],
        device=args.device,
    )
    data = DataCache(args.data_dir)
    return sum(r.epochs * len(data.for_run(r).train) for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vae,ae")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--latent-dims", default="2,8")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", type=float, default=1.6)
    ap.add_argument("--check", action="store_true", help="exit 1 below --target")
    args = ap.parse_args()
    print(f"hardware: {hardware(args.device)}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run(tmp / "warm-up", args, 1)  # dataset caches, FID extractor
        serial, a = run(tmp / "serial", args, 1)
        parallel, b = run(tmp / "parallel", args, args.workers)
    cells, images = len(a), train_images(args)
    for name, wall in (("--workers 1", serial), (f"--workers {args.workers}", parallel)):
        print(
            f"{name:>12}: {cells} cells in {wall:6.1f} s = {3600 * cells / wall:7.0f} cells/hour, "
            f"{images / wall:8.0f} training images/s"
        )
    speedup = serial / parallel
    print(f"speed-up: {speedup:.2f}x (target {args.target}x)")
    drop = [c for c in VOLATILE if c in a.columns]
    try:
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))
        print("results: identical numbers")
    except AssertionError as exc:
        print(f"results differ: {exc}")
        sys.exit(1)
    if args.check and speedup < args.target:
        sys.exit(1)


if __name__ == "__main__":
    main()
