"""The two queue kinds on a TUN fd: with virtio_net_hdr offloads, and plain.

Both read in batches: one blocking wait, then non-blocking reads until the
batch cap, the buffer headroom or EAGAIN, in one C loop per batch
(tio_core.kernels.readloop). Every packet of a batch lands in one per-queue
buffer; the vnet header goes to a separate small buffer by readv, so packet
bodies are never copied. Fds are non-blocking and waits use poll() on the fd
plus the set-wide eventfd, so closing the set wakes every blocked reader and
writer.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from collections import Counter
from collections.abc import Sequence

from tio_core import kernels
from tio_core.contract import NO_CAPABILITIES, Buffer, Capabilities, GSOProto, Packet, Queue, WriteBatch
from tio_core.errors import MalformedPacket, QueueClosed
from tio_core.kernels.gso_write import assemble_superpacket, check_write_size, plan_even_gso_write, plan_gso_write
from tio_core.kernels.readloop import DROP_REASONS, NO_DROPS, read_batch
from tio_core.kernels.write_many import write_many as write_loop
from tio_core.wire import (
    GSO_NONE,
    GSO_UDP_L4,
    MAX_IP_PACKET,
    PLAIN_HDR_BYTES,
    UDP_GSO_MAX_SEGMENTS,
    UDP_GSO_MAX_SEGMENTS_OLD,
    VIRTIO_NET_HDR_LEN,
)
from tio_linux.errors import DeviceError, InterfaceDownError
from tio_linux.fragments import EvenFragments
from tio_linux.tun import capabilities_of

log = logging.getLogger("tio_linux")

MAX_BATCH = 64  # packets per read()
HEADROOM = 65536  # every read gets at least this much room: a TUN read truncates silently
BUFFER_SIZE = 512 * 1024  # per-queue read buffer
POLL_BACKSTOP_MS = 200  # a lone Queue.close() (not the set's) is noticed within this
_POLL_IN = select.POLLIN
_POLL_FAIL = select.POLLERR | select.POLLHUP | select.POLLNVAL

# The write syscall as a module attribute so a test can make the kernel
# "reject" a valid GSO write (the EINVAL regression) on a real device.
writev = os.writev


class SetState:
    """What the queues of one set share: the wake-up eventfd and the offloads."""

    def __init__(self, mask: int, wanted: int) -> None:
        self.wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.closed = False
        self.mask = mask  # the TUNSETOFFLOAD mask the kernel granted; replayed on added queues
        self.wanted = wanted  # what the options and kill switches allow, for a vnet fd added to a plain set
        self.gso_disabled = False  # set after the kernel wrongly refused a valid GSO write
        self.udp_max_segments = UDP_GSO_MAX_SEGMENTS  # lowered on a kernel with the older, smaller limit
        self.gso_fallbacks = 0

    def capabilities(self) -> Capabilities:
        if self.gso_disabled:
            return NO_CAPABILITIES
        tso, uso = capabilities_of(self.mask)
        return Capabilities(tso=tso, uso=uso)

    def wake_all(self) -> None:
        self.closed = True
        os.eventfd_write(self.wake_fd, 1)  # stays readable: every poller wakes

    def release(self) -> None:
        os.close(self.wake_fd)


class TunQueue(Queue):
    """Shared machinery: waiting, closing, error mapping."""

    _vnet = False  # whether the fd carries a virtio_net_hdr before each packet

    def __init__(self, fd: int, state: SetState, name: str) -> None:
        self._fd = fd
        self._state = state
        self.name = name
        self._closed = False
        # Held around syscalls on the fd (never while waiting), so close()
        # cannot release the fd number while a read or write is using it.
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._poll_in = select.poll()
        self._poll_out = select.poll()
        for poller, event in ((self._poll_in, select.POLLIN), (self._poll_out, select.POLLOUT)):
            poller.register(fd, event)
            poller.register(state.wake_fd, select.POLLIN)
        self._buf = bytearray(BUFFER_SIZE)
        self._drops: Counter[str] = Counter()
        self._idle = True  # the last drain ended on EAGAIN

    def fileno(self) -> int:
        """The TUN fd, readable when packets wait (for loop.add_reader)."""
        if self._closed:
            raise QueueClosed(f"queue on {self.name} is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._closed or self._state.closed

    def drop_counts(self) -> dict[str, int]:
        """Packets read but dropped, by reason (short_read, truncated, gso_type, malformed)."""
        return dict(self._drops)

    def _check_open(self) -> None:
        if self._closed or self._state.closed:
            raise QueueClosed(f"queue on {self.name} is closed")

    def _wait(self, poller: select.poll) -> None:
        while True:
            self._check_open()
            try:
                events = poller.poll(POLL_BACKSTOP_MS)
            except InterruptedError:
                continue
            self._check_open()
            for fd, event in events:
                if fd == self._fd:
                    if event & select.POLLNVAL:
                        raise QueueClosed(f"queue on {self.name}: fd is no longer valid")
                    return
            # only a timeout: loop and re-check the closed flag

    def _os_error(self, exc: OSError, what: str) -> BaseException:
        if exc.errno == errno.EBADF:
            return QueueClosed(f"queue on {self.name} is closed")
        if exc.errno == errno.EBADFD:
            return QueueClosed(f"TUN device {self.name} was removed")
        if exc.errno == errno.EIO:
            return InterfaceDownError(errno.EIO, f"{what} on {self.name}: the interface is down (set it up first)")
        return DeviceError(exc.errno, f"{what} on {self.name} failed: {exc.strerror}")

    def read(self) -> list[Packet]:
        while True:
            # Wait first when the last drain ended on EAGAIN: poll returns at
            # once if packets came meanwhile, and a read that would only say
            # EAGAIN again is saved.
            if self._idle:
                self._wait(self._poll_in)
            with self._read_lock:
                self._check_open()
                packets = self._drain()
            if packets:
                return packets

    def read_nowait(self) -> list[Packet]:
        """What is ready now, without waiting ([] when nothing is): for event loops.

        Same borrowing rules as read(); used by tio_core.aio after the fd
        polled readable (read() could block again if all were dropped).
        """
        with self._read_lock:
            self._check_open()
            return self._drain()

    def _drain(self) -> list[Packet]:
        """Read what is ready without blocking, each packet after the previous one in the buffer."""
        packets, drops, self._idle, error, malformed = read_batch(self._fd, self._buf, self._vnet, MAX_BATCH, HEADROOM)
        if drops != NO_DROPS:
            self._count_drops(drops, malformed)
        if error is not None:
            raise self._os_error(error, "read") from None
        return packets

    def _count_drops(self, drops: tuple[int, ...], malformed: tuple[str, ...]) -> None:
        for reason, count in zip(DROP_REASONS, drops, strict=True):
            if count:
                self._drops[reason] += count
        for message in malformed:
            log.debug("dropped a malformed packet on %s: %s", self.name, message)

    def _write_iov(self, iov: Sequence[Buffer], what: str) -> int:
        while True:
            try:
                return self._write_iov_now(iov, what)
            except BlockingIOError:
                pass
            self._wait(self._poll_out)

    def _write_iov_now(self, iov: Sequence[Buffer], what: str) -> int:
        """One writev that never waits: BlockingIOError when the fd cannot take it now."""
        with self._write_lock:
            self._check_open()
            while True:
                try:
                    return writev(self._fd, iov)
                except InterruptedError:
                    continue
                except BlockingIOError:
                    raise
                except OSError as exc:
                    raise self._write_error(exc, what) from None

    def _write_error(self, exc: OSError, what: str) -> BaseException:
        """What a failed write raises: MalformedPacket for EINVAL (the kernel refused the packet), else _os_error."""
        if exc.errno == errno.EINVAL:
            return MalformedPacket(f"{what} on {self.name}: the kernel rejected the packet (EINVAL)")
        return self._os_error(exc, what)

    def _write_many(self, packets: Sequence[Buffer], header: Buffer) -> WriteBatch:
        """BatchWriter.write_many for both queue kinds: each packet after ``header``, one writev each.

        The loop runs in C (tio_core.kernels.write_many) under the write lock,
        stopping at a packet it cannot write: EAGAIN waits as write() does,
        and a refused packet is reported with the error write() would raise.
        """
        written = total = start = 0
        failed: list[tuple[int, Exception]] = []
        count = len(packets)
        try:
            while start < count:
                with self._write_lock:
                    self._check_open()
                    stop, done, size, error = write_loop(self._fd, packets, header, start, MAX_IP_PACKET)
                written += done
                total += size
                if not error:
                    break
                start = stop
                if error == errno.EAGAIN:
                    self._wait(self._poll_out)
                    continue
                start += 1
                if error < 0:  # empty or too long: what write() raises
                    failed.append((stop, _size_error(packets[stop])))
                    continue
                problem = self._write_error(OSError(error, os.strerror(error)), "write")
                if isinstance(problem, QueueClosed):
                    raise problem
                assert isinstance(problem, Exception)
                failed.append((stop, problem))
        except QueueClosed as exc:
            return WriteBatch(written, total, tuple(failed), exc)
        return WriteBatch(written, total, tuple(failed))

    def _check_writable_now(self) -> None:
        """BlockingIOError unless the fd polls writable right now (QueueClosed once closed)."""
        self._check_open()
        for fd, event in self._poll_out.poll(0):
            if fd == self._fd:
                if event & select.POLLNVAL:
                    raise QueueClosed(f"queue on {self.name}: fd is no longer valid")
                return
        self._check_open()
        raise BlockingIOError(errno.EAGAIN, f"queue on {self.name} cannot take a write now")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # The locks are held only across non-blocking syscalls, so this is quick.
        with self._read_lock, self._write_lock:
            os.close(self._fd)


class VnetQueue(TunQueue):
    """A queue on an IFF_VNET_HDR fd: superpackets in, superpackets out."""

    _vnet = True

    def capabilities(self) -> Capabilities:
        return self._state.capabilities()

    def write(self, data: Buffer) -> int:
        check_write_size(data)
        return self._write_iov((PLAIN_HDR_BYTES, data), "write") - VIRTIO_NET_HDR_LEN

    def write_nowait(self, data: Buffer) -> int:
        """write() that raises BlockingIOError instead of waiting (tio_core.contract.NonBlockingWriter)."""
        check_write_size(data)
        return self._write_iov_now((PLAIN_HDR_BYTES, data), "write") - VIRTIO_NET_HDR_LEN

    def write_many(self, packets: Sequence[Buffer]) -> WriteBatch:
        """write() of each packet, in one C loop (tio_core.contract.BatchWriter)."""
        return self._write_many(packets, PLAIN_HDR_BYTES)

    def write_gso_nowait(
        self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
    ) -> None:
        """write_gso() for an event loop (tio_core.contract.NonBlockingGSOWriter).

        BlockingIOError, with nothing written, when the fd does not poll
        writable; otherwise exactly write_gso(). A TUN write hands the packet
        to the kernel's stack (or drops it) rather than waiting, so the fd is
        writable in practice and write_gso does not block after the check.
        """
        self._check_writable_now()
        self.write_gso(ip_hdr, transport_hdr, payloads, proto)

    def write_gso(self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto) -> None:
        self._check_open()  # a closed queue says so, whatever the pieces
        if type(payloads) is EvenFragments:
            # one contiguous span: validated in constant time, written as one iovec
            span = payloads.span
            vhdr = plan_even_gso_write(ip_hdr, transport_hdr, span.nbytes, payloads.size, proto)
            iov: tuple[Buffer, ...] = (vhdr.pack(), ip_hdr, transport_hdr, span)
        else:
            planned = plan_gso_write(ip_hdr, transport_hdr, payloads, proto)
            if planned is None:
                return
            vhdr = planned
            iov = (vhdr.pack(), ip_hdr, transport_hdr, *payloads)
        gso_type = vhdr.gso_type  # the planner checked proto: GSO_UDP_L4 is a UDP write
        state = self._state
        if gso_type != GSO_NONE and (
            state.gso_disabled or (gso_type == GSO_UDP_L4 and len(payloads) > state.udp_max_segments)
        ):
            self._write_segments(ip_hdr, transport_hdr, payloads, proto)
            return
        try:
            self._write_iov(iov, "write_gso")
        except MalformedPacket:
            if gso_type == GSO_NONE:
                raise
            # plan_gso_write let only writes through that the kernel takes, so
            # EINVAL means a kernel that differs: deliver this one as segments.
            if gso_type == GSO_UDP_L4 and len(payloads) > UDP_GSO_MAX_SEGMENTS_OLD:
                self._lower_udp_limit()  # an older kernel's UDP segment limit
            else:
                self._disable_gso()  # the 5.x / 6.1 stable regression that refuses valid GSO writes
            self._write_segments(ip_hdr, transport_hdr, payloads, proto)

    def _lower_udp_limit(self) -> None:
        state = self._state
        state.gso_fallbacks += 1
        if state.udp_max_segments > UDP_GSO_MAX_SEGMENTS_OLD:
            state.udp_max_segments = UDP_GSO_MAX_SEGMENTS_OLD
            log.info(
                "the kernel takes at most %d UDP segments per GSO write on %s; larger UDP writes are segmented "
                "in userspace, USO stays on",
                UDP_GSO_MAX_SEGMENTS_OLD,
                self.name,
            )

    def _disable_gso(self) -> None:
        state = self._state
        state.gso_fallbacks += 1
        if not state.gso_disabled:
            state.gso_disabled = True
            log.warning(
                "the kernel rejected a valid GSO write on %s with EINVAL; segmenting in userspace "
                "and no longer offering TSO/USO on this device",
                self.name,
            )

    def _write_segments(
        self,
        ip_hdr: Buffer,
        transport_hdr: Buffer,
        payloads: Sequence[Buffer],
        proto: GSOProto,
    ) -> None:
        packet = assemble_superpacket(ip_hdr, transport_hdr, payloads, proto)
        assert packet is not None  # plan_gso_write already accepted a non-empty list
        for segment in kernels.segment(packet):
            self.write(segment)


class PlainQueue(TunQueue):
    """A queue on a fd without IFF_VNET_HDR: fully checksummed packets only."""

    def write(self, data: Buffer) -> int:
        check_write_size(data)
        return self._write_iov((data,), "write")

    def write_nowait(self, data: Buffer) -> int:
        """write() that raises BlockingIOError instead of waiting (tio_core.contract.NonBlockingWriter)."""
        check_write_size(data)
        return self._write_iov_now((data,), "write")

    def write_many(self, packets: Sequence[Buffer]) -> WriteBatch:
        """write() of each packet, in one C loop (tio_core.contract.BatchWriter)."""
        return self._write_many(packets, b"")


def _size_error(data: Buffer) -> Exception:
    """The MalformedPacket write() raises for a packet the write loop refused by its size."""
    try:
        check_write_size(data)
    except MalformedPacket as exc:
        return exc
    return MalformedPacket(f"write: packet of {len(data)} bytes refused by the write loop")


__all__ = ["PlainQueue", "SetState", "TunQueue", "VnetQueue"]
