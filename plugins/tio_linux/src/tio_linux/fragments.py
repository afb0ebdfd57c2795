"""EvenFragments: a superpacket's payload as one buffer cut into equal pieces.

write_gso takes the payload as a sequence of fragments. When they are
consecutive pieces of one buffer (a superpacket read from a TUN, passed on
unchanged), building ~45 slices, validating them one by one and handing
~45 iovecs to the kernel costs more than the forwarding itself. An
EvenFragments is a real Sequence of memoryview slices, so every GSOWriter
accepts it, but VnetQueue.write_gso recognises it and writes the span as
one iovec after validating its geometry in constant time
(tio_core.kernels.gso_write.plan_even_gso_write: the same checks as
plan_gso_write, which every backend uses).
"""

from __future__ import annotations

from collections.abc import Sequence

from tio_core.contract import Buffer
from tio_core.errors import GSOGeometryError


class EvenFragments(Sequence):
    """``buffer[start:]`` cut into ``size``-byte fragments (the last may be shorter)."""

    __slots__ = ("span", "size", "_count")

    def __init__(self, buffer: Buffer, start: int, size: int) -> None:
        if size <= 0:
            raise GSOGeometryError(f"EvenFragments: fragment size must be positive, got {size}")
        self.span = memoryview(buffer)[start:]
        if not self.span.nbytes:
            raise GSOGeometryError("EvenFragments: no payload after the headers")
        self.size = size
        self._count = -(-self.span.nbytes // size)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # int or slice, as for a list of memoryviews
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("fragment index out of range")
        return self.span[index * self.size : (index + 1) * self.size]
