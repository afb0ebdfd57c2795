"""The data path between two backends: read -> segment -> coalesce -> write.

This is the shape of a VPN's inner loop: superpackets from the source are cut
into wire-sized packets (where a VPN would encrypt them), then coalesced onto
the sink's write path when the sink negotiated TSO/USO. Every packet read is
either written or counted as a drop with a reason (see ForwardStats).

Per superpacket the work is one C call to cut it (``kernels.segment_into``
into a buffer reused batch after batch), one to stage the segments, and per
batch one C call to plan the writes; the coalescer does not re-verify the
checksums segment_into just computed (``trust="own"``), while plain packets
from the source are verified before they may be merged.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Protocol

from tio_core import kernels
from tio_core.coalesce import TRUST_OWN, Coalescer, Passthrough
from tio_core.contract import (
    BatchWriter,
    Buffer,
    Capabilities,
    CapsProvider,
    GSOProto,
    GSOWriter,
    Packet,
    Queue,
    WriteBatch,
    supports_gso,
)
from tio_core.errors import GSOGeometryError, MalformedPacket, QueueClosed, TioError
from tio_core.forward.stats import ForwardStats

# Each superpacket of a batch is cut into its own scratch buffer (the
# coalescer borrows the segments until the batch is flushed). 2 * 64 KiB
# holds the segments of any 64 KiB superpacket at MSS >= 536 with their
# headers; hostile geometry grows a buffer once (kernels.segment_into).
SCRATCH_BYTES = 2 * 65536
# Staged bytes after which the next superpacket is cut only after a flush:
# one GSO write holds at most 64 KiB, so waiting longer merges nothing more,
# while flushing early lets every superpacket reuse the same (cache-hot)
# scratch buffer and the kernel copy from memory written just before.
FLUSH_BYTES = 65536

# Drop reasons (ForwardStats.drops keys) the forwarder itself uses.
DROP_MALFORMED_SUPERPACKET = "malformed superpacket"
DROP_INTERRUPTED = "interrupted"
DROP_SINK_CLOSED = "sink closed"

_data_of = itemgetter(0)  # Packet.data, without the attribute lookup
_gso_of = itemgetter(1)  # Packet.gso
_size_of = itemgetter(0)  # GSOInfo.size: 0 for a plain packet


def drop_reason(exc: BaseException) -> str:
    """The drops key for a write that raised ``exc``: errno name for OS errors, else the type."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"write error: {errno.errorcode.get(exc.errno, exc.errno)}"
    return f"write refused: {type(exc).__name__}"


class Stoppable(Protocol):
    """What run() polls between batches: a threading.Event or a StopFlag."""

    def is_set(self) -> bool: ...


class Budget(Protocol):
    """A packet limit run() draws on per batch: PacketBudget (shared) or a private one."""

    def take(self, wanted: int) -> int: ...

    @property
    def spent(self) -> bool: ...


