"""ForwardStats: what one forwarding run did, the numbers every summary is made of.

Every field is a plain number (or a dict of numbers) so a summary can be
printed, merged across worker processes and dumped as JSON without
conversion. The accounting rule every path keeps::

    wire_packets_in == packets_written + dropped

where a superpacket counts as the wire packets (segments) it holds, and a
superpacket that could not be cut counts as one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _figure(value: float) -> float:
    """A measured figure to 6 significant digits (more would be noise, fewer loses small rates)."""
    return float(f"{value:.6g}")


@dataclass
class QueueCounts:
    """The counts of one source queue (one worker's share of a direction)."""

    packets_read: int = 0
    wire_packets_in: int = 0
    packets_written: int = 0
    dropped: int = 0

    def add(self, other: QueueCounts) -> None:
        self.packets_read += other.packets_read
        self.wire_packets_in += other.wire_packets_in
        self.packets_written += other.packets_written
        self.dropped += other.dropped


@dataclass
class ForwardStats:
    """Counters of one forwarding direction (one Forwarder, or the sum of several).

    Read side
      packets_read         packets source.read() returned (a superpacket counts once)
      bytes_read           their bytes as read (superpackets unsegmented)
      superpackets_read    of packets_read, how many were superpackets (GSOInfo.size > 0) ...
      superpackets_segmented       ... cut into wire packets here
      superpackets_passed_through  ... written whole with the sink's write_gso (segment=False)
                           (the rest were malformed: see drops)
      segments_from_superpackets   wire packets the superpackets held
    Write side
      packets_written      wire packets the sink accepted (a GSO write counts each segment)
      bytes_written        their wire bytes, the headers of every segment included
      gso_writes, gso_segments     write_gso calls the sink accepted and the segments they carried
      verbatim_writes      write() calls the sink accepted (one packet each)
      drops                reason -> wire packets neither written nor delivered
    Time (seconds; monotonic clock, comparable across the processes of one run)
      first_packet_at      when the first non-empty batch arrived (None: nothing read)
      last_packet_at       when the last batch had been written
      elapsed              wall time of the run, idle time included
    per_queue              source queue index -> QueueCounts (filled by the runner)
    """

    packets_read: int = 0
    bytes_read: int = 0
    superpackets_read: int = 0
    superpackets_segmented: int = 0
    superpackets_passed_through: int = 0
    segments_from_superpackets: int = 0
    packets_written: int = 0
    bytes_written: int = 0
    gso_writes: int = 0
    gso_segments: int = 0
    verbatim_writes: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    first_packet_at: float | None = None
    last_packet_at: float | None = None
    elapsed: float = 0.0
    per_queue: dict[int, QueueCounts] = field(default_factory=dict)

    @property
    def wire_packets_in(self) -> int:
        """Packets read, counting each superpacket as the segments it holds."""
        return self.packets_read - self.superpackets_read + self.segments_from_superpackets

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    @property
    def active(self) -> float:
        """Seconds from the first packet read to the last packet written (0.0 if none)."""
        if self.first_packet_at is None or self.last_packet_at is None:
            return 0.0
        return max(self.last_packet_at - self.first_packet_at, 0.0)

    def settle(self, reason: str) -> int:
        """Count every wire packet read but neither written nor dropped as dropped for ``reason``.

        Used where a batch was cut short (an interrupt, a closed sink, a
        stop that could not wait for a blocked write); returns the count.
        """
        gap = self.wire_packets_in - self.packets_written - self.dropped
        if gap > 0:
            self.drops[reason] += gap
        return max(gap, 0)

    def queue_counts(self) -> QueueCounts:
        """This direction's totals as one queue's counts."""
        return QueueCounts(self.packets_read, self.wire_packets_in, self.packets_written, self.dropped)

    def copy(self) -> ForwardStats:
        """A snapshot that later updates of this object do not touch."""
        snapshot = ForwardStats(**{f.name: getattr(self, f.name) for f in fields(self)})
        snapshot.drops = Counter(dict(self.drops))
        snapshot.per_queue = {i: QueueCounts(**asdict(c)) for i, c in self.per_queue.items()}
        return snapshot

    def merge(self, other: ForwardStats) -> None:
        """Add ``other`` (another queue or worker of the same direction) into this one."""
        for f in fields(self):
            name = f.name
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "drops":
                mine.update(theirs)
            elif name == "per_queue":
                for index, counts in theirs.items():
                    mine.setdefault(index, QueueCounts()).add(counts)
            elif name == "first_packet_at":
                self.first_packet_at = theirs if mine is None else mine if theirs is None else min(mine, theirs)
            elif name == "last_packet_at":
                self.last_packet_at = theirs if mine is None else mine if theirs is None else max(mine, theirs)
            elif name == "elapsed":
                self.elapsed = max(mine, theirs)
            else:
                setattr(self, name, mine + theirs)

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary of this direction: numbers as numbers, every key documented here.

        Keys: the counters above (``superpackets_read`` ... ``verbatim_writes``),
        ``wire_packets_in``, ``dropped`` (total) and ``drops`` (reason -> count),
        ``segments_per_gso_write``; ``elapsed_s`` (wall time) and ``active_s``
        (first packet to last); ``gbit_per_s`` (bytes_written over active
        time) and ``packets_per_s`` (packets_written over active time);
        ``per_queue``: a list of {"queue", "packets_read", "wire_packets_in",
        "packets_written", "dropped"} by queue index.
        """
        active = self.active
        return {
            "packets_read": self.packets_read,
            "bytes_read": self.bytes_read,
            "superpackets_read": self.superpackets_read,
            "superpackets_segmented": self.superpackets_segmented,
            "superpackets_passed_through": self.superpackets_passed_through,
            "segments_from_superpackets": self.segments_from_superpackets,
            "wire_packets_in": self.wire_packets_in,
            "packets_written": self.packets_written,
            "bytes_written": self.bytes_written,
            "gso_writes": self.gso_writes,
            "gso_segments": self.gso_segments,
            "segments_per_gso_write": _figure(self.gso_segments / self.gso_writes) if self.gso_writes else 0.0,
            "verbatim_writes": self.verbatim_writes,
            "dropped": self.dropped,
            "drops": dict(self.drops),
            "elapsed_s": _figure(self.elapsed),
            "active_s": _figure(active),
            "gbit_per_s": _figure(self.bytes_written * 8 / active / 1e9) if active else 0.0,
            "packets_per_s": _figure(self.packets_written / active) if active else 0.0,
            "per_queue": [{"queue": i, **asdict(c)} for i, c in sorted(self.per_queue.items())],
        }


__all__ = ["ForwardStats", "QueueCounts"]
