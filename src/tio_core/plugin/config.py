"""Backend selection from configuration (a mapping or a TOML file).

[tio]
backend = "linux"
[tio.options]
name = "tio0"
queues = 2
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from typing import Any

from tio_core.contract import QueueSet
from tio_core.errors import ConfigError
from tio_core.plugin.registry import BackendRegistry, default_registry

ConfigSource = Mapping[str, Any] | str | os.PathLike


def load_config(source: ConfigSource) -> Mapping[str, Any]:
    """A mapping as is, or the parsed TOML file at the given path."""
    if isinstance(source, Mapping):
        return source
    try:
        with open(source, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {os.fspath(source)!r}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {os.fspath(source)!r} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {os.fspath(source)!r} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except RecursionError:
        raise ConfigError(f"config {os.fspath(source)!r} nests tables or arrays too deeply") from None


def backend_selection(config: Mapping[str, Any], section: str = "tio") -> tuple[str, dict[str, Any]]:
    """(backend name, options) from ``[section]`` with ``backend`` and ``[section.options]``.

    ``section`` may be dotted ("forward.from") to name a nested table.
    """
    table: Any = config
    for part in section.split("."):
        table = table.get(part) if isinstance(table, Mapping) else None
    if not isinstance(table, Mapping):
        raise ConfigError(f"config has no [{section}] table")
    unknown = set(table) - {"backend", "options"}
    if unknown:
        raise ConfigError(f"[{section}] has unknown keys: {', '.join(sorted(unknown))} (expected backend, options)")
    name = table.get("backend")
    if not isinstance(name, str) or not name:
        raise ConfigError(f'[{section}] needs backend = "NAME"')
    options = table.get("options", {})
    if not isinstance(options, Mapping):
        raise ConfigError(f"[{section}.options] must be a table")
    return name, dict(options)


def open_from_config(source: ConfigSource, section: str = "tio", registry: BackendRegistry | None = None) -> QueueSet:
    """Open the backend a config names, with its options validated."""
    name, options = backend_selection(load_config(source), section)
    return (registry or default_registry()).open_backend(name, **options)
