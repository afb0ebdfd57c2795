"""main(): parse the command line, run the command, turn every failure into one line and an exit code.

0 ok (a stop by Ctrl-C or SIGTERM included), 1 runtime error, 2 usage or
configuration error. No failure prints a Python traceback: an error tio did not foresee
is reported as one line too (TIO_DEBUG=1 shows its traceback).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence

from tio_core.cli.output import StdoutFailed, StdoutGone, detach_stdout
from tio_core.cli.parsing import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, build_parser
from tio_core.errors import BackendConflict, BackendNotFound, ConfigError, TioError

USAGE_ERRORS = (ConfigError, BackendNotFound, BackendConflict)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside a run (a run handles it itself): stops the command as Ctrl-C does."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _error(message: str) -> None:
    try:
        sys.stderr.write(f"tio: {' '.join(message.split())}\n")
        sys.stderr.flush()
    except OSError:
        pass  # nowhere left to say it


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        try:
            sys.stdout.flush()  # what argparse printed (--help, --version)
        except BrokenPipeError:
            raise StdoutGone from None
        except OSError as exc:
            raise StdoutFailed(f"cannot write to standard output: {exc.strerror or exc}") from None
        return code
    except StdoutGone:
        detach_stdout()  # the reader went away (`| head`): nothing to report
        return EXIT_OK
    except StdoutFailed as exc:
        detach_stdout()
        _error(str(exc))
        return EXIT_RUNTIME


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already reported
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.command is None:
        _error("no command given; commands: forward, replay, record, info, backends, bench (see 'tio --help')")
        return EXIT_USAGE
    from tio_core.cli import commands

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return int(getattr(commands, f"cmd_{args.command}")(args))
    except USAGE_ERRORS as exc:
        _error(str(exc))
        return EXIT_USAGE
    except TioError as exc:
        _error(str(exc))
        return EXIT_RUNTIME
    except KeyboardInterrupt as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        _error(" ".join([f"interrupted by {name}", *getattr(exc, "__notes__", ())]))
        return EXIT_OK
    except (StdoutGone, StdoutFailed):
        raise
    except Exception as exc:
        if os.environ.get("TIO_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (TIO_DEBUG=1 shows the traceback)")
        return EXIT_RUNTIME
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
