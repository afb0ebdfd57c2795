"""When each replayed packet is due: as fast as possible, real time, or a fixed rate."""

from __future__ import annotations

import time

NS = 1_000_000_000


class Pacer:
    """Maps packets to wall-clock due times (time.monotonic_ns()).

    realtime: due = start + (timestamp - first timestamp of the pass) / speed;
        each loop pass starts where the previous one ended. A timestamp that
        goes backwards is due at once, so packets keep their file order.
    rate: packet k is due at start + k / rate.
    bitrate: a packet is due when the bytes before it took mbps megabits per second.
    A loop delay shifts every pass after the first by that many seconds.
    """

    def __init__(
        self, mode: str, speed: float = 1.0, rate: float | None = None, mbps: float | None = None, loop_delay: float = 0
    ) -> None:
        if mode not in ("fast", "realtime", "rate", "bitrate"):
            raise ValueError(f"pacing must be fast, realtime, rate or bitrate, got {mode!r}")
        self.mode = mode
        self.speed = speed
        self.interval_ns = NS / rate if rate else 0.0
        self.ns_per_byte = 8 * 1000 / mbps if mbps else 0.0
        self.loop_delay_ns = int(loop_delay * NS)
        self.needs_timestamps = mode == "realtime"
        self._start_wall: int | None = None  # wall time the current pass is anchored at
        self._start_ts = 0  # capture timestamp of the first packet of the current pass
        self._new_pass = True
        self._count = 0
        self._bytes = 0
        self._delays = 0  # loop delays so far (rate, bitrate), in ns
        self._last_due = 0

    def start_pass(self) -> None:
        """The next packet is the first of a (new) pass over the capture."""
        self._new_pass = True
        self._delays += self.loop_delay_ns

    def due(self, timestamp_ns: int, size: int = 0) -> int:
        """Due time of the next packet of ``size`` bytes (call once per packet, in order)."""
        now = time.monotonic_ns()
        if self._start_wall is None:
            self._start_wall = now
            self._last_due = now
        if self.mode == "rate":
            due = self._start_wall + self._delays + int(self._count * self.interval_ns)
        elif self.mode == "bitrate":
            due = self._start_wall + self._delays + int(self._bytes * self.ns_per_byte)
            self._bytes += size
        else:
            if self._new_pass:
                delay = self.loop_delay_ns if self._count else 0
                self._start_wall, self._start_ts = self._last_due + delay, timestamp_ns
            due = self._start_wall + int((timestamp_ns - self._start_ts) / self.speed)
        self._new_pass = False
        self._count += 1
        self._last_due = max(self._last_due, due)
        return due
