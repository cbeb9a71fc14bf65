"""The plugin manager: built-in plugins, entry points, and isolation of broken plugins.

Built-in models, datasets, samplers and metrics are plugins too: the modules in
:data:`DEFAULT_PLUGINS` are registered with the same hooks third-party packages
implement. External plugins are found through the ``aebench`` entry-point
group. Everything loads once, lazily, on first use.

Set ``AEBENCH_PLUGINS`` to a comma-separated list of entry-point or
distribution names to load only those external plugins (empty: none).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from aebench import hookspecs
from aebench._version import __version__
from aebench.errors import DuplicateNameError, PluginError, did_you_mean
from aebench.registry import Registry
from aebench.specs import (
    BATCH_TERMS_METRIC,
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    SamplerSpec,
    with_model_columns,
)

ENTRY_POINT_GROUP = "aebench"
ENV_PLUGINS = "AEBENCH_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "aebench.models.ae",
    "aebench.models.vae",
    "aebench.models.beta_vae",
    "aebench.models.beta_tcvae",
    "aebench.models.factor_vae",
    "aebench.models.annealed_vae",
    "aebench.models.dip_vae",
    "aebench.models.info_vae",
    "aebench.models.wae_mmd",
    "aebench.models.rae",
    "aebench.models.iwae",
    "aebench.models.vamp",
    "aebench.models.vq_vae",
    "aebench.datasets.mnist",
    "aebench.datasets.svhn",
    "aebench.datasets.digits",
    "aebench.datasets.folder",
    "aebench.datasets.dsprites",
    "aebench.samplers.prior",
    "aebench.samplers.expost",
    "aebench.samplers.twostage",
    "aebench.samplers.codes",
    "aebench.metrics.losses",
    "aebench.metrics.reconstruction",
    "aebench.metrics.fid",
    "aebench.metrics.samples",
    "aebench.metrics.nll",
    "aebench.metrics.probe",
    "aebench.metrics.latent",
    "aebench.metrics.disentanglement",
    "aebench.metrics.cost",
)


class PluginWarning(UserWarning):
    """A plugin failed to load or raised in a hook; the others keep working."""


@dataclass
class PluginInfo:
    """One plugin as ``aebench plugins`` shows it."""

    name: str
    package: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "package": self.package,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "error": self.error,
        }


class Plugins:
    """A loaded plugin set: the pluggy manager plus the registries it filled."""

    def __init__(self, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.models: Registry[ModelSpec] = Registry("model", "see `aebench models`")
        self.datasets: Registry[DatasetSpec] = Registry("dataset", "see `aebench datasets`")
        self.metrics: Registry[MetricSpec] = _metric_registry()
        self.samplers: Registry[SamplerSpec] = _sampler_registry()
        for modname in DEFAULT_PLUGINS:
            module = importlib.import_module(modname)
            self._add(module, modname, PluginInfo(modname, "aebench", __version__, True))
        if load_entry_points:
            self._load_entry_points()
        self._collect()

    # -- registration ---------------------------------------------------------
    def register(self, plugin: object, name: str, package: str = "", version: str = "") -> None:
        """Register a plugin object (module or instance) and refresh the registries."""
        self._add(plugin, name, PluginInfo(name, package or name, version, False))
        self._collect()

    def unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.infos.pop(name, None)
        self._collect()

    def _add(self, plugin: object, name: str, info: PluginInfo) -> None:
        self.infos[name] = info
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validates signatures against the specs
            self._fail(info, exc)
            return
        unknown = [
            caller.name for caller in self.pm.get_hookcallers(plugin) or [] if caller.spec is None
        ]
        if unknown:
            self.pm.unregister(plugin)
            hooks = self._hook_names()
            parts = [f"{hook!r}{did_you_mean(hook, hooks)}" for hook in unknown]
            self._fail(info, PluginError("implements unknown hook " + ", ".join(parts)))
            return
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])

    def check(self) -> None:
        """pytest-style ``check_pending``: raise if any hook implementation has no spec."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(str(exc)) from exc

    def _hook_names(self) -> list[str]:
        return [n for n in dir(hookspecs) if n.startswith("register_")]

    def _load_entry_points(self) -> None:
        only = os.environ.get(ENV_PLUGINS)
        allowed = None if only is None else {p.strip() for p in only.split(",") if p.strip()}
        seen: set[str] = set()
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else ep.name
            version = dist.version if dist is not None else ""
            if ep.name in seen:
                continue
            seen.add(ep.name)
            if allowed is not None and ep.name not in allowed and package not in allowed:
                continue
            info = PluginInfo(ep.name, package, version, False)
            try:
                plugin = ep.load()
            except Exception as exc:
                self.infos[ep.name] = info
                self._fail(info, exc)
                continue
            self._add(plugin, ep.name, info)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.error = f"{type(exc).__name__}: {exc}"
        info.traceback = "".join(traceback.format_exception(exc))
        warnings.warn(
            f"aebench plugin {info.name!r} ({info.label}) is disabled: {info.error}",
            PluginWarning,
            stacklevel=3,
        )

    # -- collection -----------------------------------------------------------
    def _collect(self) -> None:
        self.models = Registry("model", "see `aebench models`")
        self.datasets = Registry("dataset", "see `aebench datasets`")
        self.metrics = _metric_registry()
        self.samplers = _sampler_registry()
        for hook, registry in (
            ("register_models", self.models),
            ("register_datasets", self.datasets),
            ("register_samplers", self.samplers),
            ("register_metrics", self.metrics),
        ):
            self._call_each(hook, registry)
        if BATCH_TERMS_METRIC in self.metrics:  # the models' batch-level columns
            spec = self.metrics.get(BATCH_TERMS_METRIC)
            self.metrics.replace(with_model_columns(spec, self.models))

    def _call_each(self, hook: str, registry: Registry) -> None:
        # Each implementation is called on its own (rather than through
        # pm.hook.<name>(...)) so that core knows which plugin registered what,
        # and so a plugin that raises loses only its own registrations.
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():  # registration order
            info = self.infos.get(impl.plugin_name)
            if info is None or info.error:
                continue
            pending: list[Any] = []
            label = info.label + (" (built-in)" if info.builtin else "")

            def register(spec: Any, _pending: list[Any] = pending, _label: str = label) -> None:
                object.__setattr__(spec, "plugin", _label)
                _pending.append(spec)

            try:
                impl.function(register=register)
                for spec in pending:
                    registry.add(spec)
            except Exception as exc:
                registry.discard(pending)
                self._fail(info, exc)

    def call_commands(self, cli: Any) -> None:
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = self.infos.get(impl.plugin_name)
            if info is None or info.error:
                continue
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self._fail(info, exc)


