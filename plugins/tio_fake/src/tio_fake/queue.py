"""FakeQueue: an in-memory TUN queue that enforces the borrow rule and records every write.

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
  ``written_packets()`` materializes what the kernel would deliver. Writes
  never wait, so ``write_nowait``/``write_gso_nowait`` (the contract's
  NonBlockingWriter/NonBlockingGSOWriter, used by ``tio_core.aio``) are the same.
* FakeQueue implements GSOWriter but not CapsProvider: ``supports_gso`` says
  yes for TCP and UDP, as the seed's permissive fakes (see caps.py for the
  queue that negotiated offloads).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from types import EllipsisType
from typing import Any

from tio_core.contract import NO_GSO, Buffer, GSOInfo, GSOProto, Packet, Queue
from tio_core.errors import ConfigError, EndOfStream, MalformedPacket, QueueClosed
from tio_core.kernels.gso_write import assemble_superpacket, plan_gso_write
from tio_core.wire import VirtioNetHdr
from tio_fake.errors import ReadTimeout
from tio_fake.records import DELIVER_SEGMENTED, WriteRecord, to_scapy
from tio_fake.validation import as_bytes, check_ip_packet, check_superpacket

STALE_MARKER = b"STALE-BORROW!"  # written over buffers whose borrow ended
DEFAULT_MAX_BATCH = 64


class FakeQueue(Queue):
    """An in-memory queue: a permissive GSOWriter, deliberately not a CapsProvider.

    read_timeout: default seconds read() waits (None: forever) before raising
        ReadTimeout. blocking: when False, read() returns [] instead of
        waiting. end_of_stream: when True, read() on an empty queue raises
        EndOfStream (a drained, finite source) instead of waiting.
    owner, timeout_advice: who opened the queue (e.g. "fixture fake_queue_set")
        and what to do about a timeout; both only go into ReadTimeout's message.
    """

    def __init__(
        self,
        max_batch: int = DEFAULT_MAX_BATCH,
        read_timeout: float | None = None,
        blocking: bool = True,
        end_of_stream: bool = False,
        name: str = "fake",
        owner: str = "",
        timeout_advice: str = "",
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
        self.owner = owner
        self.timeout_advice = timeout_advice
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
                data, info = as_bytes(item, what), gso or NO_GSO
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

    def read(self, timeout: float | None | EllipsisType = ..., *, block: bool | None = None) -> list[Packet]:
        """Return up to max_batch packets, waiting for at least one.

        The returned views are valid until the next read() or close() (see
        the module doc). ``timeout``/``block`` override the queue defaults
        for this call. Raises QueueClosed when closed (also while waiting),
        ReadTimeout on timeout, EndOfStream when drained in end_of_stream mode.
        """
        wait = self.read_timeout if isinstance(timeout, EllipsisType) else timeout
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
                raise self._timeout_error(wait)
            self._cond.wait(remaining)
        if self._closed:
            raise QueueClosed(f"{self.name}: closed while a read was waiting")

    def _awaited(self) -> str:
        """What a waiting read waits for, in words (for ReadTimeout)."""
        if self._peer is not None:
            return "a packet written by its peer queue or injected"
        return "an injected packet"

    def _timeout_error(self, wait: float | None) -> ReadTimeout:
        who = f"{self.name} of {self.owner}" if self.owner else self.name
        message = f"{who}: read() waited {wait:g} s for {self._awaited()} and none arrived"
        return ReadTimeout(f"{message}; {self.timeout_advice}" if self.timeout_advice else message)

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

    def write_gso(self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto) -> None:
        """Record a superpacket write after the Linux backend's geometry checks (GSOGeometryError)."""
        self._check_open("write_gso")
        hdr = plan_gso_write(ip_hdr, transport_hdr, payloads, proto)
        self._check_negotiated(proto, hdr)
        args: dict[str, Any] = dict(
            ip_hdr=bytes(ip_hdr), transport_hdr=bytes(transport_hdr), payloads=tuple(map(bytes, payloads))
        )
        packet = assemble_superpacket(ip_hdr, transport_hdr, payloads, proto)
        if packet is None:  # an empty payload list is a no-op, as on Linux
            self._record(WriteRecord("write_gso", b"", proto=proto, **args))
            return
        self._record(WriteRecord("write_gso", bytes(packet.data), packet.gso, proto=proto, vnet_hdr=hdr, **args))

    def write_nowait(self, data: Buffer) -> int:
        """write() for event loops (the contract's NonBlockingWriter): an in-memory write never waits."""
        return self.write(data)

    def write_gso_nowait(
        self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
    ) -> None:
        """write_gso() for event loops (NonBlockingGSOWriter): an in-memory write never waits."""
        self.write_gso(ip_hdr, transport_hdr, payloads, proto)

    def _check_negotiated(self, proto: GSOProto, hdr: VirtioNetHdr | None) -> None:
        """Permissive: a queue without CapsProvider accepts every GSO write."""

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise QueueClosed(f"{self.name}: {operation} on a closed queue")

    def _record(self, record: WriteRecord) -> None:
        with self._write_lock:
            self._writes.append(record)
        if self._peer is not None:
            items = record.delivered(self._deliver)
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
        return to_scapy(packets) if scapy else packets

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


__all__ = ["DEFAULT_MAX_BATCH", "STALE_MARKER", "FakeQueue"]
