"""Streaming reader of pcap and pcapng captures, yielding the IP packets.

Written here rather than taken from a library because the benchmark
(tio_pcap.bench) shows the maintained pure-Python readers (scapy's
RawPcapReader, dpkt) issue two small file reads and build a metadata object
per record, which is several times slower than what a replay needs. This
reader pulls the file in large chunks and parses records with one
struct.unpack_from each, slicing packets out of the chunk as memoryviews
without copying.

Copies: a regular file of at most WHOLE_FILE_LIMIT bytes is read once, in
one readinto, and rewind() (loop=N) starts over in memory without reading it
again. Anything else streams through one reusable bytearray: readinto fills
it, and only the unparsed tail of a record cut by the chunk's end moves to
the front. A chunk is written again only when no view of it is alive (a
bytearray refuses a resize while it is exported): views stay valid for as
long as they are referenced, as with an immutable chunk.

Memory stays bounded whatever the file says: a chunk is at most CHUNK_SIZE
plus one block, a whole file at most WHOLE_FILE_LIMIT, and no record or block
may claim more than the limits below before anything is allocated for it.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from typing import Any, BinaryIO, Literal

from tio_pcap import linktypes
from tio_pcap.errors import CaptureFormatError, TruncatedCaptureWarning

CHUNK_SIZE = 1 << 20
WHOLE_FILE_LIMIT = 64 << 20  # a regular file up to this size is read once and replayed from memory
MAX_CAPLEN = 256 * 1024  # the largest record we accept (libpcap's own ceiling)
MAX_PACKET_BLOCK = 28 + MAX_CAPLEN + 4 + 64 * 1024  # EPB header, data, trailer, options
MAX_OTHER_BLOCK = 1 << 20  # SHB, IDB, NRB, ...: generous, still bounded

PCAP_FILE_HDR = 24
PCAP_REC_HDR = 16
PCAP_MAGICS = {  # magic bytes as stored -> (byte order, nanosecond resolution)
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
BLOCK_HDR = 12  # block type, block length, ..., block length again
EPB_HDR = 28  # block type and length, interface, timestamp (2 words), captured and original length
PB_HDR = 28  # the same, with a 16-bit interface and a drop count
SPB_HDR = 12  # block type and length, original length
BLOCK_IDB = 1
BLOCK_PB = 2  # obsolete Packet Block, still met in old files
BLOCK_SPB = 3
BLOCK_EPB = 6
OPT_END = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14
NS = 1_000_000_000
IP_FIRST_BYTE = bytes(1 if byte >> 4 in (4, 6) else 0 for byte in range(256))  # version nibble 4 or 6


def _unexported(chunk: bytearray) -> bool:
    """No view of chunk is alive: a resize, which a bytearray refuses while it is exported, succeeds."""
    try:
        chunk.append(0)
    except BufferError:
        return False
    del chunk[-1]
    return True


class _Interface:
    """What a pcapng Interface Description Block says about its packets."""

    __slots__ = (
        "linktype",
        "decode",
        "frame_fields",
        "l2_len",
        "min_framed",
        "snaplen",
        "limit",
        "ts_mul",
        "ts_div",
        "ts_offset_ns",
        "loop_fields",
    )

    def __init__(
        self, linktype: int, decode: linktypes.Decoder, snaplen: int, units_per_second: int, offset_s: int
    ) -> None:
        self.linktype = linktype
        self.decode = decode
        # Ethernet/cooked framing that the hot loops decode inline (see linktypes.FRAMING)
        framing = linktypes.FRAMING.get(linktype)
        self.frame_fields = framing[0].unpack_from if framing else None
        self.l2_len = framing[1] if framing else 0
        self.min_framed = self.l2_len + 40  # long enough for either IP version's header
        self.snaplen = snaplen if snaplen else MAX_CAPLEN  # 0 means "no limit"
        self.limit = min(self.snaplen, MAX_CAPLEN)  # the largest record accepted
        # ns = ts * NS / units; exact integer arithmetic either way
        if NS % units_per_second == 0:
            self.ts_mul, self.ts_div = NS // units_per_second, 1
        else:
            self.ts_mul, self.ts_div = NS, units_per_second
        self.ts_offset_ns = offset_s * NS
        # what the hot loops keep in locals, in one tuple to unpack when the interface changes
        self.loop_fields = (
            linktype == linktypes.RAW,
            self.decode,
            self.frame_fields,
            self.l2_len,
            self.min_framed,
            self.limit,
        )


class CaptureReader:
    """Reads a pcap or pcapng capture and yields its IP packets in file order.

    read_batch() appends packet views (memoryviews into a chunk that is never
    written while one of them is alive, so they stay valid as long as they are
    referenced) and, when asked, timestamps in nanoseconds. Frames carrying no
    IP packet and records cut short by the snap length are skipped and counted.
    whole_file_limit: a regular file up to this size (default WHOLE_FILE_LIMIT)
    is read once and rewound in memory; 0 always streams.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        strict: bool = True,
        name: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        whole_file_limit: int | None = None,
    ) -> None:
        if isinstance(source, (str, os.PathLike)):
            self.name = name or os.fspath(source)
            try:
                self._file: BinaryIO = open(source, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise CaptureFormatError(self.name, 0, f"cannot open capture: {exc.strerror or exc}") from exc
        else:
            self.name = name or str(getattr(source, "name", None) or "<capture stream>")
            self._file = source
        self.strict = strict
        self.chunk_size = max(chunk_size, 4096)
        self.whole_file_limit = WHOLE_FILE_LIMIT if whole_file_limit is None else whole_file_limit
        self._chunk = bytearray()  # the streaming buffer, reused while no view of it is alive
        self._whole: bytearray | None = None  # the whole capture, once read in one go (never written again)
        self._first_start = True
        self.skipped_non_ip = 0
        self.skipped_truncated = 0
        self.format = ""
        self._closed = False
        try:
            self._start()
        except BaseException:
            self.close()  # not a capture we can read: do not leak the file
            raise

    # -- buffer management ------------------------------------------------
    def _start(self) -> None:
        self._pos = 0
        self._base = 0  # file offset of _buf[0]
        if self._whole is not None:  # a rewind: start over in memory
            self._buf, self._end, self._eof = self._whole, len(self._whole), True
        else:
            self._buf, self._end, self._eof = self._chunk, 0, False
            if self._first_start:
                self._first_start = False
                self._read_whole()
        self._mv = memoryview(self._buf)
        self._ifaces: list[_Interface] = []
        self._done = False
        self._failure: CaptureFormatError | None = None
        self._last_ns = 0
        if not self._fill(4):
            raise CaptureFormatError(self.name, 0, f"truncated file header: {self._avail()} of 4 magic bytes")
        magic = bytes(self._buf[:4])
        if magic in PCAP_MAGICS:
            self._open_pcap(magic)
        elif int.from_bytes(magic, "little") == PCAPNG_SHB:
            self.format = "pcapng"
            self._open_section(0, required=True)
        else:
            raise CaptureFormatError(self.name, 0, f"bad magic {magic.hex()}: not a pcap or pcapng capture")

    def _read_whole(self) -> None:
        """Read a small regular file in one go, so that rewinding never reads it again.

        Only a file read from its start (rewind() starts there too); a file
        that grows while it is read is streamed on from what was read.
        """
        try:
            if self._file.tell() != 0:
                return
            info = os.fstat(self._file.fileno())
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            return
        size = info.st_size
        if not stat.S_ISREG(info.st_mode) or not 0 < size <= self.whole_file_limit:
            return
        whole = bytearray(size)
        have = self._read_into(memoryview(whole), 0, size)
        extra = self._file.read(1) if have == size else b""
        if have < size:
            del whole[have:]  # the file shrank meanwhile
        if extra:  # it grew: keep what was read and stream the rest
            self._chunk = whole + extra
            self._buf, self._end = self._chunk, len(self._chunk)
            return
        self._whole = whole
        self._buf, self._end, self._eof = whole, have, True

    def _read_into(self, view: memoryview, have: int, need: int) -> int:
        """Read into view from have on until need bytes are there or the file ends; returns the bytes there."""
        readinto = getattr(self._file, "readinto", None)
        while have < need:
            if readinto is not None:
                got = readinto(view[have:])
            else:  # a stream without readinto: one copy more
                data = self._file.read(len(view) - have)
                got = len(data)
                view[have : have + got] = data
            if not got:
                self._eof = True
                break
            have += got
        return have

    def _avail(self) -> int:
        return self._end - self._pos

    def _fill(self, need: int) -> bool:
        """Make need bytes available at _pos; False if the file ends first."""
        pos, end = self._pos, self._end
        if end - pos >= need:
            return True
        if self._eof:
            return False
        tail = end - pos
        size = max(need, tail + self.chunk_size)
        self._mv.release()  # the views handed out keep the buffer exported if any is alive
        chunk = self._buf
        if len(chunk) >= size and _unexported(chunk):
            view = memoryview(chunk)
            if tail and pos:
                view[:tail] = view[pos:end]  # only a cut record's start moves (a memmove: they may overlap)
        else:
            fresh = bytearray(max(size, self.chunk_size + MAX_PACKET_BLOCK))
            fresh[:tail] = memoryview(chunk)[pos:end]
            chunk = self._chunk = fresh
            view = memoryview(chunk)
        self._buf = chunk
        self._mv = view
        self._base += pos
        self._pos = 0
        self._end = self._read_into(view, tail, need)
        return self._end >= need

    def _truncated(self, what: str, need: int) -> bool:
        """The file ends inside a record: raise (strict) or warn and stop."""
        problem = f"truncated {what}: {self._avail()} of {need} bytes before end of file"
        if self.strict:
            raise CaptureFormatError(self.name, self._base + self._pos, problem)
        warnings.warn(
            f"{self.name}: at byte offset {self._base + self._pos}: {problem}; record dropped",
            TruncatedCaptureWarning,
            stacklevel=4,
        )
        self._done = True
        return False

    def _error(self, offset: int, problem: str) -> CaptureFormatError:
        return CaptureFormatError(self.name, self._base + offset, problem)

    # -- classic pcap -------------------------------------------------------
    def _open_pcap(self, magic: bytes) -> None:
        order, nano = PCAP_MAGICS[magic]
        self.format = "pcap-ns" if nano else "pcap"
        if not self._fill(PCAP_FILE_HDR):
            raise CaptureFormatError(self.name, 0, f"truncated file header: {self._avail()} of {PCAP_FILE_HDR} bytes")
        major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack_from(order + "HHiIII", self._buf, 4)
        if major != 2:
            raise CaptureFormatError(self.name, 0, f"unsupported pcap version {major} (expected 2)")
        linktype &= 0xFFFF  # upper bits carry FCS information, not the type
        decode = linktypes.decoder_for(linktype)
        if decode is None:
            raise CaptureFormatError(self.name, 0, f"unknown link type {linktype}")
        iface = _Interface(linktype, decode, snaplen, NS if nano else 1_000_000, 0)
        self.linktype = linktype
        self._iface = iface
        self._byteorder: Literal["little", "big"] = "little" if order == "<" else "big"
        self._rec_lengths = struct.Struct(order + "8xII")  # captured and wire length
        self._rec_stamp = struct.Struct(order + "II")  # seconds and fraction
        self._pos = PCAP_FILE_HDR
        self._batch = self._batch_pcap

    def _batch_pcap(
        self,
        max_records: int,
        views: list[memoryview],
        stamps: list[int] | None = None,
        offsets: list[int] | None = None,
    ) -> int:
        """Parse up to max_records records; append their IP packets (and stamps, offsets).

        The hot loop (_pcap_records) takes the records that lie wholly in the
        chunk; at a record it leaves (a chunk boundary, a bad length) the next
        chunk is read and the length checked here.
        """
        count = 0
        while max_records > 0:
            got, used = self._pcap_records(max_records, views, stamps, offsets)
            count += got
            max_records -= used
            if max_records > 0 and count and self._cut_by_chunk(PCAP_REC_HDR, 8, PCAP_REC_HDR):
                break  # read the next chunk in the next call, when these views are likely dropped
            if max_records > 0 and not self._buffer_record():
                break
        return count

    def _cut_by_chunk(self, header: int, length_at: int, extra: int) -> bool:
        """The record (block) at _pos runs past the chunk's end and more of the file is to come.

        header: its header's size; its length field (a u32, plus extra bytes)
        lies at length_at. Then a batch that holds packets returns before the
        next chunk is read: once the caller drops those views, the chunk is
        reused instead of a new one being allocated.
        """
        if self._eof:
            return False
        avail = self._end - self._pos
        if avail < header:
            return True
        length = int.from_bytes(self._buf[self._pos + length_at : self._pos + length_at + 4], self._byteorder)
        return extra + length > avail

    def _buffer_record(self) -> bool:
        """Make the record at _pos lie wholly in the chunk; False at the end of the capture."""
        if not self._fill(PCAP_REC_HDR):
            if self._avail() == 0:
                self._done = True
            else:
                self._truncated("record header", PCAP_REC_HDR)
            return False
        caplen, _wirelen = self._rec_lengths.unpack_from(self._buf, self._pos)
        limit = self._iface.limit
        if caplen > limit:
            raise self._error(
                self._pos,
                f"record captured length {caplen} exceeds "
                f"{'the snap length' if limit == self._iface.snaplen else 'the limit'} {limit}",
            )
        if not self._fill(PCAP_REC_HDR + caplen):
            self._truncated("record", PCAP_REC_HDR + caplen)
            return False
        return True

    def _pcap_records(
        self, max_records: int, views: list[memoryview], stamps: list[int] | None, offsets: list[int] | None
    ) -> tuple[int, int]:
        """The hot loop of a replay: up to max_records records that lie wholly in the chunk.

        One unpack and one slice per record. Stops at a record cut by the end
        of the chunk or longer than the limit (left for _batch_pcap); returns
        (packets appended, records consumed).
        """
        raw, decode, frame_fields, l2_len, min_framed, limit = self._iface.loop_fields
        ts_mul = self._iface.ts_mul
        lengths = self._rec_lengths.unpack_from  # timestamps are unpacked only when asked for
        stamp = self._rec_stamp.unpack_from
        append = views.append
        is_ip = IP_FIRST_BYTE
        buf, mv, pos, end = self._buf, self._mv, self._pos, self._end
        count = skipped_non_ip = skipped_truncated = used = 0
        try:
            for used in range(max_records):  # noqa: B007 - used is read after the loop
                if end - pos < PCAP_REC_HDR:
                    break
                caplen, wirelen = lengths(buf, pos)
                start = pos + PCAP_REC_HDR
                stop = start + caplen
                if stop > end or caplen > limit:
                    break
                record, pos = pos, stop
                if caplen < wirelen:
                    skipped_truncated += 1
                    continue
                if raw:
                    if not caplen or not is_ip[buf[start]]:
                        skipped_non_ip += 1
                        continue
                else:
                    # Ethernet/cooked framing inline (twin of _pcapng_blocks'), because the benchmark
                    # shows a function call here costs 10-15% of Ethernet parsing: one unpack gives the
                    # ethertype, the IP version and both IP length fields (to cut link padding);
                    # anything else goes to the link type's decoder
                    ethertype = version = 0
                    if frame_fields is not None and caplen >= min_framed:
                        ethertype, version, len4, len6 = frame_fields(buf, start)
                        version >>= 4
                    if ethertype == 0x0800 and version == 4:
                        start += l2_len
                        if 20 <= len4 < stop - start:
                            stop = start + len4
                    elif ethertype == 0x86DD and version == 6:
                        start += l2_len
                        if len6 > 0 and 40 + len6 < stop - start:
                            stop = start + 40 + len6
                    else:
                        span = decode(buf, start, stop)  # VLAN tags, NULL/LOOP, short or odd frames
                        if span is None:
                            skipped_non_ip += 1
                            continue
                        start, stop = span
                append(mv[start:stop])
                if stamps is not None:
                    sec, frac = stamp(buf, record)
                    stamps.append(sec * NS + frac * ts_mul)
                    if offsets is not None:
                        offsets.append(self._base + record)
                count += 1
            else:
                used = max_records
        finally:
            self._pos = pos
            self.skipped_non_ip += skipped_non_ip
            self.skipped_truncated += skipped_truncated
        return count, used

    # -- pcapng --------------------------------------------------------------
    def _open_section(self, pos: int, required: bool = False) -> None:
        """Parse the Section Header Block at pos; sets the byte order.

        A later section whose header is cut off by the end of the file ends
        the capture like any truncated block (see strict).
        """
        self._pos = pos
        if not self._fill(BLOCK_HDR):
            if not required and self._truncated("section header block", BLOCK_HDR) is False:
                return
            raise self._error(self._pos, f"truncated section header block: {self._avail()} of {BLOCK_HDR} bytes")
        pos = self._pos
        self._set_byte_order(pos)
        self._ifaces = []
        (length,) = self._u32.unpack_from(self._buf, pos + 4)
        if length < 28:
            raise self._error(pos, f"section header block too short ({length} bytes, need 28)")
        if self._block(pos, PCAPNG_SHB, length) is None:
            if required:
                raise self._error(self._pos, "truncated section header block")
            return
        pos = self._pos
        major = struct.unpack_from(self._order + "H", self._buf, pos + 12)[0]
        if major != 1:
            raise self._error(pos, f"unsupported pcapng version {major} (expected 1)")
        self._pos = pos + length
        self._batch = self._batch_pcapng

    def _set_byte_order(self, pos: int) -> None:
        """Read the byte-order magic of the section header block at pos; make the structs of that order."""
        bom = self._buf[pos + 8 : pos + 12]
        if bom == PCAPNG_BOM.to_bytes(4, "little"):
            order = "<"
        elif bom == PCAPNG_BOM.to_bytes(4, "big"):
            order = ">"
        else:
            raise self._error(pos, f"bad pcapng byte-order magic {bytes(bom).hex()}")
        self._order = order
        self._byteorder = "little" if order == "<" else "big"
        self._u32 = struct.Struct(order + "I")
        self._block_hdr = struct.Struct(order + "II")
        self._u32x5 = struct.Struct(order + "IIIII")
        self._epb7 = struct.Struct(order + "IIIIIII")  # block type and length, then the EPB fields
        self._pb = struct.Struct(order + "HHIIII")

    def _block(self, pos: int, btype: int, length: int) -> bool | None:
        """Check a block's length fields and buffer it; None at a truncated end."""
        if length < BLOCK_HDR or length % 4:
            raise self._error(
                pos, f"block type {btype:#x}: bad block length {length} (need a multiple of 4, >= {BLOCK_HDR})"
            )
        cap = MAX_PACKET_BLOCK if btype in (BLOCK_EPB, BLOCK_SPB, BLOCK_PB) else MAX_OTHER_BLOCK
        if length > cap:
            raise self._error(pos, f"block type {btype:#x}: block length {length} exceeds the limit {cap}")
        self._pos = pos
        if not self._fill(length):
            self._truncated(f"block of type {btype:#x}", length)
            return None
        pos = self._pos
        (trailer,) = self._u32.unpack_from(self._buf, pos + length - 4)
        if trailer != length:
            raise self._error(
                pos, f"block type {btype:#x}: block length mismatch ({length} at start, {trailer} at end)"
            )
        return True

    def _parse_idb(self, pos: int, length: int) -> None:
        """Add the interface that the Interface Description Block at pos describes."""
        if length < 20:
            raise self._error(pos, f"interface description block too short ({length} bytes)")
        linktype, _reserved, snaplen = struct.unpack_from(self._order + "HHI", self._buf, pos + 8)
        units, offset_s = self._idb_timestamps(pos, length)
        decode = linktypes.decoder_for(linktype)
        if decode is None:
            raise self._error(pos, f"interface {len(self._ifaces)}: unknown link type {linktype}")
        self._ifaces.append(_Interface(linktype, decode, snaplen, units, offset_s))

    def _idb_timestamps(self, pos: int, length: int) -> tuple[int, int]:
        """The timestamp units per second and offset in seconds that the IDB at pos states in its options."""
        units, offset_s = 1_000_000, 0
        opt, end = pos + 16, pos + length - 4
        while opt + 4 <= end:
            code, olen = struct.unpack_from(self._order + "HH", self._buf, opt)
            if code == OPT_END:
                break
            value = opt + 4
            if value + olen > end:
                raise self._error(pos, f"interface description block: option {code} overruns the block")
            if code == OPT_IF_TSRESOL and olen >= 1:
                resol = self._buf[value]
                exponent = resol & 0x7F
                if (resol & 0x80 and exponent > 63) or (not resol & 0x80 and exponent > 18):
                    raise self._error(pos, f"interface description block: unsupported if_tsresol {resol:#x}")
                units = 2**exponent if resol & 0x80 else 10**exponent
            elif code == OPT_IF_TSOFFSET and olen >= 8:
                (offset_s,) = struct.unpack_from(self._order + "q", self._buf, value)
            opt = value + ((olen + 3) & ~3)  # values are padded to 32 bits
        return units, offset_s

    def _batch_pcapng(
        self,
        max_records: int,
        views: list[memoryview],
        stamps: list[int] | None = None,
        offsets: list[int] | None = None,
    ) -> int:
        """Parse up to max_records blocks; append their IP packets (and stamps, offsets).

        The hot loop (_pcapng_blocks) takes the Enhanced Packet Blocks that
        lie wholly in the chunk and pass every check; any other block (another
        type, a chunk boundary, any fault) goes through _general_block, which
        also words the errors.
        """
        count = 0
        while max_records > 0:
            got, used = self._pcapng_blocks(max_records, views, stamps, offsets)
            count += got
            max_records -= used
            if max_records > 0 and count and self._cut_by_chunk(BLOCK_HDR, 4, 0):
                break  # as in _batch_pcap
            while max_records > 0:  # the blocks the hot loop leaves, as many as come in a row
                count += self._general_block(views, stamps, offsets)
                max_records -= 1
                if self._done:
                    return count
                if self._at_epb():
                    break
        return count

    def _at_epb(self) -> bool:
        """Whether the chunk shows an Enhanced Packet Block at _pos (one for the hot loop, most likely)."""
        return self._end - self._pos >= EPB_HDR and self._u32.unpack_from(self._buf, self._pos)[0] == BLOCK_EPB

    def _pcapng_blocks(
        self, max_records: int, views: list[memoryview], stamps: list[int] | None, offsets: list[int] | None
    ) -> tuple[int, int]:
        """The hot loop of a pcapng replay: up to max_records Enhanced Packet Blocks.

        One unpack of the seven header fields and one slice per block. Stops at
        the first block that is not an EPB lying wholly in the chunk and
        passing every check (left for _general_block); returns (packets
        appended, blocks consumed).
        """
        count = skipped_non_ip = skipped_truncated = used = 0
        is_ip = IP_FIRST_BYTE
        append = views.append
        buf, mv, pos, end = self._buf, self._mv, self._pos, self._end
        epb, u32 = self._epb7.unpack_from, self._u32.unpack_from
        ifaces, n_ifaces = self._ifaces, len(self._ifaces)
        # What the loop needs of the current interface, in locals: set when the first
        # block names its interface (before any use), reloaded when it changes.
        current = -1
        iface: Any = None
        decode: Any = None
        raw = frame_fields = None
        l2_len = min_framed = limit = 0
        try:
            for used in range(max_records):  # noqa: B007 - used is read after the loop
                if end - pos < EPB_HDR:
                    break
                btype, length, if_id, ts_hi, ts_lo, caplen, wirelen = epb(buf, pos)
                if btype != BLOCK_EPB or if_id >= n_ifaces:
                    break
                if if_id != current:
                    current, iface = if_id, ifaces[if_id]
                    raw, decode, frame_fields, l2_len, min_framed, limit = iface.loop_fields
                start = pos + EPB_HDR
                stop = start + caplen
                if (
                    length & 3
                    or not stop + 4 <= pos + length <= end
                    or length > MAX_PACKET_BLOCK
                    or caplen > limit
                    or u32(buf, pos + length - 4)[0] != length
                ):
                    break  # a chunk boundary or a fault: _general_block words it
                block, pos = pos, pos + length
                if caplen < wirelen:
                    skipped_truncated += 1
                    continue
                if raw:
                    if not caplen or not is_ip[buf[start]]:
                        skipped_non_ip += 1
                        continue
                else:
                    # Ethernet/cooked framing inline (twin of _pcap_records', which says why):
                    # measured, a function call here costs 10-15% of Ethernet parsing
                    ethertype = version = 0
                    if frame_fields is not None and caplen >= min_framed:
                        ethertype, version, len4, len6 = frame_fields(buf, start)
                        version >>= 4
                    if ethertype == 0x0800 and version == 4:
                        start += l2_len
                        if 20 <= len4 < stop - start:
                            stop = start + len4
                    elif ethertype == 0x86DD and version == 6:
                        start += l2_len
                        if len6 > 0 and 40 + len6 < stop - start:
                            stop = start + 40 + len6
                    else:
                        span = decode(buf, start, stop)
                        if span is None:
                            skipped_non_ip += 1
                            continue
                        start, stop = span
                append(mv[start:stop])
                if stamps is not None:
                    self._last_ns = (ts_hi << 32 | ts_lo) * iface.ts_mul // iface.ts_div + iface.ts_offset_ns
                    stamps.append(self._last_ns)
                    if offsets is not None:
                        offsets.append(self._base + block)
                count += 1
            else:
                used = max_records
        finally:
            self._pos = pos
            self.skipped_non_ip += skipped_non_ip
            self.skipped_truncated += skipped_truncated
        return count, used

    def _general_block(
        self, views: list[memoryview], stamps: list[int] | None, offsets: list[int] | None = None
    ) -> int:
        """Handle the block at _pos, whatever it is, with every check; returns packets appended."""
        if not self._fill(BLOCK_HDR):
            if self._avail() == 0:
                self._done = True
            else:
                self._truncated("block header", BLOCK_HDR)
            return 0
        pos = self._pos
        btype, length = self._block_hdr.unpack_from(self._buf, pos)
        if btype == PCAPNG_SHB:
            self._open_section(pos)
            return 0
        if self._block(pos, btype, length) is None:
            return 0
        block = self._pos
        self._pos = block + length
        if btype == BLOCK_IDB:
            self._parse_idb(block, length)
            return 0
        packet = self._packet_block(btype, block, length)
        if packet is None:
            return 0  # statistics, name resolution, decryption secrets, custom: not packets
        return self._take_packet(block, length, *packet, views, stamps, offsets)

    def _packet_block(self, btype: int, block: int, length: int) -> tuple[int, int, int, int, int | None] | None:
        """(interface, data start, captured length, original length, timestamp or None) of a
        packet block (EPB, PB, SPB) at block; None for another block type."""
        buf = self._buf
        if btype == BLOCK_EPB:
            if length < EPB_HDR + 4:
                raise self._error(block, f"enhanced packet block too short ({length} bytes)")
            if_id, ts_hi, ts_lo, caplen, wirelen = self._u32x5.unpack_from(buf, block + 8)
            return if_id, block + EPB_HDR, caplen, wirelen, ts_hi << 32 | ts_lo
        if btype == BLOCK_PB:
            if length < PB_HDR + 4:
                raise self._error(block, f"packet block too short ({length} bytes)")
            if_id, _drops, ts_hi, ts_lo, caplen, wirelen = self._pb.unpack_from(buf, block + 8)
            return if_id, block + PB_HDR, caplen, wirelen, ts_hi << 32 | ts_lo
        if btype == BLOCK_SPB:
            if length < SPB_HDR + 4:
                raise self._error(block, f"simple packet block too short ({length} bytes)")
            if not self._ifaces:
                raise self._error(block, "simple packet block before any interface description block")
            (wirelen,) = self._u32.unpack_from(buf, block + 8)
            caplen = min(wirelen, self._ifaces[0].limit, length - SPB_HDR - 4)  # SPBs store no captured length
            return 0, block + SPB_HDR, caplen, wirelen, None
        return None

    def _take_packet(
        self,
        block: int,
        length: int,
        if_id: int,
        start: int,
        caplen: int,
        wirelen: int,
        ts: int | None,
        views: list[memoryview],
        stamps: list[int] | None,
        offsets: list[int] | None,
    ) -> int:
        """Check the packet of the block at block against its interface and append it; returns 0 or 1."""
        if if_id >= len(self._ifaces):
            raise self._error(
                block, f"packet block names interface {if_id}, but only {len(self._ifaces)} are described"
            )
        iface = self._ifaces[if_id]
        if caplen > iface.limit:
            raise self._error(block, f"packet captured length {caplen} exceeds the snap length {iface.limit}")
        stop = start + caplen
        if stop > block + length - 4:
            raise self._error(block, f"packet captured length {caplen} overruns its block of {length} bytes")
        if caplen < wirelen:
            self.skipped_truncated += 1
            return 0
        span = iface.decode(self._buf, start, stop)
        if span is None:
            self.skipped_non_ip += 1
            return 0
        views.append(self._mv[span[0] : span[1]])
        if stamps is not None:
            if ts is not None:  # simple packet blocks carry none: keep the last
                self._last_ns = ts * iface.ts_mul // iface.ts_div + iface.ts_offset_ns
            stamps.append(self._last_ns)
            if offsets is not None:
                offsets.append(self._base + block)
        return 1

    def read_batch(
        self,
        max_packets: int,
        views: list[memoryview],
        stamps: list[int] | None = None,
        offsets: list[int] | None = None,
    ) -> int:
        """Append up to max_packets IP packets (and, if given a list, their
        timestamps in ns since the epoch; with stamps, if given a list, the
        file offset of each one's record); returns how many, 0 at the end."""
        if self._failure is not None:
            raise self._failure  # the capture is broken there; never re-read what came before
        if self._closed:
            raise ValueError(f"{self.name}: the capture reader is closed")
        if max_packets <= 0:
            return 0
        try:
            while not self._done:
                # max_packets records hold at most that many packets; skipped ones make it fewer
                got = self._batch(max_packets, views, stamps, offsets)
                if got:
                    return got
        except CaptureFormatError as exc:
            # The packets before the fault are already in views: the caller may use them.
            self._failure = exc
            raise
        return 0

    # -- lifecycle ------------------------------------------------------------
    @property
    def seekable(self) -> bool:
        try:
            return self._file.seekable()
        except (OSError, ValueError):
            return False

    def rewind(self) -> None:
        """Start over from the first record (for loop=N); a capture read whole is not read again."""
        if self._closed:
            raise CaptureFormatError(self.name, 0, "cannot rewind the capture to replay it again: it is closed")
        if self._whole is None:
            try:
                self._file.seek(0)
            except (OSError, ValueError, io.UnsupportedOperation) as exc:
                raise CaptureFormatError(self.name, 0, f"cannot rewind the capture to replay it again: {exc}") from exc
        self._start()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._whole = None  # views still alive keep what they need
            self._file.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_packets(source: str | os.PathLike[str] | BinaryIO, *, strict: bool = True) -> list[bytes]:
    """Every IP packet of a capture, as bytes (convenience for tests and tools)."""
    packets: list[bytes] = []
    with CaptureReader(source, strict=strict) as reader:
        views: list[memoryview] = []
        while reader.read_batch(1024, views):
            packets.extend(bytes(v) for v in views)
            views.clear()
    return packets
