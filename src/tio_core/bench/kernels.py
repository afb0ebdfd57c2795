"""Benchmark of the packet kernels: superpacket segmentation and checksums.

Measures, for 64 KiB / 16 KiB / 4 KiB TCPv4 and UDPv6 superpackets at MSS
1448, segmentation throughput in GB/s of payload for the C kernels (into a
reused buffer, and into a fresh one per call) and for the pure-Python twins,
plus the checksum over 64 KiB. The baseline of every figure is one plain
``bytes`` copy of the same data, timed in the same run: the physical floor
a segmenter, which must copy every byte once, is compared against.
"""

from __future__ import annotations

import struct
from functools import partial

from tio_core.bench import Figure, best_rate
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.kernels import _pykernels
from tio_core.kernels.native import built_extension

MSS = 1448
SIZES = ((65535, "64KiB"), (16384, "16KiB"), (4096, "4KiB"))
GB = 1e9


def tcpv4_superpacket(total: int, mss: int = MSS) -> Packet:
    """A TCPv4 superpacket of ``total`` bytes as a TSO-enabled TUN would hand it over."""
    payload = bytes(i * 31 & 0xFF for i in range(total - 40))
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total, 7, 0x4000, 64, 6, 0, bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    )
    tcp = struct.pack("!HHIIBBHHH", 40000, 443, 12345, 678, 5 << 4, 0x18, 512, 0, 0)
    return Packet(memoryview(ip + tcp + payload), GSOInfo(mss, 40, 20, GSOProto.TCP))


def udpv6_superpacket(total: int, mss: int = MSS) -> Packet:
    """A UDPv6 (USO) superpacket of ``total`` bytes."""
    payload = bytes(i * 29 & 0xFF for i in range(total - 48))
    src = bytes([0xFD] + [0] * 14 + [1])
    dst = bytes([0xFD] + [0] * 14 + [2])
    ip = struct.pack("!IHBB16s16s", 0x60000000, total - 40, 17, 64, src, dst)
    udp = struct.pack("!HHHH", 40000, 4789, total - 40, 0)
    return Packet(memoryview(ip + udp + payload), GSOInfo(mss, 48, 40, GSOProto.UDP))


def run(quick: bool = False) -> list[Figure]:
    seconds = 0.06 if quick else 0.6
    pure_seconds = 0.03 if quick else 0.3
    c = built_extension()
    figures = []
    for label, build in (("TCPv4", tcpv4_superpacket), ("UDPv6", udpv6_superpacket)):
        for total, size_name in SIZES:
            packet = build(total)
            payload = total - packet.gso.hdr_len
            source = packet.data
            copy = best_rate(partial(bytes, source), payload / GB, seconds)
            name = f"segment {label} {size_name} MSS {MSS}"
            if c is not None:
                out = bytearray(c.segmented_size(packet))
                rate = best_rate(partial(c.segment_into, packet, out), payload / GB, seconds)
                figures.append(Figure(f"{name} (C, reused buffer)", rate, "GB/s", "bytes copy", copy))
                rate = best_rate(partial(c.segment, packet), payload / GB, seconds)
                figures.append(Figure(f"{name} (C, fresh buffer)", rate, "GB/s", "bytes copy", copy))
            rate = best_rate(partial(_pykernels.segment, packet), payload / GB, pure_seconds)
            figures.append(Figure(f"{name} (pure)", rate, "GB/s", "bytes copy", copy))
    data = bytes(i * 13 & 0xFF for i in range(65536))
    copy = best_rate(lambda: bytes(memoryview(data)), len(data) / GB, seconds)
    if c is not None:
        rate = best_rate(lambda: c.checksum(data), len(data) / GB, seconds)
        figures.append(Figure("checksum 64KiB (C)", rate, "GB/s", "bytes copy", copy))
    rate = best_rate(lambda: _pykernels.checksum(data), len(data) / GB, pure_seconds)
    figures.append(Figure("checksum 64KiB (pure)", rate, "GB/s", "bytes copy", copy))
    return figures
