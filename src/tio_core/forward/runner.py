"""Running a forward between two opened backends: one worker per queue and direction.

A run has one *unit* per source queue (``workers``) and direction (a second,
sink -> source, with ``both_ways``); each unit is one Forwarder. Where the
units live:

* processes: every unit in its own forked process, so no two directions (or
  queues) share a GIL. Used when there is more than one unit and both queue
  sets say they can be driven from a forked process (``process_safe``: their
  state is in the kernel, e.g. TUN fds). Each worker sends its counts to
  this process (every PROGRESS_SECONDS, and once at the end) over a pipe.
* threads: otherwise (one unit, or a backend whose state lives in this
  process: a capture file being written, in-memory fakes).

The run ends when every forward unit has ended (its source ended or closed,
or the packet limit is spent), after ``duration`` seconds, when a unit fails
or a worker dies, or on SIGINT/SIGTERM (handled while the run lasts, when it runs in the main
thread). Stopping is bounded: a unit gets STOP_GRACE seconds to finish the
batch it is forwarding; a unit blocked in its source's read() has no batch
in flight, so it is left behind at once (its thread or process is ended
later, when the sets are closed or the process exits). No wait in here is
unbounded; a run returns within STOP_DEADLINE seconds of the stop.

The result holds one ForwardStats per direction, merged over the queues,
with per-queue counts (``per_queue``) and, in every path, the accounting
``wire_packets_in == packets_written + dropped``: packets a unit was still
writing when the grace ran out are counted as dropped
(DROP_STOPPED_MID_WRITE). A worker process that died or had to be killed is
reported in ``errors`` with the counts it last sent.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing.connection
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from tio_core.contract import Queue, QueueSet
from tio_core.errors import ConfigError, QueueClosed
from tio_core.forward.forwarder import Forwarder, PacketBudget, StopFlag
from tio_core.forward.stats import ForwardStats

STOP_GRACE = 0.3  # seconds a unit may take to finish the batch it is forwarding
STOP_DEADLINE = 0.8  # seconds from the stop until run_forward returns, whatever the units do
PROGRESS_SECONDS = 0.25  # how often workers report counts and on_progress is called
_TICK = 0.05  # supervision poll interval

DROP_STOPPED_MID_WRITE = "stopped while the sink blocked a write"
DROP_WORKER_LOST = "lost with a worker that died"

FORWARD, REVERSE = "forward", "reverse"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


@dataclass
class RunOptions:
    segment: bool = True
    coalesce: bool = True
    both_ways: bool = False
    limit: int | None = None  # packets read from the source, all forward units together
    workers: int = 1  # source queues driven, one unit per queue and direction
    duration: float | None = None  # seconds; then the run stops as at the end of its source
    processes: bool | None = None  # None: processes when useful and both sets are process_safe


@dataclass
class RunResult:
    """What run_forward returns; ``stats``/``reverse`` are per direction, merged over queues.

    interrupted: stopped by SIGINT/SIGTERM (``stop_signal`` names it) or by
    the caller's ``stop``. errors: one line per failed unit or lost worker
    (the CLI exits 1 when there are any). mode: "processes" or "threads".
    elapsed: wall time of the run, also set on both stats.
    """

    stats: ForwardStats
    reverse: ForwardStats | None = None
    interrupted: bool = False
    stop_signal: str | None = None
    errors: list[str] = field(default_factory=list)
    mode: str = "threads"
    elapsed: float = 0.0


@dataclass
class _UnitSpec:
    direction: str
    index: int  # source queue index of this direction
    source: Queue
    sink: Queue

    @property
    def label(self) -> str:
        return f"{self.direction}[{self.index}]"


@dataclass
class _Outcome:
    """What a unit reports when it is over."""

    stats: ForwardStats
    error: str | None = None
    stopped_mid_write: bool = False


# -- a unit in a thread ------------------------------------------------------------


class _ThreadUnit:
    """One Forwarder in a daemon thread; collect() ends it within a bound."""

    def __init__(
        self, spec: _UnitSpec, options: RunOptions, stop: StopFlag, budget: PacketBudget | None, wake: threading.Event
    ) -> None:
        self.spec = spec
        self.forwarder = Forwarder(spec.source, spec.sink, segment=options.segment, coalesce=options.coalesce)
        self._stop, self._budget, self._wake = stop, budget, wake
        self.error: str | None = None
        self.finished = False
        self._thread = threading.Thread(target=self._main, daemon=True, name=f"tio-{spec.label}")

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        budget = self._budget if self.spec.direction == FORWARD else None
        try:
            self.forwarder.run(self._stop, budget=budget)
        except QueueClosed as exc:
            self.error = f"{self.spec.label}: the sink closed: {exc}"
        except BaseException as exc:  # reported by the runner, never lost
            self.error = f"{self.spec.label}: {type(exc).__name__}: {exc}"
        finally:
            self.finished = True
            self._wake.set()

    def snapshot(self) -> ForwardStats:
        return _with_queue(self.forwarder.stats.copy(), self.spec.index)

    def collect(self, deadline: float) -> _Outcome:
        """Stop taking batches (the stop flag is already set) and return the final counts."""
        if self.forwarder.abandon(timeout=deadline - time.monotonic()):
            return _Outcome(self.snapshot(), self.error)
        stats = self.forwarder.stats.copy()  # a write is blocked: count its batch as dropped
        stats.settle(DROP_STOPPED_MID_WRITE)
        return _Outcome(_with_queue(stats, self.spec.index), self.error, stopped_mid_write=True)


def _with_queue(stats: ForwardStats, index: int) -> ForwardStats:
    stats.per_queue = {index: stats.queue_counts()}
    return stats


# -- a unit in a forked process -----------------------------------------------------


class _ProcessUnit:
    """One unit in a forked worker; this side reads its reports and stops it."""

    def __init__(self, spec: _UnitSpec, options: RunOptions, budget: PacketBudget | None) -> None:
        self.spec = spec
        self.last = ForwardStats()  # the latest counts the worker sent
        self.outcome: _Outcome | None = None
        self.died: str | None = None
        reader, writer = multiprocessing.Pipe(duplex=False)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker; never returns
            reader.close()
            _worker_main(spec, options, budget, writer, parent)
        writer.close()
        self.pid = pid
        self.conn: Connection = reader
        self._reaped = False

    @property
    def over(self) -> bool:
        return self.outcome is not None or self.died is not None

    def receive(self) -> None:
        """Take every report waiting on the pipe; notice a worker that died."""
        try:
            while self.conn.poll(0):
                kind, payload = self.conn.recv()
                if kind == "progress":
                    self.last = payload
                else:
                    self.outcome = payload
                    self.last = payload.stats
        except (EOFError, OSError):
            if self.outcome is None:
                self.died = f"{self.spec.label}: worker {self.pid} {self._exit_status(wait=0.2)}"

    def signal(self, signum: int) -> None:
        if not self._reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def reap(self, wait: float) -> None:
        if not self._reaped:
            self._exit_status(wait)

    def _exit_status(self, wait: float) -> str:
        """Reap the worker (waiting up to ``wait`` s) and say how it ended."""
        deadline = time.monotonic() + wait
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self._reaped = True
                return "is gone"
            if pid:
                self._reaped = True
                if os.WIFSIGNALED(status):
                    return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
                return f"exited with code {os.WEXITSTATUS(status)} without reporting"
            if time.monotonic() >= deadline:
                return "stopped reporting"
            time.sleep(0.01)


def _worker_main(
    spec: _UnitSpec, options: RunOptions, budget: PacketBudget | None, conn: Connection, parent: int
) -> None:
    """Body of a forked worker: forward, report, exit (os._exit: no inherited cleanup runs here)."""
    code = 0
    try:
        stop = StopFlag()
        for signum in _SIGNALS:  # Ctrl-C reaches the whole process group; the parent also sends SIGTERM
            signal.signal(signum, lambda *_: stop.set())
        _die_with_parent()
        if os.getppid() != parent:
            os._exit(0)
        # The inherited heap is never garbage here: keep the collector from rescanning it.
        gc.freeze()
        wake = threading.Event()
        unit = _ThreadUnit(spec, options, stop, budget, wake)
        unit.start()
        next_report = time.monotonic() + PROGRESS_SECONDS
        while not stop.is_set() and not unit.finished:
            wake.wait(_TICK)
            if time.monotonic() >= next_report:
                conn.send(("progress", unit.snapshot()))
                next_report += PROGRESS_SECONDS
        stop.set()
        conn.send(("done", unit.collect(time.monotonic() + STOP_GRACE)))
    except BaseException:
        code = 1
        with contextlib.suppress(BaseException):
            conn.send(("done", _Outcome(ForwardStats(), f"{spec.label}: worker failed: {traceback.format_exc()}")))
    finally:
        os._exit(code)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this worker when its parent dies (Linux; best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# -- the run -----------------------------------------------------------------------


def _units(source: QueueSet, sink: QueueSet, options: RunOptions) -> list[_UnitSpec]:
    src_queues, dst_queues = source.queues(), sink.queues()
    if options.workers < 1:
        raise ConfigError(f"workers must be at least 1, got {options.workers}")
    if len(src_queues) < options.workers:
        raise ConfigError(
            f"--workers {options.workers} needs a source with {options.workers} queues, it has {len(src_queues)}"
        )
    if not dst_queues:
        raise ConfigError("the sink has no queues")
    specs = []
    for index in range(options.workers):
        src_q, dst_q = src_queues[index], dst_queues[index % len(dst_queues)]
        specs.append(_UnitSpec(FORWARD, index, src_q, dst_q))
        if options.both_ways:
            specs.append(_UnitSpec(REVERSE, index, dst_q, src_q))
    return specs


def _use_processes(source: QueueSet, sink: QueueSet, options: RunOptions, units: int) -> bool:
    safe = bool(getattr(source, "process_safe", False) and getattr(sink, "process_safe", False))
    if options.processes is None:
        return safe and units > 1 and hasattr(os, "fork")
    if options.processes and not safe:
        raise ConfigError(
            f"processes=True needs queue sets that can be driven from a forked process; "
            f"{type(source).__name__ if not getattr(source, 'process_safe', False) else type(sink).__name__} "
            "keeps its state in this process"
        )
    return options.processes


class _Stop:
    """Why and when the run stops; set from signal handlers (plain attribute stores only)."""

    def __init__(self) -> None:
        self.flag = StopFlag()
        self.signal: str | None = None
        self.deadline: float | None = None  # end of the run's duration (not an interrupt)

    def request(self, signame: str | None = None) -> None:
        if self.signal is None and signame is not None:
            self.signal = signame
        self.flag.set()


@contextlib.contextmanager
def _signals_stop(stop: _Stop) -> Iterator[None]:
    """SIGINT and SIGTERM request a stop while the run lasts (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in _SIGNALS:
        name = signal.Signals(signum).name
        previous[signum] = signal.signal(signum, lambda *_, name=name: stop.request(name))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_forward(
    source: QueueSet,
    sink: QueueSet,
    options: RunOptions,
    on_progress: Callable[[ForwardStats], None] | None = None,
    stop: threading.Event | StopFlag | None = None,
) -> RunResult:
    """Forward source -> sink (and back with both_ways) until done; see the module doc.

    on_progress gets the forward direction's counts (merged over queues)
    every PROGRESS_SECONDS. ``stop``: set it (from any thread) to end the
    run as a signal would. The caller closes the sets afterwards.
    """
    specs = _units(source, sink, options)
    processes = _use_processes(source, sink, options, len(specs))
    budget = PacketBudget(options.limit) if options.limit is not None else None
    halt = _Stop()
    started = time.monotonic()
    halt.deadline = None if options.duration is None else started + options.duration
    run = _Run(specs, options, budget, halt, on_progress, stop)
    with _signals_stop(halt):
        result = _supervise_processes(run) if processes else _supervise_threads(run)
    result.elapsed = time.monotonic() - started
    result.stop_signal = halt.signal
    result.interrupted = result.interrupted or halt.signal is not None
    for stats in (result.stats, result.reverse):
        if stats is not None:
            stats.elapsed = result.elapsed
    return result


@dataclass
class _Run:
    """What both supervisors work from: the units to start and when to stop and report."""

    specs: list[_UnitSpec]
    options: RunOptions
    budget: PacketBudget | None
    halt: _Stop
    on_progress: Callable[[ForwardStats], None] | None
    stop: Any  # the caller's threading.Event / StopFlag, or None
    next_progress: float = field(default_factory=lambda: time.monotonic() + PROGRESS_SECONDS)

    def watch(self, units_done: Callable[[], bool]) -> bool:
        """Call ``units_done`` (one supervision tick) until it says so or the duration is over;
        True when a signal or the caller stopped the run first (an interrupt)."""
        while True:
            if self.stop is not None and self.stop.is_set():
                self.halt.request()
            if self.halt.flag.is_set():
                return True
            if units_done() or (self.halt.deadline is not None and time.monotonic() >= self.halt.deadline):
                return False

    def report(self, forward_counts: Callable[[], list[ForwardStats]]) -> None:
        """Call on_progress with the forward units' merged counts, every PROGRESS_SECONDS."""
        if self.on_progress is not None and time.monotonic() >= self.next_progress:
            self.on_progress(_merged(forward_counts()))
            self.next_progress += PROGRESS_SECONDS


def _supervise_threads(run: _Run) -> RunResult:
    wake = threading.Event()
    units = [_ThreadUnit(spec, run.options, run.halt.flag, run.budget, wake) for spec in run.specs]
    for unit in units:
        unit.start()
    forward = [u for u in units if u.spec.direction == FORWARD]

    def units_done() -> bool:
        if any(u.error for u in units) or all(u.finished for u in forward):
            return True
        wake.wait(_TICK)
        wake.clear()
        run.report(lambda: [u.snapshot() for u in forward])
        return False

    interrupted = run.watch(units_done)
    run.halt.flag.set()
    deadline = time.monotonic() + STOP_GRACE
    outcomes = [(u.spec, u.collect(deadline)) for u in units]
    return _result(outcomes, run.options, interrupted, [], "threads")


def _supervise_processes(run: _Run) -> RunResult:
    units: list[_ProcessUnit] = []
    try:
        for spec in run.specs:
            units.append(_ProcessUnit(spec, run.options, run.budget))
    except BaseException:
        for unit in units:
            unit.signal(signal.SIGKILL)
            unit.reap(0.2)
        raise
    forward = [u for u in units if u.spec.direction == FORWARD]

    def units_done() -> bool:
        live = [u.conn for u in units if not u.over]
        if live:
            multiprocessing.connection.wait(live, _TICK)
        for unit in units:
            if not unit.over:
                unit.receive()
        if any(u.died or (u.outcome and u.outcome.error) for u in units) or all(u.over for u in forward):
            return True
        run.report(lambda: [u.last.copy() for u in forward])
        return False

    interrupted = run.watch(units_done)
    # Stop the rest; each answers within STOP_GRACE, stragglers are killed at the deadline.
    deadline = time.monotonic() + STOP_DEADLINE
    for unit in units:
        if not unit.over:
            unit.signal(signal.SIGTERM)
    while any(not u.over for u in units) and time.monotonic() < deadline:
        live = [u.conn for u in units if not u.over]
        multiprocessing.connection.wait(live, max(0.0, min(_TICK, deadline - time.monotonic())))
        for unit in units:
            if not unit.over:
                unit.receive()
    errors = []
    outcomes = []
    for unit in units:
        if unit.outcome is None and unit.died is None:
            unit.signal(signal.SIGKILL)
            unit.died = f"{unit.spec.label}: worker {unit.pid} did not stop within {STOP_DEADLINE} s and was killed"
        unit.reap(0.1)
        unit.conn.close()
        if unit.outcome is not None:
            outcomes.append((unit.spec, unit.outcome))
        else:
            lost = unit.last.copy()  # its last report; what it had in flight is unknown
            lost.settle(DROP_WORKER_LOST)
            outcomes.append((unit.spec, _Outcome(_with_queue(lost, unit.spec.index))))
            errors.append(f"{unit.died}; its counts are those it last reported")
    return _result(outcomes, run.options, interrupted, errors, "processes")


def _merged(parts: list[ForwardStats]) -> ForwardStats:
    total = ForwardStats()
    for part in parts:
        total.merge(part)
    return total


def _result(
    outcomes: list[tuple[_UnitSpec, _Outcome]], options: RunOptions, interrupted: bool, errors: list[str], mode: str
) -> RunResult:
    forward = _merged([o.stats for spec, o in outcomes if spec.direction == FORWARD])
    reverse = _merged([o.stats for spec, o in outcomes if spec.direction == REVERSE]) if options.both_ways else None
    errors = [o.error for _, o in outcomes if o.error] + errors
    return RunResult(forward, reverse, interrupted, None, errors, mode)


__all__ = ["DROP_STOPPED_MID_WRITE", "DROP_WORKER_LOST", "RunOptions", "RunResult", "run_forward"]
