"""The seed contract (tio_interfaces.go) in Python.

Value types are immutable named tuples: cheap to build on the hot path and
safe to share. Queue and QueueSet are abstract base classes; the optional
interfaces CapsProvider and GSOWriter are structural Protocols, as in Go,
so a backend opts in simply by defining the method.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from tio_core.errors import QueueClosed, TioError

Buffer = bytes | bytearray | memoryview  # any bytes-like packet data a writer accepts


class GSOProto(enum.IntEnum):
    """L4 protocol of a superpacket: picks the GSO type and checksum offset."""

    NONE = 0
    TCP = 1
    UDP = 2


class GSOInfo(NamedTuple):
    """Describes a kernel-supplied superpacket; the default means "none".

    size: payload bytes per segment (TCP MSS / UDP chunk); 0 = not a superpacket.
    hdr_len: total L3+L4 header length inside the packet (already corrected,
        safe to slice on).
    csum_start: offset of the L4 header (== L3 header length incl. extensions).
    proto: GSOProto.TCP or GSOProto.UDP.
    """

    size: int = 0
    hdr_len: int = 0
    csum_start: int = 0
    proto: GSOProto = GSOProto.NONE

    @property
    def is_superpacket(self) -> bool:
        return self.size > 0


NO_GSO = GSOInfo()


class Packet(NamedTuple):
    """One unit returned by Queue.read().

    ``data`` is borrowed: it points into the queue's buffer and is valid only
    until the next read() or close() on that queue. Use clone() to keep it.
    When ``gso.is_superpacket`` the bytes must be segmented before use as IP
    datagrams.
    """

    data: memoryview
    gso: GSOInfo = NO_GSO

    def clone(self) -> Packet:
        """A packet owning a private copy of the bytes; GSO metadata verbatim."""
        return Packet(memoryview(bytes(self.data)), self.gso)


class Capabilities(NamedTuple):
    """Offloads a queue negotiated with the kernel.

    tso: write_gso with GSOProto.TCP is safe. uso: write_gso with
    GSOProto.UDP is safe (Linux >= 6.2).
    """

    tso: bool = False
    uso: bool = False


NO_CAPABILITIES = Capabilities()


class Queue(abc.ABC):
    """A readable/writable packet queue driven by one reader and one writer.

    Neither read() nor write() is safe for concurrent use by several threads.
    """

    @abc.abstractmethod
    def read(self) -> list[Packet]:
        """Block until at least one packet is available and return a batch.

        The returned packets borrow the queue's buffer until the next read()
        or close(). Raises QueueClosed once the queue is closed.
        """

    @abc.abstractmethod
    def write(self, data: Buffer) -> int:
        """Emit one IP packet; returns the number of bytes written."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the queue; idempotent. Blocked readers raise QueueClosed."""

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class QueueSet(abc.ABC):
    """Holds one or many queues and closes them in an orderly way.

    process_safe: True when the queues may be driven from forked processes
    (their state is in the kernel, e.g. TUN fds), so a runner can give each
    queue and direction its own process; False (default) when reads or
    writes change state in this process (a file being written, memory).
    """

    _closed: bool = False
    process_safe: bool = False

    @abc.abstractmethod
    def queues(self) -> list[Queue]:
        """The queues of this set, in the order they were added."""

    @abc.abstractmethod
    def add(self, fd: int) -> Queue:
        """Adopt a backend-specific file descriptor as a new queue."""

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every queue, then the set's own resources; idempotent.

        Every queue is closed even when one fails; the first error is raised.
        """
        if self._closed:
            return
        self._closed = True
        first_error: BaseException | None = None
        for queue in self.queues():
            try:
                queue.close()
            except Exception as exc:  # keep closing the rest
                first_error = first_error or exc
        try:
            self._close_resources()
        except Exception as exc:
            first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def _close_resources(self) -> None:  # noqa: B027 - an optional hook, deliberately not abstract
        """Hook for subclasses: release set-wide resources after the queues."""

    def __enter__(self) -> QueueSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@runtime_checkable
class CapsProvider(Protocol):
    """Implemented by queues that negotiated kernel offloads at open time."""

    def capabilities(self) -> Capabilities: ...


@runtime_checkable
class GSOWriter(Protocol):
    """Implemented by queues that can emit a TCP/UDP superpacket in one write.

    ip_hdr: IPv4/IPv6 header (lengths and IPv4 checksum filled in).
    transport_hdr: TCP/UDP header whose checksum field holds the folded, not
        inverted, pseudo-header partial (virtio NEEDS_CSUM semantics).
    payloads: non-overlapping fragments, all the same size but possibly a
        shorter last one, each becoming one segment; read-only and borrowed
        only for the duration of the call.
    """

    def write_gso(self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto) -> None: ...


class WriteBatch(NamedTuple):
    """What BatchWriter.write_many did with a batch: every packet is written, failed, or after closed.

    written, bytes_written: the packets written (and their IP bytes), in order.
    failed: (index, error) of each packet not written, in order; the error is
        the one write() of that packet alone would have raised.
    closed: the QueueClosed that ended the batch early, or None; the packets
        from index written + len(failed) on were not attempted.
    """

    written: int
    bytes_written: int
    failed: tuple[tuple[int, Exception], ...] = ()
    closed: QueueClosed | None = None


@runtime_checkable
class BatchWriter(Protocol):
    """Implemented by queues that write a run of plain packets in one call (one loop in C, one lock).

    write_many(packets) writes each packet as write() would, in order, waiting
    as write() waits; instead of raising, it reports: a packet write() would
    refuse is listed in ``failed`` and the batch goes on, and a queue closed
    under the batch ends it with ``closed`` set. A packet that is not a
    C-contiguous buffer raises (TypeError/BufferError/ValueError) with nothing
    written. So every packet handed over is written or reported.
    """

    def write_many(self, packets: Sequence[Buffer]) -> WriteBatch: ...


@runtime_checkable
class NonBlockingReader(Protocol):
    """Implemented by queues an event loop can drive without a thread (``tio_core.aio``'s fd mode).

    fileno(): an fd that polls readable when read_nowait would return packets
        (or raise, e.g. after close); packets that arrive by another route
        (injected in memory) must make it readable too.
    read_nowait(): one read that never blocks; "nothing ready" is ``[]`` or
        BlockingIOError. The batch is borrowed exactly as with ``read()``.
    closed: turns True on close, so a waiter notices a queue closed under it.
    """

    @property
    def closed(self) -> bool: ...

    def fileno(self) -> int: ...

    def read_nowait(self) -> list[Packet]: ...


@runtime_checkable
class NonBlockingWriter(Protocol):
    """Implemented by queues whose write can be tried without blocking.

    write_nowait(data) writes like ``write`` or raises BlockingIOError when the
    queue cannot take the packet now (a queue with a fileno() then polls it
    writable once it can).
    """

    def write_nowait(self, data: Buffer) -> int: ...


@runtime_checkable
class NonBlockingGSOWriter(Protocol):
    """The non-blocking form of GSOWriter.write_gso; BlockingIOError when it would block."""

    def write_gso_nowait(
        self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
    ) -> None: ...


def queue_capabilities(queue: object) -> Capabilities:
    """The queue's negotiated offloads, or all-false when it advertises none."""
    if isinstance(queue, CapsProvider):
        return queue.capabilities()
    return NO_CAPABILITIES


def supports_gso(writer: object, want: GSOProto) -> tuple[GSOWriter | None, bool]:
    """Whether ``writer`` can take write_gso for ``want``.

    Returns (writer, ok) when it implements GSOWriter, (None, False) otherwise.
    A GSOWriter that is not a CapsProvider is permissive, for any ``want``, as
    in the seed (fakes and tests that do not negotiate); otherwise the
    negotiated TSO/USO flag decides and any other proto is unsupported.
    """
    if not isinstance(writer, GSOWriter):
        return None, False
    if not isinstance(writer, CapsProvider):
        return writer, True
    caps = writer.capabilities()
    if want == GSOProto.TCP:
        return writer, caps.tso
    if want == GSOProto.UDP:
        return writer, caps.uso
    return writer, False


__all__ = [
    "BatchWriter",
    "Buffer",
    "Capabilities",
    "CapsProvider",
    "GSOInfo",
    "GSOProto",
    "GSOWriter",
    "NO_CAPABILITIES",
    "NO_GSO",
    "NonBlockingGSOWriter",
    "NonBlockingReader",
    "NonBlockingWriter",
    "Packet",
    "Queue",
    "QueueSet",
    "TioError",
    "WriteBatch",
    "queue_capabilities",
    "supports_gso",
]
