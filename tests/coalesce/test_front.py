"""The public objects: lane selection, refusal, passthrough, staging and errors."""

import array

import pytest
from scapy.layers.inet import ICMP, IP

from tests.support.coalesce import CapsWriter, PlainWriter, RecordingWriter, same_wire, tcp_stream, udp4, udp6
from tio_core.coalesce import (
    Coalescer,
    CoalescerRefused,
    PacketTypeError,
    Passthrough,
    TCPCoalescer,
    UDPCoalescer,
    default_implementation,
)
from tio_core.errors import OffloadError, QueueClosed, TioError


def lanes(co):
    return (type(co).__name__, co.tcp, co.udp)


def test_for_queue_picks_lanes_from_capabilities():
    assert lanes(Coalescer.for_queue(CapsWriter(True, True))) == ("Coalescer", True, True)
    assert lanes(Coalescer.for_queue(CapsWriter(True, False))) == ("Coalescer", True, False)
    assert lanes(Coalescer.for_queue(CapsWriter(False, True))) == ("Coalescer", False, True)
    assert lanes(Coalescer.for_queue(CapsWriter(False, False))) == ("Passthrough", False, False)
    assert lanes(Coalescer.for_queue(PlainWriter())) == ("Passthrough", False, False)
    # a GSOWriter without CapsProvider is permissive, as in the seed
    assert lanes(Coalescer.for_queue(RecordingWriter())) == ("Coalescer", True, True)


def test_tso_only_queue_merges_tcp_and_passes_udp_through(impl):
    writer = CapsWriter(True, False)
    co = Coalescer.for_queue(writer)
    co.add_many([*tcp_stream(3), udp4(50, tag=0), udp4(50, tag=1)])
    co.flush()
    assert writer.shape() == ["G3", "W", "W"]


@pytest.mark.parametrize(
    "cls, writer",
    [(TCPCoalescer, CapsWriter(False, True)), (UDPCoalescer, CapsWriter(True, False)), (TCPCoalescer, PlainWriter())],
)
def test_single_lane_coalescers_refuse_unsupported_writers(cls, writer):
    with pytest.raises(CoalescerRefused, match="does not support write_gso") as info:
        cls(writer)
    assert isinstance(info.value, OffloadError) and isinstance(info.value, ValueError)


def test_refuses_object_without_write():
    with pytest.raises(CoalescerRefused, match="no write"):
        Passthrough(object())


def test_unknown_implementation_is_rejected():
    with pytest.raises(ValueError, match="implementation"):
        Coalescer(RecordingWriter(), implementation="fortran")


def test_default_implementation_honours_tio_pure(monkeypatch):
    monkeypatch.setenv("TIO_PURE", "1")
    assert default_implementation() == "pure"
    assert Coalescer(RecordingWriter(), tcp=True).implementation == "pure"


def test_single_lane_coalescers_merge_their_protocol_only(impl):
    packets = [*tcp_stream(2), *(udp6(40, tag=i) for i in range(2))]
    writer = RecordingWriter()
    co = TCPCoalescer(writer, implementation=impl)
    co.add_many(packets)
    co.flush()
    assert writer.shape() == ["G2", "W", "W"]
    writer = RecordingWriter()
    co = UDPCoalescer(writer, implementation=impl)
    co.add_many(packets)
    co.flush()
    assert writer.shape() == ["W", "W", "G2"]


def test_passthrough_writes_each_packet_in_order():
    writer = RecordingWriter()
    co = Passthrough(writer)
    packets = tcp_stream(4)
    for p in packets:
        co.add(p)
    assert co.pending == 4
    co.flush()
    assert [c[1] for c in writer.calls] == packets and writer.shape() == ["W"] * 4
    assert co.pending == 0


def test_add_and_add_many_stage_until_flush(impl):
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=True, implementation=impl)
    packets = tcp_stream(5)
    co.add(packets[0])
    co.add_many(iter(packets[1:3]))
    co.add_many(packets[3:])
    assert writer.calls == [] and co.pending == 5
    co.flush()
    assert writer.shape() == ["G5"]
    co.flush()  # nothing staged: no writes
    assert writer.shape() == ["G5"]


