"""What a TUN accepts and delivers: the checks the fake applies to injected and written packets."""

from __future__ import annotations

from typing import Any

from tio_core.contract import Buffer, GSOInfo
from tio_core.errors import MalformedPacket
from tio_core.kernels.gso_write import check_write_size
from tio_core.wire import vnet_header_for


def as_bytes(item: Any, what: str) -> bytes:
    """The bytes of a bytes-like item or of a packet object with ``__bytes__`` (scapy)."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if hasattr(item, "__bytes__"):  # scapy packets and similar builders
        return bytes(item)
    raise TypeError(
        f"{what}: expected bytes, a tio Packet or a packet object with __bytes__, got {type(item).__name__}"
    )


def check_ip_packet(data: Buffer, what: str) -> None:
    """Raise MalformedPacket unless ``data`` is one IPv4/IPv6 packet whose length fields match.

    This is what a TUN device accepts on write and ever hands to a reader.
    """
    size = check_write_size(data, what)
    version = data[0] >> 4
    if version == 4:
        if size < 20:
            raise MalformedPacket(f"{what}: IPv4 packet of {size} bytes is shorter than its 20-byte header")
        ihl = (data[0] & 0x0F) * 4
        total = int.from_bytes(data[2:4], "big")
        if ihl < 20 or ihl > size:
            raise MalformedPacket(f"{what}: IPv4 header length {ihl} is invalid for a {size}-byte packet")
        if total != size:
            raise MalformedPacket(f"{what}: IPv4 total length says {total} bytes, packet has {size}")
    elif version == 6:
        if size < 40:
            raise MalformedPacket(f"{what}: IPv6 packet of {size} bytes is shorter than its 40-byte header")
        payload = int.from_bytes(data[4:6], "big")
        if payload + 40 != size:
            raise MalformedPacket(f"{what}: IPv6 payload length says {payload} bytes, packet carries {size - 40}")
    else:
        raise MalformedPacket(f"{what}: IP version must be 4 or 6, got {version}")


def check_superpacket(data: bytes, gso: GSOInfo, what: str) -> None:
    """Raise MalformedPacket unless ``gso`` describes ``data`` as a kernel would."""
    from tio_core import kernels  # the packet kernels pick C or pure Python on import

    hdr = vnet_header_for(gso, data[0] >> 4)
    checked = kernels.gso_info_from_vnet(hdr, memoryview(data))
    if checked != gso:
        raise MalformedPacket(
            f"{what}: GSOInfo {tuple(gso)} does not match the packet headers, expected {tuple(checked)}"
        )


__all__ = ["as_bytes", "check_ip_packet", "check_superpacket"]
