"""The ``pcap`` backend: a capture file replayed as a Queue, writes recorded to one.

Reading: queue 0 returns the IP packets of ``path`` in file order, paced as
configured; after the last one (of the last loop pass, or at ``limit``)
read() raises tio_core.errors.EndOfStream, and keeps raising it. That is the
end-of-stream signal of every finite tio source; EndOfStream is a
QueueClosed, so a loop that stops on close stops there too.

Borrowing: the memoryviews one read() returns are released by the next
read() or close() (touching them then raises ValueError); Packet.clone()
keeps a copy.

Writing: write() and write_gso() are recorded to ``output`` if given, else
accepted and counted only (like a TUN nobody listens on). write_gso is
checked by tio_core.kernels.gso_write.plan_gso_write, exactly as on a real TUN, and
recorded as the kernel would deliver it (segmented, checksummed) or, with
record_gso="superpacket", as the one superpacket that was written.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

from tio_core import kernels
from tio_core.contract import NO_GSO, Buffer, Capabilities, GSOProto, Packet, Queue, QueueSet
from tio_core.errors import ConfigError, EndOfStream, MalformedPacket, OffloadError, QueueClosed
from tio_core.kernels.gso_write import assemble_superpacket, check_write_size, plan_gso_write
from tio_core.wire import MAX_IP_PACKET, VirtioNetHdr
from tio_pcap.errors import CaptureFormatError, CaptureWriteError
from tio_pcap.files import describe_same_file, read_elsewhere, same_file
from tio_pcap.pacing import MAX_WAIT_NS, NS, Pacer, pacing_problem
from tio_pcap.reader import IP_FIRST_BYTE, CaptureReader
from tio_pcap.superpacket import SuperpacketInference
from tio_pcap.writer import CaptureWriter


class ReplaySettings(NamedTuple):
    pacing: str = "fast"
    speed: float = 1.0
    rate: float | None = None
    loop: int = 1
    loop_delay: float = 0.0
    mbps: float | None = None
    limit: int | None = None
    gso_mtu: int | None = None
    mss: int | None = None
    strict: bool = True
    batch: int = 64


class QueueStats(NamedTuple):
    """Counters of one queue, for users checking what a replay did."""

    packets_read: int  # packets returned by read(), superpackets counted once
    superpackets: int  # of which inferred superpackets
    skipped_non_ip: int  # frames carrying no IP packet (ARP, ...)
    skipped_truncated: int  # records cut short by the capture's snap length
    passes: int  # completed passes over the capture
    packets_written: int  # write() calls accepted
    gso_writes: int  # write_gso() calls accepted (no-ops excluded)


class OutputStats(NamedTuple):
    """What became of the packets recorded to a set's output capture."""

    path: str
    records_written: int  # complete records in the file so far (buffered ones reach it at flush)
    packets_lost: int  # wire packets handed to write()/write_gso() that the capture will not hold
    lost_after_accept: int  # of which: their call had returned normally (a caller counted them as written)
    error: CaptureWriteError | None  # the failure that ended the output


