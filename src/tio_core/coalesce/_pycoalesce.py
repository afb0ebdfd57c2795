"""Pure-Python twin of the C coalescing planner (csrc/coalesce.c).

plan() turns a batch of wire IP packets into the list of writes that
tio_core.coalesce emits: each item is either an original packet object (one
``write``) or a tuple ``(ip_hdr, l4_hdr, payloads, proto)`` (one
``write_gso``). The C function ``_ckernels.coalesce_plan`` must return the
same list for the same input; tests compare the two.

Rules, in the order they are applied to each packet:

* The IP header must be IPv4 without options and not a fragment (only DF may
  be set in the flags/offset word), or IPv6 whose next header is TCP/UDP
  directly; its length fields must fit the buffer (trailing bytes are
  ignored). With checksum verification the IPv4 header checksum must hold.
  A packet failing this cannot be tied to a flow, so it goes verbatim and
  *seals every open run* (no later packet can join a run started before it).
* Other IP protocols (ICMP, ...) go verbatim and seal nothing.
* TCP candidates: ACK set, no flags but ACK/PSH/ECE, no reserved bits, a
  payload, a valid checksum. UDP candidates: UDP length == IP payload length,
  a payload, a non-zero and valid checksum. A TCP/UDP packet that fails goes
  verbatim and seals its own flow's open run - except a pure TCP ACK (valid
  flags, no payload), which seals nothing. The checksum is checked only when a
  merge depends on it (a packet written as it is keeps its own): when a second
  segment would join, for the seed and the joiner. The result is the same as
  checking every candidate on arrival, without the cost for packets that
  merge with nothing.
* A candidate joins its flow's open run if every field that the kernel copies
  when it resegments is equal (see _joins), its sequence number follows, its
  payload is not larger than the run's segment size and the caps allow it;
  otherwise it starts a new run. A shorter payload (or TCP PSH) closes the run.

Output order: items in the order of their first packet; packets that join a
run are emitted with it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from tio_core.kernels._pykernels import checksum, ipv4_header_checksum, pseudo_header_sum
from tio_core.wire import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_ADDR_LEN,
    IPV4_CHECKSUM,
    IPV4_DF,
    IPV4_FRAG,
    IPV4_ID,
    IPV4_MIN_HDR,
    IPV4_PROTOCOL,
    IPV4_SRC,
    IPV4_TOS,
    IPV4_TOTAL_LENGTH,
    IPV4_TTL,
    IPV6_ADDR_LEN,
    IPV6_EXTENSION_HEADERS,
    IPV6_HDR,
    IPV6_HOP_LIMIT,
    IPV6_NEXT_HEADER,
    IPV6_PAYLOAD_LENGTH,
    IPV6_SRC,
    L4_PORTS_LEN,
    MAX_IP_PACKET,
    TCP_ACK,
    TCP_ACK_SEQ,
    TCP_CSUM_OFFSET,
    TCP_DATA_OFFSET,
    TCP_ECE,
    TCP_FLAGS,
    TCP_MIN_HDR,
    TCP_PSH,
    TCP_RESERVED_MASK,
    TCP_SEQ,
    TCP_URG_PTR,
    TCP_WINDOW,
    UDP_CSUM_OFFSET,
    UDP_GSO_MAX_SEGMENTS_OLD,
    UDP_HDR,
    UDP_LENGTH,
)

# Runs are written with write_gso: at most what every kernel takes in one UDP
# GSO write (below plan_gso_write's caps); used for TCP too.
MAX_SEGMENTS = UDP_GSO_MAX_SEGMENTS_OLD
TCP_MERGEABLE_FLAGS = TCP_ACK | TCP_PSH | TCP_ECE
IPV4_WITHOUT_OPTIONS = 4 << 4 | IPV4_MIN_HDR // 4  # the first byte: version 4, IHL 5 words

# outcome of parsing one packet
SEAL_ALL = 0  # verbatim; flow unknown, so every open run is sealed
VERBATIM = 1  # verbatim; seals nothing (other protocol, pure ACK)
SEAL_FLOW = 2  # verbatim; seals its own flow's open run
CANDIDATE = 3  # may join or start a run

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


@dataclass(slots=True)
class _Candidate:
    """What the run builder needs to know about a mergeable packet."""

    view: memoryview
    proto: int
    l4off: int
    l4hlen: int
    plen: int  # payload bytes
    seq: int  # TCP sequence number (0 for UDP)
    flags: int  # TCP flags (0 for UDP)
    addrs: bytes  # source and destination address (the pseudo-header's)
    verified: bool | None  # the L4 checksum's verdict; None until a merge depends on it


class _Run:
    __slots__ = ("seed", "members", "gso_size", "total", "next_seq", "closing_flags", "obj")

    def __init__(self, obj, seed: _Candidate):
        self.obj = obj
        self.seed = seed
        self.members = [seed]
        self.gso_size = seed.plen
        self.total = seed.plen
        self.next_seq = (seed.seq + seed.plen) & 0xFFFFFFFF
        self.closing_flags = seed.flags & TCP_PSH


def byte_view(obj) -> memoryview:
    """A 1-D unsigned-byte memoryview of a C-contiguous buffer object."""
    view = memoryview(obj)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def check_buffers(packets: Sequence[object]) -> None:
    """Raise TypeError naming the first item that is not a contiguous buffer."""
    for index, obj in enumerate(packets):
        try:
            view = memoryview(obj)  # type: ignore[arg-type]  # probing: obj may be anything
        except TypeError:
            raise TypeError(f"packet {index} is a {type(obj).__name__}, not a bytes-like object") from None
        except ValueError as exc:  # a released memoryview
            raise TypeError(f"packet {index} is not a readable C-contiguous buffer ({exc})") from None
        if not view.c_contiguous:
            raise TypeError(f"packet {index} is not a readable C-contiguous buffer (strided)")


def _pseudo_sum(addrs: bytes, proto: int, l4_len: int) -> int:
    half = len(addrs) // 2  # source, then destination address
    return pseudo_header_sum(addrs[:half], addrs[half:], proto, l4_len)


def _l4_checksum_ok(view: memoryview, l4off: int, ip_len: int, proto: int, addrs: bytes) -> bool:
    return checksum(view[l4off:ip_len], _pseudo_sum(addrs, proto, ip_len - l4off)) == 0xFFFF


def _checksum_ok(cand: _Candidate) -> bool:
    """Whether cand's L4 checksum verifies; computed once, when a merge first depends on it."""
    if cand.verified is None:
        l4_end = cand.l4off + cand.l4hlen + cand.plen
        cand.verified = _l4_checksum_ok(cand.view, cand.l4off, l4_end, cand.proto, cand.addrs)
    return cand.verified


