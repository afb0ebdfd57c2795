"""The per-packet read loop of a TUN queue: one batch of non-blocking reads into one buffer.

read_batch(fd, buffer, vnet, max_batch, headroom) reads until ``max_batch``
reads were made, less than ``headroom`` bytes of ``buffer`` are left, or the
fd says EAGAIN. Each packet lands right after the previous accepted one; with
``vnet`` the fd carries a virtio_net_hdr, which is read into a separate small
buffer (bodies are never copied), a NEEDS_CSUM checksum is completed in place
and a superpacket is validated into its GSOInfo. It returns a ReadBatch:

packets    the ready Packets, memoryview slices of ``buffer`` (borrowed: valid
           until the buffer is read into again), NO_GSO for plain packets
drops      packets read but dropped, counted by DROP_REASONS: short_read (not
           even a header), truncated (filled the room: a TUN read truncates
           silently), gso_type (a GSO type tio does not take), malformed
idle       the batch ended on EAGAIN (wait before reading again)
error      the OSError of a read that failed before any packet was accepted
           (raise it); a later failure ends the batch and shows on the next call
malformed  why each malformed packet was dropped (for a debug log)

It runs once per packet read, which is why it is in C
(tio_core._ckernels.read_batch, the GIL released around each readv) unless
tio_core.kernels.native selects the pure twins; py_read_batch is the pure
twin the differential tests hold it to.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tio_core.contract import NO_GSO, Packet
from tio_core.errors import MalformedPacket
from tio_core.kernels import _pykernels, native
from tio_core.kernels._pyargs import fd_argument
from tio_core.wire import GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, VIRTIO_NET_HDR_LEN, VirtioNetHdr

DROP_REASONS = ("short_read", "truncated", "gso_type", "malformed")
NO_DROPS = (0, 0, 0, 0)
_SHORT_READ, _TRUNCATED, _GSO_TYPE, _MALFORMED = range(len(DROP_REASONS))
_SUPERPACKET_TYPES = frozenset((GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4))

ReadBatch = tuple[list[Packet], tuple[int, int, int, int], bool, OSError | None, tuple[str, ...]]


def py_read_batch(fd: int, buffer: bytearray, vnet: bool, max_batch: int, headroom: int) -> ReadBatch:
    """One batch of reads (see the module docstring); the pure twin of the C read_batch."""
    fd = fd_argument(fd, "read_batch")
    if not isinstance(buffer, bytearray):
        raise TypeError(f"read_batch needs a bytearray, got {type(buffer).__name__}")
    if headroom < 1:
        raise ValueError(f"read_batch: headroom must be positive, got {headroom}")
    view = memoryview(buffer)
    hdr = bytearray(VIRTIO_NET_HDR_LEN)
    header: tuple[memoryview, ...] = (memoryview(hdr),) if vnet else ()
    header_len = VIRTIO_NET_HDR_LEN if vnet else 0
    limit = len(view) - headroom
    packets: list[Packet] = []
    drops = [0] * len(DROP_REASONS)
    malformed: list[str] = []
    idle = False
    error: OSError | None = None
    offset = 0
    for _ in range(max_batch):
        if offset > limit:
            break
        body = view[offset:]
        try:
            got = os.readv(fd, (*header, body))  # retries EINTR itself unless a signal handler raises
        except BlockingIOError:
            idle = True
            break
        except OSError as exc:
            if not packets:
                error = exc
            break  # after packets, the error shows again on the next call
        size = got - header_len
        if size <= 0:
            drops[_SHORT_READ] += 1
            continue
        if size == len(body):  # filled the room: a TUN read truncates silently
            drops[_TRUNCATED] += 1
            continue
        data = view[offset : offset + size]
        if vnet and (hdr[0] or hdr[1] != GSO_NONE):
            try:
                packet = _finish(data, VirtioNetHdr.unpack(hdr))
            except MalformedPacket as exc:
                drops[_MALFORMED] += 1
                malformed.append(str(exc))
                continue
            if packet is None:
                drops[_GSO_TYPE] += 1
                continue
        else:
            packet = Packet(data, NO_GSO)
        packets.append(packet)
        offset += size
    return packets, (drops[0], drops[1], drops[2], drops[3]), idle, error, tuple(malformed)


def _finish(data: memoryview, vhdr: VirtioNetHdr) -> Packet | None:
    """The packet once its checksum is complete or its superpacket validated; None for a GSO type tio does not take."""
    base = vhdr.base_type
    if base == GSO_NONE:
        if vhdr.flags & NEEDS_CSUM:
            _pykernels.finish_checksum(data, vhdr)
        return Packet(data, NO_GSO)
    if base not in _SUPERPACKET_TYPES:
        return None
    return Packet(data, _pykernels.gso_info_from_vnet(vhdr, data))


ReadBatchFunction = Callable[[int, bytearray, bool, int, int], ReadBatch]

read_batch: ReadBatchFunction = native.select("read_batch", py_read_batch)
"""One batch of reads (see the module docstring): the C version when built and not TIO_PURE, else py_read_batch."""

__all__ = ["DROP_REASONS", "NO_DROPS", "ReadBatch", "py_read_batch", "read_batch"]
