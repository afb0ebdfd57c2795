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
  flags, no payload), which seals nothing.
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

from tio_core.kernels._pykernels import checksum, ipv4_header_checksum, pseudo_header_sum
from tio_core.wire import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_DF,
    MAX_IP_PACKET,
    TCP_ACK,
    TCP_ECE,
    TCP_PSH,
    UDP_GSO_MAX_SEGMENTS_OLD,
)

# IPv6 next-header values that are extension headers (the L4 header follows later)
IPV6_EXTENSION_HEADERS = frozenset({0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254})

# Runs are written with write_gso: at most what every kernel takes in one UDP
# GSO write (below plan_gso_write's caps); used for TCP too.
MAX_SEGMENTS = UDP_GSO_MAX_SEGMENTS_OLD
TCP_MERGEABLE_FLAGS = TCP_ACK | TCP_PSH | TCP_ECE

# outcome of parsing one packet
SEAL_ALL = 0  # verbatim; flow unknown, so every open run is sealed
VERBATIM = 1  # verbatim; seals nothing (other protocol, pure ACK)
SEAL_FLOW = 2  # verbatim; seals its own flow's open run
CANDIDATE = 3  # may join or start a run

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class _Candidate:
    """What the run builder needs to know about a mergeable packet."""

    __slots__ = ("view", "proto", "l4off", "l4hlen", "plen", "seq", "flags")

    def __init__(self, view, proto, l4off, l4hlen, plen, seq, flags):
        self.view = view
        self.proto = proto
        self.l4off = l4off
        self.l4hlen = l4hlen
        self.plen = plen
        self.seq = seq
        self.flags = flags


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
            view = memoryview(obj)
        except TypeError:
            raise TypeError(f"packet {index} is a {type(obj).__name__}, not a bytes-like object") from None
        except ValueError as exc:  # a released memoryview
            raise TypeError(f"packet {index} is not a readable C-contiguous buffer ({exc})") from None
        if not view.c_contiguous:
            raise TypeError(f"packet {index} is not a readable C-contiguous buffer (strided)")


def _l4_checksum_ok(view: memoryview, l4off: int, ip_len: int, proto: int) -> bool:
    if l4off == 20:
        src, dst = view[12:16], view[16:20]
    else:
        src, dst = view[8:24], view[24:40]
    seed = pseudo_header_sum(bytes(src), bytes(dst), proto, ip_len - l4off)
    return checksum(view[l4off:ip_len], seed) == 0xFFFF


def parse(view: memoryview, tcp: bool, udp: bool, verify: bool):
    """Classify one packet: (outcome, flow key or None, _Candidate or None)."""
    n = len(view)
    version = view[0] >> 4 if n else 0
    if version == 4:
        if n < 20 or view[0] != 0x45:  # shorter, or carries options
            return SEAL_ALL, None, None
        ip_len = _U16.unpack_from(view, 2)[0]
        if ip_len < 20 or ip_len > n or _U16.unpack_from(view, 6)[0] & ~IPV4_DF:
            return SEAL_ALL, None, None
        if verify and checksum(view[:20]) != 0xFFFF:
            return SEAL_ALL, None, None
        l4off, proto, addrs = 20, view[9], bytes(view[12:20])
    elif version == 6:
        if n < 40:
            return SEAL_ALL, None, None
        ip_len = 40 + _U16.unpack_from(view, 4)[0]
        if ip_len > n:
            return SEAL_ALL, None, None
        l4off, proto, addrs = 40, view[6], bytes(view[8:40])
        if proto in IPV6_EXTENSION_HEADERS:
            return SEAL_ALL, None, None
    else:
        return SEAL_ALL, None, None

    l4_len = ip_len - l4off
    if proto == IPPROTO_TCP:
        if l4_len < 20:
            return SEAL_ALL, None, None
        l4hlen = (view[l4off + 12] >> 4) * 4
        if l4hlen < 20 or l4hlen > l4_len:
            return SEAL_ALL, None, None
        key = (proto, addrs, bytes(view[l4off : l4off + 4]))
        if not tcp:
            return SEAL_FLOW, key, None
        flags = view[l4off + 13]
        if view[l4off + 12] & 0x0F or flags & ~TCP_MERGEABLE_FLAGS or not flags & TCP_ACK:
            return SEAL_FLOW, key, None
        plen = l4_len - l4hlen
        if plen == 0:
            return VERBATIM, key, None  # a pure ACK leaves the run open
        if verify and not _l4_checksum_ok(view, l4off, ip_len, proto):
            return SEAL_FLOW, key, None
        seq = _U32.unpack_from(view, l4off + 4)[0]
        return CANDIDATE, key, _Candidate(view, proto, l4off, l4hlen, plen, seq, flags)
    if proto == IPPROTO_UDP:
        if l4_len < 8:
            return SEAL_ALL, None, None
        key = (proto, addrs, bytes(view[l4off : l4off + 4]))
        if not udp:
            return SEAL_FLOW, key, None
        plen = l4_len - 8
        # a zero UDP checksum means "none": merging would add one, so keep it verbatim
        if _U16.unpack_from(view, l4off + 4)[0] != l4_len or plen == 0 or _U16.unpack_from(view, l4off + 6)[0] == 0:
            return SEAL_FLOW, key, None
        if verify and not _l4_checksum_ok(view, l4off, ip_len, proto):
            return SEAL_FLOW, key, None
        return CANDIDATE, key, _Candidate(view, proto, l4off, 8, plen, 0, 0)
    return VERBATIM, None, None


