"""When each replayed packet is due: as fast as possible, real time, or a fixed rate."""

from __future__ import annotations

import math
import time

NS = 1_000_000_000
# The slowest pacing accepted: one capture second (speed) or one packet (rate) per 31.7 years.
# Below it the arithmetic leaves what a float or a wait can hold (1e-320 makes 1/speed infinite).
MIN_SPEED = 1e-9
MIN_RATE = 1e-9
# The longest a packet may be due after the one before it (136 years, the span of a classic pcap's
# seconds at speed 1). It keeps every wait inside what threading can wait for (TIMEOUT_MAX, 292
# years on Linux); a packet further ahead has a timestamp pacing cannot follow.
MAX_WAIT_NS = 2**32 * NS


def pacing_problem(mode: str, speed: float, rate: float | None) -> str | None:
    """What is wrong with these pacing settings (None: nothing)."""
    if mode not in ("fast", "realtime", "rate"):
        return f"pacing must be fast, realtime or rate, got {mode!r}"
    if mode == "rate" and rate is None:
        return "pacing='rate' needs rate= (packets per second)"
    if rate is not None and mode != "rate":
        return f"rate= is only used with pacing='rate' (pacing is {mode!r})"
    if rate is not None and not (math.isfinite(rate) and rate >= MIN_RATE):
        return f"rate must be a finite number of packets per second, at least {MIN_RATE:g}, got {rate}"
    if not (math.isfinite(speed) and speed >= MIN_SPEED):
        return f"speed must be a finite number, at least {MIN_SPEED:g}, got {speed}"
    return None


class Pacer:
    """Maps packets to wall-clock due times (time.monotonic_ns()).

    realtime: due = start + (timestamp - first timestamp of the pass) / speed;
        each loop pass starts where the previous one ended. A timestamp that
        goes backwards is due at once, so packets keep their file order.
    rate: packet k is due at start + k / rate.
    Settings are checked by pacing_problem() first.
    """

    def __init__(self, mode: str, speed: float = 1.0, rate: float | None = None) -> None:
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

    def due(self, timestamp_ns: int) -> int | None:
        """Due time of the next packet (call once per packet, in order).

        None: it would be due more than MAX_WAIT_NS after the packet before
        (a timestamp pacing cannot follow); the pacer is left as it was.
        """
        now = time.monotonic_ns()
        if self._start_wall is None:
            self._start_wall = now
            self._last_due = now
        start_wall, start_ts = self._start_wall, self._start_ts
        if self.mode != "rate" and self._new_pass:
            start_wall, start_ts = self._last_due, timestamp_ns
        try:
            offset = self._count * self.interval_ns if self.mode == "rate" else (timestamp_ns - start_ts) / self.speed
        except OverflowError:  # an integer beyond float range
            return None
        if not offset < MAX_WAIT_NS + (self._last_due - start_wall):  # also false for nan
            return None
        due = start_wall + int(offset)
        self._start_wall, self._start_ts = start_wall, start_ts
        self._new_pass = False
        self._count += 1
        self._last_due = max(self._last_due, due)
        return due
