"""Time the full evaluation of one MNIST-shaped model, part by part.

    .venv/bin/python benchmarks/bench_eval.py [--model vae-mlp] [--data-dir ../shared/data]

Runs ``aebench.metrics.evaluate`` on 10,000 test images with FID on 10,000
samples and the offline classifier extractor, twice: once with an empty cache
(classifier training + reference statistics included: "cold"), then
``--repeat`` times with both cached ("warm", what every run after the first
pays), each after timing one training epoch of a copy of the model (Adam,
batch 128), for the budget "evaluation <= one training epoch": the median
ratio is printed, since the speed of a shared machine drifts. Uses real
MNIST from ``--data-dir`` when the dataset plugin can read it, else random
uint8 data of the same shape. The model is evaluated after one epoch of
training (its cost barely depends on the weights).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

import torch

import aebench
from aebench.datasets.base import ImageSet
from aebench.metrics.evaluate import evaluate, make_context


def load_data(data_dir: str) -> tuple[ImageSet, ImageSet, str]:
    try:
        train = aebench.get_dataset("mnist", split="train", data_dir=data_dir)
        test = aebench.get_dataset("mnist", split="test", data_dir=data_dir)
        return train, test, f"real MNIST from {data_dir}"
    except Exception as exc:  # dataset plugin missing or files absent
        g = torch.Generator().manual_seed(0)

        def fake(n: int, split: str) -> ImageSet:
            imgs = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
            return ImageSet(
                imgs, torch.randint(0, 10, (n,), generator=g), name="mnist", split=split
            )

        return fake(60000, "train"), fake(10000, "test"), f"random uint8 ({exc})"


def time_epoch(model: aebench.AutoEncoder, train: ImageSet, batch: int = 128) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    t = time.perf_counter()
    for i in range(0, len(train) - batch + 1, batch):
        loss = model.loss_terms(train.batch(perm[i : i + batch]))["total"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vae-mlp")
    ap.add_argument(
        "--data-dir", default=os.path.join(os.path.dirname(__file__), "../../shared/data")
    )
    ap.add_argument("--fid-samples", type=int, default=10000)
    ap.add_argument("--nll-k", type=int, default=100)
    ap.add_argument("--nll-samples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument(
        "--profile",
        choices=["smoke", "quick", "full"],
        help="take every metric budget from this profile instead (quick: `aebench run`'s "
        "default), the offline extractor kept",
    )
    ap.add_argument("--skip-epoch", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of (one training epoch, one warm evaluation); medians are reported, "
        "since a shared 2-core machine's speed drifts by 30 %% between minutes",
    )
    ap.add_argument(
        "--no-check",
        action="store_true",
        help="exit 0 even when the median evaluation takes longer than an epoch",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test, source = load_data(args.data_dir)
    torch.manual_seed(0)
    model = aebench.create_model(args.model, train.shape)
    print(f"data: {source}; model {args.model}; torch threads {torch.get_num_threads()}")
    kw = {
        "fid_extractor": "classifier",
        "fid_samples": args.fid_samples,
        "nll_k": args.nll_k,
        "nll_samples": args.nll_samples,
        "probe_samples": 10000,
    }
    if args.profile:
        from aebench.catalog import metric_specs

        kw = {o.name: o.default_for(args.profile) for s in metric_specs() for o in s.options}
        kw["fid_extractor"] = "classifier"
        print(f"budgets of the {args.profile} profile: {kw}")

    def timed_eval(label: str) -> dict:
        out = evaluate(make_context(model, train, test, **kw))
        parts = ", ".join(f"{k} {v:.2f}" for k, v in out["eval_timings"].items())
        print(f"evaluate {label}: {out['eval_seconds']:.1f} s  [{parts}]", flush=True)
        return out

    epochs, evals = [], []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["AEBENCH_CACHE_DIR"] = cache
        # one epoch first, so that the model is evaluated as after training starts
        print(f"warm-up epoch (trains the evaluated model): {time_epoch(model, train):.1f} s")
        out = timed_eval("cold (train classifier, reference stats)")
        for r in range(1, args.repeat + 1):
            if not args.skip_epoch:
                # a copy trains, so every evaluation sees the same weights
                epochs.append(time_epoch(copy.deepcopy(model), train))
                print(f"one training epoch ({len(train)} images, batch 128): {epochs[-1]:.1f} s")
            out = timed_eval(f"warm (cached), round {r}")
            evals.append(out["eval_seconds"])
        print(
            f"fid {out['fid']:.2f} ({out['fid_extractor']}; {out['fid_extractor_detail']}); "
            f"ssim {out['test_ssim']:.3f}, nll {out['nll']}, probe {out['probe_acc']:.3f}"
        )
    line = f"median of {args.repeat}: warm evaluation {statistics.median(evals):.1f} s"
    if epochs:
        ratios = [e / t for e, t in zip(evals, epochs, strict=True)]
        line += (
            f", training epoch {statistics.median(epochs):.1f} s, evaluation / epoch "
            f"{statistics.median(ratios):.2f} (per round: {', '.join(f'{x:.2f}' for x in ratios)})"
        )
    print(line)
    if epochs and not args.no_check and statistics.median(ratios) > 1:
        raise SystemExit("evaluation takes longer than one training epoch (--no-check: exit 0)")


if __name__ == "__main__":
    main()
