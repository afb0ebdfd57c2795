"""Backend SPECs on the command line: ``NAME:key=value,key=value``.

A list option takes its key repeatedly (``addresses=a,addresses=b``). A value
that holds a comma (or a quote or backslash) is written in double quotes,
``path="a,b.pcap"``, or with a backslash before the character,
``path=a\\,b.pcap``; inside quotes a backslash escapes ``"`` and ``\\``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tio_core.errors import ConfigError
from tio_core.plugin.options import Option
from tio_core.plugin.registry import BackendRegistry

SPEC_SYNTAX = 'NAME:key=value,...  (a value with a comma: key="a,b" or key=a\\,b)'


def split_items(text: str) -> Iterator[str]:
    """The key=value items of a SPEC's option part, unquoted and unescaped."""
    item: list[str] = []
    quoted = False
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ConfigError(f"backend spec options {text!r} end with a lone backslash")
            item.append(escaped)
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            yield "".join(item)
            item = []
        else:
            item.append(char)
    if quoted:
        raise ConfigError(f"backend spec options {text!r} have an unterminated double quote")
    yield "".join(item)


def parse_backend_spec(text: str, registry: BackendRegistry) -> tuple[str, dict[str, Any]]:
    """Parse ``NAME[:key=value,...]`` into (name, typed options)."""
    name, _, rest = text.partition(":")
    if not name:
        raise ConfigError(f"backend spec {text!r} has no backend name (expected {SPEC_SYNTAX})")
    return name, parse_options(name, (item for item in split_items(rest) if item), registry.get(name).options)


def parse_options(backend: str, items: Iterable[str], declared: Mapping[str, Option]) -> dict[str, Any]:
    """``key=value`` strings to typed options; unknown keys are kept for validation to name."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"backend {backend!r}: {item!r} is not key=value")
        option = declared.get(key)
        if option is None:
            options[key] = value
        elif option.type is list:
            options.setdefault(key, []).append(option.parse_text(value, backend))
        else:
            options[key] = option.parse_text(value, backend)
    return options


def format_spec(name: str, options: Mapping[str, Any]) -> str:
    """The SPEC a user would type for these options (values quoted where needed)."""

    def quote(value: Any) -> str:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if any(c in text for c in ',"\\'):
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return text

    items = []
    for key, value in options.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        items += [f"{key}={quote(v)}" for v in values]
    return f"{name}:{','.join(items)}" if items else name
