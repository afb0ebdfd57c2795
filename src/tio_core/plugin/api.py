"""What a tio plugin sees: the pluggy hooks and the definitions they return.

A plugin is a module (or object) named by an entry point in the group
``tio.backends``; it marks functions with ``tio_core.hookimpl``. Keep the
plugin module light: it is imported on every discovery, so it should only
describe backends and import their implementation lazily (see
``BackendDef.factory``).

This module depends on nothing of tio but the leaf modules ``errors``,
``plugin.options`` and ``plugin.guard``, so a plugin, the registry and the
core's own built-in plugin can all import it without a cycle. Plugins import these names from
the public ``tio_core`` namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from tio_core.errors import BackendLoadError
from tio_core.plugin.guard import PluginFailure, contained
from tio_core.plugin.options import Option

if TYPE_CHECKING:
    from tio_core.bench import Figure
    from tio_core.contract import QueueSet

PROJECT = "tio"
ENTRY_POINT_GROUP = "tio.backends"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class BackendDef:
    """What a plugin returns from tio_register_backends.

    factory is a callable taking the validated options as keywords and
    returning a QueueSet, or a "module:attribute" string resolved only when
    the backend is opened (keeps discovery free of heavy imports).
    """

    name: str
    description: str
    factory: Callable[..., QueueSet] | str
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class BenchmarkDef:
    """A benchmark for `tio bench`: ``runner(quick: bool) -> list[Figure]``.

    runner may be a "module:function" string, imported only when run.
    """

    name: str
    description: str
    runner: Callable[..., list[Figure]] | str
    needs_root: bool = False

    def load_runner(self) -> Callable[..., list[Figure]]:
        return resolve_target(self.runner, f"benchmark {self.name!r}")

    def run(self, quick: bool = False) -> list[Figure]:
        """The runner's figures, checked. A runner that raises anything (SystemExit and
        KeyboardInterrupt too, but not the user's own Ctrl-C) or returns anything but
        well-formed Figures gives BackendLoadError with a one-line reason."""
        from tio_core.bench import check_figures

        runner = self.load_runner()
        try:
            return contained(lambda: check_figures(runner(quick=quick)))
        except PluginFailure as failure:
            raise BackendLoadError(f"benchmark {self.name!r} failed: {failure.reason}") from failure.__cause__


def resolve_target(target: Callable[..., Any] | str, what: str) -> Callable[..., Any]:
    """A callable as is, or the callable a "module:attribute" string names.

    Importing the module runs plugin code: whatever that raises (SystemExit and
    KeyboardInterrupt included, but not the user's own Ctrl-C) becomes a
    BackendLoadError with a one-line message.
    """
    if callable(target):
        return target
    if not isinstance(target, str) or ":" not in target:
        raise BackendLoadError(f"{what}: {target!r} is neither a callable nor a 'module:attribute' string")
    module_name, _, attr = target.partition(":")

    def load() -> Any:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    try:
        obj = contained(load)
    except PluginFailure as failure:
        raise BackendLoadError(f"{what}: cannot load {target!r}: {failure.reason}") from failure.__cause__
    if not callable(obj):
        raise BackendLoadError(f"{what}: {target!r} is a {type(obj).__name__}, not a callable")
    return obj


class TioHookSpecs:
    """The hooks; their bodies are empty because pluggy calls the plugins' implementations."""

    @hookspec
    def tio_register_backends(self) -> list[BackendDef]:
        """Return the backends this plugin contributes."""

    @hookspec
    def tio_register_benchmarks(self) -> list[BenchmarkDef]:
        """Return benchmarks for `tio bench` (optional)."""

    @hookspec
    def tio_register_contract_harness(self) -> dict[str, Any]:
        """Return {backend name: harness class or "module:Class"} for the contract suite (optional).

        A harness is a ``tio_testing.ContractHarness`` subclass that tells the
        suite (``pytest --tio-contract NAME``, distribution tio-testing) how to
        feed and observe the backend; name it by string so discovery stays light.
        """
