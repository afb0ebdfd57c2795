"""Which options name files the backend reads or writes, and the checks that one never overwrites the other.

Kept free of heavy imports: tio_pcap.plugin reads FILE_ROLES on every
backend discovery. The roles are the values proposed for tio_core's
Option(role=...), so the CLI can refuse a run whose sink would write a file
its source reads, across two backends, before opening either.
"""

from __future__ import annotations

import os
import stat

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
    return (
        f"output {output_path!r} is the same file as the capture being replayed, path {input_path!r} "
        f"(both are {where}): recording would overwrite it"
    )


def read_elsewhere(path: str | os.PathLike[str]) -> str | None:
    """The name under which this process has the regular file path open for reading, or None.

    The last line of defence before an output truncates its file: another
    backend of the run (or the caller) may be reading it. Linux only
    (/proc/self/fd); elsewhere it finds nothing.
    """
    try:
        target = os.stat(path)
        names = os.listdir("/proc/self/fd")
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(target.st_mode):
        return None  # truncating a pipe or a device loses nothing
    for name in names:
        try:
            found = os.stat(f"/proc/self/fd/{name}")
            if (found.st_dev, found.st_ino) != (target.st_dev, target.st_ino):
                continue
            with open(f"/proc/self/fdinfo/{name}") as info:
                flags = next(int(line.split()[1], 8) for line in info if line.startswith("flags:"))
            if flags & os.O_ACCMODE != os.O_WRONLY:
                return os.readlink(f"/proc/self/fd/{name}")
        except (OSError, ValueError, StopIteration):
            continue  # closed meanwhile (the listing's own descriptor), or unreadable
    return None
