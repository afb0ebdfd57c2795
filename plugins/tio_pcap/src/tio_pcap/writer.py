"""Writes IP packets to a pcap or pcapng capture with link type RAW.

The file header goes to disk at once, so even a process killed before the
first flush leaves a valid (empty) capture; records are buffered and
written on flush()/close() and whenever WRITE_BUFFER bytes wait, always as
whole records. What a crash can leave is a truncated last record, which
CaptureReader(strict=False) tolerates with a warning.

When the file cannot take more (disk full, file size limit, I/O error) the
writer cuts the file back to its last complete record, raises
CaptureWriteError and refuses every later record: the capture stays
readable by the strict reader and has no hole in the middle.
"""

from __future__ import annotations

import os
import struct
import time

from tio_pcap import linktypes
from tio_pcap.errors import CaptureWriteError
from tio_pcap.reader import MAX_CAPLEN, PCAP_REC_HDR, PCAPNG_BOM, PCAPNG_SHB

WRITE_BUFFER = 256 * 1024
_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_EPB_HEADER = struct.Struct("<IIIIIII")  # type, length, interface, ts high, ts low, caplen, wirelen
_U32 = struct.Struct("<I")
_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")  # indexed by length % 4


def _file_header(fmt: str, linktype: int) -> bytes:
    if fmt == "pcap":
        # microsecond resolution: the magic every tool understands
        return _PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, MAX_CAPLEN, linktype)
    shb_options = b""  # none: the section length -1 says "unknown"
    shb_len = 28 + len(shb_options)
    shb = struct.pack("<IIIHHq", PCAPNG_SHB, shb_len, PCAPNG_BOM, 1, 0, -1) + shb_options + _U32.pack(shb_len)
    # IDB with if_tsresol = 9 (nanoseconds), then opt_endofopt
    options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
    idb_len = 20 + len(options)
    return shb + struct.pack("<IIHHI", 1, idb_len, linktype, 0, MAX_CAPLEN) + options + _U32.pack(idb_len)


def _complete_records(buf: bytes | bytearray, size: int, fmt: str) -> tuple[int, int]:
    """(bytes, count) of the whole records at the start of the first size bytes of buf."""
    pos = count = 0
    while True:
        if fmt == "pcap":
            if pos + PCAP_REC_HDR > size:
                break
            end = pos + PCAP_REC_HDR + _U32.unpack_from(buf, pos + 8)[0]  # + captured length
        else:
            if pos + 8 > size:
                break
            end = pos + _U32.unpack_from(buf, pos + 4)[0]  # block length
        if end > size:
            break
        pos, count = end, count + 1
    return pos, count


class CaptureWriter:
    """Appends packets to a new capture file ("pcap" or "pcapng").

    records counts the records handed to write(), records_written those
    wholly in the file (both include nothing still buffered after a
    failure), failure is the CaptureWriteError that ended the output.
    """

    def __init__(self, path: str | os.PathLike[str], fmt: str = "pcap", linktype: int = linktypes.RAW) -> None:
        if fmt not in ("pcap", "pcapng"):
            raise ValueError(f"capture format must be 'pcap' or 'pcapng', got {fmt!r}")
        self.path = os.fspath(path)
        self.format = fmt
        self.records = 0
        self.records_written = 0
        self.failure: CaptureWriteError | None = None
        self._buf = bytearray()
        self._size = 0  # bytes of the file that hold its header and complete records
        self._closed = False
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        header = _file_header(fmt, linktype)
        try:
            self._write_all(header)
        except OSError as exc:
            self._cut_back(0)
            os.close(self._fd)
            self._closed = True
            raise CaptureWriteError(self.path, exc, 0, 0) from exc
        self._size = len(header)
        if fmt == "pcapng":
            self.write = self._write_pcapng  # type: ignore[method-assign]

    def write(self, data: bytes | bytearray | memoryview, ts_ns: int | None = None) -> None:
        """Append one packet, stamped with ts_ns (default: now)."""
        if self.failure is not None:
            raise self._refused()
        if ts_ns is None:
            ts_ns = time.time_ns()
        sec, usec = divmod(ts_ns // 1000, 1_000_000)
        if not 0 <= sec <= 0xFFFFFFFF:
            raise ValueError(f"timestamp {ts_ns} ns is outside what a pcap record holds (1970..2106)")
        size = len(data)
        buf = self._buf
        buf += _PCAP_RECORD.pack(sec, usec, size, size)
        buf += data
        self.records += 1
        if len(buf) >= WRITE_BUFFER:
            self._drain()

    def _write_pcapng(self, data: bytes | bytearray | memoryview, ts_ns: int | None = None) -> None:
        if self.failure is not None:
            raise self._refused()
        if ts_ns is None:
            ts_ns = time.time_ns()
        if not 0 <= ts_ns < 1 << 64:
            raise ValueError(f"timestamp {ts_ns} ns is outside what a pcapng record holds (1970..2554)")
        size = len(data)
        pad = _PADDING[size % 4]
        length = 32 + size + len(pad)
        buf = self._buf
        buf += _EPB_HEADER.pack(6, length, 0, ts_ns >> 32, ts_ns & 0xFFFFFFFF, size, size)
        buf += data
        buf += pad + length.to_bytes(4, "little")
        self.records += 1
        if len(buf) >= WRITE_BUFFER:
            self._drain()

    def _write_all(self, data: bytes | bytearray) -> None:
        """os.write until all of data is in the file; an OSError carries .written (bytes that were)."""
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError as exc:
            exc.written = written  # type: ignore[attr-defined]
            raise
        finally:
            view.release()

    def _drain(self) -> None:
        """Write the buffered records; on failure keep the whole ones that reached the file."""
        buf = self._buf
        if not buf:
            return
        try:
            self._write_all(buf)
        except OSError as exc:
            kept_bytes, kept = _complete_records(buf, exc.written, self.format)  # type: ignore[attr-defined]
            note = ""
            if not self._cut_back(self._size + kept_bytes) and kept_bytes < exc.written:  # type: ignore[attr-defined]
                note = "; the output cannot be truncated, so it may end in a partial record"
            self.records_written += kept
            self._buf = bytearray()
            self.failure = CaptureWriteError(
                self.path, exc, self.records_written, self.records - self.records_written, note
            )
            raise self.failure from exc
        self._size += len(buf)
        self.records_written = self.records
        buf.clear()

    def _cut_back(self, size: int) -> bool:
        """Truncate the file to size bytes (its complete records); False if it cannot be."""
        try:
            os.ftruncate(self._fd, size)
            os.lseek(self._fd, size, os.SEEK_SET)
        except OSError:
            return False  # a pipe or a device: what was written stays
        return True

    def _refused(self) -> CaptureWriteError:
        """The error for a record offered after the output failed (it is counted as lost)."""
        self.records += 1
        failure = self.failure
        assert failure is not None
        return CaptureWriteError(
            self.path,
            failure.os_error,
            self.records_written,
            self.records - self.records_written,
            "; the output failed earlier and takes no more records",
        )

    def flush(self) -> None:
        """Write what is buffered (raises CaptureWriteError if the file cannot take it)."""
        if not self._closed and self.failure is None:
            self._drain()

    def close(self) -> None:
        """Flush and close; a failure met here is raised once the file is closed."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            os.close(self._fd)

    def same_file_as(self, fd: int) -> bool:
        """fd is open on this writer's file (device and inode)."""
        if self._closed:
            return False
        mine, theirs = os.fstat(self._fd), os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)

    @property
    def closed(self) -> bool:
        return self._closed
