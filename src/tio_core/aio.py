"""asyncio adapters for tio queues: ``await q.read()``, ``await q.write(...)``.

    async with AsyncQueueSet(tio_core.open_backend("linux", ...)) as qs:
        q = qs.queues()[0]
        batch = await q.read()        # list[Packet], borrowed as with Queue.read
        await q.write(packet_bytes)

Two ways to drive a queue, picked per queue (``AsyncQueue.mode``):

"fd"      The queue exposes ``fileno()`` and a read that never blocks (see
          *What a backend provides* below). ``read()`` first tries that
          non-blocking read; only when nothing is ready does it wait for the
          fd with ``loop.add_reader``. No thread, no copy.
"thread"  Anything else. Each queue gets one dedicated daemon thread for
          reads and one for writes, so the contract's single-reader /
          single-writer rule holds while the event loop stays free.

Writes run inline on the loop when the backend offers a non-blocking write;
when that would block, fd mode waits with ``loop.add_writer`` and thread mode
hands the write to the queue's writer thread. Without a non-blocking write,
every write goes through the writer thread, since a backend's blocking write
may wait (e.g. poll on EAGAIN) and must not stall the loop.

Concurrency: any number of tasks may await ``read()``/``write()`` on one
AsyncQueue; they are served one at a time in arrival order (asyncio.Lock).
Note that the packets of one read are borrowed until the *next* read of that
queue, whoever makes it: give each queue one reading task, or copy
(``Packet.clone``) what must outlive the next read.

Cancellation leaves the queue usable and loses nothing:
- fd mode: a read is only ever cancelled while waiting for readability, before
  the non-blocking read ran, so no packet was taken from the queue.
- thread mode: the read runs on in its thread; its batch (or error) is kept and
  returned by the next ``await read()``. The kept packets are still borrowed
  from the queue's buffer, and stay valid because no other read of the queue
  can start before they are handed out (the wrapper is the queue's only
  reader: do not call the wrapped queue's read() yourself). Closing the queue
  ends their validity; the next read then raises QueueClosed.
- writes: once a write is handed to the writer thread it cannot be taken back;
  a cancelled ``write()`` waits for it to finish (so the caller's buffer is no
  longer in use when CancelledError propagates): the packet went out unless
  the backend failed it. A write cancelled while waiting for writability (fd
  mode) was not sent; an inline non-blocking write cannot be cancelled midway.

Closing (``close()``/``aclose()``, the async context managers, or closing the
AsyncQueueSet) wakes every task awaiting a read or write on the queue with
QueueClosed, removes the fd from the loop before the fd is closed, and stops the
threads. Close from the event loop's thread; from another thread use
``loop.call_soon_threadsafe(aq.close)``. If the wrapped queue (or its set) is
closed directly instead, awaiters still end with QueueClosed: in thread mode
the backend wakes its blocked read, in fd mode a backstop polls the queue's
``closed`` attribute every CLOSED_CHECK_SECONDS (the loop cannot see a closed
fd).

What a backend provides: the fd path needs ``tio_core.contract.NonBlockingReader``
(``fileno()``, ``read_nowait()``, ``closed``); otherwise the thread path is used.
Writes run inline when the queue is a ``NonBlockingWriter`` (``write_nowait``)
or ``NonBlockingGSOWriter`` (``write_gso_nowait``). The contract module
documents each method's rules.
"""

from __future__ import annotations

import asyncio
import queue as queue_mod
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from tio_core.contract import (
    Buffer,
    Capabilities,
    GSOProto,
    GSOWriter,
    NonBlockingGSOWriter,
    NonBlockingReader,
    NonBlockingWriter,
    Packet,
    Queue,
    QueueSet,
    queue_capabilities,
    supports_gso,
)
from tio_core.errors import ConfigError, LoopMismatch, QueueClosed

MODES = ("auto", "fd", "thread")

# How often an fd-mode wait checks the wrapped queue's ``closed`` flag, in case
# it was closed without going through the wrapper.
CLOSED_CHECK_SECONDS = 0.2

# What _write_now returns when the write could not go inline (None is a write_gso's result).
_MUST_WAIT = object()

# --------------------------------------------------------------------------
# What the backend offers


def _fileno(queue: NonBlockingReader) -> int | None:
    try:
        fd = queue.fileno()
    except (OSError, ValueError, NotImplementedError, QueueClosed):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


