"""Pure-Python packet kernels: the readable reference for tio_core._ckernels.

Every function here has a C twin with the same signature, the same results
byte for byte and the same exceptions (type and message); the differential
tests in tests/kernels hold them to that. Use them through tio_core.kernels,
which picks the C versions unless TIO_PURE=1.

Checksums follow RFC 1071: the folded 16-bit one's-complement sum of the data
read as big-endian words, an odd tail byte padded with zero.
"""

from __future__ import annotations

from operator import index
from typing import NamedTuple

from tio_core.contract import NO_GSO, GSOInfo, GSOProto, Packet
from tio_core.errors import MalformedPacket
from tio_core.wire import (
    GSO_ECN,
    GSO_NONE,
    GSO_TCPV4,
    GSO_TCPV6,
    GSO_UDP,
    GSO_UDP_L4,
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_ROUTING,
    IPV4_ADDR_LEN,
    IPV4_CHECKSUM,
    IPV4_FRAG,
    IPV4_FRAG_OFFSET_MASK,
    IPV4_ID,
    IPV4_MF,
    IPV4_MIN_HDR,
    IPV4_PROTOCOL,
    IPV4_SRC,
    IPV4_TOTAL_LENGTH,
    IPV6_ADDR_LEN,
    IPV6_EXT_LENGTH,
    IPV6_EXT_NEXT_HEADER,
    IPV6_EXT_UNIT,
    IPV6_HDR,
    IPV6_NEXT_HEADER,
    IPV6_PAYLOAD_LENGTH,
    IPV6_SRC,
    NEEDS_CSUM,
    PROTO_NUMBER,
    RSC_INFO,
    TCP_CSUM_OFFSET,
    TCP_CWR,
    TCP_DATA_OFFSET,
    TCP_FIN,
    TCP_FLAGS,
    TCP_MIN_HDR,
    TCP_PSH,
    TCP_SEQ,
    UDP_CSUM_OFFSET,
    UDP_HDR,
    UDP_LENGTH,
    VirtioNetHdr,
)

# Hostile geometry that tio refuses to segment although a kernel might: a tiny
# gso size with huge headers could ask for gigabytes (real superpackets need
# at most a few hundred KiB), and a tiny gso size alone for tens of thousands
# of segments (the kernel's own TCP sends at most 1366 per 64 KiB, at its
# 48-byte minimum MSS; UDP GSO at most 128). Both bounds keep the work of one
# call small, in C and in the pure twin alike.
MAX_SEGMENTED_SIZE = 16 << 20
MAX_SEGMENT_COUNT = 4096
MAX_SEED = 0xFFFFFFFF

# IPv6 extension headers the kernel segments behind.
_IPV6_EXTENSIONS = frozenset((IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS))
# Headers the kernel cannot segment behind: it drops such superpackets.
_IPV6_NOT_SEGMENTABLE = {IPPROTO_FRAGMENT: "fragment", IPPROTO_AH: "AH"}

_GSO_TYPE_NAME = {GSO_TCPV4: "TCPV4", GSO_TCPV6: "TCPV6", GSO_UDP_L4: "UDP_L4"}
_GSO_PROTO = {GSO_TCPV4: GSOProto.TCP, GSO_TCPV6: GSOProto.TCP, GSO_UDP_L4: GSOProto.UDP}


# -- checksums ----------------------------------------------------------------
def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """data as a flat memoryview of bytes; like the C kernels, only contiguous buffers."""
    try:
        view = memoryview(data)
    except TypeError:  # the C kernels' wording (PyObject_GetBuffer), not memoryview's
        raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'") from None
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _fold(total: int) -> int:
    # One's-complement folding keeps the value mod 0xFFFF and never turns a
    # non-zero sum into 0, so the folded sum is total mod 0xFFFF with 0xFFFF
    # standing in for a non-zero multiple of 0xFFFF.
    if total == 0:
        return 0
    return (total - 1) % 0xFFFF + 1


def _words_sum(data: bytes | bytearray | memoryview) -> int:
    # A big-endian integer of the data is sum(word_i * 65536**k), and
    # 65536 == 1 (mod 0xFFFF), so it is congruent to the plain word sum.
    view = _byte_view(data)
    value = int.from_bytes(view, "big")
    if len(view) & 1:
        value <<= 8  # pad the odd tail byte with zero
    return value


