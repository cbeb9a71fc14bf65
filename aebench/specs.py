"""What plugins register: one frozen dataclass per kind of thing.

Core owns validation and naming: plugins hand these specs to the ``register``
callback they receive in a hook; they never touch a registry directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from aebench.datasets.base import ImageSet
    from aebench.models.base import AutoEncoder, ModelConfig

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def check_name(kind: str, name: str) -> None:
    """Names are flat, lower-case and glob-friendly: ``vae-cnn``, ``fashion-mnist``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use lower-case letters, digits, '.', '_' and '-'"
        )


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``factory(config, input_shape)`` builds an AutoEncoder.

    ``name`` is ``<family>-<arch>`` by convention (``beta-vae-cnn``), so that a
    family name selects all of its variants and globs like ``'*-cnn'`` work.
    """

    name: str
    family: str
    arch: str
    config_cls: type[ModelConfig]
    factory: Callable[[ModelConfig, tuple[int, int, int]], AutoEncoder]
    description: str = ""
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_name("model", self.name)
        check_name("model family", self.family)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    ``load(split, root, **options)`` returns an :class:`aebench.ImageSet` for one
    of ``splits`` (as published; aebench carves ``val`` from ``train`` itself).
    ``root`` is the resolved data directory, which may be read-only.
    ``files`` lists the files (relative to ``root``) that must exist for the
    dataset to be ready; empty means it needs no files at all. ``fetch(root)``
    downloads them, when that is possible. A spec with ``takes_argument=True``
    is selected as ``name:ARG`` (for instance ``folder:~/my-images``) and its
    loader receives ``argument=ARG``.
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
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_name("dataset", self.name)

    def is_ready(self, root: Path) -> bool:
        """True when every file in ``files`` exists under ``root``."""
        return all((root / f).is_file() for f in self.files)


@dataclass(frozen=True)
class MetricSpec:
    """An extra evaluation metric: ``fn(context) -> {key: value}``.

    ``lower_is_better`` and ``units`` map each returned key to its direction
    and unit, so the leaderboard can mark the best value and label columns.
    """

    name: str
    fn: Callable[[Any], dict[str, float]]
    lower_is_better: dict[str, bool] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    description: str = ""
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_name("metric", self.name)
