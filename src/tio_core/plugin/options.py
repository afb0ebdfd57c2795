"""Typed backend options: declaration, validation and parsing from text."""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tio_core.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list"}
INPUT_FILE = "input-file"
OUTPUT_FILE = "output-file"
ROLES = ("", INPUT_FILE, OUTPUT_FILE)


@dataclass(frozen=True)
class Option:
    """One keyword option a backend factory accepts.

    type is one of str, int, float, bool or list (a list of ``item_type``).
    A default of None makes the option optional with no value. role says
    what a string value names: INPUT_FILE (a file the backend reads),
    OUTPUT_FILE (a file it creates or truncates) or "" (neither); the CLI
    refuses a run whose output file is one of its input files.
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    required: bool = False
    item_type: builtins.type = str
    choices: tuple = ()
    role: str = ""

    def __post_init__(self) -> None:
        if self.type not in _TYPE_NAMES or self.item_type not in _TYPE_NAMES:
            raise TypeError(f"option {self.name!r}: unsupported type {self.type!r}")
        if self.role not in ROLES:
            raise TypeError(f"option {self.name!r}: role must be one of {ROLES}, got {self.role!r}")
        if self.role and self.type is not str:
            raise TypeError(f"option {self.name!r}: a {self.role} option must be a string")

    @property
    def type_name_with_article(self) -> str:
        name = self.type_name
        return f"an {name}" if name[0] in "aeiou" else f"a {name}"

    @property
    def type_name(self) -> str:
        if self.type is list:
            return f"list of {_TYPE_NAMES[self.item_type]}"
        return _TYPE_NAMES[self.type]

    def check(self, value: Any, backend: str) -> Any:
        """Return value (a list becomes a tuple) or raise ConfigError."""
        if value is None and not self.required:
            return None
        if self.type is list:
            if not isinstance(value, (list, tuple)):
                raise self._type_error(value, backend)
            return tuple(self._check_scalar(v, self.item_type, backend) for v in value)
        value = self._check_scalar(value, self.type, backend)
        if self.choices and value not in self.choices:
            raise ConfigError(
                f"backend {backend!r}: option {self.name!r} must be one of "
                f"{', '.join(map(repr, self.choices))}, got {value!r}"
            )
        return value

    def _check_scalar(self, value: Any, kind: builtins.type, backend: str) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, bool) and kind is not bool:
            raise self._type_error(value, backend)
        if not isinstance(value, kind):
            raise self._type_error(value, backend)
        return value

    def _type_error(self, value: Any, backend: str) -> ConfigError:
        return ConfigError(
            f"backend {backend!r}: option {self.name!r} must be {self.type_name_with_article}, "
            f"got {type(value).__name__} {value!r}"
        )

    def parse_text(self, text: str, backend: str) -> Any:
        """Convert a command-line string to this option's type (one list item for lists)."""
        kind = self.item_type if self.type is list else self.type
        try:
            if kind is bool:
                low = text.strip().lower()
                if low in _TRUE:
                    return True
                if low in _FALSE:
                    return False
                raise ValueError(text)
            return kind(text)
        except ValueError:
            article = "an" if kind is int else "a"
            raise ConfigError(
                f"backend {backend!r}: option {self.name!r} must be {article} {_TYPE_NAMES[kind]}, got {text!r}"
            ) from None


def validate_options(backend: str, declared: Mapping[str, Option], given: Mapping[str, Any]) -> dict[str, Any]:
    """Check given options against the declaration and fill in defaults."""
    unknown = [key for key in given if key not in declared]
    if unknown:
        key = unknown[0]
        hint = difflib.get_close_matches(key, declared, n=1)
        known = ", ".join(sorted(declared)) or "none"
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError(f"backend {backend!r} has no option {key!r}{suggestion}; its options: {known}")
    result: dict[str, Any] = {}
    for name, option in declared.items():
        if name in given:
            result[name] = option.check(given[name], backend)
        elif option.required:
            raise ConfigError(f"backend {backend!r}: option {name!r} is required ({option.help})")
        else:
            result[name] = option.default
    return result
