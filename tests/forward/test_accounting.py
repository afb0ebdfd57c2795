"""The forwarder's accounting rule on every path: wire_packets_in == packets_written + dropped.

Each drop path is driven with fixed inputs: a malformed superpacket, a
malformed plain packet, a sink whose write or write_gso raises OSError, and a
batch cut short by KeyboardInterrupt or by the sink closing, with and without
coalescing. ``packets_written`` is also checked against what the sink really
received, so a drop cannot hide a delivery or the other way round.
"""

from __future__ import annotations

import errno
import json

import pytest

from tests.forward.sinks import PlainSink, ScriptedSink
from tests.support.coalesce import tcp_stream, udp4
from tests.support.packets import superpacket
from tio_core import kernels
from tio_core.contract import GSOInfo, GSOProto, Packet, supports_gso
from tio_core.errors import QueueClosed
from tio_core.forward import Forwarder, ForwardStats
from tio_core.forward.forwarder import CountingGSOWriter, CountingWriter, counting_writer
from tio_fake.backend import FakeQueueSet

RULE = "rule: wire_packets_in == packets_written + dropped"

SUPER, _ = superpacket(4, GSOProto.TCP, payload=6000, mss=1000, flags="A", seq=50_000)  # 6 segments
SUPER_SEGMENTS = len(kernels.segment(SUPER))
TCP_RUN = tcp_stream(5, size=300)  # one flow: one GSO write when coalesced
UDPS = [udp4(120, sport=3000 + i, tag=i) for i in range(5)]  # five flows: five verbatim writes
# A superpacket whose header length cannot be right: segmenting refuses it.
BROKEN_SUPER = Packet(SUPER.data, GSOInfo(1000, SUPER.gso.hdr_len + 3, SUPER.gso.csum_start, GSOProto.TCP))
BROKEN_PLAIN = b"\x45\x00\x00\x10garbage"  # says IPv4, but its lengths do not hold: the sink refuses it


def run(packets, faults=None, *, segment=True, coalesce=True, max_batch=64):
    source = FakeQueueSet(end_of_stream=True, max_batch=max_batch)
    source.inject(*packets, validate=False)
    sink = ScriptedSink(faults)
    forwarder = Forwarder(source.queues()[0], sink, segment=segment, coalesce=coalesce)
    raised = None
    try:
        forwarder.run()
    except (KeyboardInterrupt, QueueClosed) as exc:
        raised = exc
    return forwarder.stats, sink, raised


def assert_adds_up(stats: ForwardStats, sink: ScriptedSink, wire_in: int) -> None:
    assert stats.wire_packets_in == wire_in, "every packet read is counted in"
    assert stats.wire_packets_in == stats.packets_written + stats.dropped, RULE
    assert stats.packets_written == len(sink.delivered()), "packets_written is what the sink received"


@pytest.mark.parametrize("coalesce", [True, False])
def test_clean_run_writes_everything(coalesce):
    stats, sink, raised = run([SUPER, *TCP_RUN, *UDPS], coalesce=coalesce)
    assert raised is None
    assert_adds_up(stats, sink, SUPER_SEGMENTS + 10)
    assert stats.dropped == 0
    assert (stats.superpackets_read, stats.superpackets_segmented, stats.superpackets_passed_through) == (1, 1, 0)
    if coalesce:
        assert stats.gso_writes == 2 and stats.gso_segments == SUPER_SEGMENTS + 5
    else:
        assert stats.gso_writes == 0 and stats.verbatim_writes == SUPER_SEGMENTS + 10
    assert stats.bytes_written == sum(map(len, sink.delivered())), "bytes_written counts every segment's headers"


def test_malformed_superpacket_is_one_drop():
    stats, sink, _ = run([*UDPS[:2], BROKEN_SUPER, SUPER])
    assert_adds_up(stats, sink, 2 + 1 + SUPER_SEGMENTS)
    assert stats.drops == {"malformed superpacket": 1}


@pytest.mark.parametrize("coalesce", [True, False])
def test_malformed_plain_packet_is_one_drop(coalesce):
    stats, sink, _ = run([*TCP_RUN, BROKEN_PLAIN, *UDPS], coalesce=coalesce)
    assert_adds_up(stats, sink, 11)
    assert stats.drops == {"write refused: MalformedPacket": 1}


@pytest.mark.parametrize("coalesce", [True, False])
def test_sink_write_oserror_drops_that_packet(coalesce):
    # call 0: the TCP run (a GSO write, or its first packet); call 1: the first UDP packet (or TCP #2)
    stats, sink, _ = run([*TCP_RUN, *UDPS], {1: OSError(errno.ENOBUFS, "No buffer space")}, coalesce=coalesce)
    assert_adds_up(stats, sink, 10)
    assert stats.drops == {"write error: ENOBUFS": 1}


