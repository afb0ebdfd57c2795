"""Registers the ``pcap`` backend and its benchmark with tio.

Imported on every backend discovery, so it only describes: the backend is
imported from tio_pcap.backend when opened.
"""

from __future__ import annotations

from tio_core import BackendDef, BenchmarkDef, Option, hookimpl
from tio_pcap.files import FILE_ROLES

# FILE_ROLES says which OPTIONS name a file this backend reads (path) or writes (output); each of
# them declares it as Option(role=...), for the CLI to refuse a run that writes a file it reads
# across two backends, without opening them.
__all__ = ["FILE_ROLES", "OPTIONS"]

OPTIONS = (
    Option("path", str, None, "capture file (pcap or pcapng) whose IP packets queue 0 reads", role=FILE_ROLES["path"]),
    Option(
        "output", str, None, "record every write and write_gso to this capture file (RAW)", role=FILE_ROLES["output"]
    ),
    Option(
        "output_format",
        str,
        None,
        "pcap or pcapng (default: pcapng if output ends in .pcapng, else pcap)",
        choices=("pcap", "pcapng"),
    ),
    Option(
        "record_gso",
        str,
        "segmented",
        "write_gso recorded as the kernel delivers it (segmented) or as one superpacket",
        choices=("segmented", "superpacket"),
    ),
    Option("tso", bool, True, "advertise TSO: write_gso with TCP is accepted"),
    Option("uso", bool, True, "advertise USO: write_gso with UDP is accepted"),
    Option(
        "pacing",
        str,
        "fast",
        "fast (as fast as possible), realtime (capture timestamps / speed), rate (packets per second) "
        "or bitrate (megabits per second)",
        choices=("fast", "realtime", "rate", "bitrate"),
    ),
    Option("speed", float, 1.0, "pacing=realtime: replay this many times faster than captured"),
    Option("rate", float, None, "pacing=rate: packets per second"),
    Option("mbps", float, None, "pacing=bitrate: megabits per second of captured IP bytes"),
    Option("loop", int, 1, "replay the capture this many times (0 = endlessly)"),
    Option("loop_delay", float, 0.0, "seconds between two passes of a loop"),
    Option("limit", int, None, "stop after this many packets"),
    Option(
        "gso_mtu",
        int,
        None,
        "TCP/UDP packets longer than this are returned as superpackets (segment size = gso_mtu - headers)",
    ),
    Option(
        "mss",
        int,
        None,
        "TCP/UDP packets with more payload than this are returned as superpackets of this segment size",
    ),
    Option("strict", bool, True, "a truncated last record is an error (False: a warning, replay ends there)"),
    Option("batch", int, 64, "most packets one read() returns"),
)


@hookimpl
def tio_register_backends():
    return [
        BackendDef(
            name="pcap",
            description="replays a pcap/pcapng capture as inbound packets; records writes to a capture",
            factory="tio_pcap.backend:open_pcap",
            options=OPTIONS,
        )
    ]


@hookimpl
def tio_register_benchmarks():
    return [BenchmarkDef("pcap", "capture parsing vs scapy's RawPcapReader on the same file", "tio_pcap.bench:run")]


@hookimpl
def tio_register_contract_harness():
    return {"pcap": "tio_pcap.contract_harness:PcapHarness"}