# --------------------------------------------------------------------------
# One dedicated thread per queue and direction


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """Runs on the loop: deliver a thread's outcome unless close() already did."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _mark_retrieved(future: asyncio.Future) -> None:
    # An outcome nobody awaits any more (e.g. the queue was closed) is not a bug.
    if not future.cancelled():
        future.exception()


class _DedicatedThread:
    """Runs submitted calls one after another on a single daemon thread.

    Daemon, so a backend that never wakes a blocked read cannot hang
    interpreter exit (ThreadPoolExecutor threads are joined at exit).
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, loop: asyncio.AbstractEventLoop, call: Callable[..., Any], *args: Any) -> asyncio.Future:
        future = loop.create_future()
        future.add_done_callback(_mark_retrieved)
        self._jobs.put((loop, future, call, args))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, call, args = job
            result, error = None, None
            try:
                result = call(*args)
            except BaseException as exc:  # delivered to the awaiting task
                error = exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting
                pass
            # Parked threads must not keep borrowed packets, caller buffers or the queue alive.
            del job, loop, future, call, args, result, error


async def _await_uncancellable(future: asyncio.Future) -> Any:
    """Await an operation that cannot be taken back once started.

    If the awaiting task is cancelled, wait for the operation to finish first
    (its arguments, borrowed from the caller, stay in use until then), then
    let the cancellation propagate.
    """
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        raise


# --------------------------------------------------------------------------
# The async queue


