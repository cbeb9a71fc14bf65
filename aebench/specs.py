"""What plugins register: one frozen dataclass per kind of thing.

Core owns validation and naming: plugins hand these specs to the ``register``
callback they receive in a hook; they never touch a registry directly.

* :class:`ModelSpec`: a model (its options are the fields of ``config_cls``);
* :class:`DatasetSpec` with its :class:`DatasetOption` s;
* :class:`MetricSpec` with the :class:`MetricColumn` s it writes and the
  :class:`MetricOption` s (sample budgets) it reads;
* :class:`SamplerSpec`: where generated samples' latents come from.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aebench.errors import ConfigError, did_you_mean
from aebench.options import Option, convert

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from aebench.datasets.base import ImageSet
    from aebench.metrics.context import EvalContext, MetricSetup
    from aebench.models.base import AutoEncoder, ModelConfig

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
DIRECTIONS = ("min", "max", None)
GROUPS = ("likelihood", "reconstruction", "samples", "representation", "cost", "other")


def check_name(kind: str, name: str) -> None:
    """Names are flat, lower-case and glob-friendly: ``vae-cnn``, ``fashion-mnist``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use lower-case letters, digits, '.', '_' and '-'"
        )


def check_key(kind: str, key: str) -> None:
    """Option names and metric keys are identifiers: ``fid_samples``, ``test_mse``."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValueError(f"invalid {kind} {key!r}: use lower-case letters, digits and '_'")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``factory(config, input_shape)`` builds an AutoEncoder.

    ``name`` is ``<family>-<arch>`` by convention (``beta-vae-cnn``), so that a
    family name selects all of its variants and globs like ``'*-cnn'`` work.
    Every field of ``config_cls`` (a :class:`aebench.ModelConfig` dataclass) is
    an option users can set and sweep (``-o beta=0.5,4``).
    ``objective_options``: (option, label) pairs of the options that change the
    objective the model trains (β-VAE: ``(("beta", "β"),)``); the leaderboard
    names them beside the objective and compares losses only between runs
    whose objective is the same. ``columns``: the batch-level columns the model
    reports (default: its class's ``batch_columns``).
    """

    name: str
    family: str
    arch: str
    config_cls: type[ModelConfig]
    factory: Callable[[ModelConfig, tuple[int, int, int]], AutoEncoder]
    description: str = ""
    objective_options: tuple[tuple[str, str], ...] = ()
    columns: tuple[MetricColumn, ...] = ()
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_name("model", self.name)
        check_name("model family", self.family)
        if not self.columns:  # the model class's declared batch-level columns
            cls = getattr(self.factory, "func", self.factory)
            object.__setattr__(self, "columns", tuple(getattr(cls, "batch_columns", ()) or ()))
        for col in self.columns:
            if not col.key.startswith("test_"):
                raise ValueError(
                    f"model {self.name!r}: batch column {col.key!r} must be named test_<name>"
                )


