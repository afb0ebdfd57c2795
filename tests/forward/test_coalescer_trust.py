"""The coalescer's contract as the forwarder relies on it: explicit checksum trust, and a failed flush releases.

Trust: a packet whose checksum is wrong must never be merged (the merged
packet gets a fresh checksum and would launder it) unless the caller says it
computed the checksums itself (``trust="own"``), which the forwarder does for
the segments kernels.segment just produced.
"""

from __future__ import annotations

import pytest

from tests.support.coalesce import RecordingWriter, corrupt_l4_checksum, tcp_stream
from tio_core.coalesce import Coalescer, Passthrough, TCPCoalescer

IMPLEMENTATIONS = ["c", "pure"]

# three segments of one flow; the middle one has a wrong TCP checksum
STREAM = tcp_stream(3, size=200)
CORRUPT = [STREAM[0], corrupt_l4_checksum(STREAM[1]), STREAM[2]]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    return request.param


def flushed(co: Coalescer, writer: RecordingWriter) -> list[str]:
    co.flush()
    return writer.shape()


def test_default_trust_is_verify(impl):
    writer = RecordingWriter()
    co = Coalescer.for_queue(writer)
    assert co.trust == "verify" and co.verify_checksums, "rule: the safe default verifies checksums before merging"
    co = Coalescer(writer, tcp=True, implementation=impl)
    co.add_many(CORRUPT)
    assert flushed(co, writer) == ["W", "W", "W"], "rule: a packet with a wrong checksum is never merged by default"


def test_trust_own_skips_verification_for_the_whole_coalescer(impl):
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=True, trust="own", implementation=impl)
    assert co.trust == "own" and not co.verify_checksums
    co.add_many(CORRUPT)
    assert flushed(co, writer) == ["G3"], "rule: trust='own' merges without re-verifying checksums"


def test_per_call_trust_own_is_trusted_only_when_every_staged_packet_is(impl):
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=True, implementation=impl)
    co.add_many(CORRUPT, trust="own")
    assert flushed(co, writer) == ["G3"], "rule: packets added with trust='own' are not re-verified"
    writer.calls.clear()
    # one packet of unknown origin in the same flush: the flush verifies everything
    co.add_many(CORRUPT[:2], trust="own")
    co.add(CORRUPT[2])
    assert flushed(co, writer) == ["W", "W", "W"], "rule: one untrusted packet in a flush makes the flush verify"
    writer.calls.clear()
    co.add_many(CORRUPT, trust="own")
    assert flushed(co, writer) == ["G3"], "rule: trust is per flush; the previous flush's untrusted packet is gone"


def test_for_queue_passes_trust_and_passthrough_accepts_it():
    writer = RecordingWriter()
    assert Coalescer.for_queue(writer, trust="own").trust == "own"
    assert TCPCoalescer(writer, trust="own").trust == "own"
    plain = Passthrough(writer)
    plain.add_many(CORRUPT, trust="own")
    assert flushed(plain, writer) == ["W", "W", "W"]


@pytest.mark.parametrize("bad", ["trusted", "", "VERIFY", True])
def test_unknown_trust_is_a_typed_error(bad):
    with pytest.raises(ValueError, match="trust must be 'verify' or 'own'"):
        Coalescer(RecordingWriter(), tcp=True, trust=bad)
    co = Coalescer(RecordingWriter(), tcp=True)
    with pytest.raises(ValueError, match="trust must be 'verify' or 'own'"):
        co.add_many(STREAM, trust=bad or "x")
    assert co.pending == 0


def test_verify_checksums_keyword_still_means_trust():
    assert Coalescer(RecordingWriter(), tcp=True, verify_checksums=False).trust == "own"
    assert Coalescer(RecordingWriter(), tcp=True, verify_checksums=True).trust == "verify"
    with pytest.raises(ValueError, match="contradict"):
        Coalescer(RecordingWriter(), tcp=True, verify_checksums=True, trust="own")


@pytest.mark.parametrize("lane", ["coalescer", "passthrough"])
def test_a_flush_that_raised_releases_what_was_staged(impl, lane):
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=True, implementation=impl) if lane == "coalescer" else Passthrough(writer)
    doomed = memoryview(bytearray(STREAM[0]))
    co.add(doomed)
    doomed.release()  # the borrowed packet died before flush (a caller bug): the flush fails
    with pytest.raises(ValueError):
        co.flush()
    assert co.pending == 0, "rule: staged packets are released either way when flush() raises"
    co.add_many(STREAM)
    co.flush()  # not stuck: the next flush works
    want = ["G3"] if lane == "coalescer" else ["W", "W", "W"]
    assert writer.shape()[-len(want) :] == want, "rule: a coalescer whose flush raised is not stuck"