def _parse_ip(view: memoryview, verify: bool) -> tuple[int, int, int, bytes] | None:
    """The IP header's (ip_len, l4off, proto, addresses); None for a packet that cannot be tied to a flow."""
    n = len(view)
    version = view[0] >> 4 if n else 0
    if version == 4:
        if n < IPV4_MIN_HDR or view[0] != IPV4_WITHOUT_OPTIONS:
            return None
        ip_len = _U16.unpack_from(view, IPV4_TOTAL_LENGTH)[0]
        if ip_len < IPV4_MIN_HDR or ip_len > n or _U16.unpack_from(view, IPV4_FRAG)[0] & ~IPV4_DF:
            return None  # a fragment (or a reserved bit)
        if verify and checksum(view[:IPV4_MIN_HDR]) != 0xFFFF:
            return None
        return ip_len, IPV4_MIN_HDR, view[IPV4_PROTOCOL], bytes(view[IPV4_SRC : IPV4_SRC + 2 * IPV4_ADDR_LEN])
    if version == 6:
        if n < IPV6_HDR:
            return None
        ip_len = IPV6_HDR + _U16.unpack_from(view, IPV6_PAYLOAD_LENGTH)[0]
        if ip_len > n or view[IPV6_NEXT_HEADER] in IPV6_EXTENSION_HEADERS:
            return None
        return ip_len, IPV6_HDR, view[IPV6_NEXT_HEADER], bytes(view[IPV6_SRC : IPV6_SRC + 2 * IPV6_ADDR_LEN])
    return None


FlowKey = tuple[int, bytes, bytes]  # protocol, addresses, ports
Parsed = tuple[int, FlowKey | None, "_Candidate | None"]  # outcome, flow key, candidate


