"""Benchmark of write-path coalescing (tio bench coalesce).

One TCPv4 flow of 1448-byte segments is staged and flushed in batches of
270 packets (six full 64 KiB superpackets of 45 segments). Figures are GB/s
of TCP payload through the coalescer:

* with a writer that drops every call, so the figure is the coalescer's own
  cost (parse, checksum verification, run building, header patching,
  payload slicing), C and pure, against Passthrough (one write per packet)
  over the same packets;
* with a writer that makes the real system calls into /dev/null (one writev
  per superpacket versus one write per packet), which shows what merging
  saves when every write is a syscall, as on a TUN;
* the geometry check every backend runs on each write_gso
  (plan_gso_write) on typical coalescer output, in millions of calls per
  second, the C version beside its pure twin: TCPv4 (the coalescer's own
  write_gso arguments), TCPv6 with 44 payloads of 1448 bytes, UDPv4 with 64
  of 1000.
"""

from __future__ import annotations

import os
import struct
from functools import partial

from tio_core import kernels
from tio_core.bench import Figure, best_rate
from tio_core.coalesce import Coalescer, Passthrough, default_implementation
from tio_core.contract import Buffer, GSOProto
from tio_core.kernels.gso_write import py_plan_gso_write
from tio_core.kernels.native import built_extension

MSS = 1448
SEGMENTS_PER_RUN = 45  # 40 + 45 * 1448 = 65200 bytes, the most that fits in 64 KiB
BATCH = 6 * SEGMENTS_PER_RUN
WriteGSOCall = tuple[Buffer, Buffer, list[memoryview], GSOProto]  # write_gso's arguments
UDP_DATAGRAM = 1000  # 64 of them fit in one 64 KiB write_gso
SRC, DST = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])


def tcp4_segment(seq: int, payload: bytes) -> bytes:
    """A fully checksummed TCPv4 segment with DF set (ACK only)."""
    tcp = bytearray(struct.pack("!HHIIBBHHH", 40000, 443, seq, 1, 5 << 4, 0x10, 65535, 0, 0))
    l4_len = len(tcp) + len(payload)
    tcp_sum = kernels.checksum(payload, kernels.checksum(tcp, kernels.pseudo_header_sum(SRC, DST, 6, l4_len)))
    struct.pack_into("!H", tcp, 16, ~tcp_sum & 0xFFFF)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + l4_len, 0, 0x4000, 64, 6, 0, SRC, DST))
    struct.pack_into("!H", ip, 10, kernels.ipv4_header_checksum(ip))
    return bytes(ip + tcp) + payload


