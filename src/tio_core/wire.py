"""Facts of the wire: protocol numbers, header sizes and offsets, limits, the virtio_net_hdr codec.

This module is the one home of these constants in Python; the C kernels
define the same facts in csrc/wire.h and export them, and a test ties the two
together (tests/kernels/test_wire_constants.py).

The virtio_net_hdr precedes every packet on an IFF_VNET_HDR fd. Layout
(10 bytes, u16 fields in host byte order):
flags u8 | gso_type u8 | hdr_len u16 | gso_size u16 | csum_start u16 | csum_offset u16
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from tio_core.contract import GSOInfo, GSOProto
from tio_core.errors import MalformedPacket

# -- IP ----------------------------------------------------------------------
MAX_IP_PACKET = 65535  # the 16-bit IPv4 total length; also the most a TUN takes in one write
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPV4_MIN_HDR = 20
IPV6_HDR = 40
IPV4_TOS = 1  # byte offsets inside the IPv4 header
IPV4_TOTAL_LENGTH = 2
IPV4_ID = 4
IPV4_FRAG = 6
IPV4_TTL = 8
IPV4_PROTOCOL = 9
IPV4_CHECKSUM = 10
IPV4_SRC = 12  # the destination address follows the source
IPV4_ADDR_LEN = 4
IPV4_DF = 0x4000  # "don't fragment" in the 16-bit flags/fragment field
IPV4_MF = 0x2000  # "more fragments"
IPV4_FRAG_OFFSET_MASK = 0x1FFF  # the fragment offset
IPV6_PAYLOAD_LENGTH = 4  # byte offsets inside the IPv6 header
IPV6_NEXT_HEADER = 6
IPV6_HOP_LIMIT = 7
IPV6_SRC = 8  # the destination address follows the source
IPV6_ADDR_LEN = 16
# An IPv6 extension header starts with the next header and its length in
# 8-byte units beyond the first 8.
IPV6_EXT_NEXT_HEADER = 0
IPV6_EXT_LENGTH = 1
IPV6_EXT_UNIT = 8
# next-header numbers of the IPv6 extension headers (IANA): the L4 header follows them
IPPROTO_HOPOPTS = 0
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_DSTOPTS = 60
IPPROTO_MH = 135
IPPROTO_HIP = 139
IPPROTO_SHIM6 = 140
IPPROTO_EXP1 = 253
IPPROTO_EXP2 = 254
IPV6_EXTENSION_HEADERS = frozenset(
    {
        IPPROTO_HOPOPTS,
        IPPROTO_ROUTING,
        IPPROTO_FRAGMENT,
        IPPROTO_ESP,
        IPPROTO_AH,
        IPPROTO_DSTOPTS,
        IPPROTO_MH,
        IPPROTO_HIP,
        IPPROTO_SHIM6,
        IPPROTO_EXP1,
        IPPROTO_EXP2,
    }
)
PROTO_NUMBER = {GSOProto.TCP: IPPROTO_TCP, GSOProto.UDP: IPPROTO_UDP}

# -- TCP / UDP ---------------------------------------------------------------
TCP_MIN_HDR = 20
UDP_HDR = 8
L4_PORTS_LEN = 4  # source and destination port: the first bytes of a TCP or UDP header
TCP_SEQ = 4  # byte offsets inside the TCP header
TCP_ACK_SEQ = 8
TCP_DATA_OFFSET = 12
TCP_FLAGS = 13
TCP_WINDOW = 14
TCP_URG_PTR = 18
TCP_RESERVED_MASK = 0x0F  # low nibble of the data offset byte
UDP_LENGTH = 4  # byte offset inside the UDP header
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR = 1, 2, 4, 8, 16, 32, 64, 128

# -- what a Linux TUN takes in one GSO write ----------------------------------
# A UDP_L4 write of more segments is EINVAL (UDP_MAX_SEGMENTS, checked in
# virtio_net_hdr_to_skb); TCP has no segment limit below the 64 KiB packet.
UDP_GSO_MAX_SEGMENTS = 128
UDP_GSO_MAX_SEGMENTS_OLD = 64  # the same limit on older kernels; every kernel takes this many

# -- virtio_net_hdr ----------------------------------------------------------
VIRTIO_NET_HDR_LEN = 10

# flags
NEEDS_CSUM = 1
DATA_VALID = 2
RSC_INFO = 4

# gso_type values; ECN is a bit OR-ed onto a TCP type, kept apart by base_type
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3  # legacy UFO, never produced by a TUN we negotiate
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80

# csum_offset of the checksum field inside the transport header
TCP_CSUM_OFFSET = 16
UDP_CSUM_OFFSET = 6

_HDR = struct.Struct("=BBHHHH")


class VirtioNetHdr(NamedTuple):
    flags: int = 0
    gso_type: int = GSO_NONE
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> VirtioNetHdr:
        return cls._make(_HDR.unpack_from(buf, offset))

    def pack(self) -> bytes:
        return _HDR.pack(*self)

    def pack_into(self, buf: bytearray | memoryview, offset: int = 0) -> None:
        _HDR.pack_into(buf, offset, *self)

    @property
    def base_type(self) -> int:
        """gso_type without the ECN bit."""
        return self.gso_type & ~GSO_ECN

    @property
    def ecn(self) -> bool:
        return bool(self.gso_type & GSO_ECN)

    @property
    def needs_csum(self) -> bool:
        return bool(self.flags & NEEDS_CSUM)


PLAIN_HDR = VirtioNetHdr()
PLAIN_HDR_BYTES = PLAIN_HDR.pack()

CSUM_OFFSET = {GSOProto.TCP: TCP_CSUM_OFFSET, GSOProto.UDP: UDP_CSUM_OFFSET}


def gso_type_for(proto: GSOProto, ip_version: int, ecn: bool = False) -> int:
    """The virtio gso_type of a TCP or UDP superpacket over IPv4 or IPv6."""
    if proto == GSOProto.UDP:
        return GSO_UDP_L4
    return (GSO_TCPV4 if ip_version == 4 else GSO_TCPV6) | (GSO_ECN if ecn else 0)


def vnet_header_for(gso: GSOInfo, ip_version: int) -> VirtioNetHdr:
    """The virtio_net_hdr a kernel puts before a packet with this GSOInfo (plain header for a plain packet)."""
    if not gso.is_superpacket:
        return PLAIN_HDR
    if gso.proto not in CSUM_OFFSET:
        raise MalformedPacket(f"superpacket GSOInfo needs proto TCP or UDP, got {gso.proto!r}")
    return VirtioNetHdr(
        NEEDS_CSUM, gso_type_for(gso.proto, ip_version), gso.hdr_len, gso.size, gso.csum_start, CSUM_OFFSET[gso.proto]
    )
