"""The seed contract's rules: value types, clone, capabilities, supports_gso."""

import pytest

from tio_core import (
    NO_CAPABILITIES,
    Capabilities,
    GSOInfo,
    GSOProto,
    Packet,
    Queue,
    QueueClosed,
    QueueSet,
    queue_capabilities,
    supports_gso,
)


class PlainWriter:
    def write(self, data):
        return len(data)


class PermissiveGSO:
    def write_gso(self, ip_hdr, transport_hdr, payloads, proto):
        pass


class NegotiatedGSO(PermissiveGSO):
    def __init__(self, tso, uso):
        self.caps = Capabilities(tso, uso)

    def capabilities(self):
        return self.caps


def test_gso_info_zero_value_is_not_a_superpacket():
    assert not GSOInfo().is_superpacket
    assert GSOInfo(size=1448, hdr_len=40, csum_start=20, proto=GSOProto.TCP).is_superpacket


def test_value_types_are_immutable():
    info = GSOInfo(size=1)
    with pytest.raises(AttributeError):
        info.size = 2
    with pytest.raises(AttributeError):
        Capabilities().tso = True


def test_packet_clone_owns_a_copy_and_keeps_gso():
    buf = bytearray(b"\x45abcdef")
    info = GSOInfo(100, 40, 20, GSOProto.TCP)
    borrowed = Packet(memoryview(buf)[:4], info)
    copy = borrowed.clone()
    buf[:4] = b"zzzz"
    assert bytes(copy.data) == b"\x45abc"
    assert copy.gso == info
    assert isinstance(copy.data, memoryview)


def test_queue_capabilities_zero_without_provider():
    assert queue_capabilities(PlainWriter()) == NO_CAPABILITIES
    assert queue_capabilities(NegotiatedGSO(True, False)) == Capabilities(True, False)


@pytest.mark.parametrize("want", list(GSOProto))
def test_supports_gso_without_gso_writer(want):
    assert supports_gso(PlainWriter(), want) == (None, False)


@pytest.mark.parametrize("want", list(GSOProto))
def test_supports_gso_permissive_without_caps_provider(want):
    writer = PermissiveGSO()
    assert supports_gso(writer, want) == (writer, True)


@pytest.mark.parametrize(
    "tso,uso,want,expected",
    [
        (tso, uso, want, {GSOProto.TCP: tso, GSOProto.UDP: uso, GSOProto.NONE: False}[want])
        for tso in (False, True)
        for uso in (False, True)
        for want in GSOProto
    ],
)
def test_supports_gso_truth_table_with_caps(tso, uso, want, expected):
    writer = NegotiatedGSO(tso, uso)
    got_writer, ok = supports_gso(writer, want)
    assert got_writer is writer
    assert ok is expected


class ListQueue(Queue):
    def __init__(self):
        self.closed = False

    def read(self):
        if self.closed:
            raise QueueClosed("closed")
        return []

    def write(self, data):
        return len(data)

    def close(self):
        if self.closed:
            raise AssertionError("closed twice")
        self.closed = True


class ListSet(QueueSet):
    def __init__(self, n):
        self._queues = [ListQueue() for _ in range(n)]
        self.resources_closed = 0

    def queues(self):
        return list(self._queues)

    def add(self, fd):
        raise NotImplementedError

    def _close_resources(self):
        self.resources_closed += 1


def test_queue_set_close_is_idempotent_and_closes_every_queue():
    with ListSet(3) as qs:
        pass
    assert all(q.closed for q in qs.queues())
    qs.close()
    assert qs.resources_closed == 1
    assert qs.closed


def test_queue_set_close_keeps_closing_after_a_failure():
    qs = ListSet(3)
    qs.queues()[0].close()  # its second close will fail
    with pytest.raises(AssertionError):
        qs.close()
    assert all(q.closed for q in qs.queues())
    assert qs.resources_closed == 1
