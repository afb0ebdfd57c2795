"""The ``fake`` backend: in-memory queues for testing code that uses tio.

FakeQueue behaves like a real TUN queue without root or a kernel:

* Inbound: ``inject()`` packets (bytes, tio Packets including superpackets,
  or anything with ``__bytes__`` such as scapy packets); ``read()`` returns
  them in order, at most ``max_batch`` per call.
* Borrowing: each read copies its batch into a fresh buffer and hands out
  memoryviews of it. The next read (or close) overwrites that buffer with the
  repeated marker ``STALE_MARKER`` and releases the views it returned, so code
  that keeps a borrowed view past the contract fails in tests (ValueError on
  the released view, marker bytes in slices taken from it) rather than in
  production. ``Packet.clone()`` copies are unaffected.
* Outbound: every ``write``/``write_gso`` is recorded (``writes``) after the
  same validation as the Linux backend (``plan_gso_write``), and
  ``written_packets()`` materializes what the kernel would deliver.
* FakeQueue implements GSOWriter but not CapsProvider: ``supports_gso`` says
  yes for TCP and UDP, as the seed's permissive fakes. Opened with
  ``capabilities=`` it becomes a FakeCapsQueue that negotiated exactly those
  offloads and refuses multi-segment write_gso for the others (OffloadError).
"""

from __future__ import annotations

import collections
import os
import select
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tio_core.contract import (
    NO_GSO,
    Buffer,
    Capabilities,
    GSOInfo,
    GSOProto,
    Packet,
    Queue,
    QueueSet,
)
from tio_core.errors import (
    ConfigError,
    EndOfStream,
    MalformedPacket,
    OffloadError,
    QueueClosed,
    TioError,
)
from tio_core.kernels.gso_write import assemble_superpacket, check_write_size, plan_gso_write
from tio_core.wire import MAX_IP_PACKET, VirtioNetHdr, vnet_header_for

STALE_MARKER = b"STALE-BORROW!"  # written over buffers whose borrow ended
DEFAULT_MAX_BATCH = 64
DELIVER_SEGMENTED = "segmented"
DELIVER_SUPERPACKET = "superpacket"


class ReadTimeout(TioError, TimeoutError):
    """read() waited ``timeout`` seconds and no packet arrived."""


class FakeFdError(TioError, ValueError):
    """add(fd) was given a descriptor the fake cannot use as a queue."""


# -- validation of what goes in and out ----------------------------------------
def _as_bytes(item: Any, what: str) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if hasattr(item, "__bytes__"):  # scapy packets and similar builders
        return bytes(item)
    raise TypeError(
        f"{what}: expected bytes, a tio Packet or a packet object with __bytes__, got {type(item).__name__}"
    )


def check_ip_packet(data: Buffer, what: str) -> None:
    """Raise MalformedPacket unless ``data`` is one IPv4/IPv6 packet whose length fields match.

    This is what a TUN device accepts on write and ever hands to a reader.
    """
    size = check_write_size(data, what)
    version = data[0] >> 4
    if version == 4:
        if size < 20:
            raise MalformedPacket(f"{what}: IPv4 packet of {size} bytes is shorter than its 20-byte header")
        ihl = (data[0] & 0x0F) * 4
        total = int.from_bytes(data[2:4], "big")
        if ihl < 20 or ihl > size:
            raise MalformedPacket(f"{what}: IPv4 header length {ihl} is invalid for a {size}-byte packet")
        if total != size:
            raise MalformedPacket(f"{what}: IPv4 total length says {total} bytes, packet has {size}")
    elif version == 6:
        if size < 40:
            raise MalformedPacket(f"{what}: IPv6 packet of {size} bytes is shorter than its 40-byte header")
        payload = int.from_bytes(data[4:6], "big")
        if payload + 40 != size:
            raise MalformedPacket(f"{what}: IPv6 payload length says {payload} bytes, packet carries {size - 40}")
    else:
        raise MalformedPacket(f"{what}: IP version must be 4 or 6, got {version}")


