"""When each replayed packet is due: as fast as possible, real time, a fixed packet rate or bit rate."""

from __future__ import annotations

import math
import time

NS = 1_000_000_000
# The slowest pacing accepted: one capture second (speed) or one packet (rate) per 31.7 years.
# Below it the arithmetic leaves what a float or a wait can hold (1e-320 makes 1/speed infinite).
MIN_SPEED = 1e-9
MIN_RATE = 1e-9
MIN_MBPS = 1e-9
MAX_LOOP_DELAY = 86400.0  # seconds between two passes of a loop
# The longest a packet may be due after the one before it (136 years, the span of a classic pcap's
# seconds at speed 1). It keeps every wait inside what threading can wait for (TIMEOUT_MAX, 292
# years on Linux); a packet further ahead has a timestamp pacing cannot follow.
MAX_WAIT_NS = 2**32 * NS


def pacing_problem(
    mode: str, speed: float, rate: float | None, mbps: float | None = None, loop_delay: float = 0.0
) -> str | None:
    """What is wrong with these pacing settings (None: nothing)."""
    if mode not in ("fast", "realtime", "rate", "bitrate"):
        return f"pacing must be fast, realtime, rate or bitrate, got {mode!r}"
    if (mode == "bitrate") != (mbps is not None):
        return "pacing='bitrate' and mbps= (megabits per second) go together"
    if mbps is not None and not (math.isfinite(mbps) and mbps >= MIN_MBPS):
        return f"mbps must be a finite number of megabits per second, at least {MIN_MBPS:g}, got {mbps}"
    if not (math.isfinite(loop_delay) and 0 <= loop_delay <= MAX_LOOP_DELAY):
        return f"loop_delay must be within 0..{MAX_LOOP_DELAY:g} seconds, got {loop_delay}"
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
    bitrate: a packet is due when the bytes before it took mbps megabits per second.
    A loop delay shifts every pass after the first by that many seconds.
    Settings are checked by pacing_problem() first.
    """

    def __init__(
        self, mode: str, speed: float = 1.0, rate: float | None = None, mbps: float | None = None, loop_delay: float = 0
    ) -> None:
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

    def due(self, timestamp_ns: int, size: int = 0) -> int | None:
        """Due time of the next packet, of ``size`` bytes (call once per packet, in order).

        None: it would be due more than MAX_WAIT_NS after the packet before
        (a timestamp pacing cannot follow); the pacer is left as it was.
        """
        now = time.monotonic_ns()
        if self._start_wall is None:
            self._start_wall = now
            self._last_due = now
        start_wall, start_ts = self._start_wall, self._start_ts
        if self.mode == "realtime" and self._new_pass:
            start_wall, start_ts = self._last_due + (self.loop_delay_ns if self._count else 0), timestamp_ns
        try:
            if self.mode == "rate":
                offset = self._delays + self._count * self.interval_ns
            elif self.mode == "bitrate":
                offset = self._delays + self._bytes * self.ns_per_byte
            else:
                offset = (timestamp_ns - start_ts) / self.speed
        except OverflowError:  # an integer beyond float range
            return None
        if not offset < MAX_WAIT_NS + (self._last_due - start_wall):  # also false for nan
            return None
        due = start_wall + int(offset)
        self._start_wall, self._start_ts = start_wall, start_ts
        self._new_pass = False
        self._count += 1
        self._bytes += size
        self._last_due = max(self._last_due, due)
        return due
