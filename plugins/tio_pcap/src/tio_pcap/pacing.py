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
    """

    def __init__(self, mode: str, speed: float = 1.0, rate: float | None = None) -> None:
        if mode not in ("fast", "realtime", "rate"):
            raise ValueError(f"pacing must be fast, realtime or rate, got {mode!r}")
        self.mode = mode
        self.speed = speed
        self.interval_ns = NS / rate if rate else 0.0
        self.needs_timestamps = mode == "realtime"
        self._start_wall: int | None = None  # wall time the current pass is anchored at
        self._start_ts = 0  # capture timestamp of the first packet of the current pass
        self._new_pass = True
        self._count = 0
        self._last_due = 0

    def start_pass(self) -> None:
        """The next packet is the first of a (new) pass over the capture."""
        self._new_pass = True

    def due(self, timestamp_ns: int) -> int:
        """Due time of the next packet (call once per packet, in order)."""
        now = time.monotonic_ns()
        if self._start_wall is None:
            self._start_wall = now
            self._last_due = now
        if self.mode == "rate":
            due = self._start_wall + int(self._count * self.interval_ns)
        else:
            if self._new_pass:
                self._start_wall, self._start_ts = self._last_due, timestamp_ns
            due = self._start_wall + int((timestamp_ns - self._start_ts) / self.speed)
        self._new_pass = False
        self._count += 1
        self._last_due = max(self._last_due, due)
        return due