def checksum(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """RFC 1071 folded one's-complement sum of data plus seed (not inverted)."""
    seed = index(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"checksum seed must be 0..0xFFFFFFFF, got {seed}")
    return _fold(seed + _words_sum(data))


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, l4_len: int) -> int:
    """Folded (not inverted) sum of the TCP/UDP pseudo-header.

    4-byte addresses give the IPv4 form (16-bit length), 16-byte addresses the
    IPv6 form (32-bit length, so jumbo lengths above 65535 are summed right).
    """
    src_view, dst_view = _byte_view(src), _byte_view(dst)
    if len(src_view) != len(dst_view) or len(src_view) not in (IPV4_ADDR_LEN, IPV6_ADDR_LEN):
        raise ValueError(f"addresses must both be 4 or 16 bytes, got {len(src_view)} and {len(dst_view)}")
    proto, l4_len = index(proto), index(l4_len)
    if not 0 <= proto <= 0xFF:
        raise ValueError(f"protocol number must be 0..255, got {proto}")
    v4 = len(src_view) == IPV4_ADDR_LEN
    max_len = 0xFFFF if v4 else 0xFFFFFFFF  # IPv6 sums a 32-bit length
    if not 0 <= l4_len <= max_len:
        raise ValueError(f"L4 length {l4_len} does not fit the IPv{4 if v4 else 6} pseudo-header")
    total = _words_sum(src_view) + _words_sum(dst_view) + proto + (l4_len >> 16) + (l4_len & 0xFFFF)
    return _fold(total)


def ipv4_header_checksum(hdr: bytes | bytearray | memoryview) -> int:
    """The value for the checksum field of an IPv4 header (its IHL decides the length)."""
    view = _byte_view(hdr)
    ihl_bytes = _ipv4_header_length(view)
    # the checksum field itself counts as zero: sum what lies before it and after it (the addresses on)
    total = _words_sum(view[:IPV4_CHECKSUM]) + _words_sum(view[IPV4_SRC:ihl_bytes])
    return ~_fold(total) & 0xFFFF


def _ipv4_hdr_len(ip: memoryview) -> int:
    return (ip[0] & 0x0F) * 4  # IHL, in 32-bit words


def _ipv4_header_length(view: memoryview) -> int:
    if len(view) < IPV4_MIN_HDR:
        raise MalformedPacket(f"IPv4 header of {len(view)} bytes is shorter than {IPV4_MIN_HDR}")
    if view[0] >> 4 != 4:
        raise MalformedPacket(f"IP version {view[0] >> 4} in an IPv4 header")
    ihl_bytes = _ipv4_hdr_len(view)
    if ihl_bytes < IPV4_MIN_HDR:
        raise MalformedPacket(f"IPv4 header length {ihl_bytes} is below {IPV4_MIN_HDR}")
    if ihl_bytes > len(view):
        raise MalformedPacket(f"IPv4 header length {ihl_bytes} exceeds the {len(view)} bytes given")
    return ihl_bytes


_VNET_FIELDS = (
    ("flags", 0xFF),
    ("gso_type", 0xFF),
    ("hdr_len", 0xFFFF),
    ("gso_size", 0xFFFF),
    ("csum_start", 0xFFFF),
    ("csum_offset", 0xFFFF),
)


def _vnet_fields(hdr: VirtioNetHdr) -> tuple[int, ...]:
    """The six header fields as ints, each checked against its u8/u16 range."""
    fields = tuple(hdr)
    if len(fields) != 6:
        raise TypeError(f"virtio_net_hdr must have 6 fields, got {len(fields)}")
    fields = tuple(index(value) for value in fields)
    for (name, limit), value in zip(_VNET_FIELDS, fields):
        if not 0 <= value <= limit:
            raise MalformedPacket(f"virtio_net_hdr {name} {value} is out of range 0..{limit}")
    return fields