def test_runs_do_not_span_flushes(impl):
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=True, implementation=impl)
    packets = tcp_stream(4)
    co.add_many(packets[:2])
    co.flush()
    co.add_many(packets[2:])
    co.flush()
    assert writer.shape() == ["G2", "G2"]


def released_view():
    view = memoryview(b"gone")
    view.release()
    return view


@pytest.mark.parametrize("bad", [42, "text", None, memoryview(b"abcdef")[::2], released_view()])
def test_non_buffers_are_refused_and_nothing_is_staged(impl, bad):
    co = Coalescer(RecordingWriter(), tcp=True, implementation=impl)
    with pytest.raises(PacketTypeError, match="packet 1") as info:
        co.add_many([tcp_stream(1)[0], bad])
    assert isinstance(info.value, TioError) and isinstance(info.value, TypeError)
    assert co.pending == 0
    with pytest.raises(PacketTypeError):
        co.add(bad)
    assert co.pending == 0


def test_other_buffer_types_are_accepted(impl):
    packets = tcp_stream(3)
    odd = [array.array("B", packets[0]), bytearray(packets[1]), memoryview(packets[2]).cast("c")]
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=True, implementation=impl)
    co.add_many(odd)
    co.flush()
    assert writer.shape() == ["G3"]
    assert same_wire(writer.wire(), packets)


class FailingWriter(RecordingWriter):
    """Refuses writes whose packet is in ``refuse`` and every write_gso if asked."""

    def __init__(self, refuse=(), gso_error=None):
        super().__init__()
        self.refuse = set(refuse)
        self.gso_error = gso_error

    def write(self, data):
        if bytes(data) in self.refuse:
            raise QueueClosed(f"refused {len(self.calls)}")
        return super().write(data)

    def write_gso(self, *args):
        if self.gso_error:
            raise self.gso_error
        return super().write_gso(*args)


def test_flush_attempts_every_write_then_raises_the_first_error(impl):
    icmp = [bytes(IP(src="198.18.0.1", dst="198.18.0.2", id=i) / ICMP()) for i in range(4)]
    writer = FailingWriter(refuse={icmp[1], icmp[2]})
    co = Coalescer(writer, tcp=True, implementation=impl)
    co.add_many([icmp[0], icmp[1], *tcp_stream(3), icmp[2], icmp[3]])
    with pytest.raises(QueueClosed, match="refused 1"):
        co.flush()
    assert writer.shape() == ["W", "G3", "W"]
    assert co.pending == 0


def test_write_gso_error_is_raised_after_the_rest(impl):
    writer = FailingWriter(gso_error=OffloadError("EINVAL"))
    co = Coalescer(writer, tcp=True, udp=True, implementation=impl)
    co.add_many([*tcp_stream(2), udp4(10, tag=1)])
    with pytest.raises(OffloadError, match="EINVAL"):
        co.flush()
    assert writer.shape() == ["W"]


def test_passthrough_errors_are_collected_too():
    packets = tcp_stream(3)
    writer = FailingWriter(refuse={packets[0]})
    co = Passthrough(writer)
    co.add_many(packets)
    with pytest.raises(QueueClosed):
        co.flush()
    assert [c[1] for c in writer.calls] == packets[1:]


def test_order_across_lanes_follows_first_packets(impl):
    icmp = bytes(IP(src="198.18.0.1", dst="198.18.0.2") / ICMP())
    tcp = tcp_stream(3)
    udp = [udp4(30, tag=i) for i in range(2)]
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=True, udp=True, implementation=impl)
    co.add_many([tcp[0], udp[0], icmp, tcp[1], udp[1], tcp[2]])
    co.flush()
    assert writer.shape() == ["G3", "G2", "W"]
    assert same_wire(writer.wire(), [*tcp, *udp, icmp])
