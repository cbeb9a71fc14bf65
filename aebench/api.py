"""The Python API behind the CLI: models, datasets, and running a benchmark.

::

    import aebench

    model = aebench.create_model("beta-vae-cnn", (1, 28, 28), latent_dim=8, beta=2)
    train = aebench.get_dataset("folder:~/imgs", "train", size=32)
    summary = aebench.run(models="vae,ae", datasets="digits", profile="smoke",
                          model_options={"latent_dim": [2, 8]}, out="out")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aebench.datasets.base import ImageSet, data_root, validation_split
from aebench.errors import ConfigError, DataError
from aebench.models.base import AutoEncoder
from aebench.plugins import get_plugins
from aebench.specs import DatasetSpec, ModelSpec

if TYPE_CHECKING:
    from aebench.runner import Summary


def list_models(pattern: str | None = None) -> list[ModelSpec]:
    """Registered models matching an fnmatch glob or a family name (all if None)."""
    return get_plugins().models.list(pattern)


def model_spec(name: str) -> ModelSpec:
    return get_plugins().models.get(name)


def create_model(
    name: str | ModelSpec, input_shape: tuple[int, int, int], **options: Any
) -> AutoEncoder:
    """Build model ``name`` (or an unregistered :class:`ModelSpec`) for images of
    ``input_shape`` (C, H, W).

    ``options`` are fields of the model's config (``latent_dim=8``, ``beta=2``,
    ``hidden_dims=(512, 256)``), as values or as text; an unknown name or a bad
    value is a :class:`~aebench.errors.ConfigError`. The one way aebench builds
    a model: the runner, ``aebench generate``, the conformance checks and this
    API all call it.
    """
    spec = name if isinstance(name, ModelSpec) else model_spec(name)
    try:
        config = spec.config_cls.from_options(**options)
        model = spec.factory(config, tuple(int(s) for s in input_shape))
    except ConfigError as exc:
        raise ConfigError(f"model {spec.name}: {exc}") from None
    if not isinstance(model, AutoEncoder):
        raise TypeError(
            f"model {spec.name}: its factory returned {type(model).__name__}, "
            "not an aebench AutoEncoder"
        )
    return model


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
    """Load one published split (``train``/``test``) of dataset ``name``.

    ``options`` are the dataset's declared options (``aebench datasets``
    lists them), validated and converted here, in one place.
    """
    spec = dataset_spec(name)
    _, arg = parse_dataset_name(name)
    if split not in spec.splits:
        raise ConfigError(
            f"dataset {spec.name!r} has no split {split!r}; splits: {', '.join(spec.splits)}"
        )
    kwargs = spec.loader_kwargs(spec.resolve_options(options))
    root = data_root(data_dir)
    _check_ready(spec, root)
    if arg is not None:
        kwargs["argument"] = arg
    return spec.load(split, root, **kwargs)


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


def run(
    models: str | list[str],
    datasets: str | list[str],
    *,
    out: str | os.PathLike[str] = "aebench-out",
    model_options: Mapping[str, Any] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    metric_options: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str = "auto",
    force: bool = False,
    report: bool = True,
    on_event: Any = None,
    workers: int = 1,
    executor: str = "local",
    execution: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Summary:
    """Plan, train and evaluate a grid, as ``aebench run`` does; returns its summary.

    ``model_options`` maps a model-config field to one value or a list of values
    to sweep (``{"beta": [0.5, 4], "latent_dim": [2, 16]}``); ``dataset_options``
    maps an option (or a dataset name to its options) to a value;
    ``metric_options`` sets metric budgets (``{"fid_samples": 0}``).
    ``settings`` are the other :class:`aebench.plan.Options` fields
    (``seeds``, ``epochs``, ``batch_size``, ``lr``, ``profile``, ...).
    ``on_event`` receives progress events (:mod:`aebench.progress`).
    ``workers``, ``executor`` and ``execution`` (any field of
    :class:`aebench.executors.ExecutionSettings`) say where cells run.
    """
    from aebench.executors import ExecutionSettings
    from aebench.plan import Options, plan
    from aebench.runner import run_benchmark

    def as_list(value: str | list[str]) -> list[str]:
        return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)

    options = Options(
        models=as_list(models),
        datasets=as_list(datasets),
        model_options={
            k: list(v) if isinstance(v, (list, tuple)) else [v]
            for k, v in (model_options or {}).items()
        },
        dataset_options=dict(dataset_options or {}),
        metric_options=dict(metric_options or {}),
        **settings,
    )
    runs = plan([options], device=device)
    where = ExecutionSettings().merged(
        {"workers": workers, "executor": executor, **(execution or {})}
    )
    return run_benchmark(
        runs,
        out,
        data_dir=None if data_dir is None else str(data_dir),
        force=force,
        report=report,
        on_event=on_event,
        execution=where.check(),
    )
