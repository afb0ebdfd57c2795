"""The argument parser of ``tio``: one builder per command, checked values, help with an example each.

Numbers are checked here, where argparse can still name the flag, so an
absurd value (``--speed 1e-320``, ``--pps nan``) is a usage error before
anything runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from tio_core import __version__
from tio_core.cli.spec import SPEC_SYNTAX

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
EXIT_CODES = (
    "exit codes: 0 ok (a Ctrl-C stop included), 1 runtime error (and for `tio backends`: a plugin failed "
    "to load), 2 usage or configuration error"
)
DEFAULT_PACING = "as fast as possible (no pacing)"


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors and help text computed only when asked for.

    extra_help is called when --help is shown (it may load the plugins, which
    `tio --version` and a normal run of another command never pay for).
    """

    def __init__(self, *args: Any, extra_help: Callable[[], str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.extra_help = extra_help

    def format_help(self) -> str:
        text = super().format_help()
        return text + "\n" + self.extra_help() + "\n" if self.extra_help else text

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("tio").strip()
        where = f"{command}: " if command else ""
        sys.stderr.write(f"tio: {where}{message} (see 'tio {command + ' ' if command else ''}--help')\n")
        sys.exit(EXIT_USAGE)


def number(low: float, high: float, kind: type = float, what: str = "") -> Callable[[str], Any]:
    """An argparse type: a finite int or float within [low, high]; ``what`` names the value in the message."""
    rule = f"{what + ' ' if what else ''}must be {'an integer' if kind is int else 'a number'}"

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or (kind is float and not math.isfinite(value)) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{rule} within {low:g}..{high:g}, got {text!r}")
        return value

    return convert


SPEED = number(1e-6, 1e6, what="speed")
PPS = number(1e-3, 1e9, what="rate")
MBPS = number(1e-3, 1e6, what="bit rate")
SECONDS = number(1e-3, 1e7)
STATS_SECONDS = number(0.1, 86400)
LOOP_DELAY = number(0, 86400)
LOOPS = number(0, 10**9, int)
LIMIT = number(1, 2**63 - 1, int)
WORKERS = number(-(2**31), 2**31, int)  # the plan names the allowed range in its message
GSO_MTU = number(0, 2**31, int)  # the pcap backend checks the range of the MTU


def _installed_backends() -> str:
    from tio_core.plugin.registry import default_registry

    names = [spec.name for spec in default_registry().available_backends()]
    return f"installed backends: {', '.join(names) or 'none'} (`tio backends -v` lists their options)"


def _installed_benchmarks() -> str:
    from tio_core.plugin.registry import default_registry

    names = sorted({bench.name for bench, _ in default_registry().benchmarks()})
    return f"benchmarks (--only): {', '.join(names) or 'none installed'}"


def _add_command(
    commands: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    example: str,
    extra_help: Callable[[], str] | None = None,
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with one example (and extra_help's text, computed when shown)."""
    epilog = f"example:\n  {example}"
    return commands.add_parser(name, help=summary, description=description, epilog=epilog, extra_help=extra_help)


def _add_backend_command(
    commands: argparse._SubParsersAction, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand that opens backends: its --help gives the SPEC syntax and lists the installed backends."""
    return _add_command(commands, name, summary, f"{description}\nSPEC: {SPEC_SYNTAX}", example, _installed_backends)


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Stop rules and output of every moving command (forward, replay, record)."""
    parser.add_argument("--limit", type=LIMIT, metavar="N", help="stop after reading N packets")
    parser.add_argument("--duration", type=SECONDS, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument(
        "--stats", type=STATS_SECONDS, metavar="SECONDS", help="print a line every SECONDS (JSON lines with --json)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line and no summary")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(workers=None)  # one worker where the command has no --workers; forward's default too


def _add_forward(commands: argparse._SubParsersAction) -> None:
    forward = _add_backend_command(
        commands,
        "forward",
        "move packets from a source backend to a sink backend (no arguments: the embedded demo)",
        "read -> segment superpackets -> coalesce onto the sink's offloads -> write. "
        "Backends come from --config or --from/--to SPEC; with neither, the embedded demo capture is "
        "replayed through the pcap backend (gso_mtu=1500) into the fake backend.",
        "tio forward --from linux:name=tio0 --to linux:name=tio1 --both-ways --stats 1",
    )
    forward.add_argument("--config", metavar="FILE", help="TOML file with [forward.from] and [forward.to] tables")
    forward.add_argument("--from", dest="source", metavar="SPEC", help="source backend")
    forward.add_argument("--to", dest="sink", metavar="SPEC", help="sink backend")
    forward.add_argument(
        "--no-segment",
        dest="segment",
        action="store_false",
        default=None,
        help="pass superpackets to the sink's write_gso instead of segmenting",
    )
    forward.add_argument(
        "--no-coalesce", dest="coalesce", action="store_false", default=None, help="write every packet on its own"
    )
    forward.add_argument(
        "--both-ways", dest="both_ways", action="store_true", default=None, help="also forward sink -> source"
    )
    forward.add_argument("--workers", type=WORKERS, metavar="N", help="one process per queue (multiqueue backends)")
    _add_run_flags(forward)


def _add_replay(commands: argparse._SubParsersAction) -> None:
    replay = _add_backend_command(
        commands,
        "replay",
        "replay a capture into a backend",
        "Replay a pcap/pcapng capture through the pcap backend into a sink backend.\n"
        f"Pacing (choose one; default {DEFAULT_PACING}): --speed X, --pps N or --mbps N.\n"
        "A capture holds no offload metadata: --gso-mtu MTU reads longer TCP/UDP packets as superpackets.",
        "tio replay capture.pcap --to linux:name=tio0,up=true --mbps 100 --loop 3 --loop-delay 1",
    )
    replay.add_argument("capture", help="pcap or pcapng file")
    replay.add_argument("--to", dest="sink", metavar="SPEC", required=True, help="sink backend")
    replay.add_argument("--speed", type=SPEED, metavar="X", help="real time from the timestamps, X times faster")
    replay.add_argument("--pps", type=PPS, metavar="N", help="N packets per second")
    replay.add_argument("--mbps", type=MBPS, metavar="N", help="N megabits per second of captured IP bytes")
    replay.add_argument("--loop", type=LOOPS, metavar="N", help="replay the capture N times (0: endlessly)")
    replay.add_argument("--loop-delay", type=LOOP_DELAY, metavar="SECONDS", help="pause between two passes")
    replay.add_argument(
        "--gso-mtu", type=GSO_MTU, metavar="MTU", help="TCP/UDP packets above this MTU become TSO/USO superpackets"
    )
    replay.add_argument("--no-segment", action="store_true", help="write superpackets with write_gso as they are")
    replay.add_argument("--no-coalesce", action="store_true", help="write every packet on its own")
    _add_run_flags(replay)


def _add_record(commands: argparse._SubParsersAction) -> None:
    record = _add_backend_command(
        commands,
        "record",
        "record a backend's inbound packets to a capture",
        "Record what a source backend reads into a capture file (pcap; pcapng by extension).",
        "tio record --from linux:name=tio0 out.pcapng --duration 10",
    )
    record.add_argument("--from", dest="source", metavar="SPEC", required=True, help="source backend")
    record.add_argument("output", help="capture file to write")
    record.add_argument("--superpackets", action="store_true", help="record superpackets unsegmented")
    _add_run_flags(record)


def _add_info(commands: argparse._SubParsersAction) -> None:
    info = _add_backend_command(
        commands,
        "info",
        "open a backend and show what was negotiated",
        "Open a backend, show its queues (TSO/USO, write_gso per protocol) and what the backend "
        "describes (vnet header, MTU, ...), and close it.",
        "tio info linux:name=tio0 mtu=9000 --json",
    )
    info.add_argument("backend", metavar="SPEC", help="NAME or NAME:key=value,...")
    info.add_argument("options", nargs="*", metavar="KEY=VALUE", help="more options, one per argument (no quoting)")
    info.add_argument("--json", action="store_true", help="print one JSON object with typed fields")


def _add_backends(commands: argparse._SubParsersAction) -> None:
    backends = _add_command(
        commands,
        "backends",
        "list installed backends and plugin load errors",
        "List the installed backends. Exits 1 when a plugin failed to load (the listing and the "
        "load errors are printed all the same). TIO_DISABLE_PLUGIN_AUTOLOAD=1 turns plugin loading off; "
        "TIO_PLUGINS=name,... loads only those.",
        "tio backends -v",
    )
    backends.add_argument(
        "-v", "--verbose", action="store_true", help="also each backend's options, entry point and module file"
    )
    backends.add_argument("--json", action="store_true", help="print one JSON object with typed fields")


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = _add_command(
        commands,
        "bench",
        "run the benchmarks: each figure beside its same-run baseline",
        "Run the benchmarks of tio and its plugins; every figure is printed beside a baseline "
        "measured in the same run, with the ratio.",
        "tio bench --quick --only kernels --plot bench.png",
        _installed_benchmarks,
    )
    bench.add_argument("--quick", action="store_true", help="short runs (a few seconds each)")
    bench.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    bench.add_argument(
        "--plot", metavar="FILE", help="draw the ratios as a chart, PNG or SVG by extension (needs matplotlib)"
    )
    bench.add_argument("--json", action="store_true", help="print the figures and the run's machine as JSON")
    bench.add_argument("--quiet", "-q", action="store_true", help="no progress messages")


def build_parser() -> argparse.ArgumentParser:
    """The parser; ``command`` in the result names the command (tio_core.cli.commands runs it)."""
    parser = Parser(prog="tio", description="Fast userspace TUN I/O with kernel offloads.", epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"tio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_forward(commands)
    _add_replay(commands)
    _add_record(commands)
    _add_info(commands)
    _add_backends(commands)
    _add_bench(commands)
    return parser