def tcp4_flow(count: int) -> list[bytes]:
    payload = bytes(range(256)) * (MSS // 256) + bytes(MSS % 256)
    return [tcp4_segment(1 + i * MSS, payload) for i in range(count)]


class DroppingWriter:
    """A permissive GSOWriter that only counts calls."""

    calls = 0

    def write(self, data) -> int:
        self.calls += 1
        return len(data)

    def write_gso(self, ip_hdr, transport_hdr, payloads, proto) -> None:
        self.calls += 1


class DevNullWriter:
    """One real syscall per call: write() for packets, writev() for superpackets."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data) -> int:
        return os.write(self.fd, data)

    def write_gso(self, ip_hdr, transport_hdr, payloads, proto) -> None:
        os.writev(self.fd, [ip_hdr, transport_hdr, *payloads])


def _rate(coalescer, packets, seconds: float) -> float:
    """GB/s of payload through add_many + flush."""

    def work() -> None:
        coalescer.add_many(packets)
        coalescer.flush()

    return best_rate(work, len(packets) * MSS, seconds) / 1e9


def run(quick: bool = False) -> list[Figure]:
    seconds = 0.3 if quick else 1.5
    packets = tcp4_flow(BATCH)
    figures = []

    passthrough = _rate(Passthrough(DroppingWriter()), packets, seconds)
    base = "Passthrough, 1 write/packet (dropped)"
    impls = ["c", "pure"] if default_implementation() == "c" else ["pure"]
    for impl in impls:
        co = Coalescer(DroppingWriter(), tcp=True, implementation=impl)
        figures.append(
            Figure(
                f"coalesce TCPv4 1448B -> 64KiB write_gso ({impl}, dropped)",
                _rate(co, packets, seconds),
                "GB/s",
                base,
                passthrough,
            )
        )
    if "c" in impls:
        co = Coalescer(DroppingWriter(), tcp=True, verify_checksums=False, implementation="c")
        figures.append(
            Figure("  same, verify_checksums=False (c)", _rate(co, packets, seconds), "GB/s", base, passthrough)
        )
        views = [memoryview(p) for p in packets]
        co = Coalescer(DroppingWriter(), tcp=True, implementation="c")
        figures.append(Figure("  same, memoryview inputs (c)", _rate(co, views, seconds), "GB/s", base, passthrough))

    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        syscall_base = _rate(Passthrough(DevNullWriter(fd)), packets, seconds)
        co = Coalescer(DevNullWriter(fd), tcp=True, implementation=impls[0])
        figures.append(
            Figure(
                f"coalesce + writev /dev/null ({impls[0]})",
                _rate(co, packets, seconds),
                "GB/s",
                "Passthrough + write /dev/null",
                syscall_base,
            )
        )
    finally:
        os.close(fd)
    figures.extend(plan_gso_write_figures(seconds))
    return figures


def plan_gso_write_figures(seconds: float) -> list[Figure]:
    """plan_gso_write per call: the C version against its pure twin in the same run (the pure one alone if unbuilt)."""
    c = built_extension()
    figures = []
    for label, call in write_gso_calls():
        pure = best_rate(partial(py_plan_gso_write, *call), 1e-6, seconds / 3)
        if c is None:
            figures.append(Figure(f"plan_gso_write {label} (pure)", pure, "M calls/s"))
        else:
            rate = best_rate(partial(c.plan_gso_write, *call), 1e-6, seconds / 3)
            figures.append(Figure(f"plan_gso_write {label} (c)", rate, "M calls/s", "pure twin", pure))
    return figures


def write_gso_calls() -> list[tuple[str, WriteGSOCall]]:
    """Typical write_gso arguments: what the coalescer hands a writer, and the same shape for TCPv6 and UDPv4."""
    captured: list[WriteGSOCall] = []

    class Capture(DroppingWriter):
        def write_gso(self, ip_hdr, transport_hdr, payloads, proto) -> None:
            captured.append((ip_hdr, transport_hdr, list(payloads), proto))

    coalescer = Coalescer(Capture(), tcp=True)
    coalescer.add_many(tcp4_flow(44))
    coalescer.flush()
    payload = memoryview(bytes(64 * MSS))
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, 0, 6, 64, bytes([0xFD] + [0] * 15), bytes([0xFD] + [0] * 14 + [1]))
    tcp = struct.pack("!HHIIBBHHH", 40000, 443, 1, 1, 5 << 4, 0x10, 65535, 0, 0)
    ip4 = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0x4000, 64, 17, 0, SRC, DST)
    udp = struct.pack("!HHHH", 40000, 4789, 0, 0)
    fragments = [payload[i * MSS : (i + 1) * MSS] for i in range(44)]
    datagrams = [payload[i * UDP_DATAGRAM : (i + 1) * UDP_DATAGRAM] for i in range(64)]
    return [
        (f"TCPv4 {len(captured[0][2])}x{MSS}B (coalescer output)", captured[0]),
        (f"TCPv6 44x{MSS}B", (memoryview(ip6), memoryview(tcp), fragments, GSOProto.TCP)),
        (f"UDPv4 64x{UDP_DATAGRAM}B", (memoryview(ip4), memoryview(udp), datagrams, GSOProto.UDP)),
    ]
