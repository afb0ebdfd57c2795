"""The seed contract as one pytest class every backend runs.

A backend test module subclasses BackendContractTests and provides a
``harness`` fixture (see tests/contract/harness.py). The expected packets
are built here with scapy, independently of tio's own packet kernels, so the
suite also checks that a backend segments GSO writes as the kernel does.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from tests.contract.harness import ContractHarness
from tio_core.contract import (
    NO_CAPABILITIES,
    NO_GSO,
    CapsProvider,
    GSOProto,
    GSOWriter,
    Packet,
    QueueSet,
    queue_capabilities,
    supports_gso,
)
from tio_core.errors import EndOfStream, GSOGeometryError, QueueClosed, TioError

V4_SRC, V4_DST = "198.18.0.2", "198.18.0.1"
V6_SRC, V6_DST = "fd00::2", "fd00::1"


# -- packet building (scapy, independent of tio_core.kernels) -----------------
def inbound_packets(count: int, start: int = 0) -> list[bytes]:
    """Distinct, valid packets cycling through IPv4/IPv6 x UDP/TCP.

    Every packet differs from its neighbours in its first 8 bytes (IPv4 id /
    total length, IPv6 flow label / payload length) so overwritten memory is
    visible.
    """
    packets = []
    for n in range(start, start + count):
        payload = bytes([n & 0xFF]) * (20 + n % 300)
        kind = n % 4
        if kind == 0:
            pkt = IP(src=V4_SRC, dst=V4_DST, id=n + 1) / UDP(sport=40000 + n % 1000, dport=5000) / Raw(payload)
        elif kind == 1:
            pkt = (
                IP(src=V4_SRC, dst=V4_DST, id=n + 1)
                / TCP(sport=40000, dport=5001, seq=n * 1000, flags="PA")
                / Raw(payload)
            )
        elif kind == 2:
            pkt = IPv6(src=V6_SRC, dst=V6_DST, fl=n + 1) / UDP(sport=40000, dport=5002) / Raw(payload)
        else:
            pkt = IPv6(src=V6_SRC, dst=V6_DST, fl=n + 1) / TCP(sport=40000, dport=5003, seq=n, flags="A") / Raw(payload)
        packets.append(bytes(pkt))
    return packets


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return _fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


def gso_pieces(version: int, proto: GSOProto, payloads: list[bytes], tcp_flags: str = "PA"):
    """(ip_hdr, l4_hdr) for a write_gso of ``payloads``, as a coalescer fills them.

    Lengths cover the whole superpacket; the L4 checksum field holds the
    folded, not inverted, pseudo-header sum (virtio NEEDS_CSUM).
    """
    total = sum(map(len, payloads))
    if proto == GSOProto.TCP:
        l4 = bytearray(bytes(TCP(sport=41000, dport=6000, seq=1_000_000, ack=77, flags=tcp_flags, window=512)))
        l4[16:18] = b"\0\0"
        proto_num = 6
    else:
        l4 = bytearray(bytes(UDP(sport=41001, dport=6001, len=8 + total)))
        proto_num = 17
    l4_len = len(l4) + total
    if version == 4:
        ip = bytes(IP(src=V4_SRC, dst=V4_DST, id=0x1234, ttl=61, tos=0x10, proto=proto_num, len=20 + l4_len))
        pseudo = _sum16(_addr4(V4_SRC) + _addr4(V4_DST) + struct.pack("!HH", proto_num, l4_len))
    else:
        ip = bytes(IPv6(src=V6_SRC, dst=V6_DST, hlim=61, tc=0x10, nh=proto_num, plen=l4_len))
        pseudo = _sum16(_addr6(V6_SRC) + _addr6(V6_DST) + struct.pack("!IxxxB", l4_len, proto_num))
    offset = 16 if proto == GSOProto.TCP else 6
    l4[offset : offset + 2] = struct.pack("!H", pseudo)
    return ip, bytes(l4)


def _addr4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def _addr6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def expected_segments(version: int, proto: GSOProto, payloads: list[bytes], tcp_flags: str = "PA") -> list[bytes]:
    """What the kernel delivers for that write_gso: one valid packet per fragment."""
    out = []
    seq = 1_000_000
    flags = TCP(flags=tcp_flags).flags
    for index, fragment in enumerate(payloads):
        last = index == len(payloads) - 1
        if proto == GSOProto.TCP:
            seg_flags = int(flags)
            if not last:
                seg_flags &= ~0x09  # FIN and PSH only on the last segment
            if index:
                seg_flags &= ~0x80  # CWR only on the first
            l4 = TCP(sport=41000, dport=6000, seq=seq, ack=77, flags=seg_flags, window=512)
            seq += len(fragment)
        else:
            l4 = UDP(sport=41001, dport=6001)
        if version == 4:
            ip = IP(src=V4_SRC, dst=V4_DST, id=(0x1234 + index) & 0xFFFF, ttl=61, tos=0x10)
        else:
            ip = IPv6(src=V6_SRC, dst=V6_DST, hlim=61, tc=0x10)
        out.append(bytes(ip / l4 / Raw(fragment)))
    return out


def describe(packets: list[bytes]) -> list[str]:
    """Readable diff material for assertion messages."""
    lines = []
    for data in packets:
        pkt = IP(data) if data and data[0] >> 4 == 4 else IPv6(data)
        lines.append(pkt.summary() + f" len={len(data)}")
    return lines


# -- reading helpers ----------------------------------------------------------
def read_exactly(harness: ContractHarness, qs: QueueSet, count: int, on_batch: Callable | None = None) -> list[bytes]:
    """Read until ``count`` packets arrived; copies their bytes.

    A watchdog closes the set after harness.read_timeout so that a lost
    packet fails the test (the blocked read raises QueueClosed) instead of
    hanging it.
    """
    queue = qs.queues()[0]
    got: list[bytes] = []
    watchdog = threading.Timer(harness.read_timeout, qs.close)
    watchdog.daemon = True
    watchdog.start()
    try:
        while len(got) < count:
            try:
                batch = queue.read()
            except QueueClosed as exc:
                pytest.fail(f"read ended with {exc!r} after {len(got)} of {count} packets")
            assert isinstance(batch, list) and batch, f"read() returned {batch!r}; it must block until packets exist"
            assert len(batch) <= harness.max_batch, (
                f"read() returned {len(batch)} packets, harness max_batch is {harness.max_batch}"
            )
            for packet in batch:
                assert isinstance(packet, Packet)
                assert isinstance(packet.data, memoryview), type(packet.data)
                got.append(bytes(packet.data))
            if on_batch is not None:
                on_batch(batch)
    finally:
        watchdog.cancel()
    return got


class BackendContractTests:
    """Seed-contract behaviour every backend must show. Subclass and add a ``harness`` fixture."""

    # -- read ---------------------------------------------------------------
    def test_queue_set_has_queue_zero(self, harness):
        with harness.open(inbound_packets(1)) as qs:
            queues = qs.queues()
            assert isinstance(queues, list) and len(queues) >= 1
            assert queues == qs.queues()  # stable order
            assert read_exactly(harness, qs, 1) == inbound_packets(1)

    def test_read_returns_inbound_in_order_as_memoryviews(self, harness):
        packets = inbound_packets(harness.max_batch * 2 + 5)
        with harness.open(packets) as qs:
            batches: list[list[Packet]] = []
            got = read_exactly(harness, qs, len(packets), lambda b: batches.append([p.gso for p in b]))
        assert got == packets, describe(got[:8])
        assert all(gso == NO_GSO for batch in batches for gso in batch)
        assert len(batches) >= 3  # max_batch forces several reads

    def test_clone_survives_next_read(self, harness):
        packets = inbound_packets(harness.max_batch + 3)
        with harness.open(packets) as qs:
            clones: list[Packet] = []
            firsts: list[Packet] = []

            def keep(batch):
                if not clones:
                    firsts.extend(batch)
                    clones.extend(p.clone() for p in batch)

            read_exactly(harness, qs, len(packets), keep)
            assert [bytes(c.data) for c in clones] == packets[: len(clones)]
            assert [c.gso for c in clones] == [p.gso for p in firsts]
            assert all(isinstance(c.data, memoryview) for c in clones)

    def test_borrowed_views_end_at_next_read(self, harness):
        packets = inbound_packets(harness.max_batch + 3)
        with harness.open(packets) as qs:
            batches: list[list[Packet]] = []
            read_exactly(harness, qs, len(packets), batches.append)
            assert len(batches) >= 2
            first, later = batches[0], batches[1:]
            if harness.borrow_invalidates:
                for packet in first:
                    with pytest.raises(ValueError):
                        bytes(packet.data)
            else:
                owner = first[0].data.obj
                assert owner is not None
                for batch in later:
                    for packet in batch:
                        assert packet.data.obj is owner, "views must come from the one reused per-queue buffer"

    def test_close_releases_borrowed_views(self, harness):
        packets = inbound_packets(2)
        qs = harness.open(packets)
        batch: list[Packet] = []
        try:
            read_exactly(harness, qs, 2, batch.extend)
        finally:
            qs.close()
        if harness.borrow_invalidates:
            for packet in batch:
                with pytest.raises(ValueError):
                    bytes(packet.data)

    def test_read_past_the_inbound(self, harness):
        packets = inbound_packets(3)
        qs = harness.open(packets)
        try:
            read_exactly(harness, qs, 3)
            queue = qs.queues()[0]
            if harness.finite:
                with pytest.raises(EndOfStream):
                    queue.read()
                with pytest.raises(EndOfStream):
                    queue.read()  # stays at the end
            else:
                outcome: list[object] = []

                def blocked_reader():
                    try:
                        outcome.append(queue.read())
                    except BaseException as exc:  # the result under test
                        outcome.append(exc)

                reader = threading.Thread(target=blocked_reader, daemon=True)
                reader.start()
                reader.join(0.2)
                assert reader.is_alive() and not outcome, f"read past the inbound returned {outcome!r}"
                qs.close()
                reader.join(5)
                assert not reader.is_alive(), "close() did not wake the blocked reader"
                assert len(outcome) == 1 and isinstance(outcome[0], QueueClosed), outcome
        finally:
            qs.close()

    # -- write ----------------------------------------------------------------
    def test_write_appears_in_outbound(self, harness):
        sent = inbound_packets(6, start=500)
        with harness.open([]) as qs:
            queue = qs.queues()[0]
            for data in sent:
                assert queue.write(data) == len(data)
            queue.write(bytearray(sent[0]))
            queue.write(memoryview(sent[1]))
            got = harness.outbound(qs, len(sent) + 2)
        assert got == sent + sent[:2], describe(got)

    @pytest.mark.parametrize("version", [4, 6])
    @pytest.mark.parametrize("proto", [GSOProto.TCP, GSOProto.UDP], ids=["tcp", "udp"])
    def test_write_gso_appears_segmented(self, harness, version, proto):
        payloads = [bytes([i]) * 1200 for i in range(1, 5)] + [b"\xee" * 333]
        with harness.open([]) as qs:
            queue = qs.queues()[0]
            writer, ok = supports_gso(queue, proto)
            if not ok:
                pytest.skip(f"queue does not offer write_gso for {proto.name}")
            ip, l4 = gso_pieces(version, proto, payloads)
            assert writer.write_gso(ip, l4, payloads, proto) is None
            got = harness.outbound(qs, len(payloads))
        want = expected_segments(version, proto, payloads)
        assert got == want, (describe(got), describe(want))

    def test_write_gso_single_fragment_is_one_checksummed_packet(self, harness):
        payloads = [b"single" * 50]
        with harness.open([]) as qs:
            writer, ok = supports_gso(qs.queues()[0], GSOProto.TCP)
            if not ok:
                pytest.skip("queue does not offer write_gso for TCP")
            writer.write_gso(*gso_pieces(4, GSOProto.TCP, payloads), payloads, GSOProto.TCP)
            got = harness.outbound(qs, 1)
        assert got == expected_segments(4, GSOProto.TCP, payloads)

    @pytest.mark.parametrize("flags", ["FPA", "CA"], ids=["fin-psh", "cwr"])
    def test_write_gso_flag_rules(self, harness, flags):
        """FIN and PSH end up on the last segment only, CWR on the first only."""
        payloads = [b"a" * 1000, b"b" * 1000, b"c" * 10]
        with harness.open([]) as qs:
            writer, ok = supports_gso(qs.queues()[0], GSOProto.TCP)
            if not ok:
                pytest.skip("queue does not offer write_gso for TCP")
            writer.write_gso(*gso_pieces(6, GSOProto.TCP, payloads, flags), payloads, GSOProto.TCP)
            got = harness.outbound(qs, 3)
        assert got == expected_segments(6, GSOProto.TCP, payloads, flags), describe(got)

    def test_write_gso_takes_any_buffer_type(self, harness):
        payloads = [b"m" * 800, b"n" * 800, b"o" * 800]
        with harness.open([]) as qs:
            writer, ok = supports_gso(qs.queues()[0], GSOProto.UDP)
            if not ok:
                pytest.skip("queue does not offer write_gso for UDP")
            ip, l4 = gso_pieces(4, GSOProto.UDP, payloads)
            source = bytearray(b"".join(payloads))
            views = [memoryview(source)[i * 800 : (i + 1) * 800] for i in range(3)]
            writer.write_gso(bytearray(ip), memoryview(l4), [views[0], bytearray(payloads[1]), views[2]], GSOProto.UDP)
            got = harness.outbound(qs, 3)
        assert got == expected_segments(4, GSOProto.UDP, payloads), describe(got)

    def test_write_gso_geometry_errors_emit_nothing(self, harness):
        good = [b"x" * 100, b"y" * 100]
        ip, l4 = gso_pieces(4, GSOProto.TCP, good)
        udp_ip, udp_l4 = gso_pieces(4, GSOProto.UDP, good)
        bad_calls = {
            "unknown proto": (ip, l4, good, GSOProto.NONE),
            "short tcp header": (ip, l4[:12], good, GSOProto.TCP),
            "short ip header": (ip[:12], l4, good, GSOProto.TCP),
            "bad ip version": (b"\x75" + ip[1:], l4, good, GSOProto.TCP),
            "empty fragment": (ip, l4, [b"x" * 100, b""], GSOProto.TCP),
            "unequal fragments": (ip, l4, [b"x" * 100, b"y" * 120], GSOProto.TCP),
            "short middle fragment": (ip, l4, [b"x" * 100, b"y" * 50, b"z" * 100], GSOProto.TCP),
            "too many fragments": (ip, l4, [b"x"] * 251, GSOProto.TCP),
            "over 65535 bytes": (ip, l4, [b"x" * 30000] * 3, GSOProto.TCP),
            # the kernel takes these (or not) silently and drops or mangles the segments
            "more UDP segments than the kernel takes": (udp_ip, udp_l4, [b"x"] * 129, GSOProto.UDP),
            "IP protocol is not proto": (udp_ip, l4, good, GSOProto.TCP),
            "IHL disagrees with the IP header": (bytes([0x46]) + ip[1:], l4, good, GSOProto.TCP),
            "TCP data offset disagrees": (ip, l4[:12] + bytes([0x60]) + l4[13:], good, GSOProto.TCP),
            "UDP header is not 8 bytes": (udp_ip, udp_l4 + bytes(4), good, GSOProto.UDP),
        }
        with harness.open([]) as qs:
            queue = qs.queues()[0]
            writer, ok = supports_gso(queue, GSOProto.TCP)
            if writer is None:
                pytest.skip("queue is not a GSOWriter")
            for name, args in bad_calls.items():
                with pytest.raises(GSOGeometryError) as info:
                    writer.write_gso(*args)
                assert isinstance(info.value, ValueError) and isinstance(info.value, TioError), name
            assert writer.write_gso(ip, l4, [], GSOProto.TCP) is None  # empty list: no-op
            marker = inbound_packets(1, start=900)[0]
            queue.write(marker)
            got = harness.outbound(qs, 1)
        assert got == [marker], describe(got)

    # -- capabilities -------------------------------------------------------------
    def test_capabilities_consistent_with_supports_gso(self, harness):
        with harness.open([]) as qs:
            for queue in qs.queues():
                caps = queue_capabilities(queue)
                tcp_writer, tcp_ok = supports_gso(queue, GSOProto.TCP)
                udp_writer, udp_ok = supports_gso(queue, GSOProto.UDP)
                _, none_ok = supports_gso(queue, GSOProto.NONE)
                if not isinstance(queue, GSOWriter):
                    assert (tcp_writer, tcp_ok, udp_writer, udp_ok) == (None, False, None, False)
                elif isinstance(queue, CapsProvider):
                    assert (tcp_ok, udp_ok) == (caps.tso, caps.uso)
                    assert tcp_writer is queue and not none_ok
                    assert caps == queue.capabilities()
                else:  # permissive GSOWriter, as the seed's fakes
                    assert caps == NO_CAPABILITIES
                    assert tcp_ok and udp_ok and tcp_writer is queue

    # -- close ----------------------------------------------------------------
    def test_close_is_idempotent_and_ends_io(self, harness):
        packet = inbound_packets(1)[0]
        qs = harness.open([])
        queue = qs.queues()[0]
        queue.close()
        queue.close()
        with pytest.raises(QueueClosed):
            queue.read()
        with pytest.raises(QueueClosed):
            queue.write(packet)
        if isinstance(queue, GSOWriter):
            payloads = [b"p" * 100, b"q" * 100]
            with pytest.raises(QueueClosed):
                queue.write_gso(*gso_pieces(4, GSOProto.UDP, payloads), payloads, GSOProto.UDP)
        qs.close()
        qs.close()
        assert qs.closed

    @pytest.mark.parametrize("closer", ["queue", "set"])
    def test_write_gso_on_a_closed_queue_raises_queue_closed_whatever_the_arguments(self, harness, closer):
        payloads = [b"p" * 100, b"q" * 100]
        ip, l4 = gso_pieces(4, GSOProto.UDP, payloads)
        shapes = {
            "valid": (ip, l4, payloads, GSOProto.UDP),
            "no payloads": (ip, l4, [], GSOProto.UDP),
            "unknown proto": (ip, l4, payloads, GSOProto.NONE),
            "empty headers": (b"", b"", payloads, GSOProto.TCP),
            "pieces disagree": (ip, l4, payloads, GSOProto.TCP),
            "unequal fragments": (ip, l4, [b"p" * 100, b"q" * 120], GSOProto.UDP),
            "too many fragments": (ip, l4, [b"p"] * 300, GSOProto.UDP),
        }
        qs = harness.open([])
        queue = qs.queues()[0]
        if not isinstance(queue, GSOWriter):
            qs.close()
            pytest.skip("queue is not a GSOWriter")
        (queue if closer == "queue" else qs).close()
        for name, args in shapes.items():
            with pytest.raises(QueueClosed):
                queue.write_gso(*args)
                pytest.fail(f"write_gso on a closed queue must raise QueueClosed ({name} arguments)")
        qs.close()

    def test_set_close_closes_every_queue(self, harness):
        packet = inbound_packets(1)[0]
        qs = harness.open([])
        queues = qs.queues()
        qs.close()
        assert qs.closed
        for queue in queues:
            with pytest.raises(QueueClosed):
                queue.read()
            with pytest.raises(QueueClosed):
                queue.write(packet)
        qs.close()

    def test_context_manager_closes_queues(self, harness):
        packet = inbound_packets(1)[0]
        with harness.open([]) as qs:
            queue = qs.queues()[0]
            assert not qs.closed
        assert qs.closed
        with pytest.raises(QueueClosed):
            queue.write(packet)
        with pytest.raises(QueueClosed):
            queue.read()