def finish_checksum(pkt: bytearray | memoryview, hdr: VirtioNetHdr) -> None:
    """Complete a NEEDS_CSUM packet's L4 checksum in place.

    The field at csum_start+csum_offset holds the kernel's partial (the folded
    pseudo-header sum); the checksum covers csum_start..end seeded with it.
    A UDP result (csum_offset 6) of 0 is stored as 0xFFFF, since 0 means "no
    checksum" there; TCP keeps 0. Does nothing without NEEDS_CSUM.
    """
    view = _byte_view(pkt)
    if view.readonly:
        raise TypeError("finish_checksum needs a writable buffer")
    flags, _gso_type, _hdr_len, _gso_size, csum_start, csum_offset = _vnet_fields(hdr)
    if not flags & NEEDS_CSUM:
        return
    field = csum_start + csum_offset
    if field + 2 > len(view):
        raise MalformedPacket(
            f"checksum field at csum_start {csum_start} + csum_offset {csum_offset} "
            f"lies outside the {len(view)}-byte packet"
        )
    partial = view[field] << 8 | view[field + 1]
    view[field] = view[field + 1] = 0
    result = ~checksum(view[csum_start:], partial) & 0xFFFF
    if result == 0 and csum_offset == UDP_CSUM_OFFSET:
        result = 0xFFFF
    view[field] = result >> 8
    view[field + 1] = result & 0xFF


# -- validation -----------------------------------------------------------------
def _ip_version(view: memoryview) -> int:
    version = view[0] >> 4 if len(view) else 0
    if version not in (4, 6):
        raise MalformedPacket(f"IP version {version} is neither 4 nor 6")
    min_len = IPV4_MIN_HDR if version == 4 else IPV6_HDR
    if len(view) < min_len:
        raise MalformedPacket(f"packet of {len(view)} bytes is shorter than an IPv{version} header ({min_len} bytes)")
    return version


def _ipv4_transport(view: memoryview, csum_start: int) -> int:
    """The protocol of the header at csum_start behind an IPv4 header (complete, csum_start inside the packet)."""
    ihl_bytes = _ipv4_hdr_len(view)
    if ihl_bytes < IPV4_MIN_HDR:
        raise MalformedPacket(f"IPv4 header length {ihl_bytes} is below {IPV4_MIN_HDR}")
    if csum_start != ihl_bytes:
        raise MalformedPacket(f"csum_start {csum_start} does not match the IPv4 header length {ihl_bytes}")
    if (view[IPV4_FRAG] << 8 | view[IPV4_FRAG + 1]) & (IPV4_MF | IPV4_FRAG_OFFSET_MASK):
        raise MalformedPacket("IPv4 fragment in a superpacket")
    return view[IPV4_PROTOCOL]


def _ipv6_transport(view: memoryview, csum_start: int) -> int:
    """The protocol of the header at csum_start behind an IPv6 header (complete, csum_start inside the packet).

    The extension headers between must be ones the kernel segments behind and end exactly at csum_start.
    """
    if csum_start < IPV6_HDR:
        raise MalformedPacket(f"csum_start {csum_start} is inside the IPv6 header")
    next_header, offset = view[IPV6_NEXT_HEADER], IPV6_HDR
    while offset < csum_start:
        if next_header in _IPV6_NOT_SEGMENTABLE:
            raise MalformedPacket(
                f"IPv6 {_IPV6_NOT_SEGMENTABLE[next_header]} header in a superpacket (the kernel cannot segment it)"
            )
        if next_header not in _IPV6_EXTENSIONS:
            raise MalformedPacket(f"IPv6 next header {next_header} at offset {offset} is not an extension header")
        if offset + IPV6_EXT_LENGTH + 1 > len(view):
            raise MalformedPacket(f"IPv6 extension header at offset {offset} is cut off")
        next_header = view[offset + IPV6_EXT_NEXT_HEADER]
        offset += (view[offset + IPV6_EXT_LENGTH] + 1) * IPV6_EXT_UNIT
    if offset != csum_start:
        raise MalformedPacket(f"IPv6 extension headers end at {offset}, not at csum_start {csum_start}")
    return next_header


