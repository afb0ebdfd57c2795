"""The pluggy hooks a tio plugin implements.

A plugin is a module (or object) named by an entry point in the group
``tio.backends``; it marks functions with ``tio_core.hookimpl``. Keep the
plugin module light: it is imported on every discovery, so it should only
describe backends and import their implementation lazily (see
``BackendDef.factory``).
"""

from __future__ import annotations

import pluggy

PROJECT = "tio"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class TioHookSpecs:
    @hookspec
    def tio_register_backends(self) -> list:  # list[tio_core.registry.BackendDef]
        """Return the backends this plugin contributes, as BackendDef objects."""

    @hookspec
    def tio_register_benchmarks(self) -> list:  # list[tio_core.registry.BenchmarkDef]
        """Return benchmarks for `tio bench`, as BenchmarkDef objects (optional)."""
