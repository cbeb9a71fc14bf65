"""aebench-shapes: a procedurally generated dSprites-style dataset for aebench.

Registers the dataset ``shapes`` through the ``register_datasets`` hook: 1×32×32
(or any ``size``) grayscale images of a square, an ellipse or a heart with
random scale, rotation and position; the label is the shape. Nothing is
downloaded, and the same options always give the same images.

Loader options (``aebench.get_dataset("shapes", split, **options)``):

* ``size``: image side in pixels (default 32; 28 matches MNIST models);
* ``n_train`` / ``n_test``: images per split (default 10,000 / 2,000);
* ``seed``: generation seed (default 0). The train and test splits use
  different streams, so they never share images, and the test split does not
  depend on ``n_train``.

Every split carries its generative factors (``ImageSet.factors``, declared as
the spec's ``factor_names``), which aebench's disentanglement metrics (MIG,
DCI, SAP, FactorVAE score) compare with a model's latents: ``shape`` (the
label, 0 square / 1 ellipse / 2 heart; ``"discrete"``) then ``scale``,
``rotation``, ``x`` and ``y`` (``"continuous"``). :func:`factors` returns the
four continuous ones alone.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from aebench import DatasetSpec, ImageSet, hookimpl
from aebench.specs import DatasetOption
from aebench_shapes.generate import CLASS_NAMES, FACTOR_NAMES, Shapes, generate

__version__ = "0.2.0"
__all__ = [
    "CLASS_NAMES",
    "DATASET_FACTOR_KINDS",
    "DATASET_FACTOR_NAMES",
    "FACTOR_NAMES",
    "__version__",
    "factors",
    "generate",
    "load",
]

NAME = "shapes"
DATASET_FACTOR_NAMES: tuple[str, ...] = ("shape", *FACTOR_NAMES)
"""The factors every split carries: the shape (the label), then :data:`FACTOR_NAMES`."""
DATASET_FACTOR_KINDS: tuple[str, ...] = ("discrete",) + ("continuous",) * len(FACTOR_NAMES)
SPLITS = ("train", "test")
DEFAULTS: dict[str, int] = {"size": 32, "n_train": 10_000, "n_test": 2_000, "seed": 0}
OPTIONS = (
    DatasetOption("size", int, DEFAULTS["size"], "image side in pixels (28 matches MNIST models)"),
    DatasetOption("n_train", int, DEFAULTS["n_train"], "images in the train split"),
    DatasetOption("n_test", int, DEFAULTS["n_test"], "images in the test split"),
    DatasetOption("seed", int, DEFAULTS["seed"], "generation seed"),
)


def _resolve(split: str, options: dict[str, Any]) -> tuple[int, int, int]:
    """(n, size, seed) for ``split``; unknown options are an error naming them."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"dataset {NAME!r} has no option {unknown[0]!r}; options are: {', '.join(DEFAULTS)}"
        )
    if split not in SPLITS:
        raise ValueError(f"dataset {NAME!r} has no split {split!r}; splits: {', '.join(SPLITS)}")
    opts = {k: int(options.get(k, v)) for k, v in DEFAULTS.items()}
    n = opts["n_train"] if split == "train" else opts["n_test"]
    # Independent streams per split: seed s uses 2s for train and 2s+1 for test.
    return n, opts["size"], 2 * opts["seed"] + SPLITS.index(split)


@lru_cache(maxsize=4)
def _generate(n: int, size: int, seed: int) -> Shapes:
    return generate(n, size, seed)


def load(split: str, root: Path | None = None, **options: Any) -> ImageSet:
    """Generate one split of ``shapes`` (``root`` is ignored: no files needed).

    aebench validates the options against :data:`OPTIONS` before calling this."""
    shapes = _generate(*_resolve(split, options))
    factors = torch.cat([shapes.labels.unsqueeze(1).float(), shapes.factors], dim=1)
    return ImageSet(
        shapes.images,
        shapes.labels,
        CLASS_NAMES,
        NAME,
        split,
        factors=factors,
        factor_names=DATASET_FACTOR_NAMES,
        factor_kinds=DATASET_FACTOR_KINDS,
    )


def factors(split: str = "train", **options: Any) -> torch.Tensor:
    """Float ``(N, 4)`` continuous factors (scale, rotation, x, y) aligned with ``load``
    (whose ``ImageSet.factors`` also hold the shape, first)."""
    return _generate(*_resolve(split, options)).factors.clone()


@hookimpl
def register_datasets(register: Any) -> None:
    register(
        DatasetSpec(
            name=NAME,
            load=load,
            shape=(1, DEFAULTS["size"], DEFAULTS["size"]),
            splits=SPLITS,
            num_classes=len(CLASS_NAMES),
            class_names=CLASS_NAMES,
            options=OPTIONS,
            factor_names=DATASET_FACTOR_NAMES,
            description=(
                "procedural dSprites-style shapes (square/ellipse/heart; scale, rotation, "
                "position); generated, works offline"
            ),
        )
    )
