"""Evaluation of a trained model on the test split: :func:`evaluate`.

Parts (one module each): ``losses`` (loss terms, bits/dim), ``image`` (MSE,
PSNR, SSIM as scikit-image defines them, also per class), ``fid`` (FID with
torch-fidelity, Inception or an offline classifier), ``nll`` (IWAE bound),
``probe`` (linear-probe accuracy on latent means). Plugin metrics registered
through the ``register_metrics`` hook receive an :class:`EvalContext`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from aebench.datasets.base import ImageSet
from aebench.metrics import image
from aebench.metrics._util import eval_mode
from aebench.metrics.fid import FIDResult, compute_fid, resolve_extractor, to_uint8
from aebench.metrics.losses import loss_metrics
from aebench.metrics.nll import nll_metrics
from aebench.metrics.probe import probe_accuracy
from aebench.models.base import AutoEncoder
from aebench.specs import MetricSpec

__all__ = [
    "METRIC_INFO",
    "EvalContext",
    "FIDResult",
    "compute_fid",
    "evaluate",
    "generate_samples",
    "reconstruction_metrics",
    "resolve_extractor",
]

METRIC_INFO: dict[str, tuple[str, str, bool]] = {
    # key: (label, unit, lower_is_better)
    "test_total": ("Test loss", "nats/image", True),
    "test_recon": ("Reconstruction", "nats/image", True),
    "test_reg": ("Regulariser (KL)", "nats/image", True),
    "test_bpd": ("Bits/dim", "bits/dim", True),
    "test_mse": ("MSE", "per pixel", True),
    "test_psnr": ("PSNR", "dB", False),
    "test_ssim": ("SSIM", "", False),
    "fid": ("FID", "", True),
    "nll": ("NLL (IWAE)", "nats/image", True),
    "nll_bpd": ("NLL (IWAE)", "bits/dim", True),
    "probe_acc": ("Linear probe", "accuracy", False),
    "eval_seconds": ("Eval time", "s", True),
}
"""Leaderboard metadata for the numeric keys of :func:`evaluate`'s result."""


@dataclass
class EvalContext:
    """What a plugin metric function ``fn(context) -> dict[str, float]`` receives."""

    model: AutoEncoder
    train: ImageSet
    test: ImageSet
    device: torch.device
    seed: int
    dataset: str


@torch.no_grad()
def reconstruction_metrics(
    model: AutoEncoder,
    data: ImageSet,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
) -> tuple[dict[str, float], dict[str, dict[str, float]] | None]:
    """Mean MSE/PSNR/SSIM of ``model.reconstruct`` over ``data``, and the same per class.

    Returns ``({"mse", "psnr", "ssim"}, {class_name: {...}} or None without labels)``.
    """
    parts: dict[str, list[torch.Tensor]] = {"mse": [], "psnr": [], "ssim": []}
    with eval_mode(model):
        for i in range(0, len(data), batch_size):
            x = data.batch(slice(i, i + batch_size), device)
            per = image.image_metrics_per_image(model.reconstruct(x), x)
            for k, v in per.items():
                parts[k].append(v)
    per_image = {k: torch.cat(v) for k, v in parts.items()}
    classes = (
        None if data.labels is None else image.per_class(per_image, data.labels, data.class_names)
    )
    return image.average(per_image), classes


@torch.no_grad()
def generate_samples(
    model: AutoEncoder, n: int, *, seed: int = 0, batch_size: int = 1000
) -> torch.Tensor:
    """``n`` uint8 samples ``(n, C, H, W)`` on the CPU from ``model.sample`` with a
    generator seeded with ``seed`` (on the model's device); floats are quantised
    as ``round(255 x)``."""
    gen = torch.Generator(device=model.device).manual_seed(seed)
    out = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            x = model.sample(min(batch_size, n - i), generator=gen)
            if not torch.isfinite(x).all():
                raise FloatingPointError("model samples contain NaN or inf")
            out.append(to_uint8(x).cpu())
    return torch.cat(out)


