"""Typed options: one declaration and one parser for every ``KEY=VALUE`` a user can give.

:class:`Option` is what every kind of option is: model options (the fields of a
model's config dataclass, :func:`config_options`), dataset options
(:class:`aebench.specs.DatasetOption`) and metric budget options
(:class:`aebench.specs.MetricOption`). They all arrive either as text (command
line) or as TOML/Python values (suite files, the API). :func:`convert` turns
either into the declared type, or raises :class:`~aebench.errors.ConfigError`
with one line naming the option and what it expected.

Supported types: ``int``, ``float``, ``str``, ``bool``, ``X | None`` and
``tuple[int, ...]`` / ``list[int]`` (and of ``float``/``str``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterable
from typing import Any

from aebench.errors import ConfigError, did_you_mean

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "null", "default"}


def type_name(tp: Any) -> str:
    """A short human name for a type hint: ``int``, ``float | None``, ``tuple[int, ...]``."""
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _split_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, whether None is allowed) for ``X | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(tp)):
            return args[0], True
    return tp, False


def _sequence_item(tp: Any) -> Any | None:
    """The item type of ``tuple[X, ...]`` / ``list[X]``, else None."""
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return args[0] if args else str
    return None


def is_sequence_type(tp: Any) -> bool:
    return _sequence_item(_split_optional(tp)[0]) is not None


def _label(name: str) -> str:
    return name if name.startswith("-") else f"option {name}"


def convert(name: str, value: Any, tp: Any) -> Any:
    """``value`` (text, or an already typed value) as type ``tp``; ConfigError naming ``name``
    (a flag such as ``--lr`` as it is, anything else as ``option NAME``)."""
    inner, optional = _split_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    item = _sequence_item(inner)
    if item is not None:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise ConfigError(
                        f"{_label(name)}: expected a list like [512,256], got {value!r}"
                    ) from None
            else:
                if item in (int, float):  # 512x256 reads as 512,256
                    text = text.replace("x", ",")
                value = [v for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{_label(name)}: expected a non-empty list, got {value!r}")
        return tuple(convert(name, v, item) for v in value)
    return _scalar(name, value, inner)


def _scalar(name: str, value: Any, tp: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{_label(name)}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{_label(name)}: expected an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{_label(name)}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{_label(name)}: expected a number, got {value!r}")
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{_label(name)}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{_label(name)}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (dict, list, tuple)):
            raise ConfigError(f"{_label(name)}: expected text, got {value!r}")
        return str(value).strip() if isinstance(value, str) else str(value)
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise choice_error(name, value, choices)
    return value  # an unusual type: the config's own validate() has the last word


def choice_error(name: str, value: Any, choices: Iterable[Any]) -> ConfigError:
    """``option x: expected one of a, b, got 'c' (did you mean b?)``: one style for every
    option whose values are limited."""
    choices = list(choices)
    hint = did_you_mean(str(value), [str(c) for c in choices])
    return ConfigError(
        f"{_label(name)}: expected one of {', '.join(map(str, choices))}, got {value!r}{hint}"
    )


@dataclasses.dataclass(frozen=True)
class Option:
    """One declared option: its name, type, default, one line of help and, optionally,
    the values it allows. Dataset options, metric budgets and model options (a model
    config's fields, :func:`config_options`) are all ``Option`` s, converted and
    described the same way.

    ``type``: ``int``, ``float``, ``str``, ``bool``, ``X | None``, a ``Literal`` or
    a tuple type (see :func:`convert`). Everything after ``help`` is given by keyword.
    """

    name: str
    type: Any = str
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = dataclasses.field(default=None, kw_only=True)

    def convert(self, value: Any, label: str | None = None) -> Any:
        """``value`` as this option's type; a limited option's value must be a choice.
        ``label`` names the option in errors (default: its name)."""
        label = label or self.name
        if value is None:
            return None
        value = convert(label, value, self.type)
        self.check_choice(value, label)
        return value

    def check_choice(self, value: Any, label: str | None = None) -> None:
        if self.choices is not None and value is not None and value not in self.choices:
            raise choice_error(label or self.name, value, self.choices)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description: name, type, default, choices, help."""
        return {
            "name": self.name,
            "type": type_name(self.type),
            "default": jsonable(self.default),
            "choices": list(self.choices) if self.choices else None,
            "help": self.help,
        }


def split_values(text: str) -> list[str]:
    """Split ``'0.5,4'`` or ``'[512,256],[1024]'`` on top-level commas (not inside brackets)."""
    out: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    out.append("".join(current).strip())
    return [v for v in out if v]


def parse_assignment(flag: str, text: str) -> tuple[str, str]:
    """``'beta=0.5,4'`` -> ``('beta', '0.5,4')`` with a one-line error naming ``flag``."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ConfigError(f"{flag}: expected KEY=VALUE, got {text!r}")
    return key.strip().replace("-", "_"), value.strip()


def config_fields(config_cls: type) -> dict[str, dataclasses.Field]:
    """The dataclass fields of a model config class, by name."""
    return {f.name: f for f in dataclasses.fields(config_cls)}


def field_types(config_cls: type) -> dict[str, Any]:
    """Resolved type hints of a config dataclass's fields (strings under PEP 563 resolved)."""
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # an unresolvable annotation: fall back to the raw ones
        hints = {}
    return {
        f.name: hints.get(f.name, f.type if not isinstance(f.type, str) else Any)
        for f in dataclasses.fields(config_cls)
    }


def field_help(field: dataclasses.Field) -> str:
    """The one-line help of a config field (``field(metadata={"help": ...})``)."""
    return str(field.metadata.get("help", "")) if field.metadata else ""


def config_options(config_cls: type) -> list[Option]:
    """A model config dataclass's fields as :class:`Option` s (the model's options),
    with the defaults of a config built without arguments."""
    types_ = field_types(config_cls)
    defaults = dataclasses.asdict(config_cls())
    return [
        Option(f.name, types_[f.name], defaults.get(f.name), field_help(f))
        for f in dataclasses.fields(config_cls)
    ]


def unknown_name_error(what: str, name: str, known: Iterable[str], hint: str = "") -> ConfigError:
    """``unknown model option 'bta' (did you mean beta?); ...`` as a ConfigError."""
    known = sorted(set(known))
    msg = f"unknown {what} {name!r}{did_you_mean(name, known)}"
    msg += f"; {hint}" if hint else f"; known: {', '.join(known)}"
    return ConfigError(msg)


def jsonable(value: Any) -> Any:
    """Tuples as lists (JSON's shape), recursively; everything else unchanged."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def short_value(value: Any) -> str:
    """Compact text for labels and run ids: ``0.5``, ``512x256``, ``gaussian``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "x".join(short_value(v) for v in value)
    if value is None:
        return "none"
    return str(value)
