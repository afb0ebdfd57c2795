"""What the CLI writes: standard output, the live progress line, interval lines, tables.

Standard output is written line by line and flushed, so a failing output
(a closed pipe, a full disk) is noticed where it happens and can be told
apart from the command's own errors.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tio_core.bench import Figure


class StdoutGone(Exception):
    """The reader of standard output went away (a closed pipe): stop quietly."""


class StdoutFailed(Exception):
    """Standard output cannot be written (a full disk, an I/O error)."""


def emit(text: str = "") -> None:
    """Write one line (or several) to standard output and flush it."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise StdoutGone from None
    except OSError as exc:
        raise StdoutFailed(f"cannot write to standard output: {exc.strerror or exc}") from None


def emit_json(value: Any, *, one_line: bool = False) -> None:
    emit(json.dumps(value, separators=(",", ":")) if one_line else json.dumps(value, indent=2))


def detach_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # no real stdout (captured in-process): nothing will be flushed at exit


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the first row is usually a header."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def figure_table(figures: Iterable[Figure]) -> str:
    """Benchmark figures, each beside its same-run baseline and the ratio."""
    rows = [["measurement", "value", "baseline", "baseline value", "ratio"]]
    for fig in figures:
        ratio = f"{fig.ratio:.2f}x" if fig.ratio is not None else "-"
        base = f"{fig.baseline_value:.3g} {fig.unit}" if fig.baseline_name else "-"
        rows.append([fig.name, f"{fig.value:.3g} {fig.unit}", fig.baseline_name or "-", base, ratio])
    return table(rows)


def quantity(value: float, unit: str) -> str:
    """1234567 -> "1.23 M<unit>" (decimal prefixes, three significant digits)."""
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


class Counters(Protocol):
    """What the live lines read from a running forwarder (tio_core.forward.ForwardStats)."""

    packets_read: int
    bytes_read: int
    packets_written: int
    bytes_written: int

    @property
    def dropped(self) -> int: ...


def _stop_run() -> None:
    # Standard output is gone mid-run: stop as Ctrl-C would (summary, closed devices).
    signal.raise_signal(signal.SIGINT)


class Progress:
    """One status line on stderr, refreshed in place (only on a terminal)."""

    def __init__(self, enabled: bool, total: int | None = None) -> None:
        self.enabled = enabled
        self.total = total
        self.started = time.monotonic()
        self._shown = False

    def __call__(self, stats: Counters) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        line = (
            f"{stats.packets_read} packets  {stats.bytes_read / 1e6:.1f} MB in  "
            f"{stats.packets_written} out  {stats.bytes_written * 8 / elapsed / 1e9:.2f} Gbit/s"
        )
        if self.total:
            done = min(stats.packets_read / self.total, 1.0)
            line = f"[{'#' * int(done * 20):<20}] {done:4.0%}  " + line
        try:
            sys.stderr.write("\r" + line + "\x1b[K")
            sys.stderr.flush()
        except OSError:
            self.enabled = False
            return
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            try:
                sys.stderr.write("\n")
            except OSError:
                pass


class IntervalLines:
    """``--stats SECONDS``: one line per interval on stdout (iperf3 -i), JSON lines with --json.

    Called with the live counters (from the runner, every fraction of a
    second); prints when an interval is complete, and the last partial one
    at finish().
    """

    FIELDS = ("packets_read", "bytes_read", "packets_written", "bytes_written", "dropped")

    def __init__(self, seconds: float, as_json: bool) -> None:
        self.seconds = seconds
        self.as_json = as_json
        self.started = time.monotonic()
        self._mark = self.started
        self._last = dict.fromkeys(self.FIELDS, 0)
        self._now = dict(self._last)
        self.failed: Exception | None = None

    def __call__(self, stats: Counters) -> None:
        self._now = {name: getattr(stats, name) for name in self.FIELDS}
        if time.monotonic() - self._mark >= self.seconds:
            self._print(during_run=True)

    def finish(self, stats: Counters | None = None) -> None:
        if stats is not None:
            self._now = {name: getattr(stats, name) for name in self.FIELDS}
        if self._now != self._last or time.monotonic() - self._mark >= self.seconds / 2:
            self._print(during_run=False)

    def _print(self, during_run: bool) -> None:
        if self.failed is not None:
            return
        now = time.monotonic()
        span = max(now - self._mark, 1e-9)
        delta = {name: self._now[name] - self._last[name] for name in self.FIELDS}
        line = {
            "type": "interval",
            "start_s": round(self._mark - self.started, 3),
            "end_s": round(now - self.started, 3),
            **delta,
            "packets_per_s": round(delta["packets_written"] / span, 1),
            "gbit_per_s": round(delta["bytes_written"] * 8 / span / 1e9, 6),
        }
        self._mark, self._last = now, self._now
        try:
            if self.as_json:
                emit_json(line, one_line=True)
            else:
                emit(
                    f"[{line['start_s']:7.2f}-{line['end_s']:7.2f} s]  {delta['packets_read']:>9} in  "
                    f"{delta['packets_written']:>9} out  {delta['dropped']:>6} dropped  "
                    f"{line['packets_per_s']:>12,.0f} packets/s  {line['gbit_per_s']:8.3f} Gbit/s"
                )
        except (StdoutGone, StdoutFailed) as exc:
            self.failed = exc
            if during_run:
                _stop_run()
