"""The commands of ``tio``: forward, replay, record (moving packets), info, backends, bench."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tio_core.cli import files, plan, summary
from tio_core.cli.output import IntervalLines, Progress, emit, emit_json, figure_table, table
from tio_core.cli.parsing import EXIT_OK, EXIT_RUNTIME
from tio_core.cli.spec import parse_backend_spec, parse_options
from tio_core.contract import GSOProto, QueueSet, queue_capabilities, supports_gso
from tio_core.errors import BackendLoadError, ConfigError
from tio_core.plugin.api import ENTRY_POINT_GROUP
from tio_core.plugin.registry import BackendRegistry, BackendSpec, default_registry

if TYPE_CHECKING:
    from tio_core.forward.forwarder import ForwardStats

# -- forward, replay, record --------------------------------------------------------


def cmd_forward(args: argparse.Namespace) -> int:
    registry = default_registry()
    return run_plan(plan.forward_plan(args, registry), args, registry)


def cmd_replay(args: argparse.Namespace) -> int:
    registry = default_registry()
    return run_plan(plan.replay_plan(args, registry), args, registry)


def cmd_record(args: argparse.Namespace) -> int:
    registry = default_registry()
    return run_plan(plan.record_plan(args, registry), args, registry)


class LiveOutput:
    """What is shown while a run goes: the progress line (a terminal) and/or --stats interval lines."""

    def __init__(self, args: argparse.Namespace, source: QueueSet) -> None:
        self.intervals = IntervalLines(args.stats, args.json) if args.stats else None
        on_terminal = not args.quiet and not args.json and not args.stats and sys.stderr.isatty()
        self.progress = Progress(on_terminal, getattr(source, "expected_packets", None))

    def __call__(self, stats: ForwardStats) -> None:
        self.progress(stats)
        if self.intervals is not None:
            self.intervals(stats)

    def finish(self, stats: ForwardStats | None) -> None:
        self.progress.finish()
        if self.intervals is not None and stats is not None:
            self.intervals.finish(stats)


def _close(queue_sets: dict[str, QueueSet]) -> list[str]:
    """Close every set; a failure (an output that cannot be flushed) is reported, not raised."""
    errors = []
    for role, queue_set in queue_sets.items():
        try:
            queue_set.close()
        except Exception as exc:
            errors.append(f"closing the {role}: {exc}")
    return errors


@contextlib.contextmanager
def _said_when_interrupted(when: str) -> Iterator[None]:
    """A Ctrl-C or SIGTERM in this block is reported with ``when`` (opening a FIFO can wait for ever)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        exc.add_note(when)
        raise


def run_plan(run: plan.Plan, args: argparse.Namespace, registry: BackendRegistry) -> int:
    """Open both backends, forward until a stop rule, close them, print the summary."""
    from tio_core.forward.runner import RunOptions, run_forward

    files.check_no_overwrite([run.source, run.sink], registry)
    options = RunOptions(run.segment, run.coalesce, run.both_ways, run.limit, run.workers, run.duration)
    source_end = plan.with_queues(registry, run.source, run.workers)
    sink_end = plan.with_queues(registry, run.sink, run.workers)
    with _said_when_interrupted("before anything was read"):
        source = registry.open_backend(source_end.backend, **source_end.options)
        try:
            sink = registry.open_backend(sink_end.backend, **sink_end.options)
        except BaseException:
            source.close()
            raise
    live = LiveOutput(args, source)
    result = None
    try:
        result = run_forward(source, sink, options, live)
    finally:
        live.finish(result.stats if result is not None else None)
        close_errors = _close({"source": source, "sink": sink})
    errors = result.errors + close_errors
    output_stats = getattr(sink, "output_stats", None)  # a recording sink may say what reached its file
    sink_output = output_stats() if callable(output_stats) else None
    report = summary.build(run, result.stats, result.reverse, result.interrupted, errors, sink_output)
    if args.json:
        emit_json(report, one_line=bool(args.stats))
    elif not args.quiet:
        emit(summary.render(report))
    for error in errors:
        print(f"tio: {error}", file=sys.stderr)
    return EXIT_RUNTIME if errors else EXIT_OK