def check_superpacket(data: bytes, gso: GSOInfo, what: str) -> None:
    """Raise MalformedPacket unless ``gso`` describes ``data`` as a kernel would."""
    from tio_core import kernels  # the packet kernels pick C or pure Python on import

    hdr = vnet_header_for(gso, data[0] >> 4)
    checked = kernels.gso_info_from_vnet(hdr, memoryview(data))
    if checked != gso:
        raise MalformedPacket(
            f"{what}: GSOInfo {tuple(gso)} does not match the packet headers, expected {tuple(checked)}"
        )


# -- outbound records ------------------------------------------------------------
@dataclass(frozen=True)
class WriteRecord:
    """One write or write_gso call as the fake saw it.

    kind: "write" or "write_gso". data: the written packet, or for write_gso
    the assembled packet the kernel receives (headers + payloads, L4 checksum
    still the pseudo-header partial; empty for a no-op). gso: its GSOInfo
    (NO_GSO for one fragment). For write_gso the call's arguments are kept as
    ip_hdr, transport_hdr, payloads and proto.
    """

    kind: str
    data: bytes
    gso: GSOInfo = NO_GSO
    ip_hdr: bytes = b""
    transport_hdr: bytes = b""
    payloads: tuple[bytes, ...] = ()
    proto: GSOProto = GSOProto.NONE
    vnet_hdr: VirtioNetHdr | None = field(default=None, repr=False)

    def packets(self) -> list[bytes]:
        """What the kernel delivers for this call: fully checksummed wire IP packets."""
        if self.kind == "write":
            return [self.data]
        if not self.data:
            return []
        from tio_core import kernels  # picks the C or pure-Python packet kernels on first use

        if not self.gso.is_superpacket:
            # One fragment goes out as GSO_NONE + NEEDS_CSUM: the kernel finishes the checksum.
            buf = bytearray(self.data)
            kernels.finish_checksum(buf, self.vnet_hdr)
            return [bytes(buf)]
        return [bytes(seg) for seg in kernels.segment(Packet(memoryview(self.data), self.gso))]

    def superpacket(self) -> Packet:
        """The packet as a reader on the other side of a TUN would see it (GSOInfo set)."""
        if self.kind == "write_gso" and not self.gso.is_superpacket:
            return Packet(memoryview(self.packets()[0]))
        return Packet(memoryview(self.data), self.gso)


def _to_scapy(packets: list[bytes]) -> list[Any]:
    from scapy.layers.inet import IP  # only when the caller asked for scapy objects
    from scapy.layers.inet6 import IPv6

    return [IP(p) if p[0] >> 4 == 4 else IPv6(p) for p in packets]


