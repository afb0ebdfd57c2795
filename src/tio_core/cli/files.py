"""The files a run reads and writes, found through the backends' declared options.

An option declared with role INPUT_FILE names a file its backend reads, one
with OUTPUT_FILE a file it creates or truncates. Before anything is opened,
a run whose output is one of its inputs (the same device and inode, through
any symlink, hard link or relative path) is refused: opening the output
would truncate the capture about to be read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from tio_core.cli.plan import Endpoint
from tio_core.errors import ConfigError
from tio_core.plugin.options import INPUT_FILE, OUTPUT_FILE
from tio_core.plugin.registry import BackendRegistry


@dataclass(frozen=True)
class NamedFile:
    path: str
    role: str
    where: str  # e.g. "pcap option path"


def named_files(endpoints: Iterable[Endpoint], registry: BackendRegistry) -> list[NamedFile]:
    """Every input and output file the endpoints' options name."""
    found = []
    for endpoint in endpoints:
        for name, option in registry.get(endpoint.backend).options.items():
            value = endpoint.options.get(name, option.default)
            if option.role in (INPUT_FILE, OUTPUT_FILE) and isinstance(value, str) and value:
                found.append(NamedFile(value, option.role, f"{endpoint.backend} option {name}"))
    return found


def _identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)  # follows symlinks
    except (OSError, ValueError):
        return None  # missing or unreadable: the backend reports it when it opens the file
    return status.st_dev, status.st_ino


def check_no_overwrite(endpoints: Iterable[Endpoint], registry: BackendRegistry) -> None:
    """ConfigError if an output file is an input file, or two outputs are one file."""
    files = named_files(endpoints, registry)
    inputs = [(f, _identity(f.path)) for f in files if f.role == INPUT_FILE]
    outputs = [f for f in files if f.role == OUTPUT_FILE]
    for output in outputs:
        identity = _identity(output.path)
        for source, source_identity in inputs:
            if identity is not None and identity == source_identity:
                raise ConfigError(
                    f"output {output.path!r} ({output.where}) is the same file as {source.path!r}, read by this "
                    f"run ({source.where}); recording would truncate it. Nothing was opened"
                )
    resolved: dict[object, NamedFile] = {}
    for output in outputs:
        key = _identity(output.path) or os.path.realpath(output.path)
        if key in resolved:
            raise ConfigError(
                f"outputs {resolved[key].path!r} ({resolved[key].where}) and {output.path!r} ({output.where}) "
                "are the same file; give each its own. Nothing was opened"
            )
        resolved[key] = output
