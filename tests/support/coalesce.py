"""Packet builders, a recording GSO writer and a kernel-style resegmenter.

The writer simulates what the kernel does with each write_gso: it assembles
the superpacket and segments it back with tio_core.kernels.segment, so tests
can compare the wire packets that come out with the packets that went in.
"""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from tio_core import kernels
from tio_core.contract import Capabilities, GSOProto
from tio_core.kernels.gso_write import assemble_superpacket, plan_gso_write

A4, B4, C4 = "198.18.0.1", "198.18.0.2", "198.18.0.3"
A6, B6 = "fd00::1", "fd00::2"
MAX_SEGMENTS = 64


def tcp4(seq: int, size: int = 100, *, flags="A", sport=1000, dport=2000, src=A4, dst=B4, ip=None, tcp=None, fill=b"x"):
    """A checksummed TCPv4 segment (DF set, ID 1 unless ``ip`` says otherwise)."""
    ip_kw = {"flags": "DF", "id": 1, **(ip or {})}
    tcp_kw = {"ack": 7, "window": 512, **(tcp or {})}
    layer = IP(src=src, dst=dst, **ip_kw) / TCP(sport=sport, dport=dport, seq=seq, flags=flags, **tcp_kw)
    return bytes(layer / Raw(_payload(size, seq, fill))) if size else bytes(layer)


def tcp6(seq: int, size: int = 100, *, flags="A", sport=1000, dport=2000, ip=None, tcp=None):
    tcp_kw = {"ack": 7, "window": 512, **(tcp or {})}
    layer = IPv6(src=A6, dst=B6, **(ip or {})) / TCP(sport=sport, dport=dport, seq=seq, flags=flags, **tcp_kw)
    return bytes(layer / Raw(_payload(size, seq))) if size else bytes(layer)


def udp4(size: int = 100, *, sport=3000, dport=4000, ip=None, tag=0):
    ip_kw = {"flags": "DF", "id": 1, **(ip or {})}
    return bytes(IP(src=A4, dst=B4, **ip_kw) / UDP(sport=sport, dport=dport) / Raw(_payload(size, tag)))


def udp6(size: int = 100, *, sport=3000, dport=4000, ip=None, tag=0):
    return bytes(IPv6(src=A6, dst=B6, **(ip or {})) / UDP(sport=sport, dport=dport) / Raw(_payload(size, tag)))


def _payload(size: int, tag: int, fill: bytes = b"x") -> bytes:
    # distinct bytes per packet so a misplaced payload cannot compare equal
    head = struct.pack("!I", tag & 0xFFFFFFFF)
    return (head + fill * size)[:size]


def tcp_stream(count: int, size: int = 100, seq: int = 1, **kw) -> list[bytes]:
    return [tcp4(seq + i * size, size, **kw) for i in range(count)]


def corrupt_l4_checksum(pkt: bytes) -> bytes:
    """The packet with its TCP/UDP checksum off by one (everything else intact)."""
    data = bytearray(pkt)
    l4 = 20 if data[0] >> 4 == 4 else 40
    at = l4 + (16 if data[9 if l4 == 20 else 6] == 6 else 6)
    data[at + 1] ^= 0x01
    return bytes(data)


def fix_l4_checksum(data: bytearray) -> bytes:
    """Recompute the TCP/UDP checksum of an IPv4/IPv6 packet in place."""
    l4 = 20 if data[0] >> 4 == 4 else 40
    proto = data[9] if l4 == 20 else data[6]
    ip_len = struct.unpack_from("!H", data, 2)[0] if l4 == 20 else 40 + struct.unpack_from("!H", data, 4)[0]
    at = l4 + (16 if proto == 6 else 6)
    src, dst = (data[12:16], data[16:20]) if l4 == 20 else (data[8:24], data[24:40])
    struct.pack_into("!H", data, at, 0)
    value = ~kernels.checksum(data[l4:ip_len], kernels.pseudo_header_sum(bytes(src), bytes(dst), proto, ip_len - l4))
    struct.pack_into("!H", data, at, value & 0xFFFF or (0xFFFF if proto == 17 else 0))
    return bytes(data)


class RecordingWriter:
    """A permissive GSOWriter (no capabilities) that records every call.

    calls: ("W", packet object) for write, ("G", ip_hdr, l4_hdr, payloads, proto)
    for write_gso. Each write_gso is checked against the geometry rules first.
    """

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def write(self, data) -> int:
        self.calls.append(("W", data))
        return len(data)

    def write_gso(self, ip_hdr, transport_hdr, payloads, proto) -> None:
        assert len(payloads) >= 2, "a run of one must go through write()"
        assert len(payloads) <= MAX_SEGMENTS
        sizes = [len(p) for p in payloads]
        assert min(sizes) > 0, "empty payload"
        assert all(s == sizes[0] for s in sizes[:-1]) and sizes[-1] <= sizes[0], f"mixed sizes {sizes}"
        assert len(ip_hdr) + len(transport_hdr) + sum(sizes) <= 65535
        plan_gso_write(ip_hdr, transport_hdr, payloads, proto)  # raises on bad geometry
        self.calls.append(("G", bytes(ip_hdr), bytes(transport_hdr), list(payloads), proto))

    def shape(self) -> list[str]:
        """'W' per write, 'G<n>' per write_gso of n segments."""
        return ["W" if c[0] == "W" else f"G{len(c[3])}" for c in self.calls]

    def wire(self) -> list[bytes]:
        """The packets the kernel would deliver, write_gso calls resegmented."""
        out: list[bytes] = []
        for call in self.calls:
            if call[0] == "W":
                out.append(bytes(call[1]))
                continue
            _, ip_hdr, l4_hdr, payloads, proto = call
            packet = assemble_superpacket(ip_hdr, l4_hdr, payloads, proto)
            for seg in kernels.segment(packet):
                if seg[0] >> 4 == 4:  # the kernel re-stamps IDs: the header checksum must still hold
                    assert kernels.checksum(seg[:20]) == 0xFFFF
                out.append(bytes(seg))
        return out


class CapsWriter(RecordingWriter):
    """A RecordingWriter that negotiated exactly the given offloads."""

    def __init__(self, tso: bool, uso: bool) -> None:
        super().__init__()
        self._caps = Capabilities(tso, uso)

    def capabilities(self) -> Capabilities:
        return self._caps


class PlainWriter:
    """A queue without write_gso: only write()."""

    def __init__(self) -> None:
        self.packets: list = []

    def write(self, data) -> int:
        self.packets.append(data)
        return len(data)


def normalize_df_id(pkt: bytes) -> bytes:
    """IPv4 with DF: zero the ID and header checksum (the documented exception)."""
    if len(pkt) >= 20 and pkt[0] == 0x45 and pkt[6] & 0x40:
        return pkt[:4] + b"\0\0" + pkt[6:10] + b"\0\0" + pkt[12:]
    return pkt


def same_wire(got: list[bytes], want: list[bytes]) -> bool:
    """Equal packet lists up to the DF/ID exception."""
    return [normalize_df_id(bytes(p)) for p in got] == [normalize_df_id(bytes(p)) for p in want]


def l4_proto(pkt: bytes) -> GSOProto:
    return GSOProto.TCP if (pkt[9] if pkt[0] >> 4 == 4 else pkt[6]) == 6 else GSOProto.UDP
