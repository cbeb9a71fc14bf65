"""Turn options (CLI, Python or a suite file) into a validated list of runs.

Everything a user can get wrong is checked here, before any training starts:
names, numbers, devices, model options (against each model's config class),
dataset options (against each dataset's declared options) and metric budgets
(against the metric specs). What needs the data itself (image shapes, split
sizes) is checked by the runner's ``prepare`` step, still before training.

A grid is models × datasets × every value of every model option × seeds. Any
field of a model's config is a grid axis (``-o beta=0.5,4``); ``latent_dims``,
``betas``, ``likelihood`` and ``hidden_dims`` are shorthands for the options
of the same (singular) name. A model option applies to the selected models
that have it, unless it is scoped: ``factor-vae.gamma`` (a family, a model
name or a ``--models`` glob, then ``.``) applies to the selected models in that
scope only, and overrides a plain ``gamma`` for them. A plain option whose
field means different things for different selected models (declared by
different config classes) is an error asking for a scope.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import itertools
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aebench.catalog import dataset_spec, option_specs, parse_dataset_name, resolve_metric_options
from aebench.errors import ConfigError, UnknownNameError, did_you_mean
from aebench.options import (
    convert,
    field_help,
    field_types,
    is_sequence_type,
    jsonable,
    parse_assignment,
    short_value,
    split_values,
    unknown_name_error,
)
from aebench.plugins import get_plugins
from aebench.profiles import DEFAULT_PROFILE, PROFILES
from aebench.store import MAX_SEED

TRAINING_DEFAULTS: dict[str, Any] = {"batch_size": 128, "lr": 1e-3, "val_size": 0.1}
DEVICES = ("auto", "cpu", "cuda", "mps")

# Documented shorthands: suite key / Python field -> (model option, sweep?)
MODEL_SHORTHANDS: dict[str, tuple[str, bool]] = {
    "latent_dims": ("latent_dim", True),
    "betas": ("beta", True),
    "likelihood": ("likelihood", False),
    "hidden_dims": ("hidden_dims", False),
}


@dataclass
class Grid:
    """Every setting of a benchmark. ``None`` means "not given" (profile/suite decide).

    ``model_options`` maps a model-config field to the values to sweep (a
    list), or to text as typed on the command line (``"0.5,4"``; for a list
    field such as ``hidden_dims``, ``"512,256"`` is one value and
    ``"[512,256],[1024]"`` two). A key ``SCOPE.FIELD`` (``"beta-vae.beta"``;
    SCOPE a family, a model name or a glob as ``--models`` takes) applies to
    the selected models in SCOPE only and overrides a plain ``FIELD`` for them.
    ``dataset_options`` maps an option name to a value for every dataset of the
    grid, or a dataset name (``folder`` or ``folder:PATH``) to its own options.
    ``metric_options`` sets metric budgets (``fid_samples``, ``nll_k``, ...; see
    ``aebench metrics``).
    """

    models: list[str] | None = None
    datasets: list[str] | None = None
    model_options: dict[str, Any] | None = None
    seeds: list[int] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    limit: int | None = None
    val_size: float | None = None
    dataset_options: dict[str, Any] | None = None
    metric_options: dict[str, Any] | None = None
    profile: str | None = None
    deterministic: bool | None = None
    compile: bool | None = None
    binarize: str | None = None
    n_seeds: int | None = None

    def merged(self, over: Grid) -> Grid:
        """Values of ``over`` where given, else ours; option tables merge key by key."""
        out = Grid(**asdict(self))
        for f in fields(self):
            value = getattr(over, f.name)
            if value is None:
                continue
            mine = getattr(out, f.name)
            if isinstance(value, dict) and isinstance(mine, dict):
                value = {**mine, **value}
            setattr(out, f.name, value)
        return out

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], where: str = "") -> Grid:
        """A grid from a suite table or keyword arguments, shorthands included.

        Keys: the fields of :class:`Grid`, the shorthands of
        :data:`MODEL_SHORTHANDS`, and metric option names (``fid_samples``).
        An unknown key is an error naming ``where`` and the closest key.
        """

        metric_names = {o.name for o in option_specs()}
        own = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        model_options = _flatten_scopes(table.get("model_options") or {}, where)
        metric_options: dict[str, Any] = dict(table.get("metric_options") or {})
        for key, value in table.items():
            if key in ("model_options", "metric_options"):
                continue
            if key in MODEL_SHORTHANDS:
                name, sweep = MODEL_SHORTHANDS[key]
                if value is None:
                    continue
                if name in model_options:
                    raise ConfigError(f"{where}{key} and model option {name!r} are both given")
                model_options[name] = _as_list(value) if sweep else [value]
            elif key in metric_names:
                if value is not None:
                    metric_options[key] = value
            elif key in own:
                values[key] = value
            else:
                known = own | set(MODEL_SHORTHANDS) | metric_names
                hint = did_you_mean(key, known)
                raise ConfigError(f"{where}unknown key {key!r}{hint}")
        for name in ("models", "datasets", "seeds"):
            if values.get(name) is not None:
                values[name] = _as_list(values[name])
        for name, raw in list(model_options.items()):
            model_options[name] = raw if isinstance(raw, str) else _as_list(raw)
        return cls(
            **values,
            model_options=model_options or None,
            metric_options=metric_options or None,
        )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _flatten_scopes(table: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Model options with nested tables as scoped keys: TOML's ``beta-vae.beta = [1, 4]``
    (a dotted key) and ``beta-vae = { beta = [1, 4] }`` both read as ``"beta-vae.beta"``.
    No option's value is a table, so a table is always a scope."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}model_options must be a table, got {table!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            if not value:
                raise ConfigError(f"{where}model option scope {key!r} sets no option")
            for name, inner in _flatten_scopes(value, where).items():
                out[f"{key}.{name}"] = inner
        else:
            out[str(key)] = value
    return out


@dataclass(frozen=True)
class RunConfig:
    """One run: everything that determines its numbers (its key) plus labels."""

    model: str
    dataset: str
    seed: int
    model_config: dict[str, Any]
    epochs: int
    batch_size: int
    lr: float
    limit: int | None
    val_size: float
    metric_options: dict[str, Any]
    device: str
    profile: str
    dataset_options: dict[str, Any] = field(default_factory=dict)
    deterministic: bool = True
    compile: bool = False
    binarize: str | None = None
    family: str = field(default="", compare=False)
    arch: str = field(default="", compare=False)
    plugin: str = field(default="", compare=False)
    description: str = field(default="", compare=False)
    shown_options: tuple[str, ...] = field(default=(), compare=False)

    _LABELS = ("family", "arch", "plugin", "description", "profile", "shown_options")

    @property
    def key(self) -> str:
        """Hash of every setting that affects the results (labels excluded)."""
        data = {k: v for k, v in asdict(self).items() if k not in self._LABELS}
        blob = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def latent_dim(self) -> Any:
        return self.model_config.get("latent_dim")

    def _option_parts(self) -> list[tuple[str, Any]]:
        return [(k, self.model_config.get(k)) for k in self.shown_options if k != "latent_dim"]

    @property
    def run_id(self) -> str:
        ds = re.sub(r"[^a-z0-9.-]+", "-", self.dataset.lower()).strip("-")[:40]
        parts = "".join(
            "_" + re.sub(r"[^A-Za-z0-9.-]+", "-", f"{k}{short_value(v)}")[:24]
            for k, v in self._option_parts()
        )
        return f"{ds}_{self.model}_z{self.latent_dim}{parts}_s{self.seed}_{self.key}"

    @property
    def label(self) -> str:
        opts = "".join(f", {k}={short_value(v)}" for k, v in self._option_parts())
        return f"{self.model} on {self.dataset} (z={self.latent_dim}{opts}, seed {self.seed})"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["shown_options"] = list(self.shown_options)
        return {"run_id": self.run_id, "key": self.key, **out}


# -- parsing user input ---------------------------------------------------------
def parse_list(option: str, value: str | None, kind: type = str) -> list[Any] | None:
    """``'2,16'`` -> ``[2, 16]`` with a one-line error naming the option."""
    if value is None:
        return None
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    if not items:
        raise ConfigError(f"{option}: expected a comma-separated list, got {value!r}")
    try:
        return [kind(v) for v in items]
    except ValueError:
        what = {int: "integers", float: "numbers"}.get(kind, "values")
        raise ConfigError(f"{option}: expected comma-separated {what}, got {value!r}") from None


def parse_assignments(option: str, values: list[str] | None) -> dict[str, str] | None:
    """Repeated ``KEY=VALUE`` flags (``-o beta=0.5,4 -o latent_dim=2``) as a dict of text."""
    if not values:
        return None
    out: dict[str, str] = {}
    for text in values:
        key, value = parse_assignment(option, text)
        if key in out:
            raise ConfigError(f"{option}: {key!r} is given twice")
        out[key] = value
    return out


def parse_model_options(option: str, values: list[str] | None) -> dict[str, str] | None:
    """Repeated ``[SCOPE.]KEY=VALUE`` flags (``-o beta=0.5,4 -o factor-vae.gamma=40``) as a
    dict of text. ``-`` in KEY reads as ``_`` (``-o gaussian-var=0.25``); SCOPE (a family,
    a model name or a glob) is kept as typed."""
    if not values:
        return None
    out: dict[str, str] = {}
    for text in values:
        head, sep, _ = str(text).partition("=")
        scope, dot, name = head.strip().rpartition(".")
        if dot and (not scope.strip() or not name.strip()):
            raise ConfigError(
                f"{option}: expected [SCOPE.]KEY=VALUE (e.g. beta-vae.beta=1,4), got {text!r}"
            )
        key, value = parse_assignment(option, f"{name}{str(text)[len(head) :]}" if sep else text)
        if dot:
            key = f"{scope.strip()}.{key}"
        if key in out:
            raise ConfigError(f"{option}: {key!r} is given twice")
        out[key] = value
    return out


def parse_dataset_options(option: str, values: list[str] | None) -> dict[str, Any] | None:
    """``['size=32,channels=3', 'folder:size=16']`` -> ``{'size': '32', 'channels': '3',
    'folder': {'size': '16'}}``: a ``DATASET:`` prefix scopes a flag to that dataset."""
    if not values:
        return None
    out: dict[str, Any] = {}
    for text in values:
        first_eq = text.find("=")
        head = text[:first_eq] if first_eq > 0 else text
        prefix, sep, _ = head.rpartition(":")
        target: dict[str, Any] = out
        if sep:
            target = out.setdefault(prefix, {})
            text = text[len(prefix) + 1 :]
        for item in (v.strip() for v in text.split(",")):
            key, eq, val = item.partition("=")
            if not item or not eq or not key.strip():
                raise ConfigError(
                    f"{option}: expected [DATASET:]KEY=VALUE pairs separated by commas, "
                    f"got {text!r}"
                )
            target[key.strip()] = val.strip()
    return out


def load_suite(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Grid]]:
    """Read a suite TOML file: top-level keys are defaults, each ``[[grid]]`` a sub-grid."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--suite: no such file {str(path)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--suite {path}: invalid TOML: {exc}") from None
    keys = ("name", "description", "reproduces", "execution")
    meta: dict[str, Any] = {k: data.pop(k) for k in keys if k in data}
    if not isinstance(meta.get("execution", {}), dict):
        raise ConfigError(f"--suite {path}: [execution] must be a table")
    grids = data.pop("grid", [{}])
    base = Grid.from_mapping(data, f"--suite {path}: ")
    return meta, [base.merged(Grid.from_mapping(g, f"--suite {path}: ")) for g in grids]


