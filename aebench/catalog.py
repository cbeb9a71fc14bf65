"""The catalog: what is registered, and the one way to build or load each thing.

::

    import aebench

    model = aebench.create_model("beta-vae-cnn", (1, 28, 28), latent_dim=8, beta=2)
    train = aebench.get_dataset("folder:~/imgs", "train", size=32)
    aebench.list_metrics()

Models, datasets, metrics and samplers come from the plugin manager (:mod:`aebench.plugins`);
this module looks them up by name, builds models (:func:`create_model`), loads
datasets (:func:`get_dataset`, options validated here, once), reloads stored
models (:func:`load_model`), fetches dataset files (:func:`fetch_dataset`) and
answers questions about the registered metrics. It runs nothing: running a
benchmark is :mod:`aebench.runner`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from safetensors.torch import load_file

from aebench.datasets.base import ImageSet, data_root, validation_split
from aebench.errors import ConfigError, DataError
from aebench.models.base import AutoEncoder
from aebench.options import unknown_name_error
from aebench.plugins import Plugins, get_plugins
from aebench.profiles import PROFILES
from aebench.specs import (
    DatasetSpec,
    MetricColumn,
    MetricOption,
    MetricSpec,
    ModelSpec,
    SamplerSpec,
)
from aebench.store import RunFormatError, RunRecord, RunStore


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
        shape = cast("tuple[int, int, int]", tuple(int(s) for s in input_shape))
        model = spec.factory(config, shape)
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


def load_model(
    store: RunStore | str | os.PathLike[str], run: RunRecord | str, device: str = "cpu"
) -> AutoEncoder:
    """Rebuild a finished run's model from its config and weights (eval mode).

    ``store``: a :class:`~aebench.store.RunStore` or its folder; ``run``: a run
    record or a run id."""
    store = store if isinstance(store, RunStore) else RunStore(Path(store))
    record = store.get(run) if isinstance(run, str) else run
    weights = record.file("weights.safetensors")
    if weights is None:
        raise RunFormatError(f"run {record.run_id!r} has no weights.safetensors")
    shape = tuple(record.config.get("input_shape") or ())
    if len(shape) != 3:
        raise RunFormatError(f"run {record.run_id!r}: config.json lacks input_shape")
    model = create_model(record.config["model"], shape, **record.config["model_config"])
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:  # SafetensorError, missing/mismatched keys, OSError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RunFormatError(
            f"run {record.run_id!r}: weights.safetensors is corrupt or does not match "
            f"the model ({type(exc).__name__}: {first})"
        ) from None
    return model.to(device).eval()


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def fetch_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    echo: Callable[[str], None] | None = _stderr,
) -> Path:
    """Download dataset ``name``'s files into the data root and return that root.

    Datasets that need no files (``digits``) or read the user's own files
    (``folder:PATH``) have nothing to fetch: ``echo`` says so and nothing is
    written. Errors are :class:`aebench.errors.DataError` (exit status 2).
    """
    spec = get_plugins().datasets.get(parse_dataset_name(name)[0])
    root = data_root(data_dir)
    say = echo or (lambda _msg: None)
    if spec.takes_argument:
        say(f"dataset {spec.name!r} reads your own files: nothing to fetch")
        return root
    if not spec.files:
        say(f"dataset {spec.name!r} needs no files: nothing to fetch")
        return root
    if spec.fetch is None:
        raise DataError(
            f"dataset {spec.name!r} cannot be downloaded automatically: put "
            f"{', '.join(spec.files)} in {root} yourself"
        )
    try:
        spec.fetch(root)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not fetch {spec.name!r} into {root}: {exc}") from None
    missing = [f for f in spec.files if not (root / f).is_file()]
    if missing:
        raise DataError(f"fetching {spec.name!r} did not produce {', '.join(missing)} in {root}")
    say(f"dataset {spec.name!r} is ready in {root}")
    return root


# -- samplers --------------------------------------------------------------------
def sampler_specs() -> list[SamplerSpec]:
    """Registered samplers (built-in and plugins), in registration order: the order
    their sample-metric values are computed in."""
    return list(get_plugins().samplers)


# -- metrics ---------------------------------------------------------------------
def metric_specs() -> list[MetricSpec]:
    """Registered metrics (built-in and plugins), in column order."""
    specs = list(get_plugins().metrics)
    return sorted(specs, key=lambda s: s.order)  # stable: registration order within an order


def column_specs(specs: Iterable[MetricSpec] | None = None) -> list[MetricColumn]:
    """Every declared column, in order."""
    return [c for s in (metric_specs() if specs is None else specs) for c in s.columns]


def option_specs(specs: Iterable[MetricSpec] | None = None) -> list[MetricOption]:
    """Every metric budget option, in order."""
    return [o for s in (metric_specs() if specs is None else specs) for o in s.options]


def resolve_metric_options(
    profile: str, given: Mapping[str, Any] | None = None, specs: Iterable[MetricSpec] | None = None
) -> dict[str, Any]:
    """Every metric option's value: ``given`` (converted and checked) else ``profile``'s default."""
    options = option_specs(specs)
    by_name = {o.name: o for o in options}
    for name in given or {}:
        if name not in by_name:
            raise unknown_name_error("metric option", name, by_name, "see `aebench metrics`")
    out = {}
    for opt in options:
        value = (given or {}).get(opt.name)
        out[opt.name] = opt.default_for(profile) if value is None else opt.convert(value)
    return out


def metrics_markdown(specs: Iterable[MetricSpec] | None = None) -> str:
    """The metric and budget tables of README.md ("How to read the numbers"), as Markdown.

    ``aebench metrics --markdown`` prints them; a test keeps the README equal to them.
    Default: the built-in metrics as aebench alone registers them (no third-party
    plugin, whose models would add their families to the "applies to" texts).
    """
    specs = list(Plugins(load_entry_points=False).metrics) if specs is None else list(specs)
    best = {"min": "↓ lower", "max": "↑ higher", None: "—"}
    lines = [
        "| column | label | unit | better | applies to | definition |",
        "|---|---|---|---|---|---|",
    ]

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    for s in specs:
        for c in s.columns:
            cells = [
                f"`{c.key}`",
                c.label,
                c.unit or "—",
                best[c.direction],
                c.applies_text or s.applies_text,
                c.definition,
            ]
            lines.append("| " + " | ".join(cell(x) for x in cells) + " |")
    profiles = list(PROFILES)
    lines += [
        "",
        f"| budget | flag | {' | '.join(f'`{p}`' for p in profiles)} | meaning |",
        f"|---|---|{'---|' * len(profiles)}---|",
    ]
    for s in specs:
        for o in s.options:
            flag = f"`{o.flag}`" if o.flag else "—"
            values = " | ".join(str(o.default_for(p)) for p in profiles)
            lines.append(f"| `{o.name}` | {flag} | {values} | {cell(o.help)} |")
    return "\n".join(lines) + "\n"