def parse(view: memoryview, tcp: bool, udp: bool, verify: bool) -> Parsed:
    """Classify one packet: (outcome, flow key or None, _Candidate or None)."""
    ip = _parse_ip(view, verify)
    if ip is None:
        return SEAL_ALL, None, None
    ip_len, l4off, proto, addrs = ip
    if proto == IPPROTO_TCP:
        return _parse_tcp(view, ip_len, l4off, addrs, tcp, verify)
    if proto == IPPROTO_UDP:
        return _parse_udp(view, ip_len, l4off, addrs, udp, verify)
    return VERBATIM, None, None


def _parse_tcp(view: memoryview, ip_len: int, l4off: int, addrs: bytes, enabled: bool, verify: bool) -> Parsed:
    l4_len = ip_len - l4off
    if l4_len < TCP_MIN_HDR:
        return SEAL_ALL, None, None
    l4hlen = (view[l4off + TCP_DATA_OFFSET] >> 4) * 4
    if l4hlen < TCP_MIN_HDR or l4hlen > l4_len:
        return SEAL_ALL, None, None
    key = (IPPROTO_TCP, addrs, bytes(view[l4off : l4off + L4_PORTS_LEN]))
    if not enabled:
        return SEAL_FLOW, key, None
    flags = view[l4off + TCP_FLAGS]
    if view[l4off + TCP_DATA_OFFSET] & TCP_RESERVED_MASK or flags & ~TCP_MERGEABLE_FLAGS or not flags & TCP_ACK:
        return SEAL_FLOW, key, None
    plen = l4_len - l4hlen
    if plen == 0:
        return VERBATIM, key, None  # a pure ACK leaves the run open
    seq = _U32.unpack_from(view, l4off + TCP_SEQ)[0]
    return (
        CANDIDATE,
        key,
        _Candidate(view, IPPROTO_TCP, l4off, l4hlen, plen, seq, flags, addrs, None if verify else True),
    )


def _parse_udp(view: memoryview, ip_len: int, l4off: int, addrs: bytes, enabled: bool, verify: bool) -> Parsed:
    l4_len = ip_len - l4off
    if l4_len < UDP_HDR:
        return SEAL_ALL, None, None
    key = (IPPROTO_UDP, addrs, bytes(view[l4off : l4off + L4_PORTS_LEN]))
    if not enabled:
        return SEAL_FLOW, key, None
    plen = l4_len - UDP_HDR
    # a zero UDP checksum means "none": merging would add one, so keep it verbatim
    udp_length = _U16.unpack_from(view, l4off + UDP_LENGTH)[0]
    if udp_length != l4_len or plen == 0 or _U16.unpack_from(view, l4off + UDP_CSUM_OFFSET)[0] == 0:
        return SEAL_FLOW, key, None
    return CANDIDATE, key, _Candidate(view, IPPROTO_UDP, l4off, UDP_HDR, plen, 0, 0, addrs, None if verify else True)


def _joins(run: _Run, cand: _Candidate) -> bool:
    """Whether cand can be the next segment of run (same flow already known).

    Every field the kernel copies into each segment when it resegments is equal.
    """
    seed = run.seed
    if (
        cand.l4hlen != seed.l4hlen
        or cand.plen > run.gso_size
        or len(run.members) >= MAX_SEGMENTS
        or seed.l4off + seed.l4hlen + run.total + cand.plen > MAX_IP_PACKET
    ):
        return False
    a, b = cand.view, seed.view
    if seed.l4off == IPV4_MIN_HDR:  # IPv4: only IPv4 without options is a candidate
        # TOS, flags/DF, TTL equal; without DF the ID must count up from the seed's
        if a[IPV4_TOS] != b[IPV4_TOS] or a[IPV4_FRAG:IPV4_TTL] != b[IPV4_FRAG:IPV4_TTL] or a[IPV4_TTL] != b[IPV4_TTL]:
            return False
        if not _U16.unpack_from(b, IPV4_FRAG)[0] & IPV4_DF:
            expected = (_U16.unpack_from(b, IPV4_ID)[0] + len(run.members)) & 0xFFFF
            if _U16.unpack_from(a, IPV4_ID)[0] != expected:
                return False
    elif a[:IPV6_PAYLOAD_LENGTH] != b[:IPV6_PAYLOAD_LENGTH] or a[IPV6_HOP_LIMIT] != b[IPV6_HOP_LIMIT]:
        return False  # traffic class, flow label, hop limit
    if seed.proto == IPPROTO_TCP:
        o, h = seed.l4off, seed.l4hlen
        if (
            cand.seq != run.next_seq
            or (cand.flags & ~TCP_PSH) != seed.flags
            or a[o + TCP_ACK_SEQ : o + TCP_FLAGS] != b[o + TCP_ACK_SEQ : o + TCP_FLAGS]  # ack, data offset
            or a[o + TCP_WINDOW : o + TCP_CSUM_OFFSET] != b[o + TCP_WINDOW : o + TCP_CSUM_OFFSET]  # window
            or a[o + TCP_URG_PTR : o + h] != b[o + TCP_URG_PTR : o + h]  # urgent pointer, options
        ):
            return False
    return True


