"""The packet kernels: checksums, virtio_net_hdr validation, superpacket segmentation.

This facade exports the C versions from tio_core._ckernels when that
extension is built, and the pure-Python twins from tio_core.kernels._pykernels
otherwise or when the environment sets TIO_PURE=1 (tio_core.kernels.native
decides). Both behave identically
(tests/kernels compares them byte for byte); IMPLEMENTATION says which one
is in use.

API. Packets that cannot be accepted raise tio_core.errors.MalformedPacket
(a TioError and a ValueError) whose message says what is wrong; argument
misuse raises ValueError / TypeError; only C-contiguous buffers are taken.

checksum(data, seed=0) -> int
    RFC 1071 folded 16-bit one's-complement sum of data plus seed (0..2**32-1),
    not inverted; an odd tail byte is padded with zero.
pseudo_header_sum(src, dst, proto, l4_len) -> int
    Folded, not inverted, TCP/UDP pseudo-header sum; 4-byte addresses give
    IPv4, 16-byte addresses IPv6 (32-bit length, so > 65535 is fine).
ipv4_header_checksum(hdr) -> int
    The value for the header checksum field (the field's own bytes ignored).
finish_checksum(pkt, hdr: VirtioNetHdr) -> None
    Completes a NEEDS_CSUM checksum in place in the writable ``pkt`` (UDP 0
    is stored as 0xFFFF); no-op without NEEDS_CSUM.
gso_info_from_vnet(hdr: VirtioNetHdr, pkt) -> GSOInfo
    Validates a kernel packet against its header and returns its GSOInfo with
    hdr_len recomputed (the kernel's is not trusted); NO_GSO for GSO_NONE.
segment(packet) -> list[memoryview]
    The wire IP packets (fully checksummed) of a superpacket, back to back in
    one fresh bytearray that the views keep alive: they stay valid for as long
    as they are referenced. A plain packet gives [packet.data] unchanged.
segment_into(packet, out: bytearray) -> list[memoryview]
    The same into the caller's reusable ``out``, grown when shorter than
    segmented_size(packet). The views are valid until ``out`` is written
    again (the next segment_into with it). Growing fails with BufferError
    while views of ``out`` are alive, so preallocate (2 * 65536 bytes cover a
    64 KiB superpacket at MSS >= 536 with up to 500 header bytes) or drop the
    views first. All segments together are out[:segmented_size(packet)].
segmented_size(packet) -> int
    Bytes all segments occupy (len(packet.data) for a plain packet).

Segmenting refuses (MalformedPacket) more than MAX_SEGMENT_COUNT segments or
output above MAX_SEGMENTED_SIZE bytes, which only hostile geometry (a tiny gso
size, with or without huge headers) reaches; gso_info_from_vnet refuses the
same, so a packet read from a kernel can always be segmented.
"""

from __future__ import annotations

from types import ModuleType

from tio_core.kernels import _pykernels
from tio_core.kernels.native import selected_extension

_FUNCTIONS = (
    "checksum",
    "pseudo_header_sum",
    "ipv4_header_checksum",
    "finish_checksum",
    "gso_info_from_vnet",
    "segment",
    "segment_into",
    "segmented_size",
)


def _load() -> tuple[ModuleType, str]:
    extension = selected_extension()
    if extension is None:
        return _pykernels, "pure"
    return extension, "c"


_impl, IMPLEMENTATION = _load()

checksum = _impl.checksum
pseudo_header_sum = _impl.pseudo_header_sum
ipv4_header_checksum = _impl.ipv4_header_checksum
finish_checksum = _impl.finish_checksum
gso_info_from_vnet = _impl.gso_info_from_vnet
segment = _impl.segment
segment_into = _impl.segment_into
segmented_size = _impl.segmented_size

MAX_SEGMENTED_SIZE = _pykernels.MAX_SEGMENTED_SIZE
MAX_SEGMENT_COUNT = _pykernels.MAX_SEGMENT_COUNT

__all__ = ["IMPLEMENTATION", "MAX_SEGMENT_COUNT", "MAX_SEGMENTED_SIZE", *_FUNCTIONS]
