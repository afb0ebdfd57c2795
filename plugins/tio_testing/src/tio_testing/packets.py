"""The suite's packets, built with scapy and independently of tio's own packet kernels.

The expected wire packets of a write_gso are built here segment by segment,
so the suite also checks that a backend segments as the kernel does.
Addresses are inside 198.18.0.0/15 and fd00::/8.
"""

from __future__ import annotations

import socket
import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from tio_core.contract import GSOProto

V4_SRC, V4_DST = "198.18.0.2", "198.18.0.1"
V6_SRC, V6_DST = "fd00::2", "fd00::1"
MAX_INBOUND_SIZE = 1400  # every inbound packet fits a 1500-byte MTU


def inbound_packets(count: int, start: int = 0) -> list[bytes]:
    """Distinct, valid packets cycling through IPv4/IPv6 x UDP/TCP.

    Every packet differs from its neighbours in its first 8 bytes (IPv4 id /
    total length, IPv6 flow label / payload length) so overwritten memory is
    visible.
    """
    packets = []
    for n in range(start, start + count):
        payload = bytes([n & 0xFF]) * (20 + n % 300)
        kind = n % 4
        pkt: ScapyPacket
        if kind == 0:
            pkt = IP(src=V4_SRC, dst=V4_DST, id=n + 1) / UDP(sport=40000 + n % 1000, dport=5000) / Raw(payload)
        elif kind == 1:
            pkt = (
                IP(src=V4_SRC, dst=V4_DST, id=n + 1)
                / TCP(sport=40000, dport=5001, seq=n * 1000, flags="PA")
                / Raw(payload)
            )
        elif kind == 2:
            pkt = IPv6(src=V6_SRC, dst=V6_DST, fl=n + 1) / UDP(sport=40000, dport=5002) / Raw(payload)
        else:
            pkt = IPv6(src=V6_SRC, dst=V6_DST, fl=n + 1) / TCP(sport=40000, dport=5003, seq=n, flags="A") / Raw(payload)
        packets.append(bytes(pkt))
    return packets


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return _fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


def _addr(family: int, text: str) -> bytes:
    return socket.inet_pton(family, text)


def gso_pieces(version: int, proto: GSOProto, payloads: list[bytes], tcp_flags: str = "PA") -> tuple[bytes, bytes]:
    """(ip_hdr, l4_hdr) for a write_gso of ``payloads``, as a coalescer fills them.

    Lengths cover the whole superpacket; the L4 checksum field holds the
    folded, not inverted, pseudo-header sum (virtio NEEDS_CSUM).
    """
    total = sum(map(len, payloads))
    if proto == GSOProto.TCP:
        l4 = bytearray(bytes(TCP(sport=41000, dport=6000, seq=1_000_000, ack=77, flags=tcp_flags, window=512)))
        l4[16:18] = b"\0\0"
        proto_num = 6
    else:
        l4 = bytearray(bytes(UDP(sport=41001, dport=6001, len=8 + total)))
        proto_num = 17
    l4_len = len(l4) + total
    if version == 4:
        ip = bytes(IP(src=V4_SRC, dst=V4_DST, id=0x1234, ttl=61, tos=0x10, proto=proto_num, len=20 + l4_len))
        addresses = _addr(socket.AF_INET, V4_SRC) + _addr(socket.AF_INET, V4_DST)
        pseudo = _sum16(addresses + struct.pack("!HH", proto_num, l4_len))
    else:
        ip = bytes(IPv6(src=V6_SRC, dst=V6_DST, hlim=61, tc=0x10, nh=proto_num, plen=l4_len))
        addresses = _addr(socket.AF_INET6, V6_SRC) + _addr(socket.AF_INET6, V6_DST)
        pseudo = _sum16(addresses + struct.pack("!IxxxB", l4_len, proto_num))
    offset = 16 if proto == GSOProto.TCP else 6
    l4[offset : offset + 2] = struct.pack("!H", pseudo)
    return ip, bytes(l4)


def expected_segments(version: int, proto: GSOProto, payloads: list[bytes], tcp_flags: str = "PA") -> list[bytes]:
    """What the kernel delivers for that write_gso: one valid packet per fragment."""
    out = []
    seq = 1_000_000
    flags = TCP(flags=tcp_flags).flags
    for index, fragment in enumerate(payloads):
        last = index == len(payloads) - 1
        l4: TCP | UDP
        if proto == GSOProto.TCP:
            seg_flags = int(flags)
            if not last:
                seg_flags &= ~0x09  # FIN and PSH only on the last segment
            if index:
                seg_flags &= ~0x80  # CWR only on the first
            l4 = TCP(sport=41000, dport=6000, seq=seq, ack=77, flags=seg_flags, window=512)
            seq += len(fragment)
        else:
            l4 = UDP(sport=41001, dport=6001)
        ip: IP | IPv6
        if version == 4:
            ip = IP(src=V4_SRC, dst=V4_DST, id=(0x1234 + index) & 0xFFFF, ttl=61, tos=0x10)
        else:
            ip = IPv6(src=V6_SRC, dst=V6_DST, hlim=61, tc=0x10)
        out.append(bytes(ip / l4 / Raw(fragment)))
    return out


def describe(packets: list[bytes], limit: int = 8) -> str:
    """One readable line per packet (scapy summary and length), for failure messages."""
    lines = []
    for data in packets[:limit]:
        pkt = IP(data) if data and data[0] >> 4 == 4 else IPv6(data)
        lines.append(f"    {pkt.summary()} len={len(data)}")
    if len(packets) > limit:
        lines.append(f"    ... and {len(packets) - limit} more")
    return "\n".join(lines) if lines else "    (none)"


def first_difference(got: list[bytes], want: list[bytes]) -> str:
    """Where two packet lists part, in words."""
    if len(got) != len(want):
        return f"{len(got)} packets instead of {len(want)}:\n{describe(got)}\n  expected:\n{describe(want)}"
    for index, (a, b) in enumerate(zip(got, want)):
        if a != b:
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            return (
                f"packet {index} differs from byte {at} on (got {len(a)} bytes, expected {len(b)}):\n"
                f"{describe([a])}\n  expected:\n{describe([b])}"
            )
    return "the packets are equal"


__all__ = [
    "MAX_INBOUND_SIZE",
    "V4_DST",
    "V4_SRC",
    "V6_DST",
    "V6_SRC",
    "describe",
    "expected_segments",
    "first_difference",
    "gso_pieces",
    "inbound_packets",
]