# -- info -------------------------------------------------------------------------


def _merge_options(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    for key, value in more.items():
        if isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + value
        else:
            into[key] = value
    return into


def backend_info(registry: BackendRegistry, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Open the backend, collect what it negotiated (typed), close it."""
    spec = registry.get(name)
    info: dict[str, Any] = {"backend": name, "distribution": spec.distribution, "version": spec.version}
    info["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    with registry.open_backend(name, **options) as queue_set:
        info["queues"] = []
        for index, queue in enumerate(queue_set.queues()):
            caps = queue_capabilities(queue)
            write_gso = {proto.name.lower(): supports_gso(queue, proto)[1] for proto in (GSOProto.TCP, GSOProto.UDP)}
            info["queues"].append({"index": index, "tso": caps.tso, "uso": caps.uso, "write_gso": write_gso})
        describe = getattr(queue_set, "describe", None)
        info["device"] = dict(describe()) if callable(describe) else {}
    return info


def _text_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key.endswith("mask"):
        return f"{value:#x}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def render_info(info: dict[str, Any]) -> str:
    rows = [["backend", f"{info['backend']} ({info['distribution']} {info['version']})".replace(" )", ")")]]
    rows += [[key.replace("_", " "), _text_value(key, value)] for key, value in info["device"].items()]
    queues = [["queue", "tso", "uso", "write_gso tcp", "write_gso udp"]]
    for q in info["queues"]:
        flags = [q["tso"], q["uso"], q["write_gso"]["tcp"], q["write_gso"]["udp"]]
        queues.append([str(q["index"]), *(_text_value("", flag) for flag in flags)])
    return table(rows) + "\n\n" + table(queues)


def cmd_info(args: argparse.Namespace) -> int:
    registry = default_registry()
    name, options = parse_backend_spec(args.backend, registry)
    _merge_options(options, parse_options(name, args.options, registry.get(name).options))
    info = backend_info(registry, name, options)
    if args.json:
        emit_json(info)
    else:
        emit(render_info(info))
    return EXIT_OK


# -- backends ---------------------------------------------------------------------


def _origin(spec: BackendSpec) -> dict[str, str | None]:
    """Where a backend comes from: its entry point, the plugin module's file, its factory."""
    if spec.entry_point:
        entry_point: str | None = f"{ENTRY_POINT_GROUP}: {spec.entry_point}"
    else:
        entry_point = "built in" if spec.distribution == "tio-core" else None
    factory = spec.factory if isinstance(spec.factory, str) else _qualname(spec.factory)
    return {"entry_point": entry_point, "module_file": spec.module_file or None, "factory": factory}


def _qualname(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"


def _json_default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def backends_listing(registry: BackendRegistry) -> dict[str, Any]:
    backends = []
    for spec in registry.available_backends():
        options = [
            {
                "name": opt.name,
                "type": opt.type_name,
                "default": _json_default(opt.default),
                "required": opt.required,
                "choices": list(opt.choices),
                "role": opt.role or None,
                "help": opt.help,
            }
            for opt in spec.options.values()
        ]
        backends.append(
            {
                "name": spec.name,
                "description": spec.description,
                "distribution": spec.distribution,
                "version": spec.version,
                **_origin(spec),
                "options": options,
            }
        )
    errors = [
        {
            "plugin": e.plugin,
            "distribution": e.distribution,
            "version": e.version,
            "entry_point": e.entry_point or None,
            "module_file": e.module_file or None,
            "message": e.message,
        }
        for e in registry.load_errors()
    ]
    return {"autoload": registry.autoload, "backends": backends, "load_errors": errors}


AUTOLOAD_OFF = "plugin autoload is off (TIO_DISABLE_PLUGIN_AUTOLOAD is set): no installed plugin was loaded"


def render_backends(listing: dict[str, Any], verbose: bool) -> str:
    lines = []
    if not listing["autoload"]:
        lines.append(AUTOLOAD_OFF)
    if listing["backends"]:
        rows = [["NAME", "DESCRIPTION", "DISTRIBUTION", "VERSION"]]
        rows += [[b["name"], b["description"], b["distribution"], b["version"]] for b in listing["backends"]]
        lines.append(table(rows))
    elif listing["autoload"]:
        lines.append("no backends installed")
    if verbose:
        for b in listing["backends"]:
            lines.append(f"\n{b['name']}")
            lines.append(f"  entry point  {b['entry_point'] or 'registered at run time'}")
            lines.append(f"  module file  {b['module_file'] or '-'}")
            lines.append(f"  factory      {b['factory']}")
            lines.append("  options:")
            for opt in b["options"]:
                role = f", {opt['role']}" if opt["role"] else ""
                choices = f", one of {', '.join(map(str, opt['choices']))}" if opt["choices"] else ""
                lines.append(
                    f"    {opt['name']} ({opt['type']}, default {opt['default']!r}{choices}{role}): {opt['help']}"
                )
    if listing["load_errors"]:
        lines.append("\nload errors:")
        for e in listing["load_errors"]:
            lines.append(f"  {e['plugin']} ({e['distribution']}): {e['message']}")
            if verbose and e["module_file"]:
                lines.append(f"    module file  {e['module_file']}")
    return "\n".join(lines)


def cmd_backends(args: argparse.Namespace) -> int:
    """Exit 1 when a plugin failed to load: scripts can tell a broken installation."""
    listing = backends_listing(default_registry())
    if args.json:
        emit_json(listing)
    else:
        emit(render_backends(listing, args.verbose))
    return EXIT_RUNTIME if listing["load_errors"] else EXIT_OK


# -- bench ------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmarks; the chart's target and matplotlib are checked before anything runs."""
    registry = default_registry()
    benches = registry.benchmarks()
    known = {bench.name for bench, _ in benches}
    unknown = set(args.only or ()) - known
    if unknown:
        raise ConfigError(f"unknown benchmark {', '.join(sorted(unknown))}; available: {', '.join(sorted(known))}")
    if args.plot:
        from tio_core.bench.chart import check_plot_target

        check_plot_target(args.plot)
    by_area: dict[str, list[Any]] = {}
    notes, failed = [], False
    for bench, dist in benches:
        if args.only and bench.name not in args.only:
            continue
        if bench.needs_root and os.geteuid() != 0:
            notes.append(f"skipped {bench.name} ({dist}): needs root")
            continue
        if not args.quiet:
            print(f"running {bench.name}: {bench.description} ...", file=sys.stderr)
        try:
            by_area.setdefault(bench.name, []).extend(bench.run(quick=args.quick))
        except BackendLoadError as exc:  # contained by BenchmarkDef.run: one failing benchmark hides no other
            failed = True
            notes.append(f"{bench.name} ({dist}): {exc}")
    _report_bench(args, by_area, notes)
    return EXIT_RUNTIME if failed else EXIT_OK


def _report_bench(args: argparse.Namespace, by_area: dict[str, list[Any]], notes: list[str]) -> None:
    from tio_core.bench.chart import figures_to_json, render_chart, run_meta

    meta = run_meta(args.quick)
    if args.plot:
        render_chart(by_area, args.plot, title_meta=meta)
    if args.json:
        document = figures_to_json(by_area, meta)
        document["notes"] = notes
        emit_json(document)
        return
    emit(figure_table([f for figures in by_area.values() for f in figures]))
    for note in notes:
        emit(note)
    if args.plot:
        emit(f"chart written to {args.plot}")
