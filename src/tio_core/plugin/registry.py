"""Backend discovery through pluggy and the public open_backend() API.

Discovery loads every entry point of the group ``tio.backends`` on its own,
so one broken plugin cannot hide the others (pluggy's
load_setuptools_entrypoints stops at the first failure, and it registers
plugins by entry-point name, silently dropping a second distribution that
reuses a name). Backend names come from what each plugin's hook returns,
and two distributions claiming one name is reported, not resolved by luck.

A bad plugin breaks nothing but itself:

* Everything a plugin runs is contained (``plugin.guard``): its import, its
  hook calls, the import of a ``"module:attribute"`` factory and the factory
  call. Whatever it raises, ``SystemExit``, ``KeyboardInterrupt`` and other
  BaseExceptions included, is kept as a ``LoadError`` naming the plugin, its
  distribution and the reason, and every other backend keeps working.
* A real Ctrl-C (a signal whose handler raises while plugin code runs) is the
  user's and stops the host as usual, also when the plugin swallowed it;
  only an exception the plugin raised itself is recorded. Signals delivered
  after a plugin call returned are never touched by the registry.
* Everything a hook returns is validated and copied before use: a list of
  ``BackendDef`` (``BenchmarkDef``) with a name tio can select (letters,
  digits, ``_ . -``, starting with a letter), a string description, a
  factory that is a callable or a ``"module:attribute"`` string, and options
  that are ``Option`` objects with distinct identifier names whose defaults
  and choices pass their own type check. One bad definition is rejected on
  its own; the plugin's other definitions stay usable.
* Opening a backend whose plugin failed (by its backend name when the hook
  gave one, else by the entry-point or distribution name, with or without a
  ``tio-`` prefix) raises ``BackendLoadError`` with a one-line message. A
  factory that raises a ``TioError`` (``ConfigError``, a permission error,
  ...) passes it through unchanged: that is the backend's own typed error.
  Any other exception becomes ``BackendLoadError`` naming the backend, its
  distribution and the exception, chained to the original.

Every ``BackendSpec`` and ``LoadError`` carries the entry point, the
distribution with its version and the plugin's module file, for
``tio backends -v`` and ``--json``.

Environment:
  TIO_DISABLE_PLUGIN_AUTOLOAD=1   load no entry points (only runtime plugins)
  TIO_PLUGINS=name,name           load only these entry points (by entry-point
                                  or distribution name)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import threading
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice
from typing import Any, TypeVar

import pluggy

from tio_core.contract import QueueSet
from tio_core.errors import BackendConflict, BackendLoadError, BackendNotFound, ConfigError, TioError
from tio_core.plugin import builtin
from tio_core.plugin.api import (
    ENTRY_POINT_GROUP,
    PROJECT,
    BackendDef,
    BenchmarkDef,
    TioHookSpecs,
    resolve_target,
)
from tio_core.plugin.guard import InvalidPluginValue, PluginFailure, contained, one_line
from tio_core.plugin.options import Option, validate_options

RUNTIME_SOURCE = "<runtime>"
UNKNOWN_DISTRIBUTION = "<unknown>"
# A name must be selectable in a backend spec NAME:key=value,... and readable in a table.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
FACTORY_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
MAX_DEFINITIONS = 256  # more from one hook is a runaway generator, not a plugin
HOOK_NAMES = tuple(sorted(name for name in vars(TioHookSpecs) if name.startswith("tio_")))
_Def = TypeVar("_Def", BackendDef, BenchmarkDef)


@dataclass(frozen=True)
class BackendSpec:
    """A discovered backend, as available_backends() reports it."""

    name: str
    description: str
    options: Mapping[str, Option]
    distribution: str
    version: str
    factory: Callable[..., QueueSet] | str = field(repr=False)
    entry_point: str = ""  # "name = value" of the entry point that loaded the plugin; "" for runtime/built-in
    module_file: str = ""  # the file of the plugin module that registered the backend, when it has one

    def load_factory(self) -> Callable[..., QueueSet]:
        return resolve_target(self.factory, f"backend {self.name!r} from {self.distribution}")


@dataclass(frozen=True)
class LoadError:
    """A plugin (or one of its definitions) that could not be used, kept so users can see why."""

    plugin: str  # "distribution:entry point" or the runtime registration name
    distribution: str
    message: str  # one line
    version: str = ""
    entry_point: str = ""
    module_file: str = ""
    backend: str = ""  # the backend name it concerns, when known

    def __str__(self) -> str:
        return f"{self.plugin} ({_dist_label(self.distribution, self.version)}): {self.message}"


@dataclass
class _Source:
    distribution: str
    version: str
    entry_point: str = ""
    module_file: str = ""
    entry_name: str = ""

    @property
    def names(self) -> tuple[str, str]:
        """What a user may type to mean this plugin's backend when the plugin could not say."""
        return self.entry_name, self.distribution