def _transport_end(view: memoryview, version: int, csum_start: int, proto: GSOProto) -> int:
    """Check the L3 headers lead to a ``proto`` header at csum_start; return the header end (hdr_len)."""
    size = len(view)
    if csum_start >= size:
        raise MalformedPacket(f"csum_start {csum_start} is outside the {size}-byte packet")
    next_header = _ipv4_transport(view, csum_start) if version == 4 else _ipv6_transport(view, csum_start)
    want = PROTO_NUMBER[proto]
    if next_header != want:
        raise MalformedPacket(f"IP protocol {next_header} does not match GSO proto {proto.name} ({want})")
    if proto == GSOProto.TCP:
        if csum_start + TCP_MIN_HDR > size:
            raise MalformedPacket(f"TCP header at csum_start {csum_start} does not fit in the {size}-byte packet")
        doff = (view[csum_start + TCP_DATA_OFFSET] >> 4) * 4  # in 32-bit words
        if doff < TCP_MIN_HDR:
            raise MalformedPacket(f"TCP data offset {doff} is below {TCP_MIN_HDR}")
        end = csum_start + doff
    else:
        end = csum_start + UDP_HDR
    if end > size:
        raise MalformedPacket(f"{proto.name} header ends at {end}, beyond the {size}-byte packet")
    return end


def gso_info_from_vnet(hdr: VirtioNetHdr, pkt: bytes | bytearray | memoryview) -> GSOInfo:
    """Validate a kernel packet's virtio_net_hdr against its bytes; return its GSOInfo.

    GSO_NONE gives NO_GSO (after checking a NEEDS_CSUM field lies inside the
    packet). For TCP/UDP superpackets hdr_len is recomputed from csum_start and
    the TCP data offset (or the 8-byte UDP header): the kernel's value can span
    the whole first segment. Raises MalformedPacket naming what is wrong.
    """
    view = _byte_view(pkt)
    fields = _vnet_fields(hdr)
    base = _vnet_gso_type(fields, len(view))
    if base == GSO_NONE:
        return NO_GSO
    _flags, _gso_type, _hdr_len, gso_size, csum_start, _csum_offset = fields
    return GSOInfo(gso_size, _superpacket_hdr_len(fields, view, base), csum_start, _GSO_PROTO[base])


def _vnet_gso_type(fields: tuple[int, ...], length: int) -> int:
    """Check what the header fields say on their own; return the GSO type without the ECN bit.

    For a plain packet (GSO_NONE) that is that its NEEDS_CSUM field lies inside the ``length``-byte packet.
    """
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = fields
    if flags & RSC_INFO:
        raise MalformedPacket(f"virtio_net_hdr flags 0x{flags:x} have RSC_INFO set, which is not supported")
    base, ecn = gso_type & ~GSO_ECN, gso_type & GSO_ECN
    if base == GSO_NONE:
        if ecn:
            raise MalformedPacket("ECN bit set on gso_type NONE; it is only valid on a TCP type")
        if flags & NEEDS_CSUM and csum_start + csum_offset + 2 > length:
            raise MalformedPacket(
                f"checksum field at csum_start {csum_start} + csum_offset {csum_offset} "
                f"lies outside the {length}-byte packet"
            )
        return GSO_NONE
    if base == GSO_UDP:
        raise MalformedPacket("legacy UDP fragmentation offload (GSO_UDP) is not supported")
    if base not in _GSO_TYPE_NAME:
        raise MalformedPacket(f"unknown GSO type {base}")
    name = _GSO_TYPE_NAME[base]
    if ecn and base == GSO_UDP_L4:
        raise MalformedPacket(f"ECN bit set on non-TCP GSO type {name}")
    if gso_size == 0:
        raise MalformedPacket(f"GSO type {name} with gso_size 0")
    return base


def _superpacket_hdr_len(fields: tuple[int, ...], view: memoryview, base: int) -> int:
    """Check a superpacket of GSO type ``base`` against its bytes; return its real hdr_len."""
    _flags, _gso_type, hdr_len, gso_size, csum_start, csum_offset = fields
    name = _GSO_TYPE_NAME[base]
    version = _ip_version(view)
    if (base == GSO_TCPV4 and version != 4) or (base == GSO_TCPV6 and version != 6):
        raise MalformedPacket(f"GSO type {name} on an IPv{version} packet")
    if hdr_len > len(view):
        raise MalformedPacket(f"hdr_len {hdr_len} exceeds the {len(view)}-byte packet")
    proto = _GSO_PROTO[base]
    real_hdr_len = _transport_end(view, version, csum_start, proto)
    want_offset = UDP_CSUM_OFFSET if proto == GSOProto.UDP else TCP_CSUM_OFFSET
    if csum_offset != want_offset:
        raise MalformedPacket(f"csum_offset {csum_offset} is not the {proto.name} checksum offset {want_offset}")
    _segment_count(len(view), version, real_hdr_len, gso_size)  # a read never hands out what segment() refuses
    return real_hdr_len