# -- datasets ---------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetOption(Option):
    """One loader option of a dataset (an :class:`~aebench.options.Option`): name,
    type, default and one line of help.

    ``type`` is ``int``, ``float``, ``str`` or ``bool``; ``parse`` (optional)
    replaces the type conversion for richer syntax (``size=32x48``) and must
    raise :class:`~aebench.errors.ConfigError` on bad input; ``choices`` limits
    the values. ``default=None`` means "decided by the loader" (say how in
    ``help``).
    """

    parse: Callable[[Any], Any] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        check_key("dataset option", self.name)

    def convert(self, value: Any, label: str | None = None) -> Any:
        """``value`` converted; errors name the option as ``label`` (``dataset:option``)."""
        label = label or self.name
        if value is None:
            return None
        if self.parse is None:
            return super().convert(value, label)
        value = self.parse(value)
        self.check_choice(value, label)
        return value


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    ``load(split, root, **options)`` returns an :class:`aebench.ImageSet` for one
    of ``splits`` (as published; aebench carves ``val`` from ``train`` itself).
    ``root`` is the resolved data directory, which may be read-only.
    ``options`` declares the loader's keyword options; aebench validates and
    converts what users give (:meth:`resolve_options`) and passes every
    declared option, defaults filled in, so a loader never checks them again.
    ``files`` lists the files (relative to ``root``) that must exist for the
    dataset to be ready; empty means it needs no files at all. ``fetch(root)``
    downloads them, when that is possible. A spec with ``takes_argument=True``
    is selected as ``name:ARG`` (for instance ``folder:~/my-images``) and its
    loader receives ``argument=ARG``. ``factor_names``: the generative factors
    its ImageSets carry (``ImageSet.factors``), for the disentanglement metrics.
    """

    name: str
    load: Callable[..., ImageSet]
    shape: tuple[int, int, int] | None = None
    splits: tuple[str, ...] = ("train", "test")
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    files: tuple[str, ...] = ()
    fetch: Callable[[Path], None] | None = None
    description: str = ""
    takes_argument: bool = False
    options: tuple[DatasetOption, ...] = ()
    factor_names: tuple[str, ...] | None = None
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_name("dataset", self.name)
        names = [o.name for o in self.options]
        if len(set(names)) != len(names) or "argument" in names:
            raise ValueError(f"dataset {self.name!r}: option names must be unique, not 'argument'")

    def is_ready(self, root: Path) -> bool:
        """True when every file in ``files`` exists under ``root``."""
        return all((root / f).is_file() for f in self.files)

    def option(self, name: str) -> DatasetOption:
        for opt in self.options:
            if opt.name == name:
                return opt

        known = [o.name for o in self.options]
        hint = did_you_mean(name, known)
        takes = f"it takes: {', '.join(known)}" if known else "it takes none"
        raise ConfigError(f"dataset {self.name!r} has no option {name!r}{hint}; {takes}")

    def resolve_options(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The given options converted to their types; those equal to the default dropped.

        The result is what identifies a dataset variant (the run key holds it).
        Unknown names and bad values raise one-line ConfigErrors.
        """
        out: dict[str, Any] = {}
        for name, value in sorted((given or {}).items()):
            opt = self.option(str(name).replace("-", "_"))
            converted = opt.convert(value, f"{self.name}:{opt.name}")
            if converted != opt.default:
                out[opt.name] = converted
        return out

    def loader_kwargs(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared option for ``load``: ``resolved`` values, else the defaults."""
        return {o.name: resolved.get(o.name, o.default) for o in self.options}


# -- metrics --------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnFlag:
    """A warning the leaderboard puts on a row whose value of this column crosses
    ``threshold`` (``at_least=True``: value >= threshold; else value <= threshold)
    in any seed.

    ``text`` is the badge (``"posterior collapse"``); ``title`` its tooltip, a
    format string with ``{worst}`` (the most extreme value), ``{count}`` (seeds
    flagged) and ``{n}`` (seeds), e.g. ``"{worst:.0%} of dimensions ... in {count}
    of {n} seeds"``. ``kind`` names it for the page's style (letters and '-').
    """

    kind: str
    text: str
    threshold: float
    title: str = ""
    at_least: bool = True

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z][a-z-]*$", self.kind):
            raise ValueError(f"column flag kind {self.kind!r}: use lower-case letters and '-'")

    def hits(self, value: float) -> bool:
        return value >= self.threshold if self.at_least else value <= self.threshold


@dataclass(frozen=True)
class MetricColumn:
    """One number a metric writes: a column of results.csv and of the leaderboard.

    ``direction``: ``"min"`` (lower is better), ``"max"`` or ``None``
    (informational, never highlighted). ``group``: one of :data:`GROUPS`, how
    the leaderboard groups columns (default: its metric's ``group``).
    ``applies_to(context)`` (optional): False makes the value "not applicable"
    for that run (an AE has no KL term), which is stored as ``null`` and listed
    under ``not_applicable``, never as 0.
    ``applies_text`` says in words to which runs it applies, when narrower than
    its metric. ``split_by``: keys of metrics.json whose values must agree for
    two values to share a column (FID: extractor and sample count), so the
    leaderboard never mixes incomparable numbers. ``integer``: display without
    decimals. ``flag``: a :class:`ColumnFlag`, a warning the leaderboard shows on
    rows whose value crosses its threshold.
    """

    key: str
    label: str
    unit: str = ""
    direction: str | None = None
    definition: str = ""
    group: str | None = None
    split_by: tuple[str, ...] = ()
    applies_to: Callable[[EvalContext], bool] | None = field(default=None, compare=False)
    applies_text: str = ""
    integer: bool = False
    flag: ColumnFlag | None = None

    def __post_init__(self) -> None:
        check_key("metric key", self.key)
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.key!r}: direction must be 'min', 'max' or None")
        if self.group is not None and self.group not in GROUPS:
            raise ValueError(f"metric {self.key!r}: group must be one of {', '.join(GROUPS)}")

    @property
    def arrow(self) -> str:
        return {"min": "↓", "max": "↑"}.get(self.direction or "", "")

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "direction": self.direction,
            "group": self.group,
            "definition": self.definition,
            "applies_to": self.applies_text or None,
            "split_by": list(self.split_by),
        }


@dataclass(frozen=True)
class MetricOption(Option):
    """A budget option of a metric (sample counts and the like).

    ``profiles`` maps a profile name (``smoke``/``quick``/``full``) to its
    default there; ``default`` applies otherwise. ``minimum`` is checked;
    ``choices`` limits text values. ``flag`` names the documented command-line
    shorthand, if there is one (``--fid-samples``): ``aebench run`` generates it
    from this declaration. ``off_flag`` (``--no-fid``) is a switch setting the
    option to ``off_value`` (default 0). Every option can also be given as
    ``--metric-option NAME=VALUE`` or in a suite's ``metric_options``.
    """

    type: Any = int
    profiles: Mapping[str, Any] = field(default_factory=dict, kw_only=True)
    minimum: float | None = field(default=None, kw_only=True)
    flag: str | None = field(default=None, kw_only=True)
    off_flag: str | None = field(default=None, kw_only=True)
    off_value: Any = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        check_key("metric option", self.name)
        for flag in (self.flag, self.off_flag):
            if flag is not None and not re.match(r"^--[a-z][a-z0-9-]*$", flag):
                raise ValueError(
                    f"metric option {self.name!r}: flag {flag!r} must look like --name"
                )

    def default_for(self, profile: str) -> Any:
        return self.profiles.get(profile, self.default)

    def convert(self, value: Any, label: str | None = None) -> Any:
        """``value`` converted and checked (minimum, choices); errors name its flag."""
        label = label or self.flag or self.name
        value = convert(label, value, self.type if self.default is not None else self.type | None)
        if value is None:
            return None
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{label} must be >= {self.minimum:g}, got {value!r}")
        self.check_choice(value, label)
        return value

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "flag": self.flag,
            "profiles": dict(self.profiles),
            "minimum": self.minimum,
        }


@dataclass(frozen=True)
class MetricSpec:
    """An evaluation metric: ``fn(context) -> {key: value}`` for each finished run.

    ``columns`` declares every number ``fn`` returns (label, unit, direction,
    definition); extra keys ``fn`` returns (identifiers, details such as the
    FID extractor) are stored too but are not columns. ``applies_to(context)``
    decides whether the metric applies to a run at all (the IWAE NLL needs a
    likelihood bound); when it says no, every column is "not applicable".
    ``options`` are its budgets, with per-profile defaults; ``fn`` reads them
    as ``context.option(name)``. ``fn=None`` declares columns another part of
    aebench writes (the runner's wall times). ``order`` sorts columns: aebench's
    metrics use 10 to 50 and its wall times 1000, so plugins (default 100) come
    between them. ``on_error``: ``"record"``
    stores ``<name>_error`` and keeps the run (the default, for plugins);
    ``"fail"`` fails the run (aebench's own loss terms). ``group``: the
    leaderboard group of its columns that do not name their own. ``details``:
    the other keys ``fn`` stores beside its columns (sample counts, per-class
    values, identifiers): kept in metrics.json and results.csv, never columns.

    Two optional steps run before any cell of a benchmark trains, once for each
    dataset (and metric settings) of the grid, with a
    :class:`~aebench.metrics.context.MetricSetup`: ``check(setup)`` refuses
    settings that cannot work by raising a one-line
    :class:`~aebench.errors.ConfigError` (FID: no offline extractor for a dataset
    without labels); ``prepare(setup)`` builds what every cell shares, so that
    parallel cells do not each build it (FID: trains the offline extractor once).
    """

    name: str
    fn: Callable[[EvalContext], Mapping[str, Any]] | None
    columns: tuple[MetricColumn, ...] = ()
    description: str = ""
    applies_to: Callable[[EvalContext], bool] | None = field(default=None, compare=False)
    applies_text: str = "every model"
    options: tuple[MetricOption, ...] = ()
    order: int = 100
    on_error: str = "record"
    group: str = "other"
    details: tuple[str, ...] = ()
    check: Callable[[MetricSetup], None] | None = field(default=None, compare=False)
    prepare: Callable[[MetricSetup], None] | None = field(default=None, compare=False)
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_name("metric", self.name)
        if self.group not in GROUPS:
            raise ValueError(f"metric {self.name!r}: group must be one of {', '.join(GROUPS)}")
        columns = tuple(
            c if c.group is not None else dataclasses.replace(c, group=self.group)
            for c in self.columns
        )
        object.__setattr__(self, "columns", columns)
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"metric {self.name!r} declares a column twice")
        if self.on_error not in ("record", "fail"):
            raise ValueError(f"metric {self.name!r}: on_error must be 'record' or 'fail'")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "applies_to": self.applies_text,
            "columns": [c.describe() for c in self.columns],
            "options": [o.describe() for o in self.options],
            "plugin": self.plugin,
        }


# -- samplers ---------------------------------------------------------------------
_SUFFIX_RE = re.compile(r"^(_[a-z][a-z0-9_]*)?$")


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler: where the latents of a model's generated samples come from.

    ``fit(context)`` runs once per evaluation, after the model has trained, with
    the :class:`~aebench.metrics.context.EvalContext` (model, training images,
    their cached latent means ``context.latents("train")``, device, run seed,
    ``on_event``; training a density with gradients is fine, seeded with
    ``context.seed``). It returns ``draw(n, generator) -> (n, d)`` latents, which
    ``model.decode`` turns into images (draw every random number from
    ``generator``, on ``generator.device``, so samples are repeatable), or None
    for the model's own ``sample``.

    ``applies(model)``: whether it applies to a model (by its declarations:
    ``latent_kind``, ``has_prior``); ``applies_text`` says it in words. A model
    whose ``samplers`` names some samplers gets only those (of those that apply).
    ``suffix``: the suffix of its metric keys (``fid_expost``, ``kid_expost``,
    ...; default ``_<name>``; ``""`` only for the prior sampler, whose values are
    the plain ``fid``, ``kid``, ...). ``label``: its short name in column labels
    (``FID (ex-post GMM)``). ``description``: what its samples are, a noun phrase
    that column definitions quote ("samples decoded from ... "); ``describe_model(model)``
    (optional): the exact density for one model, stored beside each value as
    ``fid<suffix>_sampler`` (default ``description``); the leaderboard compares
    sample metrics only between runs whose stored samplers are equal.
    """

    name: str
    fit: Callable[[EvalContext], Callable[[int, torch.Generator], torch.Tensor] | None]
    label: str = ""
    description: str = ""
    suffix: str | None = None
    applies: Callable[[AutoEncoder], bool] | None = field(default=None, compare=False)
    applies_text: str = "every model"
    describe_model: Callable[[AutoEncoder], str] | None = field(default=None, compare=False)
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_name("sampler", self.name)
        if self.suffix is None:
            object.__setattr__(self, "suffix", "_" + re.sub(r"[^a-z0-9]+", "_", self.name))
        if not isinstance(self.suffix, str) or not _SUFFIX_RE.match(self.suffix):
            raise ValueError(
                f"sampler {self.name!r}: suffix {self.suffix!r} must be '' or look like '_name'"
            )
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def key_suffix(self) -> str:
        """``suffix``, resolved (never None)."""
        return self.suffix or ""

    def applies_to(self, model: AutoEncoder) -> bool:
        """Whether this sampler applies to ``model`` (``applies``; default: every model)."""
        return self.applies is None or bool(self.applies(model))

    def description_for(self, model: AutoEncoder) -> str:
        """What ``model``'s samples of this sampler are drawn from (``describe_model``)."""
        return self.describe_model(model) if self.describe_model is not None else self.description

    def describe(self) -> dict[str, Any]:
        """What ``aebench samplers --json`` prints."""
        return {
            "name": self.name,
            "label": self.label,
            "suffix": self.key_suffix,
            "description": self.description,
            "applies_to": self.applies_text,
            "plugin": self.plugin,
        }


# -- the models' batch-level columns -------------------------------------------------
BATCH_TERMS_METRIC = "batch-terms"
"""The built-in metric that measures every model's declared ``batch_columns``."""


def declares(key: str) -> Callable[[EvalContext], bool]:
    """``applies_to`` of a model-declared batch column: the run's model declares ``key``."""
    return lambda ctx: any(c.key == key for c in ctx.model.batch_columns)


def with_model_columns(spec: MetricSpec, models: Iterable[ModelSpec]) -> MetricSpec:
    """``spec`` (the :data:`BATCH_TERMS_METRIC`) with one column for each distinct key
    the models declare (the first declaration of a key is kept), split by the batch
    size it was measured at, applying to the runs whose model declares it."""
    columns: dict[str, MetricColumn] = {}
    owners: dict[str, list[str]] = {}
    for model in models:
        for col in model.columns:
            owners.setdefault(col.key, []).append(model.family)
            columns.setdefault(col.key, col)
    out = []
    for key, col in columns.items():
        families = ", ".join(dict.fromkeys(owners[key]))
        out.append(
            dataclasses.replace(
                col,
                split_by=(*col.split_by, "batch_terms_batch_size"),
                applies_to=declares(key),
                applies_text=col.applies_text or f"models that report it ({families})",
            )
        )
    return dataclasses.replace(spec, columns=tuple(out))