class Recorder:
    """Serialises the writes of every queue of a set into one capture file.

    Counts losses in wire packets, as a forwarder counts writes: a write_gso
    recorded as one superpacket stands for all its segments.
    """

    def __init__(self, path: str, fmt: str, record_gso: str) -> None:
        reading = read_elsewhere(path)
        if reading is not None:
            raise ConfigError(
                f"backend 'pcap': output {path!r} is the same file as {reading!r}, which this process "
                "has open for reading (another backend's capture?): recording would overwrite it"
            )
        try:
            self.writer = CaptureWriter(path, fmt)
        except CaptureWriteError:
            raise  # the file opened but cannot take the header (disk full): a runtime failure
        except OSError as exc:
            raise ConfigError(f"backend 'pcap': cannot create output {path!r}: {exc.strerror or exc}") from exc
        self.record_gso = record_gso
        self.packets_lost = 0
        self.lost_after_accept = 0
        self._failure_counted = False
        # superpacket records still buffered: (record number, wire packets it stands for)
        self._weights: deque[tuple[int, int]] = deque()
        self._lock = threading.Lock()

    def record(self, data: Buffer) -> None:
        with self._lock:
            self._check_open()
            try:
                self.writer.write(data)
            except CaptureWriteError:
                self._count_loss(self.writer.records - 1, 1)
                raise

    def is_output(self, fd: int) -> bool:
        """fd is open on the output file."""
        return self.writer.same_file_as(fd)

    def _check_open(self) -> None:
        # a write racing the set's close() must not be accepted and then dropped
        if self.writer.closed:
            raise QueueClosed(f"pcap output {self.writer.path} is closed")

    def record_superpacket(
        self, hdr: VirtioNetHdr, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto
    ) -> None:
        packet = assemble_superpacket(ip_hdr, transport_hdr, payloads, proto)
        if packet is None:
            return
        if not packet.gso.is_superpacket:
            # one fragment: the kernel finishes the checksum and sends it as is
            single = bytearray(packet.data)
            kernels.finish_checksum(single, hdr)
            wire: Sequence[Buffer] = [single]
        elif self.record_gso == "superpacket":
            wire = [packet.data]
        else:
            wire = kernels.segment(packet)
        stamp = time.time_ns()
        with self._lock:
            self._check_open()
            writer = self.writer
            first = writer.records
            if len(wire) < len(payloads):
                weights = self._weights
                while weights and weights[0][0] < writer.records_written:
                    weights.popleft()  # on disk: no longer at risk
                weights.append((first, len(payloads)))
            try:
                for data in wire:
                    writer.write(data, stamp)
            except CaptureWriteError:
                # segments of this call that reached the file before the failure stay recorded
                on_disk = max(0, writer.records_written - first) if len(wire) == len(payloads) else 0
                self._count_loss(first, len(payloads) - on_disk)
                raise

    def _count_loss(self, first: int, call_packets: int) -> None:
        """The call whose records start at record number first failed, losing call_packets (lock held)."""
        if not self._failure_counted:
            # the first failure: records of calls that had returned and are not in the file
            self._failure_counted = True
            written = self.writer.records_written
            lost = max(0, first - written) + sum(
                count - 1 for number, count in self._weights if written <= number < first
            )
            self.lost_after_accept = lost
            self.packets_lost += lost
        self.packets_lost += call_packets

    def _flushing(self, flush) -> None:
        with self._lock:
            try:
                flush()
            except CaptureWriteError:
                self._count_loss(self.writer.records, 0)
                raise

    def flush(self) -> None:
        self._flushing(self.writer.flush)

    def close(self) -> None:
        self._flushing(self.writer.close)

    def stats(self) -> OutputStats:
        with self._lock:
            return OutputStats(
                self.writer.path,
                self.writer.records_written,
                self.packets_lost,
                self.lost_after_accept,
                self.writer.failure,
            )


_tuple_new = tuple.__new__
_release_view = memoryview.release


def _release(views: list[memoryview]) -> None:
    """End the borrow of a read's views (touching them afterwards raises ValueError)."""
    try:
        for _ in map(_release_view, views):  # in C; the common case
            pass
    except BufferError:
        for view in views:
            try:
                view.release()
            except BufferError:
                pass  # exported further by the caller; the bytes behind it are immutable, so it stays sound


