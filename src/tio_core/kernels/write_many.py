"""A batch of packets written to one fd, one write each: the loop under a queue's write_many.

write_many(fd, packets, header, start, max_size) -> (stop, written, bytes, error)
    Writes packets[start:] in order, each as one writev of ``header`` (b"" for
    none) followed by the packet; EINTR is retried. Every packet's buffer is
    taken before the first write, so one that is not a C-contiguous buffer
    raises (TypeError, BufferError, ValueError for a released view) with
    nothing written. The loop stops at the first packet that is empty or longer
    than ``max_size`` (error -1; nothing written for it, the caller raises what
    a single write would) or whose write fails (error = its errno).
    stop: that packet's index, or len(packets) when all were written;
    written: packets written; bytes: their bytes, the headers excluded.

The caller owns the policy: which errno means "wait" (EAGAIN), "this packet
is bad" (EINVAL) or "the queue is gone" (EBADF), and what it counts; it
resumes at stop + 1. The C version (csrc/writeloop.c) releases the GIL for the
whole batch; py_write_many is its pure twin, which the differential tests hold
it to, and the one used when tio_core.kernels.native selects the twins.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Sequence

from tio_core.contract import Buffer
from tio_core.kernels import native
from tio_core.kernels._pyargs import fd_argument

WriteMany = Callable[[int, Sequence[Buffer], Buffer, int, int], tuple[int, int, int, int]]


def py_write_many(
    fd: int, packets: Sequence[Buffer], header: Buffer, start: int, max_size: int
) -> tuple[int, int, int, int]:
    """The pure twin of the C write_many (see the module's docstring)."""
    fd = fd_argument(fd, "write_many")
    start, max_size = operator.index(start), operator.index(max_size)
    try:
        items = packets if type(packets) in (list, tuple) else list(packets)
    except TypeError:
        raise TypeError("write_many: packets must be a sequence") from None
    if not 0 <= start <= len(items):
        raise ValueError(f"write_many: start {start} is outside 0..{len(items)}")
    head = _c_buffer(header)
    views = [_c_buffer(packet) for packet in items[start:]]
    head_len = head.nbytes
    iov: list[memoryview] = [head, head] if head_len else [head]
    written = total = 0
    for index in range(start, len(items)):
        view = views[index - start]
        size = view.nbytes
        if size == 0 or size > max_size:
            return index, written, total, -1
        iov[-1] = view
        try:
            got = os.writev(fd, iov)  # retries EINTR itself (PEP 475)
        except OSError as exc:
            return index, written, total, exc.errno or 0
        written += 1
        total += got - head_len if got > head_len else 0
    return len(items), written, total, 0


def _c_buffer(data: Buffer) -> memoryview:
    """The buffer C would take with PyBUF_SIMPLE: TypeError for a non-buffer, BufferError if not C-contiguous."""
    view = memoryview(data)
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view


write_many: WriteMany = native.select("write_many", py_write_many)
"""The C version when built and not TIO_PURE, else py_write_many."""

__all__ = ["WriteMany", "py_write_many", "write_many"]
