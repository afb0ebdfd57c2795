"""FdQueue: a fake queue on a datagram socket, what ``FakeQueueSet.add(fd)`` adopts."""

from __future__ import annotations

import collections
import errno
import os
import select
import socket
import time
from collections.abc import Sequence
from typing import Any

from tio_core.contract import NO_GSO, Buffer, GSOProto, Packet
from tio_core.errors import EndOfStream, QueueClosed
from tio_core.wire import MAX_IP_PACKET
from tio_fake.caps import FakeCapsQueue
from tio_fake.queue import FakeQueue
from tio_fake.records import WriteRecord


class FdQueue(FakeQueue):
    """A FakeQueue on a datagram socket: each datagram is one IP packet.

    Reads return datagrams received on the socket (plus anything injected);
    writes are recorded and also sent, one datagram per wire packet
    (write_gso segmented as the kernel would). The queue owns the descriptor
    and closes it on close().

    Sending: write()/write_gso() wait until the socket took every packet.
    write_nowait()/write_gso_nowait() (for event loops) raise BlockingIOError,
    accepting nothing, while the socket is full or still holds back packets of
    an earlier call; once a call is accepted, segments the socket cannot take
    at once wait in the queue and go out first on the next write or read.
    Those still waiting at close() are counted in ``unsent_drops``.
    """

    def __init__(self, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sock = sock
        self._wake_r, self._wake_w = os.pipe()
        self._unsent: collections.deque[bytes] = collections.deque()  # accepted, not yet taken by the socket
        self.unsent_drops = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    # -- inbound -----------------------------------------------------------------
    def read_nowait(self) -> list[Packet]:
        """One read that never waits: [] when nothing is ready (the contract's NonBlockingReader)."""
        self._send_unsent(block=False)
        return self.read(block=False)

    def _awaited(self) -> str:
        return f"a datagram on its socket (fd {self.sock.fileno()}) or an injected packet"

    def _wait_for_inbound(self, wait: float | None, blocking: bool) -> None:
        # Release the lock while polling so close() and inject() can run.
        deadline = None if wait is None else time.monotonic() + wait
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._inbound:
            if self._closed:
                raise QueueClosed(f"{self.name}: closed while a read was waiting")
            self._receive_available()
            if self._inbound or not blocking:
                return
            if self.end_of_stream:
                raise EndOfStream(f"{self.name}: no more datagrams")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._timeout_error(wait)
            self._cond.release()
            try:
                poller.poll(None if remaining is None else max(1, int(remaining * 1000)))
            finally:
                self._cond.acquire()

    def _receive_available(self) -> None:
        while len(self._inbound) < self.max_batch:
            try:
                data = self.sock.recv(MAX_IP_PACKET, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                raise QueueClosed(f"{self.name}: socket failed: {exc}") from exc
            if not data:
                return
            self._inbound.append((data, NO_GSO))

    # -- outbound ------------------------------------------------------------------
    def _record(self, record: WriteRecord) -> None:
        super()._record(record)
        self._unsent.extend(record.packets())

    def write(self, data: Buffer) -> int:
        size = super().write(data)
        self._send_unsent(block=True)
        return size

    def write_gso(self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto) -> None:
        super().write_gso(ip_hdr, transport_hdr, payloads, proto)
        self._send_unsent(block=True)

    def write_nowait(self, data: Buffer) -> int:
        """write() that raises BlockingIOError, accepting nothing, instead of waiting for the socket."""
        self._check_can_send_now("write")
        size = super().write(data)
        self._send_unsent(block=False)
        return size

    def write_gso_nowait(
        self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
    ) -> None:
        """write_gso() that raises BlockingIOError, accepting nothing, instead of waiting for the socket."""
        self._check_can_send_now("write_gso")
        super().write_gso(ip_hdr, transport_hdr, payloads, proto)
        self._send_unsent(block=False)

    def _check_can_send_now(self, operation: str) -> None:
        self._check_open(operation)
        self._send_unsent(block=False)
        if self._unsent:
            raise BlockingIOError(
                errno.EAGAIN, f"{self.name}: {operation} would block: {len(self._unsent)} earlier packets not sent yet"
            )
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLOUT)
        if not poller.poll(0):
            raise BlockingIOError(errno.EAGAIN, f"{self.name}: {operation} would block: the socket is full")

    def _send_unsent(self, block: bool) -> None:
        """Hand waiting packets to the socket, in order; with ``block``, until all went (or close)."""
        while self._unsent:
            if self._closed:
                raise QueueClosed(f"{self.name}: closed with {len(self._unsent)} packets not yet sent")
            try:
                self.sock.send(self._unsent[0], socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                if not block:
                    return
                self._wait_writable()
                continue
            except OSError as exc:
                if self._closed:
                    raise QueueClosed(f"{self.name}: closed while sending") from exc
                raise
            self._unsent.popleft()

    def _wait_writable(self) -> None:
        poller = select.poll()
        try:
            poller.register(self.sock.fileno(), select.POLLOUT)
            poller.register(self._wake_r, select.POLLIN)
        except (OSError, ValueError) as exc:  # closed under us: fileno() is -1
            raise QueueClosed(f"{self.name}: closed while sending") from exc
        poller.poll()

    # -- close -----------------------------------------------------------------------
    def close(self) -> None:
        with self._cond:
            was_closed = self._closed
        if not was_closed:
            try:
                self._send_unsent(block=False)  # last chance for what the socket can still take
            except OSError:
                pass
        super().close()
        if not was_closed:
            self.unsent_drops += len(self._unsent)
            self._unsent.clear()
            os.write(self._wake_w, b"x")
            with self._cond:  # a reader may still be between poll and re-acquiring
                self.sock.close()
                os.close(self._wake_r)
                os.close(self._wake_w)


class FdCapsQueue(FdQueue, FakeCapsQueue):
    """An FdQueue in a set opened with ``capabilities=``."""


__all__ = ["FdCapsQueue", "FdQueue"]