def evaluate(
    model: AutoEncoder,
    train: ImageSet,
    test: ImageSet,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    dataset: str | None = None,
    fid_extractor: str = "auto",
    fid_samples: int = 10000,
    fid_train: ImageSet | None = None,
    nll_k: int = 100,
    nll_samples: int | None = 1000,
    probe_samples: int | None = 10000,
    batch_size: int = 500,
    extra_metrics: Iterable[MetricSpec] = (),
) -> dict[str, Any]:
    """Every test-split metric of a trained model, as a flat JSON-serialisable dict.

    ``train``: the training images (linear-probe fit set; ``fid_train``
    default). ``fid_train``: what the offline FID classifier is trained on;
    pass the dataset's full published train split so that all runs on a
    dataset share one extractor (its identity lands in ``fid_extractor``).
    ``fid_samples=0`` skips FID (all ``fid*`` keys ``None``). ``nll_samples``
    / ``probe_samples``: test / train subset sizes (``None``: all).
    Deterministic given ``seed``. Plugin metrics (``extra_metrics``) that raise
    are recorded as ``"<name>_error"`` instead of failing the evaluation.

    Keys: ``test_total, test_recon, test_reg, test_bpd`` (losses module),
    ``test_mse, test_psnr, test_ssim`` and ``per_class`` (image module),
    ``fid, fid_extractor, fid_extractor_detail, fid_samples, fid_reference,
    fid_grayscale, fid_feature_layer, fid_prior``, ``nll, nll_bpd, nll_k,
    nll_samples``, ``probe_acc``, ``n_test``, ``eval_seconds`` and
    ``eval_timings`` (seconds per part).
    """
    dev = torch.device(device)
    if fid_samples < 0:
        raise ValueError(f"fid_samples must be >= 0, got {fid_samples}")
    kind = resolve_extractor(fid_extractor) if fid_samples else None
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    out: dict[str, Any] = {"n_test": len(test)}

    t = time.perf_counter()
    losses = loss_metrics(model, test, device=dev, batch_size=batch_size, seed=seed)
    out.update({f"test_{k}": v for k, v in losses.items()})
    timings["losses"] = time.perf_counter() - t

    t = time.perf_counter()
    means, classes = reconstruction_metrics(model, test, device=dev, batch_size=batch_size)
    out.update({f"test_{k}": v for k, v in means.items()})
    out["per_class"] = classes
    timings["image"] = time.perf_counter() - t

    t = time.perf_counter()
    fid_keys = ("fid", "fid_extractor", "fid_extractor_detail", "fid_samples", "fid_reference")
    out.update(dict.fromkeys(fid_keys))
    out.update(fid_grayscale=None, fid_feature_layer=None, fid_prior=None)
    if fid_samples:
        samples = generate_samples(model, fid_samples, seed=seed)
        timings["fid_sampling"] = time.perf_counter() - t
        res = compute_fid(samples, test, kind or "auto", train_set=fid_train or train, device=dev)
        out.update(
            fid=res.value,
            fid_extractor=res.extractor,
            fid_extractor_detail=res.extractor_detail,
            fid_samples=res.n_samples,
            fid_reference=res.n_reference,
            fid_grayscale=res.grayscale_handling,
            fid_feature_layer=res.feature_layer,
            fid_prior=model.prior_description,
        )
    timings["fid"] = time.perf_counter() - t

    t = time.perf_counter()
    out.update(nll_metrics(model, test, k=nll_k, n=nll_samples, device=dev, seed=seed))
    timings["nll"] = time.perf_counter() - t

    t = time.perf_counter()
    out["probe_acc"] = probe_accuracy(
        model, train, test, n_train=probe_samples, device=dev, seed=seed
    )
    timings["probe"] = time.perf_counter() - t

    if extra_metrics:
        t = time.perf_counter()
        ctx = EvalContext(model, train, test, dev, seed, dataset or test.name)
        for spec in extra_metrics:
            try:
                values = spec.fn(ctx)
            except Exception as exc:  # a broken plugin must not fail the run
                out[f"{spec.name}_error"] = f"{type(exc).__name__}: {exc}"
                continue
            for key, value in values.items():
                out[key if key not in out else f"{spec.name}.{key}"] = _jsonable(value)
        timings["extra"] = time.perf_counter() - t

    for key in ("test_total", "test_recon", "test_reg", "test_mse"):
        if not math.isfinite(out[key]):
            raise FloatingPointError(f"{key} is not finite ({out[key]})")
    out["eval_timings"] = {k: round(v, 4) for k, v in timings.items()}
    out["eval_seconds"] = time.perf_counter() - t_start
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value
