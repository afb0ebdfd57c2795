"""Two small but real Queue implementations that drive both paths of tio_core.aio.

MemoryQueue has no fd: reads block on a condition variable, so AsyncQueue
uses its thread path. SocketQueue sits on one end of an AF_UNIX SOCK_SEQPACKET
socketpair (the test holds the other end as the "kernel"): it exposes
fileno(), read_nowait() and write_nowait() (the contract's NonBlockingReader and
NonBlockingWriter), so AsyncQueue uses its fd path.
Both follow the borrowed-buffer contract the way the real backends do
(MemoryQueue releases the previous read's views; SocketQueue overwrites one
reused buffer).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import os
import select
import socket
import threading
import time

import pytest

from tio_core import EndOfStream, GSOProto, Packet, Queue, QueueClosed, QueueSet


class MemoryQueue(Queue):
    """In-memory queue without fileno(); inbound packets come from inject()."""

    def __init__(self, max_batch: int = 4) -> None:
        self.max_batch = max_batch
        self.outbound: list[bytes] = []
        self.reads_returned = 0  # batches handed out by read()
        self.write_gate = threading.Event()  # clear it to make writes block
        self.write_gate.set()
        self.writes_started = threading.Event()
        self._inbound: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._ended = False
        self._borrowed: list[memoryview] = []

    def inject(self, *packets: bytes) -> None:
        with self._cond:
            self._inbound.extend(packets)
            self._cond.notify_all()

    def end(self) -> None:
        """Mark the stream finite: once drained, read() raises EndOfStream."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def _release_borrowed(self) -> None:
        for view in self._borrowed:
            view.release()
        self._borrowed = []

    def read(self) -> list[Packet]:
        with self._cond:
            self._release_borrowed()
            while not self._inbound and not self._closed and not self._ended:
                self._cond.wait()
            if self._closed:
                raise QueueClosed("memory queue closed")
            if not self._inbound:
                raise EndOfStream("memory queue drained")
            batch = []
            while self._inbound and len(batch) < self.max_batch:
                view = memoryview(bytearray(self._inbound.popleft()))
                self._borrowed.append(view)
                batch.append(Packet(view))
            self.reads_returned += 1
            return batch

    def write(self, data) -> int:
        self.writes_started.set()
        self.write_gate.wait()
        if self._closed:
            raise QueueClosed("memory queue closed")
        if len(data) == 0:
            raise ValueError("empty packet")
        self.outbound.append(bytes(data))
        return len(data)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._release_borrowed()
            self._cond.notify_all()
        self.write_gate.set()  # a blocked writer wakes and sees the close


class MemoryGSOQueue(MemoryQueue):
    """A MemoryQueue that is also a (permissive) GSOWriter."""

    def __init__(self, max_batch: int = 4) -> None:
        super().__init__(max_batch)
        self.gso_writes: list[tuple[bytes, bytes, list[bytes], GSOProto]] = []

    def write_gso(self, ip_hdr, transport_hdr, payloads, proto) -> None:
        if self._closed:
            raise QueueClosed("memory queue closed")
        if proto not in (GSOProto.TCP, GSOProto.UDP):
            raise ValueError(f"bad proto {proto!r}")
        self.gso_writes.append((bytes(ip_hdr), bytes(transport_hdr), [bytes(p) for p in payloads], proto))


class SocketQueue(Queue):
    """Queue on a SOCK_SEQPACKET socket: fileno(), read_nowait(), write_nowait()."""

    def __init__(self, max_batch: int = 4, sndbuf: int | None = None) -> None:
        self.max_batch = max_batch
        self._sock, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if sndbuf is not None:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self._sock.setblocking(False)
        self._wake_r, self._wake_w = os.pipe()
        self._buffer = bytearray(max_batch * 2048)  # reused by every read: borrowed views
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        if self._closed:
            raise QueueClosed("socket queue closed")
        return self._sock.fileno()

    def _wait(self, for_write: bool, timeout: float | None) -> bool:
        fds = [self._sock] if not for_write else []
        wfds = [self._sock] if for_write else []
        try:
            readable, writable, _ = select.select(fds + [self._wake_r], wfds, [], timeout)
        except (OSError, ValueError):
            raise QueueClosed("socket queue closed") from None
        if self._closed or self._wake_r in readable:
            raise QueueClosed("socket queue closed")
        return bool(readable or writable)

    def read(self) -> list[Packet]:
        """Drain up to max_batch packets, waiting for the first."""
        while True:
            batch = self.read_nowait()
            if batch:
                return batch
            self._wait(for_write=False, timeout=None)

    def read_nowait(self) -> list[Packet]:
        """Drain up to max_batch packets; [] when none is ready."""
        if self._closed:
            raise QueueClosed("socket queue closed")
        return self._drain()

    def _drain(self) -> list[Packet]:
        batch, offset = [], 0
        view = memoryview(self._buffer)
        while len(batch) < self.max_batch:
            try:
                n = self._sock.recv_into(view[offset : offset + 2048])
            except BlockingIOError:
                break
            except OSError:
                raise QueueClosed("socket queue closed") from None
            batch.append(Packet(view[offset : offset + n]))
            offset += 2048
        return batch

    def write(self, data) -> int:
        while True:
            try:
                return self.write_nowait(data)
            except BlockingIOError:
                self._wait(for_write=True, timeout=None)

    def write_nowait(self, data) -> int:
        """Send one packet or raise BlockingIOError when the socket is full."""
        if self._closed:
            raise QueueClosed("socket queue closed")
        return self._sock.send(data)

    def fill(self, data: bytes) -> int:
        """write_nowait(data) until the kernel pushes back; returns how many packets went in."""
        count = 0
        try:
            while True:
                self.write_nowait(data)
                count += 1
        except BlockingIOError:
            return count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._sock.close()
        self.peer.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


class ListQueueSet(QueueSet):
    """A QueueSet over queues built in the test; add(fd) is not supported."""

    def __init__(self, queues: list[Queue]) -> None:
        self._queues = list(queues)
        self.resources_closed = False

    def queues(self) -> list[Queue]:
        return list(self._queues)

    def add(self, fd: int) -> Queue:
        raise NotImplementedError("ListQueueSet does not adopt fds")

    def _close_resources(self) -> None:
        self.resources_closed = True


async def assert_close_wakes(close, waiting: list[asyncio.Task], within: float) -> None:
    """``close()`` (a function or coroutine function) ends every still waiting task with QueueClosed, in time."""
    assert not any(task.done() for task in waiting)
    started = time.monotonic()
    closing = close()
    if inspect.isawaitable(closing):
        await closing
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert time.monotonic() - started < within
    assert all(isinstance(outcome, QueueClosed) for outcome in outcomes), outcomes


async def cancel_a_waiting_read(aq, wait: float = 0.02) -> None:
    """Start aq.read(), let it wait for ``wait`` seconds, cancel it, and see it cancelled."""
    task = asyncio.create_task(aq.read())
    await asyncio.sleep(wait)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