class BackendRegistry:
    """A pluggy plugin manager plus the backends its plugins contribute."""

    def __init__(self, autoload: bool = True) -> None:
        self.plugin_manager = pluggy.PluginManager(PROJECT)
        self.plugin_manager.add_hookspecs(TioHookSpecs)
        self._sources: dict[int, _Source] = {}
        self._load_errors: list[LoadError] = []
        self._collect_errors: list[LoadError] = []  # from tio_register_backends, rebuilt with the backends
        self._benchmark_errors: list[LoadError] = []  # from tio_register_benchmarks, rebuilt with the benchmarks
        self._backends: dict[str, BackendSpec] | None = None
        self._benchmarks: list[tuple[BenchmarkDef, str]] | None = None
        self._conflicts: dict[str, list[str]] = {}
        # What a user may type for something that failed: backend, entry-point or distribution names.
        self._broken_at_load: dict[str, LoadError] = {}  # imports and registrations: fixed once loaded
        self._broken_at_collect: dict[str, LoadError] = {}  # hooks and definitions: rebuilt with the backends
        self._register(builtin, "tio-core:builtin", _Source("tio-core", _core_version(), "", _module_file(builtin)))
        self.autoload = autoload and not _env_flag("TIO_DISABLE_PLUGIN_AUTOLOAD")  # installed plugins loaded
        if self.autoload:
            self._load_entry_points()

    # -- plugin loading -------------------------------------------------
    def _load_entry_points(self) -> None:
        only = {n.strip() for n in os.environ.get("TIO_PLUGINS", "").split(",") if n.strip()}
        try:
            entry_points = contained(lambda: list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)))
        except PluginFailure as failure:  # a distribution's metadata is unreadable
            self._error(f"<{ENTRY_POINT_GROUP}>", _Source(UNKNOWN_DISTRIBUTION, ""), f"discovery failed: {failure}")
            return
        for entry_point in entry_points:
            source = _entry_point_source(entry_point)
            if only and source.entry_name not in only and source.distribution not in only:
                continue
            label = f"{source.distribution}:{source.entry_name}"
            try:
                plugin = contained(entry_point.load)
            except PluginFailure as failure:
                source.module_file = _unimported_module_file(entry_point)
                error = self._error(label, source, f"import failed: {failure.reason}")
                _mark_broken(self._broken_at_load, error, source.names)
                continue
            source.module_file = _module_file(plugin)
            if plugin is None:
                error = self._error(label, source, "the entry point names None, not a plugin module or object")
                _mark_broken(self._broken_at_load, error, source.names)
                continue
            if not self._register(plugin, label, source):
                _mark_broken(self._broken_at_load, self._load_errors[-1], source.names)

    def register(self, plugin: object, name: str | None = None, distribution: str = RUNTIME_SOURCE) -> None:
        """Register a plugin object or module at run time (tests, embedding apps)."""
        label = name or _module_name(plugin) or f"{type(plugin).__name__} object at {id(plugin):#x}"
        if not self._register(plugin, label, _Source(distribution, "", "", _module_file(plugin))):
            raise BackendLoadError(str(self._load_errors[-1]))

    def _register(self, plugin: object, label: str, source: _Source) -> bool:
        try:
            contained(lambda: self.plugin_manager.register(plugin, name=label))
        except PluginFailure as failure:
            self._error(label, source, f"registration failed: {failure.reason}")
            return False
        try:
            # A hookimpl whose name matches no hookspec (a typo) is an error.
            contained(self.plugin_manager.check_pending)
        except PluginFailure as failure:
            self._unregister(label)
            self._error(label, source, f"invalid plugin: {failure.reason}")
            return False
        hooks = [getattr(self.plugin_manager.hook, name) for name in HOOK_NAMES]
        if not any(impl.plugin is plugin for hook in hooks for impl in hook.get_hookimpls()):
            # Most likely an entry point that names the wrong module: say so rather than contribute nothing.
            self._unregister(label)
            self._error(label, source, f"defines no tio hook (expected one of {', '.join(HOOK_NAMES)})")
            return False
        self._sources[id(plugin)] = source
        self._backends = None
        self._benchmarks = None
        return True

    def _unregister(self, label: str) -> None:
        try:
            contained(lambda: self.plugin_manager.unregister(name=label))  # compares plugins: their __eq__ runs
        except PluginFailure:
            pass  # its hooks are never called: only plugins with a recorded source are (see _hook_results)

    def _error(
        self, label: str, source: _Source, message: str, backend: str = "", into: list[LoadError] | None = None
    ) -> LoadError:
        error = LoadError(
            label,
            source.distribution,
            one_line(message, 600),
            source.version,
            source.entry_point,
            source.module_file,
            backend,
        )
        (self._load_errors if into is None else into).append(error)
        return error

    def _hook_results(self, hook_name: str, errors: list[LoadError]) -> Iterable[tuple[_Source, str, list[object]]]:
        """Each plugin's hook called on its own, so a failure is kept against that plugin."""
        for impl in reversed(getattr(self.plugin_manager.hook, hook_name).get_hookimpls()):
            source = self._sources.get(id(impl.plugin))
            if source is None:
                continue  # a rejected plugin that pluggy could not forget
            label = impl.plugin_name  # not get_name(): that compares plugins with their own __eq__
            try:
                items = contained(partial(_definitions_of, impl.function))
            except PluginFailure as failure:
                error = self._error(label, source, f"{hook_name} failed: {failure.reason}", into=errors)
                if hook_name == "tio_register_backends":
                    _mark_broken(self._broken_at_collect, error, source.names)
                continue
            yield source, label, items

    # -- backends ---------------------------------------------------------
    def _collect(self) -> dict[str, BackendSpec]:
        if self._backends is not None:
            return self._backends
        self._collect_errors = []
        self._broken_at_collect = {}
        backends: dict[str, BackendSpec] = {}
        claims: dict[str, list[str]] = {}
        for source, label, items in self._hook_results("tio_register_backends", self._collect_errors):
            for item in items:
                try:
                    definition = contained(partial(_checked_backend, item))
                except PluginFailure as failure:
                    backend = _declared_name(item)
                    error = self._error(
                        label,
                        source,
                        f"tio_register_backends returned an invalid backend"
                        f"{f' {backend!r}' if backend else ''}: {failure.reason}",
                        backend,
                        self._collect_errors,
                    )
                    _mark_broken(self._broken_at_collect, error, (backend,) if backend else source.names)
                    continue
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
                        source.entry_point,
                        source.module_file,
                    ),
                )
        self._conflicts = {name: dists for name, dists in claims.items() if len(dists) > 1}
        for name, dists in self._conflicts.items():
            self._collect_errors.append(
                LoadError(
                    name,
                    " and ".join(dists),
                    f"backend name {name!r} is claimed by {' and '.join(dists)}",
                    backend=name,
                )
            )
        self._backends = backends
        return backends

    def benchmarks(self) -> list[tuple[BenchmarkDef, str]]:
        """Every plugin's valid benchmarks with the distribution each came from."""
        if self._benchmarks is not None:
            return list(self._benchmarks)
        self._benchmark_errors = []
        found: list[tuple[BenchmarkDef, str]] = []
        for source, label, items in self._hook_results("tio_register_benchmarks", self._benchmark_errors):
            for item in items:
                try:
                    found.append((contained(partial(_checked_benchmark, item)), source.distribution))
                except PluginFailure as failure:
                    self._error(
                        label,
                        source,
                        f"tio_register_benchmarks returned an invalid benchmark: {failure.reason}",
                        into=self._benchmark_errors,
                    )
        self._benchmarks = found
        return list(found)

    def available_backends(self) -> list[BackendSpec]:
        return sorted(self._collect().values(), key=lambda spec: spec.name)

    def load_errors(self) -> list[LoadError]:
        """Every plugin failure: imports, registrations, hooks and invalid definitions, each once."""
        self._collect()
        self.benchmarks()  # cheap: runners are loaded only when a benchmark runs
        return self._load_errors + self._collect_errors + self._benchmark_errors

    def get(self, name: str) -> BackendSpec:
        backends = self._collect()
        if name in self._conflicts:
            raise BackendConflict(
                f"backend name {name!r} is claimed by {' and '.join(self._conflicts[name])}; "
                "uninstall one of them or restrict loading with TIO_PLUGINS"
            )
        if name in backends:
            return backends[name]
        broken = self._broken_at_collect.get(name) or self._broken_at_load.get(name)
        if broken is not None:
            raise BackendLoadError(
                f"backend {name!r} is unavailable: plugin {broken.plugin} "
                f"({_dist_label(broken.distribution, broken.version)}) failed to load: {broken.message}"
            )
        known = ", ".join(sorted(backends)) or "none installed"
        hint = difflib.get_close_matches(name, backends, n=1)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        failed_plugins = sorted({e.plugin for e in self.load_errors()})
        failed = f" Plugins that failed to load: {', '.join(failed_plugins)}." if failed_plugins else ""
        raise BackendNotFound(f"no backend named {name!r}.{suggestion} Available: {known}.{failed}")

    def open_backend(self, name: str, /, **options: Any) -> QueueSet:
        spec = self.get(name)
        values = validate_options(name, spec.options, options)
        factory = spec.load_factory()
        origin = _dist_label(spec.distribution, spec.version)
        try:
            # A TioError is the backend's own typed error (bad option value, no permission, ...): it passes.
            queue_set = contained(lambda: factory(**values), passthrough=(TioError,))
            is_queue_set = contained(lambda: isinstance(queue_set, QueueSet))
        except PluginFailure as failure:
            raise BackendLoadError(f"backend {name!r} ({origin}) failed to open: {failure.reason}") from (
                failure.__cause__
            )
        if not is_queue_set:
            raise BackendLoadError(
                f"backend {name!r} ({origin}) factory returned {type(queue_set).__name__}, not a QueueSet"
            )
        return queue_set


