"""WriteRecord: one write or write_gso as the fake saw it, and the forms it reaches the other side in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tio_core.contract import NO_GSO, GSOInfo, GSOProto, Packet
from tio_core.wire import VirtioNetHdr

DELIVER_SEGMENTED = "segmented"  # a peer reads the wire packets the kernel would deliver
DELIVER_SUPERPACKET = "superpacket"  # a peer reads one Packet with GSOInfo, as a TSO/USO TUN reader does
DELIVERY_MODES = (DELIVER_SEGMENTED, DELIVER_SUPERPACKET)


@dataclass(frozen=True)
class WriteRecord:
    """One write or write_gso call as the fake saw it.

    kind: "write" or "write_gso". data: the written packet, or for write_gso
    the assembled packet the kernel receives (headers + payloads, L4 checksum
    still the pseudo-header partial; empty for a no-op). gso: its GSOInfo
    (NO_GSO for one fragment). For write_gso the call's arguments are kept as
    ip_hdr, transport_hdr, payloads and proto.
    """

    kind: str
    data: bytes
    gso: GSOInfo = NO_GSO
    ip_hdr: bytes = b""
    transport_hdr: bytes = b""
    payloads: tuple[bytes, ...] = ()
    proto: GSOProto = GSOProto.NONE
    vnet_hdr: VirtioNetHdr | None = field(default=None, repr=False)

    def packets(self) -> list[bytes]:
        """What the kernel delivers for this call: fully checksummed wire IP packets."""
        if self.kind == "write":
            return [self.data]
        if not self.data:
            return []
        from tio_core import kernels  # picks the C or pure-Python packet kernels on first use

        if not self.gso.is_superpacket:
            # One fragment goes out as GSO_NONE + NEEDS_CSUM: the kernel finishes the checksum.
            buf = bytearray(self.data)
            kernels.finish_checksum(buf, self.vnet_hdr)
            return [bytes(buf)]
        return [bytes(seg) for seg in kernels.segment(Packet(memoryview(self.data), self.gso))]

    def superpacket(self) -> Packet:
        """The packet as a reader on the other side of a TUN would see it (GSOInfo set)."""
        if self.kind == "write_gso" and not self.gso.is_superpacket:
            return Packet(memoryview(self.packets()[0]))
        return Packet(memoryview(self.data), self.gso)

    def delivered(self, mode: str) -> list[Any]:
        """What a peer reads for this call: wire packets (DELIVER_SEGMENTED) or the superpacket."""
        if mode == DELIVER_SUPERPACKET:
            return [self.superpacket()] if self.data else []
        return self.packets()


def to_scapy(packets: list[bytes]) -> list[Any]:
    """scapy IP/IPv6 objects for wire packets."""
    from scapy.layers.inet import IP  # only when the caller asked for scapy objects
    from scapy.layers.inet6 import IPv6

    return [IP(p) if p[0] >> 4 == 4 else IPv6(p) for p in packets]


__all__ = ["DELIVER_SEGMENTED", "DELIVER_SUPERPACKET", "DELIVERY_MODES", "WriteRecord", "to_scapy"]
