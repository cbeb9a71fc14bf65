"""The Python API behind the CLI: list/get models and datasets."""

from __future__ import annotations

import os
from typing import Any

from aebench.datasets.base import ImageSet, data_root, validation_split
from aebench.errors import ConfigError, DataError
from aebench.models.base import AutoEncoder
from aebench.plugins import get_plugins
from aebench.specs import DatasetSpec, ModelSpec


def list_models(pattern: str | None = None) -> list[ModelSpec]:
    """Registered models matching an fnmatch glob or a family name (all if None)."""
    return get_plugins().models.list(pattern)


def model_spec(name: str) -> ModelSpec:
    return get_plugins().models.get(name)


def get_model(
    name: str, input_shape: tuple[int, int, int] = (1, 28, 28), **config: Any
) -> AutoEncoder:
    """Build model ``name`` for images of ``input_shape`` with config overrides."""
    spec = model_spec(name)
    cfg = spec.config_cls.from_options(**config)
    return spec.factory(cfg, tuple(input_shape))


def list_datasets(pattern: str | None = None) -> list[DatasetSpec]:
    return get_plugins().datasets.list(pattern)


def parse_dataset_name(name: str) -> tuple[str, str | None]:
    """``'folder:~/imgs'`` -> ``('folder', '~/imgs')``; ``'mnist'`` -> ``('mnist', None)``."""
    base, sep, arg = name.partition(":")
    return base, (arg if sep else None)


def dataset_spec(name: str) -> DatasetSpec:
    base, arg = parse_dataset_name(name)
    spec = get_plugins().datasets.get(base)
    if spec.takes_argument and not arg:
        raise ConfigError(f"dataset {base!r} needs an argument: use {base}:VALUE")
    if arg and not spec.takes_argument:
        raise ConfigError(f"dataset {base!r} takes no argument (got {name!r})")
    return spec


def _check_ready(spec: DatasetSpec, root: os.PathLike[str]) -> None:
    from pathlib import Path

    root = Path(root)
    missing = [f for f in spec.files if not (root / f).is_file()]
    if missing:
        # One line naming each missing file and the exact folder it belongs in.
        by_folder: dict[Path, list[str]] = {}
        for f in missing:
            by_folder.setdefault((root / f).parent, []).append(Path(f).name)
        where = "; ".join(f"{', '.join(names)} in {d}" for d, names in by_folder.items())
        how = (
            f"run `aebench fetch {spec.name}` where a network is available, or "
            if spec.fetch
            else ""
        )
        raise DataError(
            f"dataset {spec.name!r} is not available: expected {where} "
            f"({how}point --data-dir or AEBENCH_DATA_DIR at a folder that has them)"
        )


def get_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> ImageSet:
    """Load one published split (``train``/``test``) of dataset ``name``."""
    spec = dataset_spec(name)
    _, arg = parse_dataset_name(name)
    if split not in spec.splits:
        raise ConfigError(
            f"dataset {spec.name!r} has no split {split!r}; splits: {', '.join(spec.splits)}"
        )
    root = data_root(data_dir)
    _check_ready(spec, root)
    if arg is not None:
        options["argument"] = arg
    return spec.load(split, root, **options)


def load_splits(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    val_size: int | float = 0.1,
    val_seed: int = 0,
    **options: Any,
) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(train, val, test): ``val`` is carved deterministically from the published train split."""
    train = get_dataset(name, "train", data_dir, **options)
    test = get_dataset(name, "test", data_dir, **options)
    train, val = validation_split(train, val_size, seed=val_seed)
    return train, val, test