def _joins(run: _Run, cand: _Candidate) -> bool:
    """Whether cand can be the next segment of run (same flow already known)."""
    seed = run.seed
    if (
        cand.l4hlen != seed.l4hlen
        or cand.plen > run.gso_size
        or len(run.members) >= MAX_SEGMENTS
        or seed.l4off + seed.l4hlen + run.total + cand.plen > MAX_IP_PACKET
    ):
        return False
    a, b = cand.view, seed.view
    if seed.l4off == 20:
        # TOS, flags/DF, TTL equal; without DF the ID must count up from the seed's
        if a[1] != b[1] or a[6:8] != b[6:8] or a[8] != b[8]:
            return False
        if not b[6] & 0x40:
            expected = (_U16.unpack_from(b, 4)[0] + len(run.members)) & 0xFFFF
            if _U16.unpack_from(a, 4)[0] != expected:
                return False
    elif a[0:4] != b[0:4] or a[7] != b[7]:  # traffic class, flow label, hop limit
        return False
    if seed.proto == IPPROTO_TCP:
        o, h = seed.l4off, seed.l4hlen
        if (
            cand.seq != run.next_seq
            or (cand.flags & ~TCP_PSH) != seed.flags
            or a[o + 8 : o + 13] != b[o + 8 : o + 13]  # ack, data offset
            or a[o + 14 : o + 16] != b[o + 14 : o + 16]  # window
            or a[o + 18 : o + h] != b[o + 18 : o + h]  # urgent pointer, options
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
    if l4off == 20:
        _U16.pack_into(ip_hdr, 2, l4off + l4_total)
        _U16.pack_into(ip_hdr, 10, 0)
        _U16.pack_into(ip_hdr, 10, ipv4_header_checksum(ip_hdr))
        src, dst = bytes(view[12:16]), bytes(view[16:20])
    else:
        _U16.pack_into(ip_hdr, 4, l4_total)
        src, dst = bytes(view[8:24]), bytes(view[24:40])
    l4_hdr = bytearray(view[l4off : l4off + l4hlen])
    if seed.proto == IPPROTO_TCP:
        l4_hdr[13] |= run.closing_flags
        csum_at, proto = 16, protos[0]
    else:
        _U16.pack_into(l4_hdr, 4, l4_total)
        csum_at, proto = 6, protos[1]
    _U16.pack_into(l4_hdr, csum_at, pseudo_header_sum(src, dst, seed.proto, l4_total))
    start = l4off + l4hlen
    payloads = [m.view[start : start + m.plen] for m in run.members]
    return (bytes(ip_hdr), bytes(l4_hdr), payloads, proto)


def plan(packets: Sequence[object], tcp: bool, udp: bool, verify: bool, protos: Sequence[object]) -> list:
    """The writes for ``packets``; see the module docstring for the rules.

    protos: the objects to pass as write_gso's proto for TCP and UDP runs.
    """
    items: list[object] = []  # packet objects and _Run objects, in output order
    open_runs: dict[tuple, _Run] = {}
    for obj in packets:
        outcome, key, cand = parse(byte_view(obj), tcp, udp, verify)
        if outcome != CANDIDATE:
            if outcome == SEAL_ALL:
                open_runs.clear()
            elif outcome == SEAL_FLOW:
                open_runs.pop(key, None)
            items.append(obj)
            continue
        run = open_runs.get(key)
        if run is not None and _joins(run, cand):
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
