"""Rules every dataset plugin must satisfy, importable by plugin authors.

``check_dataset("my-set")`` loads each published split twice through
:func:`aebench.get_dataset` and raises ``AssertionError`` naming the first rule
broken (:func:`offline_dataset_names`: the registered datasets it can check
without files). Use it in a plugin's own test suite, for instance::

    def test_my_dataset_conforms(tmp_path, monkeypatch):
        monkeypatch.setenv("AEBENCH_CACHE_DIR", str(tmp_path))
        check_dataset("my-set", data_dir=tmp_path / "data")
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import torch

from aebench.catalog import dataset_spec, get_dataset, list_datasets
from aebench.datasets.base import ImageSet

RULES = (
    "returns-imageset",
    "uint8-nchw",
    "shape-matches-spec",
    "labels-int64-in-range",
    "class-names-match",
    "split-non-empty",
    "split-and-name-recorded",
    "factors-match-spec",
    "has-train-and-test",
    "deterministic",
)


def offline_dataset_names() -> list[str]:
    """Registered datasets :func:`check_dataset` can check anywhere: those that need no
    files (``files`` empty) and no argument (for ``parametrize``)."""
    return [s.name for s in list_datasets() if not s.files and not s.takes_argument]


def _fail(name: str, rule: str, detail: str) -> NoReturn:
    raise AssertionError(f"dataset {name!r} breaks rule {rule!r}: {detail}")


def check_imageset(name: str, split: str, ds: Any, spec: Any) -> None:
    """Check one loaded split against the rules that need no second load."""
    if not isinstance(ds, ImageSet):
        _fail(name, "returns-imageset", f"load({split!r}) returned {type(ds).__name__}")
    x = ds.images
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 4:
        _fail(name, "uint8-nchw", f"{split} images are not a uint8 (N, C, H, W) tensor")
    if x.shape[1] not in (1, 3):
        _fail(name, "uint8-nchw", f"{split} images have {x.shape[1]} channels, expected 1 or 3")
    if spec.shape is not None and tuple(x.shape[1:]) != tuple(spec.shape):
        _fail(
            name,
            "shape-matches-spec",
            f"{split} images are {tuple(x.shape[1:])}, the spec says {tuple(spec.shape)}",
        )
    if len(ds) == 0:
        _fail(name, "split-non-empty", f"split {split!r} has no images")
    if ds.split != split:
        _fail(name, "split-and-name-recorded", f"load({split!r}) returned split {ds.split!r}")
    if not ds.name:
        _fail(name, "split-and-name-recorded", f"{split} ImageSet has no name")
    y = ds.labels
    num_classes = spec.num_classes or (len(ds.class_names) if ds.class_names else None)
    if y is not None:
        if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
            _fail(name, "labels-int64-in-range", f"{split} labels are not int64 (N,)")
        if len(y) and int(y.min()) < 0:
            _fail(name, "labels-int64-in-range", f"{split} has negative label {int(y.min())}")
        if num_classes is not None and len(y) and int(y.max()) >= num_classes:
            _fail(
                name,
                "labels-int64-in-range",
                f"{split} has label {int(y.max())} but {num_classes} classes",
            )
    names = None if ds.class_names is None else tuple(ds.class_names)
    if spec.class_names is not None and names is not None and names != tuple(spec.class_names):
        _fail(name, "class-names-match", f"{split} class names differ from the spec's")
    if names is not None and spec.num_classes is not None and len(names) != spec.num_classes:
        _fail(
            name,
            "class-names-match",
            f"{len(names)} class names but num_classes={spec.num_classes}",
        )


def check_factors(name: str, split: str, ds: ImageSet, spec: Any) -> None:
    """Rule ``factors-match-spec``: a spec that declares ``factor_names`` gets, in every
    split, finite float ``factors`` ``(N, K)`` named exactly so, each ``"discrete"`` or
    ``"continuous"``; a spec that declares none gets no factors."""
    rule = "factors-match-spec"
    declared = None if spec.factor_names is None else tuple(spec.factor_names)
    f = ds.factors
    if declared is None:
        if f is not None:
            _fail(name, rule, f"{split} has factors {ds.factor_names} the spec does not declare")
        return
    if f is None:
        _fail(name, rule, f"{split} has no factors; the spec declares {declared}")
    if not isinstance(f, torch.Tensor) or not f.is_floating_point() or f.dim() != 2:
        _fail(name, rule, f"{split} factors are not a float (N, K) tensor")
    if tuple(f.shape) != (len(ds), len(declared)):
        _fail(
            name,
            rule,
            f"{split} factors are {tuple(f.shape)}, expected ({len(ds)}, {len(declared)})",
        )
    if tuple(ds.factor_names or ()) != declared:
        _fail(name, rule, f"{split} factor names {ds.factor_names} differ from the spec's")
    kinds = tuple(ds.factor_kinds or ())
    if len(kinds) != len(declared) or any(k not in ("discrete", "continuous") for k in kinds):
        _fail(name, rule, f"{split} factor kinds {kinds} are not one of discrete/continuous each")
    if not torch.isfinite(f).all():
        _fail(name, rule, f"{split} factors contain NaN or inf")


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


def check_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, **options: Any
) -> None:
    """Load every split of dataset ``name`` twice and check the rules in :data:`RULES`.

    ``name`` may carry an argument (``folder:PATH``); ``options`` go to the
    loader. Raises ``AssertionError`` naming the broken rule; data errors
    (missing files) propagate as :class:`aebench.errors.DataError`.
    """

    spec = dataset_spec(name)
    if not {"train", "test"} <= set(spec.splits):
        _fail(name, "has-train-and-test", f"splits are {spec.splits}, need train and test")
    for split in spec.splits:
        first = get_dataset(name, split, data_dir, **options)
        check_imageset(name, split, first, spec)
        check_factors(name, split, first, spec)
        second = get_dataset(name, split, data_dir, **options)
        same = (
            torch.equal(first.images, second.images)
            and _same(first.labels, second.labels)
            and _same(first.factors, second.factors)
        )
        if not same or first.class_names != second.class_names:
            _fail(name, "deterministic", f"two loads of split {split!r} differ")
