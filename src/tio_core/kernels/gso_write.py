"""Geometry of a write_gso call, shared by every backend that implements it.

plan_gso_write() checks the pieces before any syscall and computes the
virtio_net_hdr the kernel expects; assemble_superpacket() joins them into
the Packet a kernel would see, for backends that segment in userspace.

The checks are the kernel's rules for a GSO write (a write that passes them
is one a Linux TUN accepts, so an EINVAL for it is a kernel fault) plus
agreement between the pieces, which the kernel does not check but then drops
or mangles the packets: the IP header's protocol (or IPv6 extension chain)
leads to ``proto``, its IHL matches len(ip_hdr), the TCP data offset matches
len(transport_hdr) and a UDP header is 8 bytes.

plan_gso_write and plan_even_gso_write run on every superpacket written, so
they are the C versions (tio_core._ckernels) unless tio_core.kernels.native
selects the pure twins; py_plan_gso_write and py_plan_even_gso_write are the
pure twins the differential tests hold them to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import index

from tio_core import kernels
from tio_core.contract import Buffer, GSOInfo, GSOProto, Packet
from tio_core.errors import GSOGeometryError, MalformedPacket
from tio_core.kernels import native
from tio_core.wire import (
    CSUM_OFFSET,
    GSO_NONE,
    IPV4_MIN_HDR,
    IPV6_HDR,
    MAX_IP_PACKET,
    NEEDS_CSUM,
    TCP_CWR,
    TCP_DATA_OFFSET,
    TCP_FLAGS,
    TCP_MIN_HDR,
    UDP_GSO_MAX_SEGMENTS,
    UDP_HDR,
    VirtioNetHdr,
    gso_type_for,
)

MAX_GSO_FRAGMENTS = 250  # stays far below the kernel's 1024-entry writev limit
# The most segments one write_gso may carry: for UDP what the kernel takes,
# for TCP (no kernel limit) the writev budget.
MAX_GSO_SEGMENTS = {GSOProto.TCP: MAX_GSO_FRAGMENTS, GSOProto.UDP: UDP_GSO_MAX_SEGMENTS}


def check_write_size(data: Buffer, what: str = "write") -> int:
    """The length of a packet for write(); MalformedPacket when no TUN could take it."""
    size = len(data)
    if size == 0:
        raise MalformedPacket(f"{what}: empty packet")
    if size > MAX_IP_PACKET:
        raise MalformedPacket(f"{what}: packet is {size} bytes, an IP packet is at most {MAX_IP_PACKET}")
    return size


def py_plan_gso_write(
    ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
) -> VirtioNetHdr | None:
    """Validate a write_gso call; return its virtio_net_hdr, or None for no-op.

    Raises GSOGeometryError naming the first rule broken. The pure twin of
    the C plan_gso_write (same results, exceptions and messages).
    """
    if not payloads:
        return None
    version = _check_headers(ip_hdr, transport_hdr, proto)
    # Sizes are checked in bulk (this runs on every GSO write); the loop
    # below runs only to name the first bad fragment.
    sizes = list(map(len, payloads))
    gso_size, last = sizes[0], sizes[-1]
    if not (0 < last <= gso_size and sizes[:-1].count(gso_size) == len(sizes) - 1):
        for index, size in enumerate(sizes):
            if size == 0:
                raise GSOGeometryError(f"write_gso: fragment {index} is empty")
            if size > gso_size or (size < gso_size and index != len(sizes) - 1):
                raise GSOGeometryError(
                    f"write_gso: fragment {index} is {size} bytes; all but the last must be {gso_size}"
                )
    return _plan(ip_hdr, transport_hdr, proto, version, len(sizes), gso_size, sum(sizes))


PlanGSOWrite = Callable[[Buffer, Buffer, Sequence[Buffer], GSOProto], VirtioNetHdr | None]

plan_gso_write: PlanGSOWrite = native.select("plan_gso_write", py_plan_gso_write)
"""Validate a write_gso call; return its virtio_net_hdr, or None for no-op (GSOGeometryError naming the first rule
broken). The C version when built and not TIO_PURE, else py_plan_gso_write."""


def py_plan_even_gso_write(
    ip_hdr: Buffer, transport_hdr: Buffer, payload_bytes: int, gso_size: int, proto: GSOProto
) -> VirtioNetHdr:
    """plan_gso_write for ``payload_bytes`` cut in ``gso_size`` fragments (the last may be shorter).

    The same checks in constant time, for a payload that is one contiguous
    span (tio_linux's EvenFragments), after the sizes' own: both positive, the
    payload no larger than an IP packet. The pure twin of the C
    plan_even_gso_write (same results, exceptions and messages).
    """
    payload_bytes, gso_size = index(payload_bytes), index(gso_size)
    if payload_bytes <= 0 or gso_size <= 0:
        raise GSOGeometryError(
            f"write_gso: payload bytes {payload_bytes} and fragment size {gso_size} must be positive"
        )
    if payload_bytes > MAX_IP_PACKET:
        raise GSOGeometryError(f"write_gso: payload of {payload_bytes} bytes, a superpacket is at most {MAX_IP_PACKET}")
    version = _check_headers(ip_hdr, transport_hdr, proto)
    return _plan(ip_hdr, transport_hdr, proto, version, -(-payload_bytes // gso_size), gso_size, payload_bytes)


PlanEvenGSOWrite = Callable[[Buffer, Buffer, int, int, GSOProto], VirtioNetHdr]

plan_even_gso_write: PlanEvenGSOWrite = native.select("plan_even_gso_write", py_plan_even_gso_write)
"""plan_gso_write for one contiguous payload span (see py_plan_even_gso_write): the C version when built and not
TIO_PURE, else py_plan_even_gso_write."""


def _check_headers(ip_hdr: Buffer, transport_hdr: Buffer, proto: GSOProto) -> int:
    """The IP version, once the headers are complete and agree with each other and with proto."""
    if proto == GSOProto.TCP:
        min_l4 = TCP_MIN_HDR
    elif proto == GSOProto.UDP:
        min_l4 = UDP_HDR
    else:
        raise GSOGeometryError(f"write_gso: proto must be GSOProto.TCP or GSOProto.UDP, got {proto!r}")
    if len(transport_hdr) < min_l4:
        raise GSOGeometryError(f"write_gso: {proto.name} header is {len(transport_hdr)} bytes, needs at least {min_l4}")
    version = ip_hdr[0] >> 4 if len(ip_hdr) else 0
    if version == 4:
        min_ip = IPV4_MIN_HDR
    elif version == 6:
        min_ip = IPV6_HDR
    else:
        raise GSOGeometryError(f"write_gso: IP version must be 4 or 6, got {version}")
    if len(ip_hdr) < min_ip:
        raise GSOGeometryError(f"write_gso: IPv{version} header is {len(ip_hdr)} bytes, needs at least {min_ip}")
    if version == 4 and (ip_hdr[0] & 0x0F) * 4 != len(ip_hdr):
        raise GSOGeometryError(
            f"write_gso: IPv4 IHL says {(ip_hdr[0] & 0x0F) * 4} header bytes, ip_hdr has {len(ip_hdr)}"
        )
    if proto == GSOProto.TCP:
        doff = (transport_hdr[TCP_DATA_OFFSET] >> 4) * 4
        if doff != len(transport_hdr):
            raise GSOGeometryError(
                f"write_gso: TCP data offset says {doff} header bytes, transport_hdr has {len(transport_hdr)}"
            )
    elif len(transport_hdr) != UDP_HDR:
        raise GSOGeometryError(f"write_gso: UDP header is {len(transport_hdr)} bytes, must be {UDP_HDR}")
    # The rest (protocol number, IPv6 extension chain, fragments) as a read from the kernel is checked.
    headers = b"".join((ip_hdr, transport_hdr))
    vnet = (NEEDS_CSUM, gso_type_for(proto, version), len(headers), 1, len(ip_hdr), CSUM_OFFSET[proto])
    try:
        kernels.gso_info_from_vnet(vnet, headers)
    except MalformedPacket as exc:
        raise GSOGeometryError(f"write_gso: {exc}") from None
    return version


def _plan(
    ip_hdr: Buffer, transport_hdr: Buffer, proto: GSOProto, version: int, count: int, gso_size: int, payload: int
) -> VirtioNetHdr:
    """The virtio_net_hdr of a write_gso whose headers passed _check_headers: count and size limits."""
    if count > MAX_GSO_SEGMENTS[proto]:
        if proto == GSOProto.UDP:
            raise GSOGeometryError(
                f"write_gso: {count} fragments, the kernel takes at most {UDP_GSO_MAX_SEGMENTS} UDP segments"
            )
        raise GSOGeometryError(f"write_gso: {count} fragments, at most {MAX_GSO_FRAGMENTS}")
    hdr_len = len(ip_hdr) + len(transport_hdr)
    if hdr_len + payload > MAX_IP_PACKET:
        raise GSOGeometryError(f"write_gso: superpacket would be {hdr_len + payload} bytes, at most {MAX_IP_PACKET}")
    if count == 1:
        gso_type, gso_size = GSO_NONE, 0
    else:
        ecn = proto == GSOProto.TCP and bool(transport_hdr[TCP_FLAGS] & TCP_CWR)
        gso_type = gso_type_for(proto, version, ecn)
    return VirtioNetHdr(NEEDS_CSUM, gso_type, hdr_len, gso_size, len(ip_hdr), CSUM_OFFSET[proto])


def assemble_superpacket(
    ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
) -> Packet | None:
    """The packet a kernel receives from this write_gso (None for a no-op).

    A single fragment gives a plain packet; its L4 checksum field still holds
    the pseudo-header partial, as the kernel would see it (NEEDS_CSUM).
    """
    hdr = plan_gso_write(ip_hdr, transport_hdr, payloads, proto)
    if hdr is None:
        return None
    data = b"".join((ip_hdr, transport_hdr, *payloads))
    if hdr.gso_size == 0:
        return Packet(memoryview(data))
    return Packet(memoryview(data), GSOInfo(hdr.gso_size, hdr.hdr_len, hdr.csum_start, proto))
