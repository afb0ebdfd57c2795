"""Writes IP packets to a pcap or pcapng capture with link type RAW.

The file header goes to disk at once, so even a process killed before the
first flush leaves a valid (empty) capture; records are buffered and
flushed on flush()/close(). What a crash can leave is a truncated last
record, which CaptureReader(strict=False) tolerates with a warning.
"""

from __future__ import annotations

import os
import struct
import time

from tio_pcap import linktypes
from tio_pcap.reader import MAX_CAPLEN, PCAPNG_BOM, PCAPNG_SHB

WRITE_BUFFER = 256 * 1024
_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_EPB_HEADER = struct.Struct("<IIIIIII")  # type, length, interface, ts high, ts low, caplen, wirelen
_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")  # indexed by length % 4


class CaptureWriter:
    """Appends packets to a new capture file ("pcap" or "pcapng")."""

    def __init__(self, path: str | os.PathLike[str], fmt: str = "pcap", linktype: int = linktypes.RAW) -> None:
        if fmt not in ("pcap", "pcapng"):
            raise ValueError(f"capture format must be 'pcap' or 'pcapng', got {fmt!r}")
        self.path = os.fspath(path)
        self.format = fmt
        self.packets = 0
        self._file = open(self.path, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115 - closed in close()
        if fmt == "pcap":
            # microsecond resolution: the magic every tool understands
            self._file.write(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, MAX_CAPLEN, linktype))
        else:
            shb_options = b""  # none: the section length -1 says "unknown"
            shb_len = 28 + len(shb_options)
            self._file.write(
                struct.pack("<IIIHHq", PCAPNG_SHB, shb_len, PCAPNG_BOM, 1, 0, -1)
                + shb_options
                + struct.pack("<I", shb_len)
            )
            # IDB with if_tsresol = 9 (nanoseconds), then opt_endofopt
            options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
            idb_len = 20 + len(options)
            self._file.write(
                struct.pack("<IIHHI", 1, idb_len, linktype, 0, MAX_CAPLEN) + options + struct.pack("<I", idb_len)
            )
        self._file.flush()

    def write(self, data: bytes | bytearray | memoryview, ts_ns: int | None = None) -> None:
        """Append one packet, stamped with ts_ns (default: now)."""
        if ts_ns is None:
            ts_ns = time.time_ns()
        size = len(data)
        write = self._file.write
        if self.format == "pcap":
            sec, usec = divmod(ts_ns // 1000, 1_000_000)
            if not 0 <= sec <= 0xFFFFFFFF:
                raise ValueError(f"timestamp {ts_ns} ns is outside what a pcap record holds (1970..2106)")
            write(_PCAP_RECORD.pack(sec, usec, size, size) + data)  # one buffered write per record
        else:
            pad = _PADDING[size % 4]
            length = 32 + size + len(pad)
            write(_EPB_HEADER.pack(6, length, 0, ts_ns >> 32, ts_ns & 0xFFFFFFFF, size, size))
            write(data)
            write(pad + length.to_bytes(4, "little"))
        self.packets += 1

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed
