"""The ``tio`` command. Exit codes: 0 ok, 1 runtime error, 2 usage/config error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tio_core import __version__
from tio_core.errors import ConfigError, TioError
from tio_core.registry import default_registry

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def cmd_backends(args: argparse.Namespace) -> int:
    registry = default_registry()
    specs = registry.available_backends()
    rows = [["NAME", "DESCRIPTION", "DISTRIBUTION", "VERSION"]]
    rows += [[s.name, s.description, s.distribution, s.version] for s in specs]
    print(_table(rows) if specs else "no backends installed")
    if args.verbose:
        for spec in specs:
            print(f"\n{spec.name} options:")
            for opt in spec.options.values():
                print(f"  {opt.name} ({opt.type_name}, default {opt.default!r}): {opt.help}")
    errors = registry.load_errors()
    if errors:
        print("\nload errors:")
        for error in errors:
            print(f"  {error.plugin} ({error.distribution}): {error.message}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tio", description="Fast userspace TUN I/O with kernel offloads.")
    parser.add_argument("--version", action="version", version=f"tio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    backends = commands.add_parser("backends", help="list installed backends and plugin load errors")
    backends.add_argument("-v", "--verbose", action="store_true", help="also list each backend's options")
    backends.set_defaults(func=cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"tio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TioError as exc:
        print(f"tio: {exc}", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