# -- the queue ---------------------------------------------------------------------
class FakeQueue(Queue):
    """An in-memory queue: a permissive GSOWriter, deliberately not a CapsProvider.

    read_timeout: default seconds read() waits (None: forever) before raising
        ReadTimeout. blocking: when False, read() returns [] instead of
        waiting. end_of_stream: when True, read() on an empty queue raises
        EndOfStream (a drained, finite source) instead of waiting.
    """

    def __init__(
        self,
        max_batch: int = DEFAULT_MAX_BATCH,
        read_timeout: float | None = None,
        blocking: bool = True,
        end_of_stream: bool = False,
        name: str = "fake",
    ) -> None:
        if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
            raise ConfigError(f"fake queue: max_batch must be a positive integer, got {max_batch!r}")
        if read_timeout is not None and (not isinstance(read_timeout, (int, float)) or read_timeout < 0):
            raise ConfigError(f"fake queue: read_timeout must be None or seconds >= 0, got {read_timeout!r}")
        self.name = name
        self.max_batch = max_batch
        self.read_timeout = read_timeout
        self.blocking = blocking
        self.end_of_stream = end_of_stream
        self._cond = threading.Condition()
        self._inbound: collections.deque[tuple[bytes, GSOInfo]] = collections.deque()
        self._lent_buffer: bytearray | None = None
        self._lent: list[Packet] = []
        self._writes: list[WriteRecord] = []
        self._write_lock = threading.Lock()
        self._closed = False
        self._peer: FakeQueue | None = None
        self._deliver = DELIVER_SEGMENTED
        self.peer_drops = 0  # packets written while the paired queue was closed

    # -- inbound -----------------------------------------------------------------
    def inject(self, *packets: Any, gso: GSOInfo | None = None, validate: bool = True) -> None:
        """Queue packets for read(), in order.

        Each item is bytes-like, a tio Packet (its GSOInfo is kept) or a
        packet object with ``__bytes__`` (scapy). ``gso`` applies to items
        that are not Packets. With ``validate`` (default) every packet must
        be what a TUN could deliver: one IPv4/IPv6 packet with consistent
        lengths, and a superpacket's GSOInfo must match its headers;
        otherwise MalformedPacket is raised and nothing is queued. Pass
        ``validate=False`` to feed broken input to your own error paths.
        """
        items: list[tuple[bytes, GSOInfo]] = []
        for index, item in enumerate(packets):
            what = f"inject item {index}"
            if isinstance(item, Packet):
                data, info = bytes(item.data), item.gso
            else:
                data, info = _as_bytes(item, what), gso or NO_GSO
            if not isinstance(info, GSOInfo):
                raise TypeError(f"{what}: gso must be a GSOInfo, got {type(info).__name__}")
            if validate:
                check_ip_packet(data, what)
                if info.is_superpacket:
                    check_superpacket(data, info, what)
                elif info != NO_GSO:
                    raise MalformedPacket(f"{what}: GSOInfo {tuple(info)} has size 0 but other fields set")
            items.append((data, info))
        with self._cond:
            if self._closed:
                raise QueueClosed(f"{self.name}: inject on a closed queue")
            self._inbound.extend(items)
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Injected packets not yet read."""
        with self._cond:
            return len(self._inbound)

    def read(self, timeout: float | None = ..., *, block: bool | None = None) -> list[Packet]:  # type: ignore[override]
        """Return up to max_batch packets, waiting for at least one.

        The returned views are valid until the next read() or close() (see
        the module doc). ``timeout``/``block`` override the queue defaults
        for this call. Raises QueueClosed when closed (also while waiting),
        ReadTimeout on timeout, EndOfStream when drained in end_of_stream mode.
        """
        wait = self.read_timeout if timeout is ... else timeout
        blocking = self.blocking if block is None else block
        with self._cond:
            self._end_borrow()
            if self._closed:
                raise QueueClosed(f"{self.name}: read on a closed queue")
            if not self._inbound:
                self._wait_for_inbound(wait, blocking)
                if not self._inbound:
                    return []
            count = min(self.max_batch, len(self._inbound))
            batch = [self._inbound.popleft() for _ in range(count)]
            return self._lend(batch)

    def _wait_for_inbound(self, wait: float | None, blocking: bool) -> None:
        """Called with the lock held and nothing queued."""
        if self.end_of_stream:
            raise EndOfStream(f"{self.name}: no more injected packets")
        if not blocking:
            return
        deadline = None if wait is None else time.monotonic() + wait
        while not self._inbound and not self._closed:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ReadTimeout(f"{self.name}: no packet within {wait} s")
            self._cond.wait(remaining)
        if self._closed:
            raise QueueClosed(f"{self.name}: closed while a read was waiting")

    def _lend(self, batch: list[tuple[bytes, GSOInfo]]) -> list[Packet]:
        buffer = bytearray(b"".join(data for data, _ in batch))
        view = memoryview(buffer)
        packets, offset = [], 0
        for data, info in batch:
            packets.append(Packet(view[offset : offset + len(data)], info))
            offset += len(data)
        view.release()
        self._lent_buffer, self._lent = buffer, packets
        return list(packets)

    def _end_borrow(self) -> None:
        """Poison the last batch's buffer and release its views (lock held)."""
        if self._lent_buffer is None:
            return
        size = len(self._lent_buffer)
        pattern = STALE_MARKER * (size // len(STALE_MARKER) + 1)
        self._lent_buffer[:] = pattern[:size]  # same size: allowed while slices exist
        for packet in self._lent:
            try:
                packet.data.release()
            except BufferError:  # the caller exported it further; the poison still shows
                pass
        self._lent_buffer, self._lent = None, []

    # -- outbound ------------------------------------------------------------------
    def write(self, data: Buffer) -> int:
        """Record one IP packet (MalformedPacket if a TUN would refuse it); returns its length."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"{self.name}: write takes a bytes-like packet, got {type(data).__name__}")
        self._check_open("write")
        check_ip_packet(data, f"{self.name}: write")
        record = WriteRecord("write", bytes(data))
        self._record(record)
        return len(record.data)

    def write_gso(
        self,
        ip_hdr: Buffer,
        transport_hdr: Buffer,
        payloads: Sequence[Buffer],
        proto: GSOProto,
    ) -> None:
        """Record a superpacket write after the Linux backend's geometry checks (GSOGeometryError)."""
        self._check_open("write_gso")
        hdr = plan_gso_write(ip_hdr, transport_hdr, payloads, proto)
        self._check_negotiated(proto, hdr)
        args = dict(ip_hdr=bytes(ip_hdr), transport_hdr=bytes(transport_hdr), payloads=tuple(map(bytes, payloads)))
        if hdr is None:  # an empty payload list is a no-op, as on Linux
            self._record(WriteRecord("write_gso", b"", proto=proto, **args))
            return
        packet = assemble_superpacket(ip_hdr, transport_hdr, payloads, proto)
        self._record(WriteRecord("write_gso", bytes(packet.data), packet.gso, proto=proto, vnet_hdr=hdr, **args))

    def _check_negotiated(self, proto: GSOProto, hdr: VirtioNetHdr | None) -> None:
        """Permissive: a queue without CapsProvider accepts every GSO write."""

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise QueueClosed(f"{self.name}: {operation} on a closed queue")

    def _record(self, record: WriteRecord) -> None:
        with self._write_lock:
            self._writes.append(record)
        if self._peer is not None:
            self._deliver_to_peer(record)

    def _deliver_to_peer(self, record: WriteRecord) -> None:
        if self._deliver == DELIVER_SUPERPACKET:
            items: list[Any] = [record.superpacket()] if record.data else []
        else:
            items = record.packets()
        try:
            self._peer.inject(*items, validate=False)
        except QueueClosed:
            self.peer_drops += len(items)

    @property
    def writes(self) -> list[WriteRecord]:
        """Every write and write_gso call so far, in order."""
        with self._write_lock:
            return list(self._writes)

    def written_packets(self, *, segmented: bool = True, scapy: bool = False) -> list[Any]:
        """The packets emitted so far, in order.

        segmented=True: as the kernel delivers them (each write_gso cut into
        checksummed wire packets). segmented=False: one entry per call, the
        superpacket as written (L4 checksum still partial). scapy=True
        returns scapy IP/IPv6 objects instead of bytes.
        """
        packets: list[bytes] = []
        for record in self.writes:
            if segmented:
                packets.extend(record.packets())
            elif record.data:
                packets.append(record.data)
        return _to_scapy(packets) if scapy else packets

    def clear(self) -> None:
        """Forget the recorded writes (inbound packets are kept)."""
        with self._write_lock:
            self._writes.clear()

    # -- close -----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._end_borrow()
            self._inbound.clear()
            self._cond.notify_all()  # wakes blocked readers: they raise QueueClosed

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.pending} pending, {len(self._writes)} writes"
        return f"<{type(self).__name__} {self.name}: {state}>"


