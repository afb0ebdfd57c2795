"""The ``tio`` command.

Exit codes: 0 ok (also a clean stop by Ctrl-C), 1 runtime error, 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from tio_core import __version__
from tio_core.contract import GSOProto, QueueSet, queue_capabilities, supports_gso
from tio_core.errors import BackendConflict, BackendNotFound, ConfigError, TioError
from tio_core.plugin.config import backend_selection, load_config
from tio_core.plugin.registry import BackendRegistry, default_registry

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2

DEMO_CAPTURE = "demo.pcap"
DEMO_MTU = 1500  # the demo capture was taken on a TUN with this MTU


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


# -- backend specs: NAME[:key=value,key=value] ---------------------------------


def parse_backend_spec(text: str, registry: BackendRegistry) -> tuple[str, dict[str, Any]]:
    """Parse ``NAME:key=value,...``; a list option takes its key repeatedly."""
    name, _, rest = text.partition(":")
    if not name:
        raise ConfigError(f"backend spec {text!r} has no backend name (expected NAME:key=value,...)")
    declared = registry.get(name).options
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"backend {name!r}: {item!r} is not key=value")
        option = declared.get(key)
        if option is None:
            options[key] = value  # validation names the unknown option
        elif option.type is list:
            options.setdefault(key, []).append(option.parse_text(value, name))
        else:
            options[key] = option.parse_text(value, name)
    return name, options


def _demo_capture_path() -> str:
    return str(resources.files("tio_core") / "data" / DEMO_CAPTURE)


# -- forward --------------------------------------------------------------------


class Progress:
    """One status line on stderr, refreshed in place (only on a terminal)."""

    def __init__(self, enabled: bool, total: int | None = None) -> None:
        self.enabled = enabled
        self.total = total
        self.started = time.perf_counter()
        self._shown = False

    def __call__(self, stats) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        line = (
            f"{stats.packets_read} packets  {stats.bytes_read / 1e6:.1f} MB in  "
            f"{stats.packets_written} out  {stats.bytes_written * 8 / elapsed / 1e9:.2f} Gbit/s"
        )
        if self.total:
            done = min(stats.packets_read / self.total, 1.0)
            line = f"[{'#' * int(done * 20):<20}] {done:4.0%}  " + line
        sys.stderr.write("\r" + line + "\x1b[K")
        sys.stderr.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            sys.stderr.write("\n")


def _format_summary(summary: Mapping[str, Any]) -> str:
    lines = [
        f"read      {summary['packets_read']} packets, {summary['bytes_read']} bytes "
        f"({summary['superpackets_segmented']} superpackets -> {summary['segments_from_superpackets']} segments)",
        f"written   {summary['packets_written']} packets, {summary['bytes_written']} bytes: "
        f"{summary['gso_writes']} GSO writes ({summary['segments_per_gso_write']} segments/write), "
        f"{summary['verbatim_writes']} verbatim writes",
        f"dropped   {summary['dropped']}" + "".join(f"\n  {n:>7}  {r}" for r, n in summary["drops"].items()),
        f"elapsed   {summary['elapsed_s']} s, {summary['gbit_per_s']} Gbit/s",
    ]
    if summary.get("interrupted"):
        lines.append("stopped   by interrupt")
    return "\n".join(lines)


def _open(registry: BackendRegistry, name: str, options: dict[str, Any]) -> QueueSet:
    return registry.open_backend(name, **options)


def _forward_plan(args: argparse.Namespace, registry: BackendRegistry) -> dict[str, Any]:
    """Source, sink and run options from --config, --from/--to, or the embedded default."""
    plan: dict[str, Any] = {"segment": True, "coalesce": True, "both_ways": False}
    if args.config:
        config = load_config(args.config)
        plan["source"] = backend_selection(config, "forward.from")
        plan["sink"] = backend_selection(config, "forward.to")
        table = config.get("forward", {})
        unknown = set(table) - {"from", "to", "segment", "coalesce", "both_ways", "workers"}
        if unknown:
            raise ConfigError(f"[forward] has unknown keys: {', '.join(sorted(unknown))}")
        for key in ("segment", "coalesce", "both_ways"):
            if key in table:
                if not isinstance(table[key], bool):
                    raise ConfigError(f"[forward] {key} must be true or false")
                plan[key] = table[key]
        if "workers" in table:
            if not isinstance(table["workers"], int) or isinstance(table["workers"], bool):
                raise ConfigError("[forward] workers must be an integer")
            plan["workers"] = table["workers"]
    if args.source:
        plan["source"] = parse_backend_spec(args.source, registry)
    if args.sink:
        plan["sink"] = parse_backend_spec(args.sink, registry)
    if "source" not in plan and "sink" not in plan:
        plan["source"] = ("pcap", {"path": _demo_capture_path(), "gso_mtu": DEMO_MTU})
        plan["sink"] = ("fake", {})
    if "source" not in plan or "sink" not in plan:
        raise ConfigError("forward needs both a source (--from) and a sink (--to)")
    for key in ("segment", "coalesce", "both_ways"):
        if getattr(args, key) is not None:
            plan[key] = getattr(args, key)
    if args.workers is not None:
        plan["workers"] = args.workers
    return plan


def _with_queues(registry: BackendRegistry, selection: tuple[str, dict], workers: int) -> tuple[str, dict]:
    """Ask a multiqueue-capable backend for one queue per worker."""
    name, options = selection
    if workers > 1 and "queues" in registry.get(name).options and "queues" not in options:
        options = {**options, "queues": workers}
    return name, options


def cmd_forward(args: argparse.Namespace) -> int:
    registry = default_registry()
    return _execute(args, registry, _forward_plan(args, registry))


def cmd_replay(args: argparse.Namespace) -> int:
    """forward from the pcap backend replaying CAPTURE."""
    registry = default_registry()
    options: dict[str, Any] = {"path": args.capture}
    if args.speed is not None and args.pps is not None:
        raise ConfigError("choose one pacing: --speed or --pps")
    if args.speed is not None:
        options.update(pacing="realtime", speed=args.speed)
    if args.pps is not None:
        options.update(pacing="rate", rate=args.pps)
    for key in ("loop", "gso_mtu"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    plan = {
        "source": ("pcap", options),
        "sink": parse_backend_spec(args.sink, registry),
        "segment": not args.no_segment,
        "coalesce": not args.no_coalesce,
        "both_ways": False,
    }
    return _execute(args, registry, plan)


def cmd_record(args: argparse.Namespace) -> int:
    """forward into the pcap backend recording to OUTPUT."""
    registry = default_registry()
    sink_options = {"output": args.output, "record_gso": "superpacket" if args.superpackets else "segmented"}
    plan = {
        "source": parse_backend_spec(args.source, registry),
        "sink": ("pcap", sink_options),
        "segment": not args.superpackets,
        "coalesce": True,
        "both_ways": False,
    }
    return _execute(args, registry, plan)


def _execute(args: argparse.Namespace, registry: BackendRegistry, plan: dict[str, Any]) -> int:
    from tio_core.forward.runner import RunOptions, run_forward

    workers = plan.get("workers", 1)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    options = RunOptions(plan["segment"], plan["coalesce"], plan["both_ways"], args.limit, workers)
    source_name, source_options = _with_queues(registry, plan["source"], workers)
    sink_name, sink_options = _with_queues(registry, plan["sink"], workers)
    source = _open(registry, source_name, source_options)
    try:
        sink = _open(registry, sink_name, sink_options)
    except BaseException:
        source.close()
        raise
    show = not args.quiet and not args.json and sys.stderr.isatty()
    progress = Progress(show, getattr(source, "expected_packets", None))
    try:
        result = run_forward(source, sink, options, progress)
    finally:
        progress.finish()
        for queue_set in (source, sink):
            queue_set.close()
    summary = result.stats.as_dict()
    summary.update(
        source=source_name, sink=sink_name, workers=workers, interrupted=result.interrupted, errors=result.errors
    )
    if result.reverse is not None:
        summary["reverse"] = result.reverse.as_dict()
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        print(_format_summary(summary))
        if result.reverse is not None:
            print("reverse direction:\n" + _format_summary(summary["reverse"]))
    for error in result.errors:
        print(f"tio: {error}", file=sys.stderr)
    return EXIT_RUNTIME if result.errors else EXIT_OK


# -- info, backends, bench ----------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    registry = default_registry()
    spec_text = args.backend + ("" if ":" in args.backend else ":") + ",".join(args.options)
    name, options = parse_backend_spec(spec_text, registry)
    spec = registry.get(name)
    with _open(registry, name, options) as queue_set:
        queues = queue_set.queues()
        info: dict[str, Any] = {
            "backend": name,
            "distribution": f"{spec.distribution} {spec.version}".strip(),
            "queues": len(queues),
        }
        describe = getattr(queue_set, "describe", None)
        if callable(describe):
            info.update(describe())
        for index, queue in enumerate(queues):
            caps = queue_capabilities(queue)
            info[f"queue {index}"] = (
                f"tso={caps.tso} uso={caps.uso} "
                f"write_gso tcp={supports_gso(queue, GSOProto.TCP)[1]} udp={supports_gso(queue, GSOProto.UDP)[1]}"
            )
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(_table([[str(k), str(v)] for k, v in info.items()]))
    return EXIT_OK


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


def cmd_bench(args: argparse.Namespace) -> int:
    import os

    from tio_core.bench import format_table

    registry = default_registry()
    benches = registry.benchmarks()
    known = {bench.name for bench, _ in benches}
    unknown = set(args.only or ()) - known
    if unknown:
        raise ConfigError(f"unknown benchmark {', '.join(sorted(unknown))}; available: {', '.join(sorted(known))}")
    figures, notes = [], []
    for bench, dist in benches:
        if args.only and bench.name not in args.only:
            continue
        if bench.needs_root and os.geteuid() != 0:
            notes.append(f"skipped {bench.name} ({dist}): needs root")
            continue
        if not args.quiet:
            print(f"running {bench.name}: {bench.description} ...", file=sys.stderr)
        try:
            figures += bench.load_runner()(quick=args.quick)
        except Exception as exc:  # one failing benchmark does not hide the others
            notes.append(f"{bench.name} ({dist}) failed: {type(exc).__name__}: {exc}")
    print(format_table(figures))
    for note in notes:
        print(note)
    if args.plot:
        _plot(figures, args.plot)
        print(f"plot written to {args.plot}")
    return EXIT_RUNTIME if any("failed" in n for n in notes) else EXIT_OK


def _plot(figures, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'tio-core[plot]'") from None
    compared = [f for f in figures if f.ratio is not None]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(compared) + 1.5))
    ax.barh([f.name for f in compared], [f.ratio for f in compared], color="tab:blue")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("ratio to the baseline measured in the same run")
    for bar, f in zip(ax.patches, compared):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {f.value:.3g} {f.unit} vs {f.baseline_name}",
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- parser -------------------------------------------------------------------------


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="stop after reading this many packets")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line and no summary")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tio",
        description="Fast userspace TUN I/O with kernel offloads.",
        epilog="exit codes: 0 ok (Ctrl-C stops cleanly), 1 runtime error, 2 usage or config error",
    )
    parser.add_argument("--version", action="version", version=f"tio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    forward = commands.add_parser(
        "forward",
        help="move packets from a source backend to a sink backend (no arguments: the embedded demo)",
        description="read -> segment superpackets -> coalesce onto the sink's offloads -> write. "
        "Backends come from --config or --from/--to NAME:key=value,...; with neither, the embedded "
        "demo capture is replayed through the pcap backend into the fake backend.",
    )
    forward.add_argument("--config", help="TOML file with [forward.from] and [forward.to] tables")
    forward.add_argument("--from", dest="source", metavar="SPEC", help="source backend, NAME:key=value,...")
    forward.add_argument("--to", dest="sink", metavar="SPEC", help="sink backend, NAME:key=value,...")
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
        "--both-ways",
        dest="both_ways",
        action="store_true",
        default=None,
        help="also forward sink -> source (bridging two live devices)",
    )
    forward.add_argument("--workers", type=int, help="one process per queue (multiqueue backends)")
    _add_run_flags(forward)
    forward.set_defaults(func=cmd_forward)

    replay = commands.add_parser("replay", help="replay a capture into a backend")
    replay.add_argument("capture", help="pcap or pcapng file")
    replay.add_argument("--to", dest="sink", metavar="SPEC", required=True, help="sink backend, NAME:key=value,...")
    replay.add_argument("--speed", type=float, help="real-time pacing from the timestamps, times this factor")
    replay.add_argument("--pps", type=float, help="fixed rate in packets per second")
    replay.add_argument("--loop", type=int, help="replay the capture this many times (0: endlessly)")
    replay.add_argument(
        "--gso-mtu", dest="gso_mtu", type=int, help="treat TCP/UDP packets above this MTU as TSO/USO superpackets"
    )
    replay.add_argument("--no-segment", action="store_true", help="write superpackets with write_gso as they are")
    replay.add_argument("--no-coalesce", action="store_true", help="write every packet on its own")
    _add_run_flags(replay)
    replay.set_defaults(func=cmd_replay, workers=None)

    record = commands.add_parser("record", help="record a backend's inbound packets to a capture")
    record.add_argument("--from", dest="source", metavar="SPEC", required=True, help="source backend")
    record.add_argument("output", help="pcap file to write")
    record.add_argument("--superpackets", action="store_true", help="record superpackets unsegmented")
    _add_run_flags(record)
    record.set_defaults(func=cmd_record, workers=None)

    info = commands.add_parser("info", help="open a backend and show what was negotiated")
    info.add_argument("backend", metavar="BACKEND", help="NAME or NAME:key=value,...")
    info.add_argument("options", nargs="*", metavar="KEY=VALUE", help="backend options")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    backends = commands.add_parser("backends", help="list installed backends and plugin load errors")
    backends.add_argument("-v", "--verbose", action="store_true", help="also list each backend's options")
    backends.set_defaults(func=cmd_backends)

    bench = commands.add_parser("bench", help="run the benchmarks: each figure beside its same-run baseline")
    bench.add_argument("--quick", action="store_true", help="short runs (a few seconds each)")
    bench.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    bench.add_argument("--plot", metavar="FILE.png", help="draw the ratios as a bar chart (needs matplotlib)")
    bench.add_argument("--quiet", "-q", action="store_true")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except (ConfigError, BackendNotFound, BackendConflict) as exc:
        print(f"tio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TioError as exc:
        print(f"tio: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("tio: interrupted", file=sys.stderr)
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
