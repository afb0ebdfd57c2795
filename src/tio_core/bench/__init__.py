"""Benchmark figures: a measurement beside its baseline from the same run.

Every benchmark module (tio_core.bench_*, and each plugin's own) exposes
``run(quick: bool = False) -> list[Figure]``; scripts in benchmarks/ and
``tio bench`` print them with tio_core.cli.output.figure_table().
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple


class Figure(NamedTuple):
    name: str  # what was measured, e.g. "segment TCPv4 64KiB (C)"
    value: float
    unit: str  # e.g. "GB/s", "Mpps", "Gbit/s"
    baseline_name: str = ""  # e.g. "bytes copy"
    baseline_value: float = 0.0  # same unit, measured in the same run

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline_value if self.baseline_value else None


def best_rate(work: Callable[[], object], units_per_call: float, seconds: float = 0.5, repeat: int = 3) -> float:
    """Best observed units/second of ``work`` over ``repeat`` timed windows."""
    best = 0.0
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds / repeat
        while True:
            work()
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls * units_per_call / (now - start))
    return best