class AsyncQueue:
    """asyncio front for one tio Queue. See the module docstring.

    ``AsyncQueue(q)`` returns an AsyncGSOQueue (which adds ``write_gso``)
    when ``q`` is a GSOWriter, so that ``write_gso`` exists exactly when the
    wrapped queue can take it.
    """

    def __new__(cls, queue: Queue, *args: Any, **kwargs: Any) -> AsyncQueue:
        if cls is AsyncQueue and isinstance(queue, GSOWriter):
            cls = AsyncGSOQueue
        return super().__new__(cls)

    def __init__(self, queue: Queue, *, mode: str = "auto") -> None:
        if mode not in MODES:
            raise ConfigError(f"AsyncQueue mode must be one of {', '.join(MODES)}; got {mode!r}")
        self._queue = queue
        reader = queue if isinstance(queue, NonBlockingReader) else None
        self._fd = _fileno(reader) if reader is not None else None
        self._read_nowait = reader.read_nowait if reader is not None else None
        fd_capable = self._fd is not None
        if mode == "fd" and not fd_capable:
            raise ConfigError(
                f"AsyncQueue mode 'fd' needs {type(queue).__name__} to be a NonBlockingReader "
                "(fileno() returning an fd, read_nowait(), closed)"
            )
        self.mode = "fd" if (fd_capable and mode != "thread") else "thread"
        # A write that cannot block runs inline on the loop, in either mode;
        # only when it would block do we wait (fd) or hand it to a thread.
        self._write_nowait = queue.write_nowait if isinstance(queue, NonBlockingWriter) else None
        self._write_gso_nowait = queue.write_gso_nowait if isinstance(queue, NonBlockingGSOWriter) else None

        self._loop: asyncio.AbstractEventLoop | None = None
        # asyncio locks bind to a loop on first use, not on creation
        self._read_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._reader: _DedicatedThread | None = None
        self._writer: _DedicatedThread | None = None
        self._pending_read: asyncio.Future | None = None  # thread mode: a read still owed to a caller
        self._fd_waiters: set[asyncio.Future] = set()
        self._closed = False

    # -- introspection -----------------------------------------------------

    @property
    def queue(self) -> Queue:
        """The wrapped queue (do not read it directly while wrapped)."""
        return self._queue

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int | None:
        """The backend's fd, or None when the queue has none."""
        return self._fd

    def capabilities(self) -> Capabilities:
        """The offloads the wrapped queue negotiated (all False if none)."""
        return queue_capabilities(self._queue)

    def supports_gso(self, proto: GSOProto) -> bool:
        """Whether ``write_gso`` with ``proto`` is safe, by the seed's rule."""
        return supports_gso(self._queue, proto)[1]

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.mode
        return f"<{type(self).__name__} {state} {self._queue!r}>"

    # -- plumbing ------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise LoopMismatch("this AsyncQueue is bound to another event loop (the one that first used it)")
        return loop

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosed("the async queue is closed")

    async def _wait_fd(self, loop: asyncio.AbstractEventLoop, writable: bool) -> None:
        """Wait until the fd polls readable (or writable), or the queue closes."""
        fd = self._fd
        assert fd is not None, "fd waits happen only in fd mode"
        waiter = loop.create_future()
        waiter.add_done_callback(_mark_retrieved)
        add, remove = (loop.add_writer, loop.remove_writer) if writable else (loop.add_reader, loop.remove_reader)
        add(fd, _settle, waiter, None, None)
        self._fd_waiters.add(waiter)
        backstop = loop.call_later(CLOSED_CHECK_SECONDS, self._check_closed_behind_our_back, loop, waiter)
        try:
            await waiter
        finally:
            backstop.cancel()
            self._fd_waiters.discard(waiter)
            if not self._closed:  # close() already unregistered the fd
                remove(fd)

    def _check_closed_behind_our_back(self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future) -> None:
        """Backstop for a queue closed directly rather than through this wrapper.

        The loop never sees a closed fd become ready (epoll forgets it), so
        without this an fd-mode awaiter would wait forever.
        """
        if waiter.done():
            return
        if getattr(self._queue, "closed", False) is True:
            _settle(waiter, None, QueueClosed("the queue was closed while awaiting it"))
        else:
            loop.call_later(CLOSED_CHECK_SECONDS, self._check_closed_behind_our_back, loop, waiter)

    def _thread(self, attr: str) -> _DedicatedThread:
        thread = getattr(self, attr)
        if thread is None:
            direction = "read" if attr == "_reader" else "write"
            thread = _DedicatedThread(f"tio-aio-{direction}-{id(self._queue):x}")
            setattr(self, attr, thread)
            # A wrapper dropped without close() must not leave its thread parked forever.
            weakref.finalize(self, thread.stop)
        return thread

    # -- reading -------------------------------------------------------------

    async def read(self) -> list[Packet]:
        """Wait for and return the next batch of packets.

        At least one packet, unless the backend itself was configured to
        return empty batches (thread mode passes its read through as is).

        The packets are borrowed until the next read or close of this queue.
        Raises QueueClosed (EndOfStream for a finished finite source) as the
        backend does, and QueueClosed when the queue is closed while waiting.
        """
        loop = self._bind()
        self._check_open()
        async with self._read_lock:
            if self.mode == "fd":
                return await self._read_fd(loop)
            return await self._read_thread(loop)

    async def _read_fd(self, loop: asyncio.AbstractEventLoop) -> list[Packet]:
        read_nowait = self._read_nowait
        assert read_nowait is not None, "fd mode needs a NonBlockingReader"
        while True:
            self._check_open()
            try:
                batch = read_nowait()
            except BlockingIOError:  # the contract's "nothing ready, try later"
                batch = None
            if batch:
                return batch
            await self._wait_fd(loop, writable=False)

    async def _read_thread(self, loop: asyncio.AbstractEventLoop) -> list[Packet]:
        self._check_open()
        if self._pending_read is None:
            self._pending_read = self._thread("_reader").submit(loop, self._queue.read)
        pending = self._pending_read
        try:
            # shield: cancelling this task must not cancel the read in its thread.
            batch = await asyncio.shield(pending)
        except asyncio.CancelledError:
            # The read (finished or not) stays in _pending_read, owed to the
            # next caller: its batch is never dropped.
            raise
        except BaseException:
            self._pending_read = None
            raise
        self._pending_read = None
        return batch

    def __aiter__(self) -> AsyncQueue:
        return self

    async def __anext__(self) -> list[Packet]:
        """``async for batch in q``: batches until the queue closes or the stream ends."""
        try:
            return await self.read()
        except QueueClosed:  # EndOfStream included
            raise StopAsyncIteration from None

    # -- writing -------------------------------------------------------------

    async def write(self, data: Buffer) -> int:
        """Emit one IP packet; returns the bytes written (see cancellation notes)."""
        nowait, args = self._write_nowait, (data,)
        written = self._write_now(nowait, args)
        return await self._write(nowait, self._queue.write, args) if written is _MUST_WAIT else written

    def _write_now(self, nowait: Callable[..., Any] | None, args: tuple) -> Any:
        """nowait(*args) inline, without a coroutine or the lock, when nobody waits to write (so
        this write overtakes no one) on the bound loop; _MUST_WAIT when _write must take over
        (no non-blocking write, closed, a writer waiting, a first use or another loop, or EAGAIN)."""
        if nowait is None or self._closed or self._write_lock.locked() or self._loop is not asyncio.get_running_loop():
            return _MUST_WAIT
        try:
            return nowait(*args)
        except BlockingIOError:
            return _MUST_WAIT

    async def _write(self, nowait: Callable[..., Any] | None, blocking: Callable[..., Any], args: tuple) -> Any:
        loop = self._bind()
        self._check_open()
        async with self._write_lock:
            self._check_open()
            while nowait is not None:
                try:
                    return nowait(*args)
                except BlockingIOError:
                    if self.mode != "fd":
                        break  # nothing to wait on: let the writer thread block instead
                await self._wait_fd(loop, writable=True)
                self._check_open()
            return await _await_uncancellable(self._thread("_writer").submit(loop, blocking, *args))

    # -- closing -------------------------------------------------------------

    def _detach(self) -> None:
        """Wake every awaiter with QueueClosed and let go of the loop and threads.

        Runs before the wrapped queue is closed so the fd leaves the loop's
        selector while it is still open.
        """
        if self._closed:
            return
        self._closed = True
        pending, self._pending_read = self._pending_read, None
        if self._loop is None or self._loop.is_closed():
            return  # nobody can be awaiting on a loop that is gone
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        for waiter in list(self._fd_waiters):
            _settle(waiter, None, QueueClosed("the queue was closed while awaiting it"))
        if pending is not None:
            # Its packets (if any) die with the queue; a waiting reader gets QueueClosed.
            _settle(pending, None, QueueClosed("the queue was closed while awaiting a read"))

    def _stop_threads(self) -> None:
        for thread in (self._reader, self._writer):
            if thread is not None:
                thread.stop()

    def close(self) -> None:
        """Close the wrapped queue, waking all awaiters with QueueClosed; idempotent."""
        if self._closed:
            return
        self._detach()
        try:
            self._queue.close()  # also wakes a read blocked in our reader thread
        finally:
            self._stop_threads()

    async def aclose(self) -> None:
        """close(), then wait (briefly) for the queue's threads to finish."""
        self.close()
        await self._join_threads()

    async def _join_threads(self, timeout: float = 2.0) -> None:
        for thread in (self._reader, self._writer):
            if thread is not None and thread.alive:
                await asyncio.to_thread(thread.join, timeout)

    async def __aenter__(self) -> AsyncQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AsyncGSOQueue(AsyncQueue):
    """An AsyncQueue whose wrapped queue is a GSOWriter."""

    async def write_gso(
        self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
    ) -> None:
        """Emit one TCP/UDP superpacket, as GSOWriter.write_gso (same errors).

        Check ``supports_gso(proto)`` first, as for the synchronous queue.
        """
        writer = cast(GSOWriter, self._queue)  # AsyncGSOQueue wraps GSOWriters only
        nowait, args = self._write_gso_nowait, (ip_hdr, transport_hdr, payloads, proto)
        if self._write_now(nowait, args) is _MUST_WAIT:
            await self._write(nowait, writer.write_gso, args)


