"""Runs of verbatim packets reach a BatchWriter sink through write_many, counted exactly as single writes.

Rule: for the same packets and the same sink faults, a sink that is a
contract.BatchWriter ends with the same stats, the same delivered packets and
the same exception as one written packet by packet; and the verbatim runs
(the coalescer's unmergeable packets, the Passthrough lane) go out in
write_many calls rather than one write each.
"""

from __future__ import annotations

import errno

import pytest

from tests.forward.sinks import BatchSink, ScriptedSink
from tests.support.coalesce import tcp_stream, udp4
from tests.support.packets import superpacket
from tio_core.contract import Capabilities, GSOProto
from tio_core.errors import MalformedPacket, QueueClosed
from tio_core.forward import Forwarder
from tio_core.forward.forwarder import CountingWriter
from tio_core.forward.stats import ForwardStats
from tio_fake.backend import FakeQueueSet

SUPER, _ = superpacket(4, GSOProto.TCP, payload=6000, mss=1000, flags="A", seq=50_000)
TCP_RUN = tcp_stream(5, size=300)
UDPS = [udp4(120, sport=3000 + i, tag=i) for i in range(6)]
BROKEN_PLAIN = b"\x45\x00\x00\x10garbage"
RULE = "rule: write_many is counted exactly as single writes"


TSO_ONLY = Capabilities(tso=True, uso=False)  # UDP packets stay verbatim


def run(sink_type, packets, faults=None, *, coalesce=True, caps=TSO_ONLY):
    source = FakeQueueSet(end_of_stream=True)
    source.inject(*packets, validate=False)
    sink = sink_type(faults, caps)
    forwarder = Forwarder(source.queues()[0], sink, coalesce=coalesce)
    raised = None
    try:
        forwarder.run()
    except QueueClosed as exc:
        raised = type(exc)
    stats = forwarder.stats
    stats.elapsed = 0.0
    stats.first_packet_at = stats.last_packet_at = None
    return stats, sink, raised


SCENARIOS = {
    "clean": ([*UDPS, *TCP_RUN, SUPER, *UDPS], None),
    "malformed": ([*UDPS[:3], BROKEN_PLAIN, *UDPS[3:]], None),
    "oserror": ([*UDPS, *TCP_RUN, *UDPS], {2: OSError(errno.ENOBUFS, "No buffer space")}),
    "refused": ([*UDPS, *TCP_RUN], {4: MalformedPacket("refused")}),
    "closed-early": ([*UDPS, SUPER, *TCP_RUN], {1: QueueClosed("sink went away")}),
    "closed-late": ([*UDPS, *TCP_RUN, *UDPS], {9: QueueClosed("sink went away")}),
}


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesce", "passthrough"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_batch_writer_sink_ends_exactly_as_single_writes(scenario, coalesce):
    packets, faults = SCENARIOS[scenario]
    single = run(ScriptedSink, packets, faults, coalesce=coalesce)
    batched = run(BatchSink, packets, faults, coalesce=coalesce)
    assert batched[0] == single[0], RULE
    assert batched[1].delivered() == single[1].delivered(), RULE
    assert batched[2] == single[2], RULE
    stats = batched[0]
    assert stats.wire_packets_in == stats.packets_written + stats.dropped


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesce", "passthrough"])
def test_verbatim_runs_go_out_in_write_many_calls(coalesce):
    stats, sink, _ = run(BatchSink, [*UDPS, *TCP_RUN, *UDPS], coalesce=coalesce)
    assert stats.dropped == 0
    if coalesce:  # six UDP packets, the merged TCP run (one write_gso), six UDP packets
        assert sink.batches == [6, 6], "rule: each run of unmergeable packets is one write_many"
        assert stats.gso_writes == 1 and stats.verbatim_writes == 12
    else:
        assert sink.batches == [17], "rule: the Passthrough lane writes its batch in one write_many"
        assert stats.verbatim_writes == 17


def test_counting_writer_write_many_counts_failures_as_drops_and_raises_closed():
    stats = ForwardStats()
    sink = BatchSink({1: OSError(errno.EIO, "Input/output error"), 3: QueueClosed("gone")})
    writer = CountingWriter(sink, stats)
    with pytest.raises(QueueClosed):
        writer.write_many(UDPS[:5])
    assert (stats.packets_written, stats.verbatim_writes) == (2, 2)
    assert stats.bytes_written == len(UDPS[0]) + len(UDPS[2])
    assert dict(stats.drops) == {"write error: EIO": 1}, "rule: a refused packet is a drop with its reason"
