"""Recognise TSO/USO superpackets in a capture taken on an offloading TUN.

tcpdump on a TUN with TSO/USO on sees the packets before segmentation:
TCP/UDP packets longer than the MTU. Given that MTU (or the segment size)
we rebuild the metadata the kernel would have handed to a vnet reader:
GSOInfo with the segment size, the real header length, csum_start at the
L4 header, and the L4 checksum field holding the pseudo-header partial
(virtio NEEDS_CSUM), so the whole read path, segmentation included, can be
replayed from a file.
"""

from __future__ import annotations

from tio_core import kernels
from tio_core.contract import GSOInfo, GSOProto, Packet

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: walked over
TCP_NOT_IN_GSO = 0x02 | 0x04 | 0x20  # SYN, RST, URG never travel in a superpacket
TCP_CSUM_OFFSET = 16
UDP_CSUM_OFFSET = 6


def l4_layout(data: bytes | bytearray | memoryview) -> tuple[int, int, GSOProto] | None:
    """(csum_start, hdr_len, proto) of an unfragmented TCP/UDP packet, else None."""
    size = len(data)
    version = data[0] >> 4
    if version == 4:
        if size < 20:
            return None
        l3_len = (data[0] & 0x0F) * 4
        total = data[2] << 8 | data[3]
        fragment = (data[6] & 0x3F) << 8 | data[7]  # MF bit and fragment offset
        if l3_len < 20 or total != size or fragment:
            return None
        proto = data[9]
    elif version == 6:
        if size < 40 or 40 + (data[4] << 8 | data[5]) != size:
            return None
        proto, l3_len = data[6], 40
        while proto in IPV6_EXTENSIONS:
            if l3_len + 8 > size:
                return None
            proto, l3_len = data[l3_len], l3_len + (data[l3_len + 1] + 1) * 8
    else:
        return None
    if proto == IPPROTO_TCP:
        if l3_len + 20 > size:
            return None
        tcp_len = (data[l3_len + 12] >> 4) * 4
        if tcp_len < 20 or l3_len + tcp_len > size or data[l3_len + 13] & TCP_NOT_IN_GSO:
            return None
        return l3_len, l3_len + tcp_len, GSOProto.TCP
    if proto == IPPROTO_UDP:
        if l3_len + 8 > size or (data[l3_len + 4] << 8 | data[l3_len + 5]) != size - l3_len:
            return None
        return l3_len, l3_len + 8, GSOProto.UDP
    return None


class SuperpacketInference:
    """Turns over-long TCP/UDP packets into superpackets.

    gso_mtu: the MTU of the captured device; a packet longer than it is a
        superpacket whose segment size fills that MTU.
    mss: the segment payload size; a packet with more payload is a
        superpacket of segments this size. Takes precedence for the size.
    """

    def __init__(self, gso_mtu: int | None = None, mss: int | None = None) -> None:
        if gso_mtu is None and mss is None:
            raise ValueError("superpacket inference needs gso_mtu or mss")
        self.gso_mtu = gso_mtu
        self.mss = mss
        # Cheap pre-filter on length alone: nothing this short can qualify.
        self.min_length = gso_mtu + 1 if gso_mtu is not None else 20 + 8 + mss + 1  # type: ignore[operator]

    def infer(self, data: memoryview) -> Packet | None:
        """The superpacket for data, or None when data is an ordinary packet."""
        if len(data) < self.min_length:
            return None
        layout = l4_layout(data)
        if layout is None:
            return None
        csum_start, hdr_len, proto = layout
        size = self.mss if self.mss is not None else self.gso_mtu - hdr_len  # type: ignore[operator]
        if size <= 0 or len(data) - hdr_len <= size:
            return None
        packet = bytearray(data)
        if packet[0] >> 4 == 4:
            src, dst = bytes(packet[12:16]), bytes(packet[16:20])
        else:
            src, dst = bytes(packet[8:24]), bytes(packet[24:40])
        proto_number = IPPROTO_TCP if proto == GSOProto.TCP else IPPROTO_UDP
        field = csum_start + (TCP_CSUM_OFFSET if proto == GSOProto.TCP else UDP_CSUM_OFFSET)
        partial = kernels.pseudo_header_sum(src, dst, proto_number, len(packet) - csum_start)
        packet[field : field + 2] = partial.to_bytes(2, "big")
        return Packet(memoryview(packet), GSOInfo(size, hdr_len, csum_start, proto))
