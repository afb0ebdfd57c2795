"""Running a forward between two opened backends: threads, signals, workers.

One Forwarder thread per direction (a second one, sink -> source, with
both_ways); the run ends when a source ends or closes, on Ctrl-C, or at the
packet limit. With workers > 1 each worker process drives one queue index
of both sets (a multiqueue device: the kernel spreads flows over queues).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from tio_core.contract import QueueSet
from tio_core.errors import TioError
from tio_core.forward.forwarder import Forwarder, ForwardStats

# How long an interrupted run lets threads finish their batch before closing
# the sources to wake readers blocked in read().
_GRACE_SECONDS = 0.3


@dataclass
class RunOptions:
    segment: bool = True
    coalesce: bool = True
    both_ways: bool = False
    limit: int | None = None  # packets read from the source, all workers together
    workers: int = 1
    duration: float | None = None  # seconds; then the run stops as at the end of its source


@dataclass
class RunResult:
    stats: ForwardStats
    reverse: ForwardStats | None = None
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)


class _Direction(threading.Thread):
    def __init__(self, forwarder: Forwarder, stop: threading.Event, limit: int | None, done: threading.Event):
        super().__init__(daemon=True, name="tio-forward")
        self.forwarder, self.stop, self.limit, self.done = forwarder, stop, limit, done
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.forwarder.run(self.stop, self.limit)
        except BaseException as exc:  # reported by the runner, never lost
            self.error = exc
        finally:
            self.done.set()


def run_queues(
    source: QueueSet,
    sink: QueueSet,
    options: RunOptions,
    index: int = 0,
    stop: threading.Event | None = None,
    on_progress: Callable[[ForwardStats], None] | None = None,
) -> RunResult:
    """Forward queue ``index`` of source to sink (and back with both_ways) until done."""
    stop = stop or threading.Event()
    done = threading.Event()
    src_q, dst_q = source.queues()[index], sink.queues()[index % len(sink.queues())]
    forward = Forwarder(src_q, dst_q, segment=options.segment, coalesce=options.coalesce)
    directions = [_Direction(forward, stop, options.limit, done)]
    reverse = None
    if options.both_ways:
        reverse = Forwarder(dst_q, src_q, segment=options.segment, coalesce=options.coalesce)
        directions.append(_Direction(reverse, stop, None, done))
    for thread in directions:
        thread.start()
    interrupted = False
    deadline = None if options.duration is None else time.monotonic() + options.duration
    try:
        while not stop.is_set():
            wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if wait <= 0 or done.wait(wait):
                break
            if on_progress is not None:
                on_progress(forward.stats)
    except KeyboardInterrupt:
        interrupted = True
    stop.set()
    _wind_down(directions, (source, sink))
    errors = [f"{type(t.error).__name__}: {t.error}" for t in directions if t.error is not None]
    return RunResult(forward.stats, reverse.stats if reverse else None, interrupted, errors)


def _wind_down(threads: list[threading.Thread], sets: tuple[QueueSet, ...]) -> None:
    """Let threads finish their batch, then close the sets to wake blocked readers."""
    deadline = time.monotonic() + _GRACE_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        for queue_set in sets:
            try:
                queue_set.close()
            except Exception:
                pass
    for thread in threads:
        thread.join()


def run_forward(
    source: QueueSet,
    sink: QueueSet,
    options: RunOptions,
    on_progress: Callable[[ForwardStats], None] | None = None,
) -> RunResult:
    """Run in this process (workers == 1) or in one process per queue."""
    if options.workers <= 1:
        return run_queues(source, sink, options, on_progress=on_progress)
    return _run_workers(source, sink, options, on_progress)


# -- worker processes ---------------------------------------------------------


def _worker_main(source: QueueSet, sink: QueueSet, options: RunOptions, index: int, conn) -> None:
    stop = threading.Event()
    # Ctrl-C reaches the whole process group; each worker stops on its own.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        result = run_queues(source, sink, options, index, stop)
        conn.send(("ok", result))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()
        os._exit(0)


def _run_workers(source: QueueSet, sink: QueueSet, options: RunOptions, on_progress) -> RunResult:
    count = options.workers
    if len(source.queues()) < count:
        raise TioError(f"--workers {count} needs a source with {count} queues, it has {len(source.queues())}")
    context = multiprocessing.get_context("fork")
    per_worker = RunOptions(options.segment, options.coalesce, options.both_ways, None, 1, options.duration)
    workers = []
    for index in range(count):
        parent_end, child_end = context.Pipe(duplex=False)
        proc = context.Process(target=_worker_main, args=(source, sink, per_worker, index, child_end), daemon=True)
        proc.start()
        child_end.close()
        workers.append((proc, parent_end))
    total = RunResult(ForwardStats(), ForwardStats() if options.both_ways else None)
    pending = dict(enumerate(workers))
    try:
        while pending:
            for index, (proc, conn) in list(pending.items()):
                if conn.poll(0.1):
                    try:
                        status, payload = conn.recv()
                    except EOFError:
                        status, payload = "error", f"worker {index} exited with code {proc.exitcode}"
                    del pending[index]
                    proc.join()
                    if status == "ok":
                        total.stats.merge(payload.stats)
                        if payload.reverse and total.reverse is not None:
                            total.reverse.merge(payload.reverse)
                        total.errors += payload.errors
                        total.interrupted |= payload.interrupted
                    else:
                        total.errors.append(f"worker {index}: {payload}")
                    if total.errors:
                        _stop_workers(pending)  # one failure stops the whole run
                elif not proc.is_alive() and not conn.poll(0):
                    del pending[index]
                    total.errors.append(f"worker {index} died with exit code {proc.exitcode}")
                    _stop_workers(pending)
    except KeyboardInterrupt:
        total.interrupted = True
        _stop_workers(pending)
        for index, (proc, conn) in pending.items():
            if conn.poll(5):
                status, payload = conn.recv()
                if status == "ok":
                    total.stats.merge(payload.stats)
            proc.join(5)
    return total


def _stop_workers(pending: dict) -> None:
    for proc, _conn in pending.values():
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
