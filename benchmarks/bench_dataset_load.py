"""Time loading full MNIST (train + test) from its .gz files: cold and warm.

Cold: an empty aebench cache, so the four .gz files are read, MD5-checked,
decompressed, validated and decoded (and the cache is written). Warm: the same
load again, served from the cache. Runs in one process; torchvision's import
(for the published MD5s) is done before timing, as any real run has it loaded.

    python benchmarks/bench_dataset_load.py [--data-dir ../shared/data] [--dataset mnist]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str((REPO / ".." / "shared" / "data").resolve()))
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or svhn")
    parser.add_argument("--repeat", type=int, default=3, help="warm loads to time (best kept)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="aebench-bench-cache-") as cache:
        os.environ["AEBENCH_CACHE_DIR"] = cache
        import torch
        import torchvision.datasets  # noqa: F401  (imported up front, not timed)

        from aebench.catalog import get_dataset

        torch.set_num_threads(min(2, os.cpu_count() or 1))

        def load_both() -> int:
            return sum(len(get_dataset(args.dataset, s, args.data_dir)) for s in ("train", "test"))

        t0 = time.perf_counter()
        n = load_both()
        cold = time.perf_counter() - t0
        warm = min(_timed(load_both) for _ in range(args.repeat))
    print(f"{args.dataset} ({n} images) from {args.data_dir}")
    print(f"cold (empty cache): {cold:.3f} s")
    print(f"warm (cached):      {warm:.3f} s")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
