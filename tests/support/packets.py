"""Packet builders shared by the test areas (scapy builds; nothing here uses tio's kernels).

- ``superpacket()``: a TSO/USO superpacket as a kernel hands it to a reader.
- ``udp_gso()`` / ``tcp_gso()``: the (ip_hdr, l4_hdr) pieces of a write_gso call, whose L4
  checksum field holds the folded, not inverted, pseudo-header sum (virtio NEEDS_CSUM), from a
  tiny checksum twin of our own.
- ``parse()`` / ``checksums_valid()``: scapy's reading of a packet, and whether scapy, rebuilding
  it with fresh checksums, gets the same bytes (tio_fake's PacketFactory does both).
"""

from __future__ import annotations

import ipaddress
import socket

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.packet import Raw

from tests.support.checksum import fold, words
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_fake import PacketFactory

parse = PacketFactory.parse
checksums_valid = PacketFactory.checksums_valid

SRC4, DST4 = "198.18.0.1", "198.19.255.254"
SRC6, DST6 = "fd00::1", "fd00:ffff::2"


def payload_bytes(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def superpacket(
    version: int = 4,
    proto: GSOProto = GSOProto.TCP,
    payload: int = 4000,
    mss: int = 1448,
    *,
    seq: int = 1000,
    flags: str = "PA",
    ip_id: int = 77,
    tos: int = 0,
    ip_options: bytes = b"",
    tcp_options: list | None = None,
    ext_headers: int = 0,
) -> tuple[Packet, object]:
    """A superpacket (as a kernel hands it) and the scapy packet it was built from."""
    if version == 4:
        l3 = IP(src=SRC4, dst=DST4, id=ip_id, tos=tos, ttl=61, flags="DF")
        if ip_options:
            l3.options = [ip_options]
    else:
        l3 = IPv6(src=SRC6, dst=DST6, tc=tos, hlim=61, fl=0x12345)
        for i in range(ext_headers):
            l3 = l3 / (IPv6ExtHdrHopByHop() if i == 0 else IPv6ExtHdrDestOpt())
    if proto == GSOProto.TCP:
        l4 = TCP(sport=40000, dport=443, seq=seq, ack=99, flags=flags, window=5000, options=tcp_options or [])
    else:
        l4 = UDP(sport=40000, dport=4789)
    pkt = l3 / l4 / Raw(payload_bytes(payload)) if payload else l3 / l4
    data = bytes(pkt)
    parsed = (IP if version == 4 else IPv6)(data)
    l4_layer = parsed[TCP] if proto == GSOProto.TCP else parsed[UDP]
    l4_bytes = bytes(l4_layer)
    csum_start = len(data) - len(l4_bytes)
    hdr_len = csum_start + (l4_layer.dataofs * 4 if proto == GSOProto.TCP else 8)
    return Packet(memoryview(data), GSOInfo(mss, hdr_len, csum_start, proto)), pkt


def pseudo_partial(src: str, dst: str, proto: int, l4_len: int) -> int:
    raw = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
    return fold(words(raw) + proto + l4_len)


def ip_layer(src: str, dst: str, total_len: int, proto: int):
    if ":" in src:
        return IPv6(src=src, dst=dst, plen=total_len - 40, nh=proto, hlim=64)
    return IP(src=src, dst=dst, len=total_len, proto=proto, ttl=64, flags="DF")


def udp_gso(src: str, dst: str, sport: int, dport: int, payloads: list[bytes]) -> tuple[bytes, bytes]:
    """(ip_hdr, udp_hdr) for a UDP superpacket carrying ``payloads``."""
    l4_len = 8 + sum(map(len, payloads))
    ip_len = 20 if ":" not in src else 40
    hdr = ip_layer(src, dst, ip_len + l4_len, socket.IPPROTO_UDP) / UDP(
        sport=sport, dport=dport, len=l4_len & 0xFFFF, chksum=pseudo_partial(src, dst, 17, l4_len)
    )
    raw = bytes(hdr)
    return raw[:ip_len], raw[ip_len:]


def tcp_gso(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, payloads: list[bytes], flags="A"):
    """(ip_hdr, tcp_hdr) for a TCP superpacket carrying ``payloads``."""
    l4_len = 20 + sum(map(len, payloads))
    ip_len = 20 if ":" not in src else 40
    hdr = ip_layer(src, dst, ip_len + l4_len, socket.IPPROTO_TCP) / TCP(
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        window=65535,
        chksum=pseudo_partial(src, dst, 6, l4_len),
    )
    raw = bytes(hdr)
    return raw[:ip_len], raw[ip_len:]
