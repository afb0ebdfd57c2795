"""The summary of a moving command (forward, replay, record): its fields, their arithmetic, its text.

Numbers are kept as numbers (the JSON summary is this dict); the text is
rendered from the same dict, so both always say the same thing. Rates are
over the active time, from the first packet read to the last one written,
so idle time before traffic starts does not dilute them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tio_core.cli.output import quantity, table
from tio_core.cli.plan import Endpoint, Plan
from tio_core.cli.spec import format_spec

if TYPE_CHECKING:
    from tio_core.forward.forwarder import ForwardStats

# Source options under which superpackets are inferred from a capture (it holds no offload metadata).
INFERENCE_OPTIONS = ("gso_mtu", "mss")
MALFORMED_SUPERPACKET = "malformed superpacket"


def direction(stats: ForwardStats) -> dict[str, Any]:
    """The counters of one direction, with what follows from them."""
    malformed = sum(n for reason, n in stats.drops.items() if reason.startswith(MALFORMED_SUPERPACKET))
    active = stats.active
    return {
        "packets_read": stats.packets_read,
        "bytes_read": stats.bytes_read,
        "wire_packets_in": stats.wire_packets_in,
        "superpackets": {
            "read": stats.superpackets,
            "segmented": stats.superpackets - stats.superpackets_passed - malformed,
            "passed_through": stats.superpackets_passed,
            "malformed": malformed,
            "wire_packets": stats.segments_from_superpackets,
        },
        "packets_written": stats.packets_written,
        "bytes_written": stats.bytes_written,
        "gso_writes": stats.gso_writes,
        "segments_per_gso_write": round(stats.gso_segments / stats.gso_writes, 2) if stats.gso_writes else 0.0,
        "verbatim_writes": stats.verbatim_writes,
        "dropped": stats.dropped,
        "drops": dict(stats.drops),
        "active_s": round(active, 6),
        "elapsed_s": round(stats.elapsed, 6),
        "packets_per_s": round(stats.packets_written / active, 1) if active > 0 else 0.0,
        "gbit_per_s": round(stats.bytes_written * 8 / active / 1e9, 6) if active > 0 else 0.0,
    }


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in endpoint.options.items()}
    return {"backend": endpoint.backend, "options": options}


def build(
    plan: Plan,
    stats: ForwardStats,
    reverse: ForwardStats | None,
    interrupted: bool,
    errors: list[str],
    sink_output: Any = None,
) -> dict[str, Any]:
    """The whole summary of a run, as the JSON output prints it.

    sink_output: what the sink reports of the file it recorded, if it does
    (the pcap backend's output_stats(): records_written, packets_lost).
    """
    summary: dict[str, Any] = {
        "type": "summary",
        "command": plan.command,
        "source": plan.source.backend,
        "sink": plan.sink.backend,
        "route": {
            "source": _endpoint(plan.source),
            "sink": _endpoint(plan.sink),
            "segment": plan.segment,
            "coalesce": plan.coalesce,
            "both_ways": plan.both_ways,
        },
        "workers": plan.workers,
        **direction(stats),
    }
    summary["superpackets"]["inferred"] = (
        stats.superpackets if any(plan.source.options.get(k) is not None for k in INFERENCE_OPTIONS) else 0
    )
    summary["superpackets_segmented"] = summary["superpackets"]["segmented"]
    summary["segments_from_superpackets"] = stats.segments_from_superpackets
    summary["stopped_by"] = _stopped_by(plan, stats, interrupted, errors)
    summary["interrupted"] = interrupted
    summary["errors"] = list(errors)
    if reverse is not None:
        summary["reverse"] = direction(reverse)
    if plan.command == "record":
        summary["record"] = _record(plan, stats, sink_output)
    return summary


def _stopped_by(plan: Plan, stats: ForwardStats, interrupted: bool, errors: list[str]) -> str:
    if errors:
        return "error"
    if interrupted:
        return "interrupt"
    if plan.limit is not None and stats.packets_read >= plan.limit:
        return "limit"
    if plan.duration is not None and stats.elapsed >= plan.duration:
        return "duration"
    return "end of input"


def _record(plan: Plan, stats: ForwardStats, sink_output: Any) -> dict[str, Any]:
    """The capture `tio record` wrote: one record per wire packet, or per write with --superpackets.

    The sink's own count wins where it gives one (it also knows the packets an output failure lost).
    """
    options = plan.sink.options
    path = options["output"]
    mode = options.get("record_gso", "segmented")
    fmt = options.get("output_format") or ("pcapng" if path.lower().endswith(".pcapng") else "pcap")
    records = stats.packets_written if mode == "segmented" else stats.verbatim_writes + stats.gso_writes
    lost = 0
    if sink_output is not None:
        records = getattr(sink_output, "records_written", records)
        lost = getattr(sink_output, "packets_lost", 0)
    return {"path": path, "format": fmt, "mode": mode, "records_written": records, "packets_lost": lost}


# -- text -------------------------------------------------------------------------


def _route(summary: Mapping[str, Any], reverse: bool = False) -> str:
    route = summary["route"]
    ends = [route["source"], route["sink"]]
    if reverse:
        ends.reverse()
    left, right = (format_spec(end["backend"], end["options"]) for end in ends)
    mode = [
        "segment" if route["segment"] else "superpackets passed to write_gso",
        "coalesce" if route["coalesce"] else "no coalescing",
    ]
    return f"{left} -> {right}  ({', '.join(mode)})"


def _superpackets(part: Mapping[str, Any], summary: Mapping[str, Any], forward: bool) -> str:
    sp = part["superpackets"]
    source_options = summary["route"]["source"]["options"] if forward else {}
    if not sp["read"]:
        if forward and summary["source"] == "pcap" and not any(source_options.get(k) for k in INFERENCE_OPTIONS):
            return "0 (a capture holds no offload metadata; --gso-mtu MTU reads longer TCP/UDP packets as such)"
        return "0"
    handled = [f"{sp['segmented']} segmented"]
    if sp["passed_through"] or not summary["route"]["segment"]:
        handled.append(f"{sp['passed_through']} passed through as GSO")
    if sp["malformed"]:
        handled.append(f"{sp['malformed']} malformed (dropped)")
    text = f"{sp['read']} read"
    inferred = [f"{k}={source_options[k]}" for k in INFERENCE_OPTIONS if source_options.get(k) is not None]
    if inferred:
        text += f", inferred from the capture ({', '.join(inferred)})"
    return f"{text}: {', '.join(handled)}; they held {sp['wire_packets']} wire packets"


def _direction_rows(part: Mapping[str, Any], summary: Mapping[str, Any], forward: bool = True) -> list[list[str]]:
    rows = [
        [
            "in",
            f"{part['packets_read']} packets ({part['wire_packets_in']} wire packets), "
            f"{quantity(part['bytes_read'], 'B')}",
        ],
        ["superpackets", _superpackets(part, summary, forward)],
        [
            "out",
            f"{part['packets_written']} packets, {quantity(part['bytes_written'], 'B')}: {part['gso_writes']} GSO "
            f"writes ({part['segments_per_gso_write']} segments/write), {part['verbatim_writes']} single writes",
        ],
        ["dropped", str(part["dropped"])],
    ]
    rows += [["", f"{count:>7}  {reason}"] for reason, count in part["drops"].items()]
    rows.append(
        [
            "rate",
            f"{part['packets_per_s']:,.0f} packets/s, {part['gbit_per_s']:.3f} Gbit/s over {part['active_s']:.3f} s "
            f"active ({part['elapsed_s']:.3f} s elapsed)",
        ]
    )
    return rows


STOPPED = {
    "end of input": "at the end of the input",
    "limit": "at --limit",
    "duration": "after --duration",
    "interrupt": "by Ctrl-C",
    "error": "by an error (below)",
}


def render(summary: Mapping[str, Any]) -> str:
    """The summary as a person reads it: route, in, superpackets, out, drops, rate, how it stopped."""
    rows = [["route", _route(summary)], *_direction_rows(summary, summary)]
    if "reverse" in summary:
        rows += [["reverse", _route(summary, reverse=True)], *_direction_rows(summary["reverse"], summary, False)]
    rows.append(["stopped", STOPPED.get(summary["stopped_by"], summary["stopped_by"])])
    if "record" in summary:
        record = summary["record"]
        rows.append(
            [
                "recorded",
                f"{record['records_written']} records to {record['path']} ({record['format']}, {record['mode']})"
                + (f"; {record['packets_lost']} packets lost when the file failed" if record["packets_lost"] else ""),
            ]
        )
    return table(rows)
