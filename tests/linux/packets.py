"""Build the pieces of write_gso calls with scapy, plus a tiny checksum twin.

The L4 checksum field of a write_gso header holds the folded, not inverted,
pseudo-header sum over the whole superpacket's L4 length (virtio NEEDS_CSUM).
"""

from __future__ import annotations

import ipaddress
import socket

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo_partial(src: str, dst: str, proto: int, l4_len: int) -> int:
    raw = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
    total = sum(int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2))
    return _fold(total + proto + l4_len)


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


def parse(data: bytes):
    return IPv6(data) if data[0] >> 4 == 6 else IP(data)


def checksums_valid(data: bytes | memoryview) -> bool:
    """True if scapy, recomputing the IPv4 and TCP/UDP checksums, gets the same bytes."""
    raw = bytes(data)
    fresh = parse(raw)
    if fresh.version == 4:
        del fresh[IP].chksum
    l4 = fresh.getlayer(TCP) or fresh.getlayer(UDP)
    if l4 is not None:
        del l4.chksum
    return bytes(parse(bytes(fresh))) == raw
