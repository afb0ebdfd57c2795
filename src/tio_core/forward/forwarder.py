"""The data path between two backends: read -> segment -> coalesce -> write.

This is the shape of a VPN's inner loop: superpackets from the source are cut
into wire-sized packets (where a VPN would encrypt them), then coalesced onto
the sink's write path when the sink negotiated TSO/USO. Every packet read is
either written or counted as a drop with a reason.
"""

from __future__ import annotations

import errno
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tio_core import kernels
from tio_core.coalesce import Coalescer, Passthrough
from tio_core.contract import CapsProvider, GSOProto, Packet, Queue, supports_gso
from tio_core.errors import GSOGeometryError, MalformedPacket, QueueClosed, TioError


@dataclass
class ForwardStats:
    """Counters of one forwarding run (or the sum of several workers)."""

    packets_read: int = 0
    bytes_read: int = 0
    superpackets: int = 0
    superpackets_passed: int = 0  # of which handed to the sink's write_gso unsegmented
    segments_from_superpackets: int = 0
    packets_written: int = 0  # wire packets the sink accepted (GSO writes count each segment)
    bytes_written: int = 0  # wire bytes, headers of every segment included
    gso_writes: int = 0
    gso_segments: int = 0
    verbatim_writes: int = 0
    drops: Counter = field(default_factory=Counter)  # reason -> wire packets
    elapsed: float = 0.0
    first_packet_at: float = 0.0  # time.monotonic() when the first packet was read (0: none yet)
    last_packet_at: float = 0.0  # time.monotonic() when the last batch was written

    @property
    def active(self) -> float:
        """Seconds from the first packet read to the last batch written (idle waits before excluded)."""
        return self.last_packet_at - self.first_packet_at if self.first_packet_at else 0.0

    @property
    def wire_packets_in(self) -> int:
        """Packets read, counting each superpacket as the segments it holds."""
        return self.packets_read - self.superpackets + self.segments_from_superpackets

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def merge(self, other: ForwardStats) -> None:
        for name in self.__dataclass_fields__:
            if name == "drops":
                self.drops.update(other.drops)
            elif name in ("elapsed", "last_packet_at"):
                setattr(self, name, max(getattr(self, name), getattr(other, name)))
            elif name == "first_packet_at":
                self.first_packet_at = min(filter(None, (self.first_packet_at, other.first_packet_at)), default=0.0)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        gbps = self.bytes_written * 8 / self.elapsed / 1e9 if self.elapsed else 0.0
        return {
            "packets_read": self.packets_read,
            "bytes_read": self.bytes_read,
            "superpackets_segmented": self.superpackets,
            "segments_from_superpackets": self.segments_from_superpackets,
            "wire_packets_in": self.wire_packets_in,
            "packets_written": self.packets_written,
            "bytes_written": self.bytes_written,
            "gso_writes": self.gso_writes,
            "segments_per_gso_write": round(self.gso_segments / self.gso_writes, 2) if self.gso_writes else 0.0,
            "verbatim_writes": self.verbatim_writes,
            "dropped": self.dropped,
            "drops": dict(self.drops),
            "elapsed_s": round(self.elapsed, 4),
            "gbit_per_s": round(gbps, 4),
        }


def _drop_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"write error: {errno.errorcode.get(exc.errno, exc.errno)}"
    return f"{type(exc).__name__}"


class CountingWriter:
    """Wraps the sink queue: counts what goes out, turns write errors into drops.

    A failed write is counted (with the number of wire packets it carried) and
    not raised, so one bad packet does not stop the run; a closed sink is
    raised, because then nothing more can be delivered.
    """

    def __init__(self, queue: Queue, stats: ForwardStats) -> None:
        self._queue = queue
        self._stats = stats

    def write(self, data) -> int:
        try:
            written = self._queue.write(data)
        except QueueClosed:
            raise
        except (OSError, TioError, ValueError) as exc:
            self._stats.drops[_drop_reason(exc)] += 1
            return 0
        self._stats.verbatim_writes += 1
        self._stats.packets_written += 1
        self._stats.bytes_written += len(data)
        return written

    def write_gso(self, ip_hdr, transport_hdr, payloads, proto: GSOProto) -> None:
        try:
            self._queue.write_gso(ip_hdr, transport_hdr, payloads, proto)
        except QueueClosed:
            raise
        except (OSError, TioError, ValueError) as exc:
            self._stats.drops[_drop_reason(exc)] += len(payloads)
            return
        stats = self._stats
        stats.gso_writes += 1
        stats.gso_segments += len(payloads)
        stats.packets_written += len(payloads)
        header = len(ip_hdr) + len(transport_hdr)
        stats.bytes_written += header * len(payloads) + sum(len(p) for p in payloads)