class PcapQueue(Queue):
    """Replays one capture; records writes through the set's Recorder."""

    def __init__(
        self,
        reader: CaptureReader | None,
        settings: ReplaySettings,
        recorder: Recorder | None,
        capabilities: Capabilities,
        owned_fd: int | None = None,
    ) -> None:
        self._reader = reader
        self._settings = settings
        self._recorder = recorder
        self._caps = capabilities
        self._owned_fd = owned_fd
        self._pacer = (
            None
            if settings.pacing == "fast"
            else Pacer(settings.pacing, settings.speed, settings.rate, settings.mbps, settings.loop_delay)
        )
        self._infer = (
            SuperpacketInference(settings.gso_mtu, settings.mss)
            if settings.gso_mtu is not None or settings.mss is not None
            else None
        )
        self._closed = False
        self._ended = reader is None
        self._wake = threading.Event()  # set by close() to end a paced wait
        self._borrowed: list[memoryview] = []
        self._ahead: list[memoryview] = []  # paced modes: fetched, not yet due
        self._ahead_due: list[int] = []
        self._ahead_pos = 0
        self._pace_failure: CaptureFormatError | None = None
        self._passes = 0
        self._pass_packets = 0
        self._read = 0
        self._superpackets = 0
        self._written = 0
        self._gso_written = 0

    @property
    def name(self) -> str:
        return self._reader.name if self._reader is not None else "<no capture>"

    @property
    def closed(self) -> bool:
        return self._closed

    # -- read -----------------------------------------------------------------
    def read(self) -> list[Packet]:
        if self._closed:
            raise QueueClosed(f"pcap queue ({self.name}) is closed")
        if self._borrowed:
            _release(self._borrowed)
            self._borrowed = []
        try:
            views = [] if self._ended else (self._fetch(self._wanted()) if self._pacer is None else self._paced())
        except (ValueError, OSError):
            if self._closed:  # close() from another thread shut the file under this read
                raise QueueClosed(f"pcap queue ({self.name}) was closed during read") from None
            raise
        if not views:
            self._ended = True
            raise EndOfStream(f"pcap queue ({self.name}): end of capture after {self._read} packets")
        self._read += len(views)
        self._borrowed = views
        # Packet(view) for each view, without the namedtuple's Python-level __new__:
        # the whole batch is built in C (half the per-packet cost of a replay).
        packets = list(map(_tuple_new, repeat(Packet), zip(views, repeat(NO_GSO))))
        if self._infer is None:
            return packets
        private: list[memoryview] = []  # superpackets live in their own copies
        min_length, infer = self._infer.min_length, self._infer.infer
        for index in [i for i, size in enumerate(map(len, views)) if size >= min_length]:
            packet = infer(views[index])
            if packet is not None:
                packets[index] = packet
                private.append(packet.data)
        self._superpackets += len(private)
        views.extend(private)  # released with the rest at the next read()
        return packets

    def _wanted(self) -> int:
        limit = self._settings.limit
        if limit is None:
            return self._settings.batch
        return min(self._settings.batch, limit - self._read - (len(self._ahead) - self._ahead_pos))

    def _fetch(self, count: int, stamps: list[int] | None = None, offsets: list[int] | None = None) -> list[memoryview]:
        """Up to count packets from the capture, starting new loop passes as configured
        (with their timestamps and record offsets when stamps and offsets are lists)."""
        views: list[memoryview] = []
        if count <= 0 or self._reader is None:
            return views
        loop = self._settings.loop
        while True:
            try:
                got = self._reader.read_batch(count, views, stamps, offsets)
            except CaptureFormatError:
                if not views:
                    raise  # and again on every later read: the reader keeps its failure
                got = len(views)  # deliver the packets before the fault; the next read raises
            if got:
                self._pass_packets += got
                return views
            self._passes += 1
            empty_pass = self._pass_packets == 0
            self._pass_packets = 0
            if empty_pass or (loop and self._passes >= loop):
                return views
            self._reader.rewind()
            if self._pacer is not None:
                self._pacer.start_pass()  # the pacer puts the loop delay between passes
            elif self._settings.loop_delay and self._wake.wait(self._settings.loop_delay):
                raise QueueClosed(f"pcap queue ({self.name}) was closed between loop passes")

    def _paced(self) -> list[memoryview]:
        if self._ahead_pos >= len(self._ahead):
            if self._pace_failure is not None:
                raise self._pace_failure  # and on every later read: the queue never skips ahead
            pacer = self._pacer
            assert pacer is not None
            stamps: list[int] | None = [] if pacer.needs_timestamps else None
            offsets: list[int] = []
            self._ahead = self._fetch(self._wanted(), stamps, offsets)
            self._ahead_due = dues = []
            self._ahead_pos = 0
            for index, stamp in enumerate(stamps if stamps is not None else repeat(0, len(self._ahead))):
                due = pacer.due(stamp, len(self._ahead[index]))
                if due is None:
                    self._pace_failure = self._unpaceable(stamp, offsets[index] if offsets else -1)
                    del self._ahead[index:]  # deliver the packets before it first
                    if not self._ahead:
                        raise self._pace_failure
                    break
                dues.append(due)
            if not self._ahead:
                return []
        wait_ns = self._ahead_due[self._ahead_pos] - time.monotonic_ns()
        if wait_ns > 0 and self._wake.wait(wait_ns / 1e9):
            raise QueueClosed(f"pcap queue ({self.name}) was closed during a paced read")
        now = time.monotonic_ns()
        start = end = self._ahead_pos
        limit = min(len(self._ahead), start + self._settings.batch)
        while end < limit and (end == start or self._ahead_due[end] <= now):
            end += 1
        self._ahead_pos = end
        return self._ahead[start:end]

    def _unpaceable(self, stamp: int, offset: int) -> CaptureFormatError:
        settings = self._settings
        pace = f"speed {settings.speed:g}" if settings.pacing == "realtime" else f"rate {settings.rate:g}"
        years = MAX_WAIT_NS / NS / (365.25 * 86400)
        return CaptureFormatError(
            self.name,
            offset,
            f"packet timestamp {stamp} ns would be due more than "
            f"{years:.0f} years after the packet before it at {pace}: pacing="
            f"{settings.pacing} cannot wait that long (pacing='fast' replays it)",
        )

    # -- write ----------------------------------------------------------------
    def write(self, data: Buffer) -> int:
        if self._closed:
            raise QueueClosed(f"pcap queue ({self.name}) is closed")
        size = len(data)
        if not 0 < size <= MAX_IP_PACKET or not IP_FIRST_BYTE[data[0]]:
            check_write_size(data)
            raise MalformedPacket(f"write: not an IP packet (version nibble {data[0] >> 4}, expected 4 or 6)")
        if self._recorder is not None:
            self._recorder.record(data)
        self._written += 1
        return size

    def write_gso(self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto) -> None:
        if self._closed:
            raise QueueClosed(f"pcap queue ({self.name}) is closed")
        hdr = plan_gso_write(ip_hdr, transport_hdr, payloads, proto)
        if hdr is None:
            return
        if (proto == GSOProto.TCP and not self._caps.tso) or (proto == GSOProto.UDP and not self._caps.uso):
            option = "tso" if proto == GSOProto.TCP else "uso"
            raise OffloadError(f"write_gso with {proto.name}: this pcap queue was opened with {option}=False")
        if self._recorder is not None:
            self._recorder.record_superpacket(hdr, ip_hdr, transport_hdr, payloads, proto)
        self._gso_written += 1

    def capabilities(self) -> Capabilities:
        return self._caps

    # -- lifecycle ----------------------------------------------------------------
    def flush(self) -> None:
        """Push recorded packets to the output file (close() does this too)."""
        if self._recorder is not None:
            self._recorder.flush()

    def stats(self) -> QueueStats:
        reader = self._reader
        return QueueStats(
            self._read,
            self._superpackets,
            reader.skipped_non_ip if reader else 0,
            reader.skipped_truncated if reader else 0,
            self._passes,
            self._written,
            self._gso_written,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        _release(self._borrowed)
        self._borrowed = []
        self._ahead = []
        if self._reader is not None:
            self._reader.close()
        if self._owned_fd is not None:
            os.close(self._owned_fd)
            self._owned_fd = None


class PcapQueueSet(QueueSet):
    """Queue 0 replays ``path``; add(fd) adopts another capture as a new queue.

    Every queue records into the one output file; close() closes the queues,
    then flushes and closes the output.
    """

    def __init__(self, settings: ReplaySettings, recorder: Recorder | None, capabilities: Capabilities) -> None:
        self._settings = settings
        self._recorder = recorder
        self._caps = capabilities
        self._queues: list[PcapQueue] = []
        self._lock = threading.Lock()

    def queues(self) -> list[Queue]:
        return list(self._queues)

    def _adopt(self, reader: CaptureReader | None, owned_fd: int | None = None) -> PcapQueue:
        queue = PcapQueue(reader, self._settings, self._recorder, self._caps, owned_fd)
        with self._lock:
            if self.closed:
                queue.close()
                raise QueueClosed("pcap queue set is closed")
            self._queues.append(queue)
        return queue

    def add(self, fd: int) -> Queue:
        """Adopt an open capture file descriptor; the set owns and closes it."""
        if self.closed:
            raise QueueClosed("pcap queue set is closed")
        try:
            stream = os.fdopen(fd, "rb", buffering=0, closefd=False)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"backend 'pcap': cannot adopt file descriptor {fd!r}: {exc}") from exc
        if self._recorder is not None and self._recorder.is_output(stream.fileno()):
            stream.close()
            raise ConfigError(
                f"backend 'pcap': cannot adopt file descriptor {fd}: it is the same file as the "
                f"output {self._recorder.writer.path!r} this set records to"
            )
        try:
            reader = CaptureReader(stream, strict=self._settings.strict, name=f"<fd {fd}>")
            if self._settings.loop != 1 and not reader.seekable:
                raise ConfigError(
                    f"backend 'pcap': loop={self._settings.loop} needs a seekable capture; "
                    f"file descriptor {fd} is a pipe or socket"
                )
        except BaseException:
            stream.close()  # the descriptor stays the caller's when adoption fails
            raise
        return self._adopt(reader, owned_fd=fd)

    def flush(self) -> None:
        if self._recorder is not None:
            self._recorder.flush()

    def _close_resources(self) -> None:
        if self._recorder is not None:
            self._recorder.close()

    def output_stats(self) -> OutputStats | None:
        """What became of the recorded packets (None without output=).

        After a CaptureWriteError a summary reports packets_lost, and moves
        lost_after_accept from written to lost: those writes had returned
        normally before the output failed under them.
        """
        return self._recorder.stats() if self._recorder is not None else None


