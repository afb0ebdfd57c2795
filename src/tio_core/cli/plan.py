"""What a moving command (forward, replay, record) will run: backends, options, pacing, stop rules.

The plan is complete before anything is opened, so every usage error is
found while nothing has been touched.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from tio_core.cli.spec import parse_backend_spec
from tio_core.errors import ConfigError
from tio_core.plugin.config import backend_selection, load_config
from tio_core.plugin.registry import BackendRegistry

DEMO_CAPTURE = "demo.pcap"
DEMO_MTU = 1500  # the demo capture was taken on a TUN with this MTU
MAX_WORKERS = 256  # the most queues a Linux TUN can have (MAX_TAP_QUEUES)
FORWARD_KEYS = ("from", "to", "segment", "coalesce", "both_ways", "workers")


@dataclass
class Endpoint:
    """One side of a run: a backend and the options it is opened with."""

    backend: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    command: str
    source: Endpoint
    sink: Endpoint
    segment: bool = True
    coalesce: bool = True
    both_ways: bool = False
    workers: int = 1
    limit: int | None = None  # packets read, counted by the runner
    duration: float | None = None  # seconds, then a clean stop


def demo_capture_path() -> str:
    return str(resources.files("tio_core") / "data" / DEMO_CAPTURE)


def forward_plan(args: argparse.Namespace, registry: BackendRegistry) -> Plan:
    """Source, sink and run options from --config, --from/--to, or the embedded demo."""
    settings: dict[str, Any] = {}
    source = sink = None
    if args.config:
        config = load_config(args.config)
        settings = _forward_table(config)
        source = Endpoint(*backend_selection(config, "forward.from"))
        sink = Endpoint(*backend_selection(config, "forward.to"))
    if args.source:
        source = Endpoint(*parse_backend_spec(args.source, registry))
    if args.sink:
        sink = Endpoint(*parse_backend_spec(args.sink, registry))
    if source is None and sink is None:
        source = Endpoint("pcap", {"path": demo_capture_path(), "gso_mtu": DEMO_MTU})
        sink = Endpoint("fake")
    if source is None or sink is None:
        raise ConfigError("forward needs both a source (--from) and a sink (--to)")
    for key in ("segment", "coalesce", "both_ways", "workers"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return _finish(Plan("forward", source, sink, **settings), args)


def _forward_table(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings of a config's [forward] table, checked."""
    table = config.get("forward", {})
    if not isinstance(table, Mapping):
        raise ConfigError("forward must be a table ([forward])")
    unknown = sorted(set(table) - set(FORWARD_KEYS))
    if unknown:
        raise ConfigError(f"[forward] has unknown keys: {', '.join(map(str, unknown))}")
    settings: dict[str, Any] = {}
    for key in ("segment", "coalesce", "both_ways"):
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"[forward] {key} must be true or false")
            settings[key] = table[key]
    if "workers" in table:
        if not isinstance(table["workers"], int) or isinstance(table["workers"], bool):
            raise ConfigError("[forward] workers must be an integer")
        settings["workers"] = table["workers"]
    return settings


def replay_plan(args: argparse.Namespace, registry: BackendRegistry) -> Plan:
    """forward from the pcap backend replaying CAPTURE, paced as asked."""
    options: dict[str, Any] = {"path": args.capture, **pacing_options(args)}
    for key in ("loop", "loop_delay", "gso_mtu", "limit"):  # the pcap backend implements these
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.loop_delay is not None and args.loop is None:
        raise ConfigError("--loop-delay needs --loop N (the delay is between passes)")
    sink = Endpoint(*parse_backend_spec(args.sink, registry))
    plan = Plan("replay", Endpoint("pcap", options), sink, not args.no_segment, not args.no_coalesce)
    return _finish(plan, args)


def pacing_options(args: argparse.Namespace) -> dict[str, Any]:
    """The pcap backend's pacing for --speed, --pps or --mbps (default: as fast as possible)."""
    given = [(flag, value) for flag, value in (("--speed", args.speed), ("--pps", args.pps), ("--mbps", args.mbps))]
    chosen = [(flag, value) for flag, value in given if value is not None]
    if len(chosen) > 1:
        raise ConfigError(f"choose one pacing: --speed, --pps or --mbps (got {' and '.join(f for f, _ in chosen)})")
    if not chosen:
        return {}
    flag, value = chosen[0]
    return {
        "--speed": {"pacing": "realtime", "speed": value},
        "--pps": {"pacing": "rate", "rate": value},
        "--mbps": {"pacing": "bitrate", "mbps": value},
    }[flag]


def record_plan(args: argparse.Namespace, registry: BackendRegistry) -> Plan:
    """forward into the pcap backend recording to OUTPUT."""
    sink = Endpoint("pcap", {"output": args.output, "record_gso": "superpacket" if args.superpackets else "segmented"})
    source = Endpoint(*parse_backend_spec(args.source, registry))
    return _finish(Plan("record", source, sink, segment=not args.superpackets), args)


def _finish(plan: Plan, args: argparse.Namespace) -> Plan:
    """The stop rules shared by every moving command, and the worker count checked."""
    if not isinstance(plan.workers, int) or not 1 <= plan.workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be at least 1 and at most {MAX_WORKERS}, got {plan.workers}")
    plan.limit = args.limit
    plan.duration = args.duration
    return plan


def with_queues(registry: BackendRegistry, endpoint: Endpoint, workers: int) -> Endpoint:
    """Ask a multiqueue-capable backend for one queue per worker."""
    if workers > 1 and "queues" in registry.get(endpoint.backend).options and "queues" not in endpoint.options:
        return Endpoint(endpoint.backend, {**endpoint.options, "queues": workers})
    return endpoint
