"""The ``tio`` command, one module per job.

parsing   the argument parser: commands, options, value checks, help
spec      backend SPECs: NAME:key=value,... with quoting
plan      what a moving command (forward, replay, record) will run
files     which files a run reads and writes; refuses writing over an input
commands  the commands themselves
output    standard output, the progress line, interval lines, tables
summary   the summary of a moving command: fields, arithmetic, text
app       main(): parse, dispatch, map errors to exit codes

Exit codes: 0 ok (also a clean stop by Ctrl-C), 1 runtime error, 2 usage or
configuration error.
"""

from __future__ import annotations

from collections.abc import Sequence

from tio_core.cli.spec import parse_backend_spec  # the one parser of backend SPECs (tio_testing uses it)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``tio`` (imported lazily: ``tio_core.cli.output`` stays light for other users)."""
    from tio_core.cli.app import main as run

    return run(argv)


__all__ = ["main", "parse_backend_spec"]
