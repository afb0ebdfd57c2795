"""Link-layer framing of capture records: where the IP packet is.

Each decoder takes the record bytes as (buf, start, end) and returns the
(start, end) of the IP packet inside it, or None for a frame that carries no
IP packet (ARP, LLDP, ...), which the reader skips and counts.

Frames from a real link can carry padding after the IP packet (Ethernet pads
to 60 bytes), so decoders of link layers cut the packet at the IP length.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

# LINKTYPE_* values as libpcap writes them in files (not the platform DLT_*).
NULL = 0
EN10MB = 1
RAW = 101
LOOP = 108
LINUX_SLL = 113
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))  # 802.1Q, 802.1ad (QinQ), legacy QinQ
AF_INET = 2
AF_INET6 = frozenset((10, 23, 24, 28, 30))  # Linux, Windows, BSDs, FreeBSD, Darwin

Span = tuple[int, int] | None
Chunk = bytes | bytearray  # what the reader parses: a whole capture or its reused chunk
Decoder = Callable[[Chunk, int, int], Span]


def ip_span(buf: Chunk, start: int, end: int) -> Span:
    """The IP packet at buf[start:end] with any link padding cut off, or None if not IP."""
    if end - start < 1:
        return None
    version = buf[start] >> 4
    if version == 4:
        if end - start < 20:
            return None
        total = buf[start + 2] << 8 | buf[start + 3]
        if 20 <= total < end - start:
            end = start + total
        return start, end
    if version == 6:
        if end - start < 40:
            return None
        total = 40 + (buf[start + 4] << 8 | buf[start + 5])
        if 40 < total < end - start:  # payload length 0 is a jumbogram: keep all
            end = start + total
        return start, end
    return None


def _ip_of_ethertype(buf: Chunk, ethertype: int, start: int, end: int) -> Span:
    if ethertype in (ETH_P_IP, ETH_P_IPV6):
        span = ip_span(buf, start, end)
        wanted = 4 if ethertype == ETH_P_IP else 6
        if span is not None and buf[start] >> 4 == wanted:
            return span
    return None


def decode_raw(buf: Chunk, start: int, end: int) -> Span:
    """RAW (101): the record is an IPv4 or IPv6 packet, as is."""
    if end > start and (buf[start] >> 4) in (4, 6):
        return start, end
    return None


def decode_ipv4(buf: Chunk, start: int, end: int) -> Span:
    if end > start and buf[start] >> 4 == 4:
        return start, end
    return None


def decode_ipv6(buf: Chunk, start: int, end: int) -> Span:
    if end > start and buf[start] >> 4 == 6:
        return start, end
    return None


# One unpack reads what a cooked/Ethernet frame needs: the ethertype, the
# first IP byte (version), and IP bytes 2-3 (IPv4 total length) and 4-5
# (IPv6 payload length); far fewer interpreter steps than indexing bytes.
_ETHERNET = struct.Struct("!12xHBxHH")
_SLL = struct.Struct("!14xHBxHH")
_SLL2 = struct.Struct("!H18xBxHH")


def _framed_ip(buf: Chunk, start: int, end: int, fields: tuple[int, int, int, int], ip: int) -> Span:
    """The IP packet at ip, given the fields unpacked above; padding cut off."""
    ethertype, first, len4, len6 = fields
    size = end - ip
    if ethertype == ETH_P_IP:
        if first >> 4 == 4:
            return (ip, ip + len4) if 20 <= len4 < size else (ip, end)
    elif ethertype == ETH_P_IPV6 and first >> 4 == 6 and size >= 40:
        return (ip, ip + 40 + len6) if len6 > 0 and 40 + len6 < size else (ip, end)
    return None


def decode_ethernet(buf: Chunk, start: int, end: int) -> Span:
    """EN10MB (1): 14-byte Ethernet header, then any number of 802.1Q/QinQ tags."""
    if end - start >= 34:
        fields = _ETHERNET.unpack_from(buf, start)
        if fields[0] not in VLAN_TPIDS:
            return _framed_ip(buf, start, end, fields, start + 14)
    offset = start + 12
    while offset + 2 <= end:
        ethertype = buf[offset] << 8 | buf[offset + 1]
        if ethertype in VLAN_TPIDS:
            offset += 4
            continue
        return _ip_of_ethertype(buf, ethertype, offset + 2, end)
    return None


# For readers that inline the common case: link type -> (fields struct, header length).
# A frame whose ethertype is neither IPv4 nor IPv6 with the matching version,
# or shorter than header + 40 bytes, goes to the link type's decoder instead.
FRAMING: dict[int, tuple[struct.Struct, int]] = {}


def decode_sll(buf: Chunk, start: int, end: int) -> Span:
    """LINUX_SLL (113): 16-byte cooked header, protocol at offset 14."""
    if end - start < 36:
        return None  # too short for a header and an IPv4 packet
    return _framed_ip(buf, start, end, _SLL.unpack_from(buf, start), start + 16)


def decode_sll2(buf: Chunk, start: int, end: int) -> Span:
    """LINUX_SLL2 (276): 20-byte cooked header, protocol at offset 0."""
    if end - start < 40:
        return None
    return _framed_ip(buf, start, end, _SLL2.unpack_from(buf, start), start + 20)


def decode_null(buf: Chunk, start: int, end: int) -> Span:
    """NULL (0, family in the writer's byte order) and LOOP (108, network order).

    Both byte orders are accepted for both, since writers disagree in
    practice; the family must agree with the IP version.
    """
    if end - start < 5:
        return None
    family_le = int.from_bytes(buf[start : start + 4], "little")
    family_be = int.from_bytes(buf[start : start + 4], "big")
    version = buf[start + 4] >> 4
    if version == 4 and AF_INET in (family_le, family_be):
        return ip_span(buf, start + 4, end)
    if version == 6 and (family_le in AF_INET6 or family_be in AF_INET6):
        return ip_span(buf, start + 4, end)
    return None


DECODERS: dict[int, Decoder] = {
    NULL: decode_null,
    EN10MB: decode_ethernet,
    RAW: decode_raw,
    LOOP: decode_null,
    LINUX_SLL: decode_sll,
    IPV4: decode_ipv4,
    IPV6: decode_ipv6,
    LINUX_SLL2: decode_sll2,
}

NAMES = {
    NULL: "NULL",
    EN10MB: "EN10MB",
    RAW: "RAW",
    LOOP: "LOOP",
    LINUX_SLL: "LINUX_SLL",
    IPV4: "IPV4",
    IPV6: "IPV6",
    LINUX_SLL2: "LINUX_SLL2",
}


FRAMING.update({EN10MB: (_ETHERNET, 14), LINUX_SLL: (_SLL, 16), LINUX_SLL2: (_SLL2, 20)})


def decoder_for(linktype: int) -> Decoder | None:
    """The decoder of a supported link type, or None."""
    return DECODERS.get(linktype)
