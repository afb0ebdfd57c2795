"""Benchmark figures: a measurement beside its baseline from the same run.

Every benchmark module (tio_core.bench_*, and each plugin's own) exposes
``run(quick: bool = False) -> list[Figure]``; scripts in benchmarks/ and
``tio bench`` print them with tio_core.cli.output.figure_table().
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeGuard

MAX_FIGURES = 1000  # more from one benchmark is a runaway generator, not a measurement


class Figure(NamedTuple):
    name: str  # what was measured, e.g. "segment TCPv4 64KiB (C)"
    value: float
    unit: str  # e.g. "GB/s", "Mpps", "Gbit/s"
    baseline_name: str = ""  # e.g. "bytes copy"
    baseline_value: float = 0.0  # same unit, measured in the same run
    target: float | None = None  # the ratio to the baseline this measurement aims for, if the benchmark states one

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline_value if self.baseline_value else None


def check_figures(figures: object) -> list[Figure]:
    """``figures`` as a list of well-formed Figures, or ValueError saying which one is not and why.

    A benchmark is plugin code: its output is checked before a table, chart
    or JSON document is made of it.
    """
    if isinstance(figures, (str, bytes, dict)) or not isinstance(figures, Iterable):
        raise ValueError(f"a benchmark must return a list of Figure, got {type(figures).__name__}")
    checked: list[Figure] = []
    for index, fig in enumerate(figures):
        if index >= MAX_FIGURES:
            raise ValueError(f"a benchmark returned more than {MAX_FIGURES} figures")
        if not isinstance(fig, Figure):
            raise ValueError(f"figure {index} is a {type(fig).__name__}, not a Figure")
        fields: tuple[object, ...] = tuple(tuple.__iter__(fig))  # the stored values, whatever a subclass overrides
        name, value, unit, baseline_name, baseline_value, target = fields
        label = f"figure {index}"
        if not (isinstance(name, str) and isinstance(unit, str) and isinstance(baseline_name, str)):
            raise ValueError(f"{label}: name, unit and baseline_name must be strings")
        label = f"figure {name!r}"
        if not _finite_number(value) or value < 0:
            raise ValueError(f"{label}: value must be a finite number >= 0, got {value!r}")
        if not _finite_number(baseline_value) or baseline_value < 0:
            raise ValueError(f"{label}: baseline_value must be a finite number >= 0, got {baseline_value!r}")
        if target is not None and (not _finite_number(target) or target <= 0):
            raise ValueError(f"{label}: target must be None or a finite ratio > 0, got {target!r}")
        checked.append(
            Figure(
                str.__str__(name),
                float(value),
                str.__str__(unit),
                str.__str__(baseline_name),
                float(baseline_value),
                None if target is None else float(target),
            )
        )
    return checked


def _finite_number(value: object) -> TypeGuard[float]:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond the float range
        return False


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