def _check_settings(path: str | None, output: str | None, settings: ReplaySettings) -> None:
    def bad(message: str) -> ConfigError:
        return ConfigError(f"backend 'pcap': {message}")

    if path is None and output is None:
        raise bad("give path= (a capture to replay) and/or output= (a capture to record writes to)")
    if path is not None and output is not None and same_file(path, output):
        raise bad(describe_same_file(path, output))
    problem = pacing_problem(settings.pacing, settings.speed, settings.rate, settings.mbps, settings.loop_delay)
    if problem is not None:
        raise bad(problem)
    if settings.loop < 0:
        raise bad(f"loop must be >= 0 (0 = endlessly), got {settings.loop}")
    if settings.limit is not None and settings.limit < 0:
        raise bad(f"limit must be >= 0, got {settings.limit}")
    if settings.gso_mtu is not None and not 68 <= settings.gso_mtu <= MAX_IP_PACKET:
        raise bad(f"gso_mtu must be within 68..{MAX_IP_PACKET}, got {settings.gso_mtu}")
    if settings.mss is not None and not 1 <= settings.mss <= MAX_IP_PACKET:
        raise bad(f"mss must be within 1..{MAX_IP_PACKET}, got {settings.mss}")
    if settings.batch < 1:
        raise bad(f"batch must be >= 1, got {settings.batch}")