def test_sink_write_gso_oserror_drops_every_segment_it_carried():
    stats, sink, _ = run([*UDPS[:1], SUPER], {1: OSError(errno.EIO, "Input/output error")})
    assert_adds_up(stats, sink, 1 + SUPER_SEGMENTS)
    assert stats.drops == {"write error: EIO": SUPER_SEGMENTS}


@pytest.mark.parametrize("coalesce", [True, False])
@pytest.mark.parametrize("at_call", [0, 2, 4])
def test_keyboard_interrupt_mid_batch_counts_what_it_cut_off(coalesce, at_call):
    stats, sink, raised = run([*UDPS, *TCP_RUN, SUPER, *UDPS], {at_call: KeyboardInterrupt()}, coalesce=coalesce)
    assert isinstance(raised, KeyboardInterrupt)
    assert_adds_up(stats, sink, 15 + SUPER_SEGMENTS)
    assert set(stats.drops) == {"interrupted"} and stats.drops["interrupted"] > 0


@pytest.mark.parametrize("coalesce", [True, False])
@pytest.mark.parametrize("at_call", [0, 3])
def test_sink_closing_mid_batch_counts_the_rest_as_sink_closed(coalesce, at_call):
    stats, sink, raised = run([*UDPS, SUPER, *TCP_RUN], {at_call: QueueClosed("sink went away")}, coalesce=coalesce)
    assert isinstance(raised, QueueClosed), "a closed sink ends the run with QueueClosed"
    assert_adds_up(stats, sink, 10 + SUPER_SEGMENTS)
    assert set(stats.drops) == {"sink closed"} and stats.drops["sink closed"] > 0


def test_interrupt_over_several_batches_keeps_earlier_batches():
    packets = [*UDPS, SUPER, *TCP_RUN, *UDPS]
    stats, sink, raised = run(packets, {7: KeyboardInterrupt()}, max_batch=3)
    assert isinstance(raised, KeyboardInterrupt)
    assert stats.packets_read < len(packets), "the batches after the interrupted one were never read"
    assert stats.wire_packets_in == stats.packets_written + stats.dropped, RULE
    assert stats.packets_written == len(sink.delivered())


def test_superpackets_passed_through_are_counted_as_such():
    stats, sink, _ = run([SUPER, *UDPS], segment=False)
    assert_adds_up(stats, sink, SUPER_SEGMENTS + 5)
    assert (stats.superpackets_read, stats.superpackets_segmented, stats.superpackets_passed_through) == (1, 0, 1)


def test_reused_segment_buffers_never_leak_into_later_batches():
    # distinct superpackets, two per batch: every batch reuses the scratch buffers of the one before
    supers = [superpacket(4, GSOProto.TCP, payload=3000 + 700 * i, mss=900, seq=10**6 * i)[0] for i in range(7)]
    stats, sink, _ = run(supers, max_batch=2)
    expected = [bytes(seg) for sp in supers for seg in kernels.segment(sp)]
    assert stats.dropped == 0
    assert sink.delivered() == expected, "rule: reusing segment buffers never changes what is delivered"


def test_counting_writer_keeps_the_sinks_interfaces_with_declared_classes():
    stats = ForwardStats()
    plain = counting_writer(PlainSink(), stats)
    assert type(plain) is CountingWriter, "rule: the wrapper of a plain sink is a declared class (issue 11)"
    assert supports_gso(plain, GSOProto.TCP) == (None, False)
    caps = counting_writer(ScriptedSink(), stats)
    assert isinstance(caps, CountingGSOWriter) and supports_gso(caps, GSOProto.UDP)[1]


def test_plain_sink_gets_every_segment_written_alone():
    source = FakeQueueSet(end_of_stream=True)
    source.inject(SUPER, *UDPS)
    sink = PlainSink()
    stats = Forwarder(source.queues()[0], sink).run()
    assert stats.wire_packets_in == stats.packets_written == len(sink.packets) == SUPER_SEGMENTS + 5, RULE


def test_summary_rate_is_over_active_time_with_numbers_as_numbers():
    stats, _, _ = run([SUPER, *TCP_RUN, *UDPS], max_batch=4)
    assert stats.first_packet_at is not None and stats.last_packet_at >= stats.first_packet_at
    stats.elapsed = stats.active + 10.0  # idle time before and after must not dilute the rate
    summary = stats.as_dict()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["active_s"] == pytest.approx(stats.active, rel=1e-5) and summary["elapsed_s"] > 10
    assert summary["packets_per_s"] == pytest.approx(stats.packets_written / stats.active, rel=1e-3)
    assert summary["gbit_per_s"] == pytest.approx(stats.bytes_written * 8 / stats.active / 1e9, rel=1e-3)
    for key, value in summary.items():
        if key not in ("drops", "per_queue"):
            assert isinstance(value, (int, float)) and not isinstance(value, bool), key
