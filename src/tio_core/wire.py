"""The virtio_net_hdr that precedes every packet on an IFF_VNET_HDR fd.

Layout (10 bytes, u16 fields in host byte order):
flags u8 | gso_type u8 | hdr_len u16 | gso_size u16 | csum_start u16 | csum_offset u16
"""

from __future__ import annotations

import struct
from typing import NamedTuple

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