def _emit(run: _Run, protos: Sequence[object]) -> object:
    """The write for a run: its packet object, or the write_gso arguments."""
    if len(run.members) == 1:
        return run.obj
    seed = run.seed
    view, l4off, l4hlen = seed.view, seed.l4off, seed.l4hlen
    l4_total = l4hlen + run.total
    ip_hdr = bytearray(view[:l4off])
    if l4off == IPV4_MIN_HDR:
        _U16.pack_into(ip_hdr, IPV4_TOTAL_LENGTH, l4off + l4_total)
        _U16.pack_into(ip_hdr, IPV4_CHECKSUM, 0)
        _U16.pack_into(ip_hdr, IPV4_CHECKSUM, ipv4_header_checksum(ip_hdr))
        addrs = view[IPV4_SRC : IPV4_SRC + 2 * IPV4_ADDR_LEN]
    else:
        _U16.pack_into(ip_hdr, IPV6_PAYLOAD_LENGTH, l4_total)
        addrs = view[IPV6_SRC : IPV6_SRC + 2 * IPV6_ADDR_LEN]
    l4_hdr = bytearray(view[l4off : l4off + l4hlen])
    if seed.proto == IPPROTO_TCP:
        l4_hdr[TCP_FLAGS] |= run.closing_flags
        csum_at, proto = TCP_CSUM_OFFSET, protos[0]
    else:
        _U16.pack_into(l4_hdr, UDP_LENGTH, l4_total)
        csum_at, proto = UDP_CSUM_OFFSET, protos[1]
    # the partial checksum write_gso's NEEDS_CSUM header asks for: the folded pseudo-header sum
    _U16.pack_into(l4_hdr, csum_at, _pseudo_sum(bytes(addrs), seed.proto, l4_total))
    start = l4off + l4hlen
    payloads = [m.view[start : start + m.plen] for m in run.members]
    return (bytes(ip_hdr), bytes(l4_hdr), payloads, proto)


def plan(packets: Sequence[object], tcp: bool, udp: bool, verify: bool, protos: Sequence[object]) -> list:
    """The writes for ``packets``; see the module docstring for the rules.

    protos: the objects to pass as write_gso's proto for TCP and UDP runs.
    """
    items: list[object] = []  # packet objects and _Run objects, in output order
    open_runs: dict[FlowKey, _Run] = {}
    for obj in packets:
        outcome, key, cand = parse(byte_view(obj), tcp, udp, verify)
        if cand is None:  # not a CANDIDATE: written as it is, and it may seal open runs
            if outcome == SEAL_ALL:
                open_runs.clear()
            elif outcome == SEAL_FLOW and key is not None:
                open_runs.pop(key, None)
            items.append(obj)
            continue
        assert key is not None  # a candidate always has its flow
        run = open_runs.get(key)
        # Checksums are verified only where a merge depends on them (a packet written as it
        # is keeps its own): a seed that fails stays a run of one, written as it is; a
        # joiner that fails is written as it is and ends its flow's run, as it would have
        # had it been refused on arrival.
        if run is not None and (not _joins(run, cand) or not _checksum_ok(run.seed)):
            run = None
        if run is not None and not _checksum_ok(cand):
            del open_runs[key]
            items.append(obj)
            continue
        if run is not None:
            run.members.append(cand)
            run.total += cand.plen
            run.next_seq = (cand.seq + cand.plen) & 0xFFFFFFFF
            run.closing_flags = cand.flags & TCP_PSH
        else:
            run = _Run(obj, cand)
            items.append(run)
            open_runs[key] = run
        if cand.plen < run.gso_size or cand.flags & TCP_PSH:
            del open_runs[key]
    return [_emit(item, protos) if type(item) is _Run else item for item in items]