class FakeCapsQueue(FakeQueue):
    """A FakeQueue that negotiated ``caps`` (it is a CapsProvider).

    Multi-segment write_gso for a protocol that was not negotiated raises
    OffloadError, as code that ignores capabilities deserves.
    """

    def __init__(self, caps: Capabilities, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._caps = caps

    def capabilities(self) -> Capabilities:
        return self._caps

    def _check_negotiated(self, proto: GSOProto, hdr: VirtioNetHdr | None) -> None:
        if hdr is None or hdr.gso_size == 0:
            return  # nothing to segment: plain checksum offload only
        granted = self._caps.tso if proto == GSOProto.TCP else self._caps.uso
        if not granted:
            flag = "TSO" if proto == GSOProto.TCP else "USO"
            raise OffloadError(f"{self.name}: write_gso with {proto.name} but the queue did not negotiate {flag}")


class FdQueue(FakeQueue):
    """A FakeQueue on a datagram socket: each datagram is one IP packet.

    What ``FakeQueueSet.add(fd)`` builds. Reads return datagrams received on
    the socket (plus anything injected); writes are recorded and also sent,
    one datagram per wire packet (write_gso segmented as the kernel would).
    The queue owns the descriptor and closes it on close().
    """

    def __init__(self, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sock = sock
        self._wake_r, self._wake_w = os.pipe()

    def fileno(self) -> int:
        return self.sock.fileno()

    def read_nowait(self) -> list[Packet]:
        """One read that never waits: [] when nothing is ready (the contract's NonBlockingReader)."""
        return self.read(block=False)

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
                raise ReadTimeout(f"{self.name}: no packet within {wait} s")
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

    def _record(self, record: WriteRecord) -> None:
        super()._record(record)
        for data in record.packets():
            self.sock.send(data)

    def close(self) -> None:
        with self._cond:
            was_closed = self._closed
        super().close()
        if not was_closed:
            os.write(self._wake_w, b"x")
            with self._cond:  # a reader may still be between poll and re-acquiring
                self.sock.close()
                os.close(self._wake_r)
                os.close(self._wake_w)


class FdCapsQueue(FdQueue, FakeCapsQueue):
    """An FdQueue in a set opened with ``capabilities=``."""


# -- the set -----------------------------------------------------------------------
def parse_capabilities(text: str | Capabilities | None) -> Capabilities | None:
    """``None`` -> permissive (no CapsProvider); "tso", "uso", "tso,uso", "none" -> Capabilities."""
    if text is None or isinstance(text, Capabilities):
        return text
    if not isinstance(text, str):
        raise ConfigError(f"fake: capabilities must be a string like 'tso,uso' or 'none', got {text!r}")
    words = {w.strip().lower() for w in text.replace("+", ",").split(",") if w.strip()}
    if words in ({"none"}, set()):
        return Capabilities()
    unknown = words - {"tso", "uso"}
    if unknown:
        raise ConfigError(f"fake: unknown capability {sorted(unknown)[0]!r}; use tso, uso, tso,uso or none")
    return Capabilities(tso="tso" in words, uso="uso" in words)


class FakeQueueSet(QueueSet):
    """A set of FakeQueues; ``add(fd)`` wraps a datagram socket (see FdQueue)."""

    def __init__(
        self,
        queues: int = 1,
        max_batch: int = DEFAULT_MAX_BATCH,
        capabilities: str | Capabilities | None = None,
        read_timeout: float | None = None,
        blocking: bool = True,
        end_of_stream: bool = False,
    ) -> None:
        if not isinstance(queues, int) or isinstance(queues, bool) or not 1 <= queues <= 256:
            raise ConfigError(f"fake: queues must be between 1 and 256, got {queues!r}")
        self.caps = parse_capabilities(capabilities)
        self._queue_options = dict(
            max_batch=max_batch, read_timeout=read_timeout, blocking=blocking, end_of_stream=end_of_stream
        )
        self._queues: list[FakeQueue] = []
        self._lock = threading.Lock()
        for _ in range(queues):
            self._queues.append(self._new_queue(FakeQueue))

    def _new_queue(self, kind: type[FakeQueue], **extra: Any) -> FakeQueue:
        name = f"fake{len(self._queues)}"
        if self.caps is not None:
            kind = FakeCapsQueue if kind is FakeQueue else FdCapsQueue
            extra["caps"] = self.caps
        return kind(name=name, **self._queue_options, **extra)

    def queues(self) -> list[FakeQueue]:
        with self._lock:
            return list(self._queues)

    def __getitem__(self, index: int) -> FakeQueue:
        return self.queues()[index]

    def add(self, fd: int) -> FakeQueue:
        """Adopt ``fd``, a datagram or seqpacket socket (e.g. one end of a socketpair), as a queue.

        The set owns the descriptor from then on. Anything else (a pipe, a
        stream socket, a closed fd) raises FakeFdError and the fd is left open.
        """
        if self.closed:
            raise QueueClosed("fake: add on a closed queue set")
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise FakeFdError(f"fake: add takes an integer file descriptor, got {type(fd).__name__}")
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise FakeFdError(
                f"fake: fd {fd} is not a socket ({exc.strerror or exc}); pass one end of a socketpair"
            ) from None
        if sock.type not in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
            sock.detach()
            raise FakeFdError(f"fake: fd {fd} is a {sock.type.name} socket; packets need SOCK_DGRAM or SOCK_SEQPACKET")
        queue = self._new_queue(FdQueue, sock=sock)
        with self._lock:
            self._queues.append(queue)
        return queue

    def inject(self, *packets: Any, queue: int = 0, **kwargs: Any) -> None:
        """Shortcut for ``self[queue].inject(...)``."""
        self[queue].inject(*packets, **kwargs)

    def written_packets(self, *, segmented: bool = True, scapy: bool = False) -> list[Any]:
        """Packets written through every queue, queue by queue."""
        out: list[Any] = []
        for queue in self.queues():
            out.extend(queue.written_packets(segmented=segmented, scapy=scapy))
        return out

    def clear(self) -> None:
        for queue in self.queues():
            queue.clear()


# The factory registered as backend "fake" (see plugin.py for the options).
open_fake = FakeQueueSet


def fake_pair(deliver: str = DELIVER_SEGMENTED, **options: Any) -> tuple[FakeQueueSet, FakeQueueSet]:
    """Two fake sets wired back to back: what queue i of one writes, queue i of the other reads.

    deliver="segmented": write_gso arrives as the kernel's wire packets;
    deliver="superpacket": it arrives as one Packet with GSOInfo, as a reader
    of a TSO/USO-enabled TUN would see it. Packets written after the peer
    closed are counted in ``peer_drops``.
    """
    if deliver not in (DELIVER_SEGMENTED, DELIVER_SUPERPACKET):
        raise ConfigError(
            f"fake_pair: deliver must be {DELIVER_SEGMENTED!r} or {DELIVER_SUPERPACKET!r}, got {deliver!r}"
        )
    left, right = open_fake(**options), open_fake(**options)
    for a, b in zip(left.queues(), right.queues()):
        a._peer, b._peer = b, a
        a._deliver = b._deliver = deliver
    return left, right


def iter_packets(items: Iterable[Any]) -> list[bytes]:
    """Bytes of each item (bytes-like, tio Packet or scapy packet)."""
    return [bytes(i.data) if isinstance(i, Packet) else _as_bytes(i, "packet") for i in items]


__all__ = [
    "DELIVER_SEGMENTED",
    "DELIVER_SUPERPACKET",
    "FakeCapsQueue",
    "FakeFdError",
    "FakeQueue",
    "FakeQueueSet",
    "FdQueue",
    "ReadTimeout",
    "STALE_MARKER",
    "WriteRecord",
    "check_ip_packet",
    "fake_pair",
    "open_fake",
]