def _mark_broken(broken: dict[str, LoadError], error: LoadError, names: Iterable[str]) -> None:
    """Remember ``error`` under each name, also without a "tio-"/"tio_" prefix; the first error of a name wins."""
    for name in names:
        for candidate in (name, name.removeprefix("tio-"), name.removeprefix("tio_")):
            if candidate:
                broken.setdefault(candidate, error)


# -- validation of what plugins return ------------------------------------------


def _definitions_of(hook: Callable[[], object]) -> list[object]:
    """What a hook returns, as a list: None means nothing, else an iterable that is not text or a mapping."""
    result = hook()
    if result is None:
        return []
    if isinstance(result, (str, bytes, bytearray, Mapping)) or not isinstance(result, Iterable):
        raise InvalidPluginValue(f"returned a {type(result).__name__}, expected a list of definitions")
    items = list(islice(result, MAX_DEFINITIONS + 1))
    if len(items) > MAX_DEFINITIONS:
        raise InvalidPluginValue(f"returned more than {MAX_DEFINITIONS} definitions")
    return items


def _declared_name(item: object) -> str:
    """The name a rejected definition gives itself, if it is a usable one (for error messages and lookup)."""
    try:
        name = contained(lambda: object.__getattribute__(item, "name"))
    except (PluginFailure, AttributeError):
        return ""
    return name if type(name) is str and NAME_PATTERN.fullmatch(name) else ""


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidPluginValue(f"{what} must be a string, got {type(value).__name__}")
    return str.__str__(value)  # a plain str even from a str subclass


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidPluginValue(f"{what} must be a bool, got {type(value).__name__}")
    return value


