"""Which options name files the backend reads or writes, and the check that one never overwrites the other.

Kept free of heavy imports: tio_pcap.plugin reads FILE_ROLES on every
backend discovery. The roles are the values proposed for tio_core's
Option(role=...), so the CLI can refuse a run whose sink would write a file
its source reads, across two backends, before opening either.
"""

from __future__ import annotations

import os

INPUT_FILE = "input-file"
OUTPUT_FILE = "output-file"
FILE_ROLES = {"path": INPUT_FILE, "output": OUTPUT_FILE}  # option name -> role


def same_file(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Both names reach one existing file (device and inode, after following links)."""
    try:
        a, b = os.stat(first), os.stat(second)
    except (OSError, ValueError):
        return False  # one does not exist (yet): an output that does not exist overwrites nothing
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def describe_same_file(input_path: str, output_path: str) -> str:
    """Why output_path may not be written in a run that reads input_path (for a ConfigError)."""
    where = os.path.realpath(input_path)
    return (f"output {output_path!r} is the same file as the capture being replayed, path {input_path!r} "
            f"(both are {where}): recording would overwrite it")
