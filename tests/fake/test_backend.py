"""FakeQueue / FakeQueueSet behaviour beyond the shared contract."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from tio_core import errors, kernels
from tio_core.contract import NO_GSO, Capabilities, CapsProvider, GSOProto, Packet, queue_capabilities, supports_gso
from tio_fake import (
    STALE_MARKER,
    FakeFdError,
    FakeQueue,
    FakeQueueSet,
    FdQueue,
    ReadTimeout,
    fake_pair,
    open_fake,
)
from tio_fake.packets import PacketFactory, payload_pattern
from tio_testing.threads import BackgroundRead

FACTORY = PacketFactory()


def udp(n: int) -> bytes:
    return FACTORY.udp(bytes([n]) * (10 + n), ip_id=n)


@pytest.fixture
def qs():
    queue_set = FakeQueueSet(max_batch=4)
    yield queue_set
    queue_set.close()


# -- inbound ----------------------------------------------------------------------
def test_inject_accepts_bytes_packets_and_scapy(qs):
    queue = qs[0]
    scapy_pkt = IPv6(src="fd00::2", dst="fd00::1") / UDP(sport=1, dport=2) / Raw(b"hi")
    superpacket = FACTORY.tso(3000, 1000)
    queue.inject(udp(1), bytearray(udp(2)), memoryview(udp(3)), scapy_pkt)
    queue.inject(superpacket, Packet(memoryview(udp(4))))
    first = queue.read()
    assert [bytes(p.data) for p in first] == [udp(1), udp(2), udp(3), bytes(scapy_pkt)]
    assert [p.gso for p in first] == [NO_GSO] * 4
    second = queue.read()
    assert bytes(second[0].data) == bytes(superpacket.data) and second[0].gso == superpacket.gso
    assert bytes(second[1].data) == udp(4)


def test_read_batches_at_most_max_batch(qs):
    qs.inject(*[udp(n) for n in range(10)])
    sizes = [len(qs[0].read()) for _ in range(3)]
    assert sizes == [4, 4, 2]
    assert qs[0].pending == 0


@pytest.mark.parametrize(
    "kind",
    [
        "empty",
        "bad_version",
        "truncated",
        "bad_ip_length",
        "bad_ihl",
        "gso_wrong_proto",
        "gso_bad_hdr_len",
        "gso_bad_csum_start",
    ],
)
def test_inject_rejects_what_a_tun_never_delivers(qs, kind):
    with pytest.raises(errors.MalformedPacket):
        qs[0].inject(udp(1), FACTORY.malformed(kind))
    assert qs[0].pending == 0  # all or nothing


def test_inject_without_validation_feeds_broken_packets(qs):
    broken = FACTORY.malformed("truncated")
    qs[0].inject(broken, validate=False)
    assert bytes(qs[0].read()[0].data) == broken


def test_inject_rejects_non_packets(qs):
    with pytest.raises(TypeError, match="int"):
        qs[0].inject(42)
    with pytest.raises(TypeError, match="GSOInfo"):
        qs[0].inject(udp(1), gso=(1, 2, 3, 4))


def test_borrowed_views_are_poisoned_and_released(qs):
    queue = qs[0]
    queue.inject(udp(1), udp(2))
    batch = queue.read()
    kept_slice = batch[0].data[:20]  # a derived view outlives release(): it shows the poison
    clone = batch[1].clone()
    queue.inject(udp(3))
    queue.read()
    with pytest.raises(ValueError):
        bytes(batch[0].data)
    assert bytes(kept_slice) == (STALE_MARKER * 2)[:20]
    assert bytes(clone.data) == udp(2)


def test_read_timeout_and_nonblocking():
    with open_fake(read_timeout=0.05) as queue_set:
        queue = queue_set[0]
        with pytest.raises(ReadTimeout) as info:
            queue.read()
        assert isinstance(info.value, TimeoutError)
        assert queue.read(block=False) == []
        queue.inject(udp(1))
        assert len(queue.read(timeout=None)) == 1
    with open_fake(blocking=False) as queue_set:
        assert queue_set[0].read() == []
        with pytest.raises(ReadTimeout):
            queue_set[0].read(timeout=0.01, block=True)


def test_end_of_stream_mode():
    with open_fake(end_of_stream=True) as queue_set:
        queue_set.inject(udp(1))
        assert len(queue_set[0].read()) == 1
        with pytest.raises(errors.EndOfStream):
            queue_set[0].read()


def test_blocked_reader_gets_packets_injected_from_another_thread(qs):
    results = []
    reader = threading.Thread(target=lambda: results.append(bytes(qs[0].read()[0].data)))
    reader.start()
    qs[0].inject(udp(7))
    reader.join(5)
    assert results == [udp(7)]


def test_close_wakes_blocked_reader_and_ends_inject(qs):
    reader = BackgroundRead(qs[0])
    reader.join(0.1)
    qs.close()
    reader.join(5)
    assert len(reader.outcome) == 1 and isinstance(reader.outcome[0], errors.QueueClosed)
    with pytest.raises(errors.QueueClosed):
        qs[0].inject(udp(1))


# -- outbound ----------------------------------------------------------------------
def test_writes_are_recorded_with_kind_and_arguments(qs):
    queue = qs[0]
    ip_hdr, l4_hdr, payloads, proto = FACTORY.gso_write_args(2500, 1000, GSOProto.UDP)
    queue.write(udp(1))
    queue.write_gso(ip_hdr, l4_hdr, payloads, proto)
    queue.write_gso(ip_hdr, l4_hdr, [], proto)
    kinds = [(r.kind, r.proto, len(r.payloads)) for r in queue.writes]
    assert kinds == [("write", GSOProto.NONE, 0), ("write_gso", GSOProto.UDP, 3), ("write_gso", GSOProto.UDP, 0)]
    record = queue.writes[1]
    assert (record.ip_hdr, record.transport_hdr, record.payloads) == (ip_hdr, l4_hdr, tuple(payloads))
    assert record.gso.size == 1000 and record.gso.proto == GSOProto.UDP
    assert record.vnet_hdr.gso_size == 1000


def test_written_packets_segmented_superpacket_and_scapy(qs):
    queue = qs[0]
    args = FACTORY.gso_write_args(payload_pattern(2500), 1000, GSOProto.TCP, version=6)
    queue.write(udp(1))
    queue.write_gso(*args)
    wire = queue.written_packets()
    assert len(wire) == 4 and wire[0] == udp(1)
    assert b"".join(bytes(p[TCP].payload) for p in queue.written_packets(scapy=True)[1:]) == payload_pattern(2500)
    assert all(PacketFactory.checksums_valid(p) for p in wire)
    supers = queue.written_packets(segmented=False)
    assert len(supers) == 2 and len(supers[1]) == 40 + 20 + 2500
    queue.clear()
    assert queue.written_packets() == [] and queue.writes == []


def test_write_rejects_what_a_tun_refuses(qs):
    for kind in ("empty", "bad_version", "truncated"):
        with pytest.raises(errors.MalformedPacket):
            qs[0].write(FACTORY.malformed(kind))
    with pytest.raises(TypeError):
        qs[0].write("not bytes")
    assert qs[0].writes == []


def test_write_gso_geometry_errors_match_plan_gso_write(qs):
    ip_hdr, l4_hdr, payloads, proto = FACTORY.gso_write_args(3000, 1000)
    with pytest.raises(errors.GSOGeometryError, match="all but the last must be 1000"):
        qs[0].write_gso(ip_hdr, l4_hdr, [payloads[0], payloads[1][:10], payloads[2]], proto)
    with pytest.raises(errors.GSOGeometryError, match="proto must be"):
        qs[0].write_gso(ip_hdr, l4_hdr, payloads, GSOProto.NONE)
    assert qs[0].writes == []


def test_single_fragment_write_gso_gets_a_finished_checksum(qs):
    ip_hdr, l4_hdr, payloads, proto = FACTORY.gso_write_args(700, 1000, GSOProto.UDP)
    assert len(payloads) == 1
    qs[0].write_gso(ip_hdr, l4_hdr, payloads, proto)
    assert not qs[0].writes[0].gso.is_superpacket
    (packet,) = qs[0].written_packets(scapy=True)
    assert bytes(packet[UDP].payload) == payloads[0]
    assert PacketFactory.checksums_valid(bytes(packet))


# -- capabilities ------------------------------------------------------------------
def test_default_queue_is_permissive_without_caps_provider(qs):
    assert isinstance(qs[0], FakeQueue) and not isinstance(qs[0], CapsProvider)
    assert queue_capabilities(qs[0]) == Capabilities()
    assert supports_gso(qs[0], GSOProto.TCP)[1] and supports_gso(qs[0], GSOProto.UDP)[1]


def test_capabilities_variant_refuses_unnegotiated_gso():
    with open_fake(capabilities="tso") as queue_set:
        queue = queue_set[0]
        assert queue_capabilities(queue) == Capabilities(tso=True, uso=False)
        assert supports_gso(queue, GSOProto.UDP) == (queue, False)
        with pytest.raises(errors.OffloadError, match="USO"):
            queue.write_gso(*FACTORY.gso_write_args(3000, 1000, GSOProto.UDP))
        queue.write_gso(*FACTORY.gso_write_args(900, 1000, GSOProto.UDP))  # one fragment needs no USO
        queue.write_gso(*FACTORY.gso_write_args(3000, 1000, GSOProto.TCP))
        assert len(queue.written_packets()) == 4


@pytest.mark.parametrize("text", ["tso,uso,gro", 5, "TSO;USO"])
def test_bad_options_are_config_errors(text):
    with pytest.raises(errors.ConfigError):
        open_fake(capabilities=text)


@pytest.mark.parametrize("options", [{"queues": 0}, {"max_batch": 0}, {"read_timeout": -1}, {"queues": True}])
def test_bad_sizes_are_config_errors(options):
    with pytest.raises(errors.ConfigError):
        open_fake(**options)


def test_registry_validates_option_types():
    from tio_core import open_backend

    with pytest.raises(errors.ConfigError, match="max_batch"):
        open_backend("fake", max_batch="8")
    with open_backend("fake", queues=3, capabilities="tso,uso") as queue_set:
        assert len(queue_set.queues()) == 3
        assert all(queue_capabilities(q) == Capabilities(True, True) for q in queue_set.queues())


# -- add(fd) -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_SEQPACKET])
def test_add_wraps_a_datagram_socket(qs, kind):
    ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
    with theirs:
        queue = qs.add(ours.detach())
        assert isinstance(queue, FdQueue) and qs.queues()[-1] is queue
        theirs.send(udp(1))
        theirs.send(udp(2))
        assert [bytes(p.data) for p in queue.read(timeout=5)] == [udp(1), udp(2)]
        queue.write_gso(*FACTORY.gso_write_args(2100, 1000, GSOProto.TCP))
        received = [theirs.recv(65535) for _ in range(3)]
        assert received == queue.written_packets()
        fd = queue.fileno()
        qs.close()
        with pytest.raises(OSError):
            socket.socket(fileno=fd)  # the set owned and closed the descriptor


def test_add_fd_reader_woken_by_close(qs):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with theirs:
        queue = qs.add(ours.detach())
        outcome = []
        reader = threading.Thread(target=lambda: outcome.append(pytest.raises(errors.QueueClosed, queue.read)))
        reader.start()
        reader.join(0.1)
        assert reader.is_alive()
        queue.close()
        reader.join(5)
        assert not reader.is_alive() and len(outcome) == 1


def test_add_rejects_unusable_descriptors(qs):
    read_end, write_end = os.pipe()
    stream_a, stream_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with pytest.raises(FakeFdError, match="not a socket"):
            qs.add(read_end)
        with pytest.raises(FakeFdError, match="SOCK_STREAM"):
            qs.add(stream_a.fileno())
        stream_a.send(b"x")  # still open: a refused fd is left to its owner
        with pytest.raises(FakeFdError):
            qs.add("3")
        assert len(qs.queues()) == 1
        qs.close()
        with pytest.raises(errors.QueueClosed):
            qs.add(stream_a.fileno())
    finally:
        os.close(read_end)
        os.close(write_end)
        stream_a.close()
        stream_b.close()


def test_fd_queue_with_capabilities_is_a_caps_provider():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with theirs, open_fake(capabilities="tso") as queue_set:
        queue = queue_set.add(ours.detach())
        assert queue_capabilities(queue) == Capabilities(tso=True)
        with pytest.raises(errors.OffloadError):
            queue.write_gso(*FACTORY.gso_write_args(2100, 1000, GSOProto.UDP))


# -- pair --------------------------------------------------------------------------
def test_pair_delivers_segmented():
    left, right = fake_pair(max_batch=64)
    with left, right:
        args = FACTORY.gso_write_args(payload_pattern(3500), 1000, GSOProto.TCP)
        left[0].write(udp(1))
        left[0].write_gso(*args)
        got = right[0].read()
        assert [bytes(p.data) for p in got] == left[0].written_packets()
        assert all(p.gso == NO_GSO for p in got) and len(got) == 5
        right[0].write(udp(9))
        assert bytes(left[0].read()[0].data) == udp(9)


def test_pair_delivers_superpackets_that_segment_like_the_kernel():
    left, right = fake_pair(deliver="superpacket")
    with left, right:
        args = FACTORY.gso_write_args(payload_pattern(3500), 1000, GSOProto.UDP, version=6)
        left[0].write_gso(*args)
        left[0].write_gso(*FACTORY.gso_write_args(999, 1000, GSOProto.UDP, version=6))
        superpacket, single = right[0].read()
        assert superpacket.gso.is_superpacket and superpacket.gso.size == 1000
        segments = [bytes(s) for s in kernels.segment(superpacket)]
        assert segments == left[0].written_packets()[:4]
        assert not single.gso.is_superpacket and PacketFactory.checksums_valid(single.data)


def test_pair_counts_packets_written_after_peer_closed():
    left, right = fake_pair()
    with left:
        right.close()
        left[0].write(udp(1))
        assert left[0].peer_drops == 1 and left[0].written_packets() == [udp(1)]


def test_pair_rejects_unknown_delivery():
    with pytest.raises(errors.ConfigError, match="deliver"):
        fake_pair(deliver="teleport")


def test_scapy_ip_objects_for_ipv4(qs):
    qs[0].write(udp(3))
    (pkt,) = qs.written_packets(scapy=True)
    assert isinstance(pkt, IP) and pkt[IP].id == 3


# -- properties ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=120), version=st.sampled_from([None, 4, 6]))
def test_inject_random_bytes_is_queued_or_malformed(data, version):
    if version and data:
        data = bytes([version << 4 | (data[0] & 0x0F)]) + data[1:]
    with open_fake(blocking=False) as queue_set:
        try:
            queue_set.inject(data)
        except errors.MalformedPacket:
            assert queue_set[0].pending == 0
        else:
            assert [bytes(p.data) for p in queue_set[0].read()] == [data]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=1500), min_size=0, max_size=6),
    proto=st.sampled_from([GSOProto.TCP, GSOProto.UDP]),
    version=st.sampled_from([4, 6]),
)
def test_write_gso_random_geometry_is_recorded_exactly_or_refused(sizes, proto, version):
    payloads = [payload_pattern(n, 7 * i) for i, n in enumerate(sizes)]
    total = sum(sizes) or 1
    ip_hdr, l4_hdr, _, _ = FACTORY.gso_write_args(total, max(total, 1), proto, version=version)
    with open_fake() as queue_set:
        queue = queue_set[0]
        try:
            queue.write_gso(ip_hdr, l4_hdr, payloads, proto)
        except errors.GSOGeometryError as exc:
            assert isinstance(exc, errors.TioError) and queue.written_packets() == []
            return
        wire = queue.written_packets(scapy=True)
        layer = TCP if proto == GSOProto.TCP else UDP
        assert [bytes(p[layer].payload) for p in wire] == payloads
        assert all(PacketFactory.checksums_valid(bytes(p)) for p in wire)
