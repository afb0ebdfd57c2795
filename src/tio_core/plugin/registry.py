"""Backend discovery through pluggy and the public open_backend() API.

Discovery loads every entry point of the group ``tio.backends`` on its own,
so one broken plugin cannot hide the others (pluggy's
load_setuptools_entrypoints stops at the first failure, and it registers
plugins by entry-point name, silently dropping a second distribution that
reuses a name). Backend names come from what each plugin's hook returns,
and two distributions claiming one name is reported, not resolved by luck.

Environment:
  TIO_DISABLE_PLUGIN_AUTOLOAD=1   load no entry points (only runtime plugins)
  TIO_PLUGINS=name,name           load only these entry points (by entry-point
                                  or distribution name)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from tio_core.contract import QueueSet
from tio_core.errors import BackendConflict, BackendLoadError, BackendNotFound, ConfigError
from tio_core.plugin import builtin
from tio_core.plugin.api import (
    ENTRY_POINT_GROUP,
    PROJECT,
    BackendDef,
    BenchmarkDef,
    TioHookSpecs,
    resolve_target,
)
from tio_core.plugin.options import Option, validate_options

RUNTIME_SOURCE = "<runtime>"


@dataclass(frozen=True)
class BackendSpec:
    """A discovered backend, as available_backends() reports it."""

    name: str
    description: str
    options: Mapping[str, Option]
    distribution: str
    version: str
    factory: Callable[..., QueueSet] | str = field(repr=False)

    def load_factory(self) -> Callable[..., QueueSet]:
        return resolve_target(self.factory, f"backend {self.name!r} from {self.distribution}")


@dataclass(frozen=True)
class LoadError:
    """A plugin that could not be used, kept so users can see why."""

    plugin: str
    distribution: str
    message: str


@dataclass
class _Source:
    distribution: str
    version: str


class BackendRegistry:
    """A pluggy plugin manager plus the backends its plugins contribute."""

    def __init__(self, autoload: bool = True) -> None:
        self.plugin_manager = pluggy.PluginManager(PROJECT)
        self.plugin_manager.add_hookspecs(TioHookSpecs)
        self._sources: dict[int, _Source] = {}
        self._load_errors: list[LoadError] = []
        self._backends: dict[str, BackendSpec] | None = None
        self._conflicts: dict[str, list[str]] = {}
        self._register(builtin, "tio-core:builtin", _Source("tio-core", _core_version()))
        self.autoload = autoload and not _env_flag("TIO_DISABLE_PLUGIN_AUTOLOAD")  # installed plugins loaded
        if self.autoload:
            self._load_entry_points()

    # -- plugin loading -------------------------------------------------
    def _load_entry_points(self) -> None:
        only = {n.strip() for n in os.environ.get("TIO_PLUGINS", "").split(",") if n.strip()}
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else "<unknown>"
            version = dist.version if dist is not None else ""
            if only and entry_point.name not in only and dist_name not in only:
                continue
            label = f"{dist_name}:{entry_point.name}"
            try:
                plugin = entry_point.load()
            except Exception as exc:
                self._load_errors.append(LoadError(label, dist_name, f"import failed: {type(exc).__name__}: {exc}"))
                continue
            self._register(plugin, label, _Source(dist_name, version))

    def register(self, plugin: object, name: str | None = None, distribution: str = RUNTIME_SOURCE) -> None:
        """Register a plugin object or module at run time (tests, embedding apps)."""
        label = name or getattr(plugin, "__name__", None) or repr(plugin)
        if not self._register(plugin, label, _Source(distribution, "")):
            raise BackendLoadError(self._load_errors[-1].message)

    def _register(self, plugin: object, label: str, source: _Source) -> bool:
        try:
            self.plugin_manager.register(plugin, name=label)
        except Exception as exc:
            self._load_errors.append(LoadError(label, source.distribution, f"registration failed: {exc}"))
            return False
        try:
            # A hookimpl whose name matches no hookspec (a typo) is an error.
            self.plugin_manager.check_pending()
        except pluggy.PluginValidationError as exc:
            self.plugin_manager.unregister(plugin)
            self._load_errors.append(LoadError(label, source.distribution, f"invalid plugin: {exc}"))
            return False
        self._sources[id(plugin)] = source
        self._backends = None
        return True

    # -- backends ---------------------------------------------------------
    def _collect(self) -> dict[str, BackendSpec]:
        if self._backends is not None:
            return self._backends
        backends: dict[str, BackendSpec] = {}
        claims: dict[str, list[str]] = {}
        hook = self.plugin_manager.hook.tio_register_backends
        # Each plugin's hook is called on its own so that a failure is kept
        # against that plugin and the source distribution of each backend is known.
        for impl in reversed(hook.get_hookimpls()):
            source = self._sources.get(id(impl.plugin), _Source(RUNTIME_SOURCE, ""))
            label = self.plugin_manager.get_name(impl.plugin) or repr(impl.plugin)
            try:
                defs = list(impl.function() or ())
                for definition in defs:
                    if not isinstance(definition, BackendDef):
                        raise TypeError(f"expected BackendDef, got {type(definition).__name__}")
            except Exception as exc:
                self._load_errors.append(LoadError(label, source.distribution, f"tio_register_backends failed: {exc}"))
                continue
            for definition in defs:
                claims.setdefault(definition.name, []).append(source.distribution)
                backends.setdefault(
                    definition.name,
                    BackendSpec(
                        definition.name,
                        definition.description,
                        {opt.name: opt for opt in definition.options},
                        source.distribution,
                        source.version,
                        definition.factory,
                    ),
                )
        self._conflicts = {name: dists for name, dists in claims.items() if len(dists) > 1}
        for name, dists in self._conflicts.items():
            self._load_errors.append(
                LoadError(name, " and ".join(dists), f"backend name {name!r} is claimed by {' and '.join(dists)}")
            )
        self._backends = backends
        return backends

    def benchmarks(self) -> list[tuple[BenchmarkDef, str]]:
        """Every plugin's benchmarks with the distribution each came from."""
        found: list[tuple[BenchmarkDef, str]] = []
        for impl in reversed(self.plugin_manager.hook.tio_register_benchmarks.get_hookimpls()):
            source = self._sources.get(id(impl.plugin), _Source(RUNTIME_SOURCE, ""))
            try:
                found.extend((bench, source.distribution) for bench in impl.function() or ())
            except Exception as exc:
                label = self.plugin_manager.get_name(impl.plugin) or repr(impl.plugin)
                self._load_errors.append(
                    LoadError(label, source.distribution, f"tio_register_benchmarks failed: {exc}")
                )
        return found

    def available_backends(self) -> list[BackendSpec]:
        return sorted(self._collect().values(), key=lambda spec: spec.name)

    def load_errors(self) -> list[LoadError]:
        self._collect()
        return list(self._load_errors)

    def get(self, name: str) -> BackendSpec:
        backends = self._collect()
        if name in self._conflicts:
            raise BackendConflict(
                f"backend name {name!r} is claimed by {' and '.join(self._conflicts[name])}; "
                "uninstall one of them or restrict loading with TIO_PLUGINS"
            )
        if name not in backends:
            known = ", ".join(sorted(backends)) or "none installed"
            hint = difflib.get_close_matches(name, backends, n=1)
            suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
            broken = [e.plugin for e in self._load_errors]
            failed = f" Plugins that failed to load: {', '.join(broken)}." if broken else ""
            raise BackendNotFound(f"no backend named {name!r}.{suggestion} Available: {known}.{failed}")
        return backends[name]

    def open_backend(self, name: str, /, **options: Any) -> QueueSet:
        spec = self.get(name)
        values = validate_options(name, spec.options, options)
        queue_set = spec.load_factory()(**values)
        if not isinstance(queue_set, QueueSet):
            raise BackendLoadError(f"backend {name!r} factory returned {type(queue_set).__name__}, not a QueueSet")
        return queue_set


def _core_version() -> str:
    try:
        return importlib.metadata.version("tio-core")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


_default: BackendRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> BackendRegistry:
    """The process-wide registry, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = BackendRegistry()
        return _default


def reset_default_registry() -> None:
    """Forget the process-wide registry so the next use rediscovers plugins."""
    global _default
    with _default_lock:
        _default = None


def available_backends() -> list[BackendSpec]:
    return default_registry().available_backends()


def open_backend(name: str, /, **options: Any) -> QueueSet:
    """Open the backend registered under ``name`` with validated options."""
    return default_registry().open_backend(name, **options)


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin at run time with the process-wide registry."""
    default_registry().register(plugin, name)


__all__ = [
    "BackendDef",
    "BackendRegistry",
    "BenchmarkDef",
    "BackendSpec",
    "ConfigError",
    "LoadError",
    "Option",
    "available_backends",
    "default_registry",
    "open_backend",
    "register_plugin",
    "reset_default_registry",
]