class CountingCapsWriter(CountingWriter):
    """A CountingWriter for a sink that advertises negotiated capabilities."""

    def capabilities(self):
        return self._queue.capabilities()


def counting_writer(queue: Queue, stats: ForwardStats) -> CountingWriter:
    """Wrap ``queue`` keeping its optional interfaces (only what it implements)."""
    has_gso = hasattr(queue, "write_gso")
    cls = CountingCapsWriter if isinstance(queue, CapsProvider) else CountingWriter
    if has_gso:
        return cls(queue, stats)
    # No GSOWriter: a wrapper without write_gso so supports_gso says no.
    return type("CountingPlainWriter", (), {"write": CountingWriter.write, "__init__": CountingWriter.__init__})(
        queue, stats
    )


def _superpacket_pieces(packet: Packet):
    """Split a superpacket into write_gso's pieces (passthrough without segmenting)."""
    data, gso = packet.data, packet.gso
    payload = data[gso.hdr_len :]
    size = gso.size
    return (
        data[: gso.csum_start],
        data[gso.csum_start : gso.hdr_len],
        [payload[i : i + size] for i in range(0, len(payload), size)],
    )


class Forwarder:
    """Moves packets from one source queue to one sink queue until stopped.

    segment=False passes superpackets straight to the sink's write_gso (when
    it supports the protocol) instead of cutting them; coalesce=False writes
    every wire packet on its own.
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
        self.stats = stats or ForwardStats()
        self._writer = counting_writer(sink, self.stats)
        self._lane = Coalescer.for_queue(self._writer) if coalesce else Passthrough(self._writer)
        self._segment = segment
        self._gso_ok = {proto: supports_gso(self._writer, proto)[1] for proto in (GSOProto.TCP, GSOProto.UDP)}

    def run(
        self,
        stop: threading.Event | None = None,
        limit: int | None = None,
        on_batch: Callable[[ForwardStats], None] | None = None,
    ) -> ForwardStats:
        """Forward until the source ends or closes, ``stop`` is set, or ``limit`` packets were read."""
        stop = stop or threading.Event()
        started = time.perf_counter()
        try:
            while not stop.is_set() and (limit is None or self.stats.packets_read < limit):
                try:
                    batch = self.source.read()
                except QueueClosed:
                    break
                if limit is not None:
                    batch = batch[: limit - self.stats.packets_read]
                if batch and not self.stats.first_packet_at:
                    self.stats.first_packet_at = time.monotonic()
                self.forward_batch(batch)
                if batch:
                    self.stats.last_packet_at = time.monotonic()
                if on_batch is not None:
                    on_batch(self.stats)
        finally:
            self.stats.elapsed += time.perf_counter() - started
        return self.stats

    def forward_batch(self, batch: list[Packet]) -> None:
        """Forward one read's packets; they are borrowed, so all is flushed before returning."""
        stats = self.stats
        lane = self._lane
        handed_over = 0
        try:
            for packet in batch:
                stats.packets_read += 1
                stats.bytes_read += len(packet.data)
                handed_over += 1
                if packet.gso.is_superpacket:
                    self._forward_superpacket(packet)
                else:
                    lane.add(packet.data)
            lane.flush()
        except BaseException:
            # Interrupted mid-batch (a signal, a closed sink): deliver what was
            # staged if possible and count the rest, so nothing read goes missing.
            try:
                lane.flush()
            except BaseException:
                pass
            for packet in batch[handed_over:]:
                stats.packets_read += 1
                stats.bytes_read += len(packet.data)
                stats.drops["interrupted"] += 1
            raise

    def _forward_superpacket(self, packet: Packet) -> None:
        stats = self.stats
        stats.superpackets += 1
        if not self._segment and self._gso_ok[packet.gso.proto]:
            self._lane.flush()  # keep order: what was staged goes first
            ip_hdr, l4_hdr, payloads = _superpacket_pieces(packet)
            stats.superpackets_passed += 1
            stats.segments_from_superpackets += len(payloads)
            self._writer.write_gso(ip_hdr, l4_hdr, payloads, packet.gso.proto)
            return
        try:
            segments = kernels.segment(packet)
        except (MalformedPacket, GSOGeometryError) as exc:
            stats.segments_from_superpackets += 1
            stats.drops[f"malformed superpacket: {exc}"] += 1
            return
        stats.segments_from_superpackets += len(segments)
        self._lane.add_many(segments)