def _metric_registry() -> Registry[MetricSpec]:
    return Registry("metric", "see `aebench metrics`", check=_check_metric)


def _check_metric(existing: list[MetricSpec], spec: MetricSpec) -> None:
    """Column keys and option names are global: two metrics may not declare the same one."""

    for other in existing:
        for what, mine, theirs in (
            ("column", {c.key for c in spec.columns}, {c.key for c in other.columns}),
            ("option", {o.name for o in spec.options}, {o.name for o in other.options}),
        ):
            clash = sorted(mine & theirs)
            if clash:
                raise DuplicateNameError(
                    f"metric {what} {clash[0]!r} is declared twice: by metric {other.name!r} "
                    f"({other.plugin or '?'}) and by metric {spec.name!r} ({spec.plugin or '?'})"
                )


def _sampler_registry() -> Registry[SamplerSpec]:
    return Registry("sampler", "see `aebench samplers`", check=_check_sampler)


def _check_sampler(existing: list[SamplerSpec], spec: SamplerSpec) -> None:
    """Metric keys carry the sampler's suffix: two samplers may not share one."""
    for other in existing:
        if other.key_suffix == spec.key_suffix:
            raise DuplicateNameError(
                f"sampler suffix {spec.key_suffix!r} is declared twice: by sampler "
                f"{other.name!r} ({other.plugin or '?'}) and by sampler {spec.name!r} "
                f"({spec.plugin or '?'})"
            )


_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin set, loaded on first use."""
    global _plugins
    if _plugins is None:
        _plugins = Plugins()
    return _plugins


def reset() -> None:
    """Forget loaded plugins (tests; after installing a package at run time)."""
    global _plugins
    _plugins = None
    importlib.invalidate_caches()


def with_plugin(plugin: object, name: str) -> Callable[[], None]:
    """Register ``plugin`` in the process-wide set; returns the undo function."""
    plugins = get_plugins()
    plugins.register(plugin, name)

    def undo() -> None:
        plugins.unregister(name)

    return undo