# --------------------------------------------------------------------------
# The async queue set


class AsyncQueueSet:
    """asyncio front for a QueueSet: ``async with AsyncQueueSet(qs) as aqs``.

    ``queues()`` returns one AsyncQueue per queue of the set (the same wrapper
    every time); closing the async set wakes every awaiter on every queue with
    QueueClosed, then closes the set the orderly way (QueueSet.close).
    """

    def __init__(self, queue_set: QueueSet, *, mode: str = "auto") -> None:
        if mode not in MODES:
            raise ConfigError(f"AsyncQueueSet mode must be one of {', '.join(MODES)}; got {mode!r}")
        self._set = queue_set
        self._mode = mode
        self._wrappers: dict[int, AsyncQueue] = {}
        self._closed = False
        self.queues()  # wrap now: a bad mode for these queues fails here, not later

    @property
    def queue_set(self) -> QueueSet:
        return self._set

    @property
    def closed(self) -> bool:
        return self._closed

    def queues(self) -> list[AsyncQueue]:
        """Async wrappers of the set's queues, in the set's order."""
        wrapped = []
        for queue in self._set.queues():
            wrapper = self._wrappers.get(id(queue))
            if wrapper is None or wrapper.queue is not queue:
                wrapper = self._wrappers[id(queue)] = AsyncQueue(queue, mode=self._mode)
            wrapped.append(wrapper)
        return wrapped

    def add(self, fd: int) -> AsyncQueue:
        """QueueSet.add(fd), returning the new queue's async wrapper."""
        if self._closed:
            raise QueueClosed("the async queue set is closed")
        queue = self._set.add(fd)
        wrapper = self._wrappers[id(queue)] = AsyncQueue(queue, mode=self._mode)
        return wrapper

    def __len__(self) -> int:
        return len(self._set.queues())

    def __getitem__(self, index: int) -> AsyncQueue:
        return self.queues()[index]

    def __iter__(self) -> Iterator[AsyncQueue]:
        return iter(self.queues())

    def close(self) -> None:
        """Wake all awaiters with QueueClosed, then close the set; idempotent."""
        if self._closed:
            return
        self._closed = True
        wrappers = list(self._wrappers.values())
        for wrapper in wrappers:
            wrapper._detach()
        try:
            self._set.close()
        finally:
            for wrapper in wrappers:
                wrapper._stop_threads()

    async def aclose(self) -> None:
        """close(), then wait (briefly) for the queues' threads to finish."""
        self.close()
        for wrapper in self._wrappers.values():
            await wrapper._join_threads()

    async def __aenter__(self) -> AsyncQueueSet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


__all__ = ["AsyncGSOQueue", "AsyncQueue", "AsyncQueueSet", "LoopMismatch", "MODES"]