# -- validation and expansion ---------------------------------------------------
def resolve_device(name: str) -> str:
    import torch

    if name not in DEVICES:
        raise UnknownNameError("device", name, DEVICES)
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError("--device mps: MPS is not available on this machine")
    return name


MAX_COUNT = 2**31 - 1
"""The largest epoch, batch, image or seed count aebench takes: far beyond any real
run, and small enough for every integer type torch and NumPy use."""
MAX_CELLS = 100_000
"""The most cells one grid may expand to: a week of 6-second cells on one core, and
few enough that planning them fits in memory (``--n-seeds 1000000000`` did not)."""


def _number(
    option: str,
    value: Any,
    kind: type,
    *,
    minimum: float = 0,
    strict: bool = True,
    maximum: float | None = None,
) -> Any:
    """``value`` as ``kind``, finite, above ``minimum`` (or equal, unless ``strict``) and
    at most ``maximum`` (ints: :data:`MAX_COUNT` unless given)."""
    value = convert(option, value, kind)
    if (strict and not value > minimum) or (not strict and not value >= minimum):
        raise ConfigError(f"{option} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    maximum = MAX_COUNT if maximum is None and kind is int else maximum
    if maximum is not None and value > maximum:
        raise ConfigError(f"{option} must be at most {maximum}, got {value!r}")
    return value


def _val_size(value: Any) -> float | int:
    """A fraction in (0, 1) or a whole number of images >= 1."""
    size = convert("--val-size", value, float)
    if 0 < size < 1:
        return size
    if size >= 1 and size.is_integer():
        return int(size)
    raise ConfigError(
        f"--val-size must be a fraction between 0 and 1 or a whole number of images, got {value!r}"
    )


def _training(o: Grid, profile: str) -> dict[str, Any]:
    settings = {**TRAINING_DEFAULTS, **PROFILES[profile]}
    for name in ("epochs", "batch_size", "lr", "limit", "val_size"):
        if getattr(o, name) is not None:
            settings[name] = getattr(o, name)
    out = {
        "epochs": _number("--epochs", settings["epochs"], int),
        "batch_size": _number("--batch-size", settings["batch_size"], int),
        "lr": _number("--lr", settings["lr"], float),
        "limit": None if settings["limit"] is None else _number("--limit", settings["limit"], int),
        "val_size": _val_size(settings["val_size"]),
    }
    if not math.isfinite(out["lr"]):
        raise ConfigError(f"--lr must be finite, got {out['lr']!r}")
    return out


def _split_scope(key: str) -> tuple[str | None, str]:
    """``'factor-vae.gamma'`` -> ``('factor-vae', 'gamma')``; ``'gamma'`` -> ``(None, 'gamma')``."""
    scope, dot, name = key.rpartition(".")
    if not dot:
        return None, key
    if not scope.strip() or not name.strip():
        raise ConfigError(
            f"model option {key!r}: expected SCOPE.NAME (a family, model name or glob, then "
            "the option, e.g. beta-vae.beta)"
        )
    return scope.strip(), name.strip()


def _declared_by(config_cls: type, name: str) -> type:
    """The config class that introduced field ``name``: the most basic class in
    ``config_cls``'s MRO whose own annotations declare it (a subclass that only changes the
    default keeps the meaning). Two models' ``name`` mean the same when this is the same."""
    for klass in reversed(config_cls.__mro__):
        if name in inspect.get_annotations(klass):
            return klass
    return config_cls


def _meaning(config_cls: type, name: str) -> str:
    """``'FactorVAEConfig: weight of the TC term'``: the declaring class and the field's help."""
    klass = _declared_by(config_cls, name)
    source = klass if dataclasses.is_dataclass(klass) else config_cls
    found = [f for f in dataclasses.fields(source) if f.name == name]
    text = field_help(found[0]) if found else ""
    return f"{klass.__name__}: {text}" if text else klass.__name__


def _example_value(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    return ",".join(short_value(v) for v in _as_list(raw)) or "..."


def _check_one_meaning(key: str, name: str, owners: list, raw: Any) -> None:
    """A ConfigError unless ``name`` is declared by one config class for every owner."""
    groups: dict[type, list[Any]] = {}
    for spec in owners:
        groups.setdefault(_declared_by(spec.config_cls, name), []).append(spec)
    if len(groups) < 2:
        return
    parts = [
        f"{', '.join(s.name for s in specs)} ({_meaning(specs[0].config_cls, name)})"
        for specs in groups.values()
    ]
    listed = f"{', '.join(parts[:-1])} and {parts[-1]}"
    first = next(iter(groups.values()))[0]
    declarer = _declared_by(first.config_cls, name)
    family_owners = [s for s in owners if first.family and s.family == first.family]
    same = all(_declared_by(s.config_cls, name) is declarer for s in family_owners)
    scope = first.family if first.family and same else first.name
    what = "scope it" if key == name else "narrow its scope"
    raise ConfigError(
        f"model option {key!r} means different things for {listed}: {what}, "
        f"e.g. -o {scope}.{name}={_example_value(raw)}"
    )


def _in_scope(models: list, scope: str) -> list[tuple[Any, int]]:
    """The selected models in ``scope`` with how closely it names them (0: the model's
    name, 1: its family, 2: a glob), as ``--models`` matches patterns."""
    matched = {s.name for s in get_plugins().models.list(scope)}
    out = []
    for spec in models:
        if spec.name in matched:
            rank = 0 if scope == spec.name else 1 if scope == spec.family else 2
            out.append((spec, rank))
    return out


def _model_axes(models: list, given: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Per model name: option -> values to sweep, converted to the field's type.

    A plain option applies to every selected model that has it (at least one must), and
    must mean the same for all of them (:func:`_check_one_meaning`). A scoped one
    (``SCOPE.NAME``) applies to the selected models in SCOPE that have NAME and overrides
    the plain one for them; a model's name beats its family, its family a glob.
    """

    selected = ", ".join(m.name for m in models)
    # (model, option) -> (rank, key, raw) of the value that sets it
    setters: dict[tuple[str, str], tuple[int, str, Any]] = {}
    plain: dict[str, Any] = {}
    for key, raw in given.items():
        scope, name = _split_scope(key)
        if scope is None:
            plain[name] = raw
            continue
        in_scope = _in_scope(models, scope)
        if not in_scope:
            hint = ""  # a typo, unless the scope names registered models that are not selected
            if not get_plugins().models.list(scope):
                hint = did_you_mean(
                    scope, [m.name for m in models] + [m.family for m in models if m.family]
                )
            raise ConfigError(
                f"model option {key!r}: {scope!r} matches none of the selected models{hint}; "
                f"selected: {selected}"
            )
        ranked = [(m, rank) for m, rank in in_scope if name in field_types(m.config_cls)]
        if not ranked:
            raise _unknown_scoped(models, [m for m, _ in in_scope], scope, name)
        _check_one_meaning(key, name, [m for m, _ in ranked], raw)
        for spec, rank in ranked:
            before = setters.get((spec.name, name))
            if before is not None and before[0] == rank:
                raise ConfigError(
                    f"model option {name!r} is set twice for {spec.name}: "
                    f"by {before[1]!r} and by {key!r}"
                )
            if before is None or rank < before[0]:
                setters[(spec.name, name)] = (rank, key, raw)

    for name, raw in plain.items():
        owners = [m for m in models if name in field_types(m.config_cls)]
        if not owners:
            every = {f for m in models for f in field_types(m.config_cls)}
            others = [m.name for m in get_plugins().models if name in field_types(m.config_cls)]
            if others:
                raise ConfigError(
                    f"model option {name!r}: none of the selected models ({selected}) has it; "
                    f"{', '.join(others[:4])} {'do' if len(others) > 1 else 'does'}"
                )
            raise unknown_name_error(
                "model option", name, every, f"the selected models take: {', '.join(sorted(every))}"
            )
        applies = [m for m in owners if (m.name, name) not in setters]
        _check_one_meaning(name, name, applies, raw)
        for spec in applies:
            setters[(spec.name, name)] = (3, name, raw)

    axes: dict[str, dict[str, list[Any]]] = {m.name: {} for m in models}
    for key in given:  # in the order given, as the grid's runs are ordered
        _, name = _split_scope(key)
        for spec in models:
            setter = setters.get((spec.name, name))
            if setter is None or setter[1] != key:
                continue
            tp = field_types(spec.config_cls)[name]
            values = _sweep_values(setter[2], tp)
            if not values:
                raise ConfigError(f"model option {key!r}: no values given")
            converted = [jsonable(convert(key, v, tp)) for v in values]
            unique = list(dict.fromkeys(json.dumps(v) for v in converted))
            axes[spec.name][name] = [json.loads(v) for v in unique]
    return axes


def _unknown_scoped(models: list, in_scope: list, scope: str, name: str) -> ConfigError:
    """No model in ``scope`` has option ``name``: say who has it, or the closest name."""
    names = ", ".join(m.name for m in in_scope)
    others = [m.name for m in models if name in field_types(m.config_cls)]
    if others:
        return ConfigError(
            f"model option {scope + '.' + name!r}: no model in {scope!r} ({names}) has "
            f"{name!r}; {', '.join(others[:4])} {'do' if len(others) > 1 else 'does'}"
        )
    every = sorted({f for m in in_scope for f in field_types(m.config_cls)})
    verb = "take" if len(in_scope) > 1 else "takes"
    return ConfigError(
        f"unknown model option {name!r} for {scope!r}{did_you_mean(name, every)}; "
        f"{names} {verb}: {', '.join(every)}"
    )


def _sweep_values(raw: Any, tp: Any) -> list[Any]:
    """Text or a list -> the list of values to sweep (list fields: see :class:`Grid`)."""
    sequence = is_sequence_type(tp)
    if isinstance(raw, str):
        if sequence:
            return split_values(raw) if "[" in raw else [raw]
        return split_values(raw)
    values = _as_list(raw)
    if sequence and values and not all(isinstance(v, (list, tuple, str)) for v in values):
        return [values]  # a flat list is one value of a list field
    return values


def _dataset_options(
    datasets: list[str], given: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Resolved (typed) options per dataset name; scoped entries apply to one dataset."""

    given = dict(given or {})
    common = {k: v for k, v in given.items() if not isinstance(v, Mapping)}
    scoped = {k: dict(v) for k, v in given.items() if isinstance(v, Mapping)}
    for prefix in scoped:
        if not any(prefix in (d, parse_dataset_name(d)[0]) for d in datasets):
            raise ConfigError(
                f"--dataset-options {prefix}:...: no selected dataset is called {prefix!r} "
                f"(selected: {', '.join(datasets)})"
            )
    out = {}
    for name in datasets:
        spec = dataset_spec(name)
        mine = dict(common)
        for prefix, opts in scoped.items():
            if prefix in (name, parse_dataset_name(name)[0]):
                mine.update(opts)
        out[name] = spec.resolve_options(mine)
    return out


def expand(options: Grid, device: str) -> list[RunConfig]:
    """Validate one grid and expand it into runs."""

    o = options
    profile = o.profile or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    if not o.models:
        raise ConfigError("--models is required (e.g. --models vae,ae; see `aebench models`)")
    if not o.datasets:
        raise ConfigError("--datasets is required (e.g. --datasets digits; see `aebench datasets`)")
    training = _training(o, profile)
    seeds = [_number("--seeds", s, int, strict=False, maximum=MAX_SEED) for s in (o.seeds or [0])]
    n_seeds = len(seeds)
    if o.n_seeds is not None:
        if len(seeds) > 1:
            raise ConfigError("--n-seeds: give at most one --seeds value (the first seed)")
        n = _number("--n-seeds", o.n_seeds, int, maximum=MAX_SEED - seeds[0] + 1)
        n_seeds = n
        seeds = list(range(seeds[0], seeds[0] + min(n, MAX_CELLS + 1)))  # checked below
    binarize = o.binarize
    if binarize not in (None, "dynamic"):
        raise ConfigError(f"--binarize: expected 'dynamic', got {binarize!r}")
    metric_options = resolve_metric_options(profile, o.metric_options)

    models = get_plugins().models.select(o.models)
    axes = _model_axes(models, o.model_options or {})
    for name in o.datasets:
        dataset_spec(name)  # unknown names and bad `name:ARG` spellings fail here
    dataset_options = _dataset_options(o.datasets, o.dataset_options)
    per_seed = sum(math.prod(map(len, a.values())) for a in axes.values())
    n_cells = len(o.datasets) * per_seed * n_seeds
    if n_cells > MAX_CELLS:
        raise ConfigError(
            f"the grid has {n_cells} cells "
            f"(datasets x models x model options x seeds); aebench runs at most {MAX_CELLS} "
            "per grid: give fewer --seeds/--n-seeds or option values"
        )

    runs: list[RunConfig] = []
    for dataset in o.datasets:
        for spec in models:
            model_axes = axes[spec.name]
            names = list(model_axes)
            shown = names  # every option given for this model, plain or scoped
            for combo in itertools.product(*(model_axes[n] for n in names)):
                try:
                    config = spec.config_cls.from_options(**dict(zip(names, combo, strict=True)))
                except ConfigError as exc:
                    raise ConfigError(f"model {spec.name}: {exc}") from None
                model_config = config.to_dict()
                for seed in seeds:
                    runs.append(
                        RunConfig(
                            model=spec.name,
                            dataset=dataset,
                            seed=seed,
                            model_config=model_config,
                            **training,
                            metric_options=metric_options,
                            device=device,
                            profile=profile,
                            dataset_options=dataset_options[dataset],
                            deterministic=_flag("--deterministic", o.deterministic, True),
                            compile=_flag("--compile", o.compile, False),
                            binarize=binarize,
                            family=spec.family,
                            arch=spec.arch,
                            plugin=spec.plugin,
                            description=spec.description,
                            shown_options=tuple(_shown(spec, model_config, shown)),
                        )
                    )
    return runs


def _flag(option: str, value: Any, default: bool) -> bool:
    return default if value is None else convert(option, value, bool)


def _shown(spec: Any, model_config: dict[str, Any], given: list[str]) -> list[str]:
    """Options named in a run's id and label: latent_dim, the ones given for the grid, and
    any whose value differs from the config class's default (defaults of None excluded)."""
    defaults = spec.config_cls().to_dict()
    out = ["latent_dim"]
    for name, value in model_config.items():
        default = defaults.get(name)
        if name not in out and (name in given or (default is not None and value != default)):
            out.append(name)
    return out


def plan(grids: list[Grid], device: str = "auto") -> list[RunConfig]:
    """Validate every grid and return the de-duplicated list of runs."""
    resolved = resolve_device(device)
    seen: dict[str, RunConfig] = {}
    for grid in grids:
        for run in expand(grid, resolved):
            seen.setdefault(run.key, run)
    return list(seen.values())
