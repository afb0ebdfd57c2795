"""The RFC 1071 one's-complement sum, written out independently of tio's kernels, for tests to check them with.

Standard library only: the kernel fuzzer imports it before it loads the C extension under test.
"""

from __future__ import annotations

import struct


def fold(total: int) -> int:
    """Fold the carries of a one's-complement sum into 16 bits."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def words(data: bytes) -> int:
    """The unfolded sum of ``data`` read as big-endian 16-bit words, an odd tail byte padded with zero."""
    data += b"\0" * (len(data) & 1)
    return sum(w for (w,) in struct.iter_unpack("!H", data))