class StopFlag:
    """A stop request that a signal handler may set: set() is one attribute store, no lock."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class CountingWriter:
    """Wraps a sink queue's write(): counts what goes out, turns write errors into drops.

    A failed write is counted (with the number of wire packets it carried)
    and not raised, so one bad packet does not stop the run; QueueClosed is
    raised, because then nothing more can be delivered (the caller counts
    what that leaves undelivered).
    """

    def __init__(self, queue: Queue, stats: ForwardStats) -> None:
        self.queue = queue
        self._stats = stats
        self._write = queue.write
        self._write_many = queue.write_many if isinstance(queue, BatchWriter) else None

    def write(self, data: Buffer) -> int:
        try:
            written = self._write(data)
        except QueueClosed:
            raise
        except (OSError, TioError, ValueError) as exc:
            self._stats.drops[drop_reason(exc)] += 1
            return 0
        stats = self._stats
        stats.verbatim_writes += 1
        stats.packets_written += 1
        stats.bytes_written += len(data)
        return written

    def write_many(self, packets: Sequence[Buffer]) -> WriteBatch:
        """write() of each packet: in one call when the sink is a BatchWriter (its C loop), else one by one.

        Counted exactly as write() counts: what failed is a drop (by reason)
        and is not reported in the result; a sink closed under the batch
        raises QueueClosed after what was written before it is counted.
        """
        if self._write_many is None:
            before = self._stats.packets_written, self._stats.bytes_written
            for data in packets:
                self.write(data)
            return WriteBatch(self._stats.packets_written - before[0], self._stats.bytes_written - before[1])
        try:
            batch = self._write_many(packets)
        except QueueClosed:
            raise
        except (TioError, TypeError, ValueError, BufferError) as exc:  # a packet that is no buffer: none written
            self._stats.drops[drop_reason(exc)] += len(packets)
            return WriteBatch(0, 0)
        stats = self._stats
        stats.verbatim_writes += batch.written
        stats.packets_written += batch.written
        stats.bytes_written += batch.bytes_written
        for _index, error in batch.failed:
            stats.drops[drop_reason(error)] += 1
        if batch.closed is not None:
            raise batch.closed
        return WriteBatch(batch.written, batch.bytes_written)


class CountingGSOWriter(CountingWriter):
    """A CountingWriter for a sink that implements GSOWriter (and so is one itself)."""

    def __init__(self, queue: Queue, stats: ForwardStats) -> None:
        super().__init__(queue, stats)
        assert isinstance(queue, GSOWriter)
        self._write_gso = queue.write_gso

    def write_gso(self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto) -> None:
        try:
            self._write_gso(ip_hdr, transport_hdr, payloads, proto)
        except QueueClosed:
            raise
        except (OSError, TioError, ValueError) as exc:
            self._stats.drops[drop_reason(exc)] += len(payloads)
            return
        count = len(payloads)
        if not count:
            return  # the contract's no-op
        stats = self._stats
        stats.gso_writes += 1
        stats.gso_segments += count
        stats.packets_written += count
        # The sink accepted it, so all fragments but the last have the first's size.
        payload_bytes = len(payloads[0]) * (count - 1) + len(payloads[-1])
        stats.bytes_written += (len(ip_hdr) + len(transport_hdr)) * count + payload_bytes


class CountingCapsGSOWriter(CountingGSOWriter):
    """A CountingGSOWriter for a sink that also advertises negotiated capabilities."""

    def capabilities(self) -> Capabilities:
        assert isinstance(self.queue, CapsProvider)
        return self.queue.capabilities()


def counting_writer(queue: Queue, stats: ForwardStats) -> CountingWriter:
    """Wrap ``queue`` keeping exactly its optional interfaces, so supports_gso() answers as for the queue."""
    if not isinstance(queue, GSOWriter):
        return CountingWriter(queue, stats)
    if isinstance(queue, CapsProvider):
        return CountingCapsGSOWriter(queue, stats)
    return CountingGSOWriter(queue, stats)


def _superpacket_pieces(packet: Packet) -> tuple[memoryview, memoryview, list[memoryview]]:
    """Split a superpacket into write_gso's pieces (passthrough without segmenting)."""
    data, gso = packet.data, packet.gso
    payload = data[gso.hdr_len :]
    size = gso.size
    return (
        data[: gso.csum_start],
        data[gso.csum_start : gso.hdr_len],
        [payload[i : i + size] for i in range(0, len(payload), size)],
    )


class PacketBudget:
    """At most ``limit`` packets, shared by every Forwarder given it (threads or forked processes).

    take(n) grants up to n packets (0 once spent). The counter lives in
    shared memory, so forked workers draw on the same budget.
    """

    def __init__(self, limit: int) -> None:
        import multiprocessing

        self._left = multiprocessing.get_context("fork").Value("q", limit)

    def take(self, wanted: int) -> int:
        with self._left.get_lock():
            granted = min(wanted, self._left.value)
            self._left.value -= granted
        return granted

    @property
    def spent(self) -> bool:
        return self._left.value <= 0