def _checked_name(value: object, kind: str) -> str:
    name = _text(value, f"{kind} name")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidPluginValue(
            f"{kind} name {name[:80]!r} is not usable: letters, digits, '_', '.', '-', starting with a letter, "
            "at most 64 characters"
        )
    return name


def _checked_target(value: object, what: str) -> Callable[..., Any] | str:
    if isinstance(value, str) and FACTORY_PATTERN.fullmatch(value):
        return str.__str__(value)
    if not isinstance(value, str) and callable(value):
        return value
    shown = repr(value[:80]) if isinstance(value, str) else f"a {type(value).__name__}"
    raise InvalidPluginValue(f"{what} must be a callable or a 'module:attribute' string, got {shown}")


def _checked_definition(item: object, kind: type[_Def], target: str) -> tuple[_Def, str, str, Callable[..., Any] | str]:
    """``item`` as a ``kind``, and its name, description and ``target`` (factory or runner) checked."""
    if not isinstance(item, kind):
        raise InvalidPluginValue(f"expected {kind.__name__}, got {type(item).__name__}")
    name = _checked_name(item.name, kind.__name__.removesuffix("Def").lower())
    description = one_line(_text(item.description, "description"), 200)
    return item, name, description, _checked_target(getattr(item, target), target)


def _checked_backend(item: object) -> BackendDef:
    backend, name, description, factory = _checked_definition(item, BackendDef, "factory")
    options = backend.options
    if isinstance(options, (str, bytes, Mapping)) or not isinstance(options, Iterable):
        raise InvalidPluginValue(f"options must be a tuple of Option, got {type(options).__name__}")
    checked: list[Option] = []
    for option in islice(options, MAX_DEFINITIONS + 1):
        checked.append(_checked_option(option, name, len(checked)))
        if len(checked) > MAX_DEFINITIONS:
            raise InvalidPluginValue(f"more than {MAX_DEFINITIONS} options")
    names = [opt.name for opt in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidPluginValue(f"option {duplicates[0]!r} is declared more than once")
    return BackendDef(name, description, factory, tuple(checked))


def _checked_option(option: object, backend: str, index: int) -> Option:
    if not isinstance(option, Option):
        raise InvalidPluginValue(f"option {index} is a {type(option).__name__}, not an Option")
    name = _text(option.name, f"option {index} name")
    if not name.isidentifier():
        raise InvalidPluginValue(f"option name {name[:80]!r} is not an identifier (it becomes a keyword argument)")
    choices = option.choices
    if not isinstance(choices, (tuple, list)):
        raise InvalidPluginValue(f"option {name!r}: choices must be a tuple, got {type(choices).__name__}")
    required = _flag(option.required, f"option {name!r}: required")
    try:
        # Re-running the constructor re-checks the types a plugin could have forced in after construction.
        checked = Option(
            name,
            option.type,
            option.default,
            one_line(_text(option.help, f"option {name!r} help"), 300),
            required,
            option.item_type,
            tuple(choices),
            option.role,
        )
    except TypeError as exc:
        raise InvalidPluginValue(f"option {name!r}: {exc}") from None
    try:
        if checked.type is not list:
            for choice in checked.choices:
                checked._check_scalar(choice, checked.type, backend)
        if checked.default is not None:
            checked = replace(checked, default=checked.check(checked.default, backend))
    except ConfigError:
        bad = checked.default if checked.default is not None else checked.choices
        raise InvalidPluginValue(
            f"option {name!r}: default or choices do not match its type ({checked.type_name}): {bad!r}"[:300]
        ) from None
    return checked


def _checked_benchmark(item: object) -> BenchmarkDef:
    benchmark, name, description, runner = _checked_definition(item, BenchmarkDef, "runner")
    return BenchmarkDef(name, description, runner, _flag(benchmark.needs_root, "needs_root"))


# -- where plugins come from -------------------------------------------------------


def _entry_point_source(entry_point: importlib.metadata.EntryPoint) -> _Source:
    """Distribution, version and "name = value" of an entry point; metadata a plugin wrote may be broken."""

    def read() -> _Source:
        dist = entry_point.dist
        name = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        return _Source(
            one_line(name, 100) if isinstance(name, str) and name else UNKNOWN_DISTRIBUTION,
            one_line(version, 50) if isinstance(version, str) else "",
            one_line(f"{entry_point.name} = {entry_point.value}", 200),
            entry_name=entry_point.name,
        )

    try:
        return contained(read)
    except PluginFailure:
        entry_name = one_line(str(getattr(entry_point, "name", "")), 100)
        return _Source(UNKNOWN_DISTRIBUTION, "", entry_name, entry_name=entry_name)


def _module_file(plugin: object) -> str:
    """The file of a plugin module, or of the module defining a plugin class or object; "" when there is none."""
    try:
        if isinstance(plugin, types.ModuleType):
            module: object = plugin
        else:
            owner = plugin if isinstance(plugin, type) else type(plugin)
            module = sys.modules.get(type.__getattribute__(owner, "__module__"))
        file = vars(module).get("__file__") if isinstance(module, types.ModuleType) else None
    except Exception:  # best effort: a name for the listing, never a failure
        return ""
    return file if isinstance(file, str) else ""


def _module_name(plugin: object) -> str:
    """A module's or class's own name, read without running plugin code; "" for anything else."""
    if isinstance(plugin, types.ModuleType):
        name = vars(plugin).get("__name__")
    elif isinstance(plugin, type):
        name = type.__getattribute__(plugin, "__name__")
    else:
        return ""
    return name if isinstance(name, str) else ""


def _unimported_module_file(entry_point: importlib.metadata.EntryPoint) -> str:
    """Where the module of a failed entry point lives, found without running any of its code again."""
    try:
        module = entry_point.module
        parent = module.rpartition(".")[0]
        if parent and parent not in sys.modules:
            return ""  # finding it would import (run) the parent package, which may be what failed
        spec = contained(lambda: importlib.util.find_spec(module))
    except (PluginFailure, AttributeError, ValueError):
        return ""
    origin = spec.origin if spec is not None else None
    return origin if isinstance(origin, str) and os.path.isabs(origin) else ""


def _dist_label(distribution: str, version: str) -> str:
    return f"{distribution} {version}".strip()


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
