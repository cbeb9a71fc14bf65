"""Name -> spec registries with glob/family selection and helpful errors."""

from __future__ import annotations

import builtins
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from aebench.errors import DuplicateNameError, UnknownNameError


class Spec(Protocol):
    """What a registry holds: a named spec and the plugin that registered it
    (:class:`~aebench.specs.ModelSpec`, ``DatasetSpec``, ``MetricSpec``). A spec
    with a ``family`` attribute is also selected by its family name."""

    @property
    def name(self) -> str: ...

    @property
    def plugin(self) -> str: ...


T = TypeVar("T", bound=Spec)


class Registry(Generic[T]):
    """Specs by name, in registration order.

    ``kind`` names the thing in messages ("model"); ``list_hint`` tells the user
    where to see the full list ("see `aebench models`").
    """

    def __init__(
        self,
        kind: str,
        list_hint: str = "",
        check: Callable[[list[T], T], None] | None = None,
    ) -> None:
        self.kind = kind
        self.list_hint = list_hint
        self._check = check  # extra rules a new spec must meet against the registered ones
        self._items: dict[str, T] = {}

    def add(self, spec: T) -> None:
        name = spec.name
        if name in self._items:
            first = self._items[name].plugin or "?"
            second = spec.plugin or "?"
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by {first} and by {second}"
            )
        if self._check is not None:
            self._check(list(self._items.values()), spec)
        self._items[name] = spec

    def replace(self, spec: T) -> None:
        """Put ``spec`` in place of the registered spec of the same name (core only)."""
        if spec.name not in self._items:
            raise KeyError(spec.name)
        self._items[spec.name] = spec

    def discard(self, specs: Iterable[T]) -> None:
        """Remove exactly these spec objects (a plugin's partial registrations)."""
        for spec in specs:
            name = spec.name
            if self._items.get(name) is spec:
                del self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def names(self) -> list[str]:
        return list(self._items)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._choices(), self.list_hint) from None

    def _choices(self) -> list[str]:
        families = [getattr(s, "family", None) for s in self._items.values()]
        return [*self._items, *(f for f in families if f)]

    def list(self, pattern: str | None = None) -> list[T]:
        """Specs whose name matches ``pattern``: an fnmatch glob, or a family name."""
        if not pattern:
            return list(self._items.values())
        return [s for s in self._items.values() if _matches(s, pattern)]

    def select(self, patterns: str | Iterable[str]) -> builtins.list[T]:
        """Resolve a comma-separated selection (``'vae,ae-cnn'``, ``'*-cnn'``).

        Every pattern must match something, otherwise :class:`UnknownNameError`
        names the first one that does not. Order follows the patterns; each
        spec appears once.
        """
        if isinstance(patterns, str):
            patterns = [p.strip() for p in patterns.split(",")]
        chosen: dict[str, T] = {}
        for pattern in patterns:
            if not pattern:
                continue
            matched = self.list(pattern)
            if not matched:
                raise UnknownNameError(self.kind, pattern, self._choices(), self.list_hint)
            for spec in matched:
                chosen.setdefault(spec.name, spec)
        return list(chosen.values())


def _matches(spec: Spec, pattern: str) -> bool:
    name = spec.name
    family = getattr(spec, "family", None)
    if pattern == name or (family is not None and pattern == family):
        return True
    return any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(name, pattern)