# -- segmentation ---------------------------------------------------------------
def _segment_count(length: int, version: int, hdr_len: int, size: int) -> int:
    """Segments of a superpacket with valid headers; MalformedPacket for geometry tio does not segment."""
    payload = length - hdr_len
    count = max(1, -(-payload // size))
    largest = hdr_len + min(size, payload)
    ip_len = largest if version == 4 else largest - IPV6_HDR  # what the 16-bit length field holds
    if ip_len > 0xFFFF:
        raise MalformedPacket(f"a segment would be {largest} bytes, more than an IPv{version} packet can hold")
    if count > MAX_SEGMENT_COUNT:
        raise MalformedPacket(f"{count} segments of {size} bytes, above the {MAX_SEGMENT_COUNT}-segment limit")
    if count * hdr_len + payload > MAX_SEGMENTED_SIZE:
        raise MalformedPacket(
            f"segmenting would produce {count * hdr_len + payload} bytes, above the {MAX_SEGMENTED_SIZE}-byte limit"
        )
    return count


class _Plan(NamedTuple):
    view: memoryview
    version: int
    segments: int
    size: int
    hdr_len: int
    csum_start: int
    proto: GSOProto


def _plan(packet: Packet) -> _Plan | None:
    """Validate a superpacket and lay out its segments; None for a plain packet.

    Reads the packet in the C kernels' order: data, then gso (any sequence of
    four ints: a GSOInfo or a plain tuple); a gso size <= 0 means plain.
    """
    data, gso = packet.data, tuple(packet.gso)
    if len(gso) != 4:
        raise TypeError(f"GSOInfo must have 4 fields, got {len(gso)}")
    size = index(gso[0])
    if size <= 0:
        return None
    view = _byte_view(data)
    hdr_len, csum_start, proto = (index(value) for value in gso[1:])
    if proto not in (GSOProto.TCP, GSOProto.UDP):
        raise MalformedPacket(f"superpacket GSOInfo proto must be TCP or UDP, got {proto}")
    if size > 0xFFFF:
        raise MalformedPacket(f"gso size {size} is above 65535")
    if not 0 <= csum_start <= 0xFFFF or not 0 <= hdr_len <= 0xFFFF:
        raise MalformedPacket(f"GSOInfo hdr_len {hdr_len} / csum_start {csum_start} must be 0..65535")
    version = _ip_version(view)
    proto = GSOProto(proto)
    real_hdr_len = _transport_end(view, version, csum_start, proto)
    if hdr_len != real_hdr_len:
        raise MalformedPacket(f"GSOInfo hdr_len {hdr_len} does not match the packet headers ({real_hdr_len})")
    count = _segment_count(len(view), version, hdr_len, size)
    return _Plan(view, version, count, size, hdr_len, csum_start, proto)


def segmented_size(packet: Packet) -> int:
    """Bytes the segments of ``packet`` occupy (len(packet.data) for a plain packet)."""
    plan = _plan(packet)
    if plan is None:
        return len(packet.data)
    return plan.segments * plan.hdr_len + len(plan.view) - plan.hdr_len


def segment(packet: Packet) -> list[memoryview]:
    """Cut a superpacket into wire IP packets held in one fresh buffer.

    The views own that buffer between them, so they stay valid as long as they
    are referenced. A plain packet gives [packet.data] unchanged.
    """
    plan = _plan(packet)
    if plan is None:
        return [packet.data]
    return _segment_plan(plan, bytearray(plan.segments * plan.hdr_len + len(plan.view) - plan.hdr_len))


def _overlaps(view: memoryview, out: bytearray) -> bool:
    """Whether view's memory lies (partly) inside out's, whichever object exports it.

    Python shows no buffer addresses, so out is probed: every byte of it is
    flipped, and view changed iff they share memory; then it is flipped back.
    """
    if not out or not view.nbytes:
        return False
    before = view.tobytes()
    out[:] = out.translate(_FLIP)
    try:
        return view.tobytes() != before
    finally:
        out[:] = out.translate(_FLIP)


_FLIP = bytes(b ^ 0xFF for b in range(256))


def segment_into(packet: Packet, out: bytearray) -> list[memoryview]:
    """Like segment(), but into the caller's reusable bytearray ``out``.

    ``out`` grows if it is shorter than segmented_size(packet) (growing fails
    with BufferError while views of it are alive, so preallocate or drop old
    views). The views are valid until ``out`` is reused. A plain packet gives
    [packet.data] and leaves ``out`` alone.
    """
    if not isinstance(out, bytearray):
        raise TypeError(f"segment_into needs a bytearray, got {type(out).__name__}")
    plan = _plan(packet)
    if plan is None:
        return [packet.data]
    if _overlaps(plan.view, out):
        raise ValueError("segment_into: the packet's bytes live in the output buffer")
    need = plan.segments * plan.hdr_len + len(plan.view) - plan.hdr_len
    if len(out) < need:
        out.extend(bytes(need - len(out)))
    return _segment_plan(plan, out)


def _segment_plan(plan: _Plan, out: bytearray) -> list[memoryview]:
    """Write the segments of a validated plan back to back at the start of ``out`` (long enough)."""
    view, version, count, size, hdr_len, csum_start, proto = plan  # count: the number of segments
    dest = memoryview(out)
    if version == 4:
        addrs = view[IPV4_SRC : IPV4_SRC + 2 * IPV4_ADDR_LEN]  # source and destination
        first_id = view[IPV4_ID] << 8 | view[IPV4_ID + 1]
    else:
        addrs = view[IPV6_SRC : IPV6_SRC + 2 * IPV6_ADDR_LEN]
    addr_sum = _words_sum(addrs)
    proto_number = PROTO_NUMBER[proto]
    is_tcp = proto == GSOProto.TCP
    seq_at, flags_at = csum_start + TCP_SEQ, csum_start + TCP_FLAGS
    if is_tcp:
        first_seq = int.from_bytes(view[seq_at : seq_at + 4], "big")
    segments = []
    offset = 0
    for number in range(count):
        start = hdr_len + number * size
        chunk = view[start : min(start + size, len(view))]
        seg_len = hdr_len + len(chunk)
        seg = dest[offset : offset + seg_len]
        seg[:hdr_len] = view[:hdr_len]
        seg[hdr_len:] = chunk
        if version == 4:
            seg[IPV4_TOTAL_LENGTH : IPV4_TOTAL_LENGTH + 2] = seg_len.to_bytes(2, "big")
            seg[IPV4_ID : IPV4_ID + 2] = ((first_id + number) & 0xFFFF).to_bytes(2, "big")
            seg[IPV4_CHECKSUM : IPV4_CHECKSUM + 2] = ipv4_header_checksum(seg).to_bytes(2, "big")
        else:
            seg[IPV6_PAYLOAD_LENGTH : IPV6_PAYLOAD_LENGTH + 2] = (seg_len - IPV6_HDR).to_bytes(2, "big")
        l4_len = seg_len - csum_start
        if is_tcp:
            seg[seq_at : seq_at + 4] = ((first_seq + number * size) & 0xFFFFFFFF).to_bytes(4, "big")
            flags = seg[flags_at]
            if number != count - 1:
                flags &= ~(TCP_FIN | TCP_PSH)
            if number != 0:
                flags &= ~TCP_CWR
            seg[flags_at] = flags
            field = csum_start + TCP_CSUM_OFFSET
        else:
            length_at = csum_start + UDP_LENGTH
            seg[length_at : length_at + 2] = l4_len.to_bytes(2, "big")
            field = csum_start + UDP_CSUM_OFFSET
        seg[field : field + 2] = b"\0\0"
        pseudo = addr_sum + proto_number + (l4_len >> 16) + (l4_len & 0xFFFF)
        result = ~_fold(pseudo + _words_sum(seg[csum_start:])) & 0xFFFF
        if result == 0 and not is_tcp:
            result = 0xFFFF
        seg[field : field + 2] = result.to_bytes(2, "big")
        segments.append(seg)
        offset += seg_len
    return segments