class Forwarder:
    """Moves packets from one source queue to one sink queue until stopped.

    segment=False passes superpackets straight to the sink's write_gso (when
    it supports the protocol) instead of cutting them; coalesce=False writes
    every wire packet on its own. Not safe for concurrent use, except
    abandon(), which another thread calls to end a run.
    """

    def __init__(
        self,
        source: Queue,
        sink: Queue,
        *,
        segment: bool = True,
        coalesce: bool = True,
        stats: ForwardStats | None = None,
    ) -> None:
        self.source = source
        self.stats = stats if stats is not None else ForwardStats()
        self._writer = counting_writer(sink, self.stats)
        # Default trust "verify": packets from the source may carry anyone's checksums;
        # the segments cut here are added with trust "own".
        self._lane: Coalescer = Coalescer.for_queue(self._writer) if coalesce else Passthrough(self._writer)
        self._segment = segment
        self._gso_ok = {proto: supports_gso(self._writer, proto)[1] for proto in (GSOProto.TCP, GSOProto.UDP)}
        self._gso_writer = self._writer if isinstance(self._writer, CountingGSOWriter) else None
        self._scratch: list[bytearray] = []
        self._batch_lock = threading.Lock()  # held while a batch is forwarded
        self._abandoned = False

    # -- the loop ----------------------------------------------------------------

    def run(
        self,
        stop: Stoppable | None = None,
        limit: int | None = None,
        on_batch: Callable[[ForwardStats], None] | None = None,
        *,
        budget: Budget | None = None,
    ) -> ForwardStats:
        """Forward until the source ends or closes, ``stop`` is set, abandon() is called,
        or ``limit`` packets (or the shared ``budget``) were read.

        Raises QueueClosed when the sink closed under it (what was in flight
        is counted as dropped first) and whatever the source's read raises
        besides QueueClosed.
        """
        stop = stop if stop is not None else StopFlag()
        if limit is not None:
            budget = budget or _LocalBudget(limit)
        started = time.monotonic()
        try:
            while not stop.is_set() and not self._abandoned and not (budget is not None and budget.spent):
                try:
                    batch = self.source.read()
                except QueueClosed:
                    break
                with self._batch_lock:
                    if self._abandoned:
                        break  # read after the run's stats were taken: not this run's packets
                    if budget is not None:
                        granted = budget.take(len(batch))
                        if granted < len(batch):
                            batch = batch[:granted]
                    self.forward_batch(batch)
                if on_batch is not None:
                    on_batch(self.stats)
        finally:
            self.stats.elapsed += time.monotonic() - started
        return self.stats

    def abandon(self, timeout: float) -> bool:
        """End run() from another thread without waiting for a read that may never return.

        Waits up to ``timeout`` seconds for the batch in progress; True means
        no batch is being forwarded and none will be (a read still blocked
        returns into nothing), so ``stats`` are final. False: a batch is
        still being written (the sink blocks); the caller takes a snapshot
        and settles it.
        """
        if not self._batch_lock.acquire(timeout=max(timeout, 0.0)):
            return False
        self._abandoned = True
        self._batch_lock.release()
        return True

    # -- one batch ---------------------------------------------------------------

    def forward_batch(self, batch: list[Packet]) -> None:
        """Forward one read's packets; they are borrowed, so all is flushed before returning.

        Every packet of the batch is accounted on the way in; if anything
        interrupts the batch (KeyboardInterrupt, a closed sink), what was
        staged is still delivered if possible and the rest is counted as
        dropped before the exception propagates.
        """
        if not batch:
            return
        stats = self.stats
        now = time.monotonic()
        if stats.first_packet_at is None:
            stats.first_packet_at = now
        stats.packets_read += len(batch)
        stats.bytes_read += sum(map(len, map(_data_of, batch)))
        try:
            self._forward(batch)
        except BaseException as exc:
            self._settle(exc)
            raise
        finally:
            stats.last_packet_at = time.monotonic()

    def _forward(self, batch: list[Packet]) -> None:
        lane = self._lane
        if len(batch) == 1 and not batch[0].gso.size:
            # One plain packet merges with nothing (a TCP ACK, typically): straight to the sink.
            self._writer.write(batch[0].data)
            return
        if not any(map(_size_of, map(_gso_of, batch))):
            # no superpacket (a replay, a TUN without offloads): the whole batch is one run, staged in C
            lane.add_many(list(map(_data_of, batch)))
            lane.flush()
            return
        stats = self.stats
        scratch = self._scratch
        segment_into = kernels.segment_into
        plain: list[memoryview] = []  # a run of plain packets, staged together
        cut = 0  # superpackets cut since the last flush = scratch buffers in use
        staged = 0  # bytes staged since the last flush
        for packet in batch:
            gso = packet.gso
            data = packet[0]
            if not gso.size:
                plain.append(data)
                staged += len(data)
                continue
            if plain:
                lane.add_many(plain)
                plain = []
            if self._segment or self._gso_writer is None or not self._gso_ok[gso.proto]:
                if staged and staged + len(data) > FLUSH_BYTES:
                    lane.flush()
                    cut = staged = 0
                staged += len(data)
                try:
                    segments = segment_into(packet, scratch[cut])
                except (IndexError, MalformedPacket, GSOGeometryError, BufferError):
                    segments = self._cut(packet, cut)  # the rare cases, handled there
                if segments is None:
                    stats.drops[DROP_MALFORMED_SUPERPACKET] += 1
                    stats.segments_from_superpackets += 1
                    stats.superpackets_read += 1
                    continue
                cut += 1
                stats.segments_from_superpackets += len(segments)
                stats.superpackets_read += 1
                stats.superpackets_segmented += 1
                lane.add_many(segments, trust=TRUST_OWN)
            else:
                lane.flush()  # keep order: what was staged goes first
                cut = staged = 0
                ip_hdr, l4_hdr, payloads = _superpacket_pieces(packet)
                stats.segments_from_superpackets += len(payloads)
                stats.superpackets_read += 1
                stats.superpackets_passed_through += 1
                self._gso_writer.write_gso(ip_hdr, l4_hdr, payloads, gso.proto)
        if plain:
            lane.add_many(plain)
        lane.flush()

    def _cut(self, packet: Packet, index: int) -> list[memoryview] | None:
        """The segments of ``packet`` in scratch buffer ``index``; None if malformed."""
        scratch = self._scratch
        if index == len(scratch):
            scratch.append(bytearray(SCRATCH_BYTES))
        try:
            return kernels.segment_into(packet, scratch[index])
        except (MalformedPacket, GSOGeometryError):
            return None
        except BufferError:
            # The buffer had to grow while a view of it was still alive (a sink
            # kept one past its write): leave that buffer to the view.
            scratch[index] = bytearray(max(SCRATCH_BYTES, kernels.segmented_size(packet)))
            return kernels.segment_into(packet, scratch[index])

    def _settle(self, exc: BaseException) -> None:
        """After an interrupted batch: deliver what is staged if possible, count the rest as dropped."""
        closed = isinstance(exc, QueueClosed)
        if not closed:
            try:
                self._lane.flush()
            except BaseException:  # released either way (see Coalescer.flush)
                pass
        self.stats.settle(DROP_SINK_CLOSED if closed else DROP_INTERRUPTED)


class _LocalBudget:
    """A PacketBudget for one Forwarder on its own (no shared memory needed)."""

    def __init__(self, limit: int) -> None:
        self._left = limit

    def take(self, wanted: int) -> int:
        granted = min(wanted, self._left)
        self._left -= granted
        return granted

    @property
    def spent(self) -> bool:
        return self._left <= 0


__all__ = [
    "Budget",
    "CountingCapsGSOWriter",
    "CountingGSOWriter",
    "CountingWriter",
    "DROP_INTERRUPTED",
    "DROP_MALFORMED_SUPERPACKET",
    "DROP_SINK_CLOSED",
    "ForwardStats",
    "Forwarder",
    "PacketBudget",
    "StopFlag",
    "counting_writer",
    "drop_reason",
]