def open_pcap(
    path: str | None = None,
    output: str | None = None,
    output_format: str | None = None,
    record_gso: str = "segmented",
    tso: bool = True,
    uso: bool = True,
    pacing: str = "fast",
    speed: float = 1.0,
    rate: float | None = None,
    loop: int = 1,
    loop_delay: float = 0.0,
    mbps: float | None = None,
    limit: int | None = None,
    gso_mtu: int | None = None,
    mss: int | None = None,
    strict: bool = True,
    batch: int = 64,
) -> PcapQueueSet:
    """Factory of the ``pcap`` backend (options as declared in tio_pcap.plugin)."""
    settings = ReplaySettings(pacing, speed, rate, loop, loop_delay, mbps, limit, gso_mtu, mss, strict, batch)
    _check_settings(path, output, settings)
    if output_format is not None and output is None:
        raise ConfigError("backend 'pcap': output_format is given but output= is not")
    if record_gso not in ("segmented", "superpacket"):
        raise ConfigError(f"backend 'pcap': record_gso must be 'segmented' or 'superpacket', got {record_gso!r}")
    reader = CaptureReader(path, strict=strict) if path is not None else None
    try:
        recorder = None
        if output is not None:
            fmt = output_format or ("pcapng" if output.lower().endswith(".pcapng") else "pcap")
            recorder = Recorder(output, fmt, record_gso)
    except BaseException:
        if reader is not None:
            reader.close()
        raise
    queue_set = PcapQueueSet(settings, recorder, Capabilities(tso=tso, uso=uso))
    queue_set._adopt(reader)
    return queue_set
