"""Benchmark: capture parsing and replay speed beside scapy's readers on the same file.

The capture holds small packets (40-80 byte IPv4/IPv6 TCP/UDP), the case
where per-record overhead dominates. Figures are packets per second over
whole passes of the file, the best of three timed windows (tio_core.bench's
best_rate, as every benchmark); the baseline is scapy's RawPcapReader
(RawPcapNgReader for pcapng) on the very same file in the same run, and
dpkt's reader too when dpkt happens to be installed.
"""

from __future__ import annotations

import os
import struct
import tempfile
import warnings
from collections.abc import Callable
from functools import partial

from tio_core.bench import Figure, best_rate
from tio_pcap import linktypes
from tio_pcap.reader import CaptureReader
from tio_pcap.writer import CaptureWriter


def small_packets() -> list[bytes]:
    """A cycle of valid-looking small packets (headers built by hand: no scapy needed)."""
    packets = []
    for n in range(64):
        payload = bytes([n]) * (n % 24)
        if n % 2:  # IPv4 + UDP
            l4 = struct.pack("!HHHH", 1000 + n, 53, 8 + len(payload), 0) + payload
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), n, 0, 64, 17, 0, bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
            )
        else:  # IPv6 + TCP
            l4 = struct.pack("!HHIIBBHHH", 2000, 80, n, 0, 0x50, 0x10, 512, 0, 0) + payload
            ip = struct.pack(
                "!IHBB16s16s",
                0x60000000,
                len(l4),
                6,
                64,
                bytes.fromhex("fd00" + "00" * 13 + "01"),
                bytes.fromhex("fd00" + "00" * 13 + "02"),
            )
        packets.append(ip + l4)
    return packets


def write_capture(path: str, count: int, fmt: str = "pcap", linktype: int = linktypes.RAW) -> None:
    packets = small_packets()
    ether = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01"
    writer = CaptureWriter(path, fmt, linktype)
    try:
        for n in range(count):
            data = packets[n % len(packets)]
            if linktype == linktypes.EN10MB:
                data = ether + (b"\x86\xdd" if data[0] >> 4 == 6 else b"\x08\x00") + data
            writer.write(data, 1_700_000_000_000_000_000 + n * 1000)
    finally:
        writer.close()


def _tio_reader(path: str) -> int:
    views: list[memoryview] = []
    count = 0
    with CaptureReader(path) as reader:
        while reader.read_batch(256, views):
            count += len(views)
            views.clear()
    return count


def _tio_replay(path: str, **options: object) -> int:
    from tio_core.errors import EndOfStream
    from tio_pcap.backend import open_pcap

    count = 0
    with open_pcap(path=path, batch=256, **options) as qs:  # type: ignore[arg-type]
        read = qs.queues()[0].read
        try:
            while True:
                count += len(read())
        except EndOfStream:
            pass
    return count


def _scapy(path: str) -> int:
    from scapy.utils import RawPcapNgReader, RawPcapReader

    reader = (RawPcapNgReader if path.endswith(".pcapng") else RawPcapReader)(path)
    try:
        return sum(1 for _ in reader)
    finally:
        reader.close()


def _dpkt(path: str) -> int:
    import dpkt  # optional: only measured when installed

    with open(path, "rb") as handle:
        reader = dpkt.pcapng.Reader(handle) if path.endswith(".pcapng") else dpkt.pcap.Reader(handle)
        return sum(1 for _ in reader)


def _tio_record(path: str, packets: list[bytes], count: int) -> int:
    from tio_pcap.backend import open_pcap

    with open_pcap(output=path) as qs:
        write = qs.queues()[0].write
        for n in range(count):
            write(packets[n & 63])
    return count


def _scapy_record(path: str, packets: list[bytes], count: int) -> int:
    from scapy.utils import RawPcapWriter

    writer = RawPcapWriter(path, linktype=linktypes.RAW)
    try:
        for n in range(count):
            writer.write(packets[n & 63])
    finally:
        writer.close()
    return count


def _mpps(name: str, rate: float, baseline_name: str, baseline_rate: float) -> Figure:
    """A figure in millions of packets a second from two rates in packets a second."""
    return Figure(name, rate * 1e-6, "Mpps", baseline_name, baseline_rate * 1e-6)


def run(quick: bool = False) -> list[Figure]:
    count = 30_000 if quick else 300_000
    seconds = 0.3 if quick else 1.5  # each of best_rate's three windows holds at least one whole pass
    import scapy.utils  # noqa: F401  - imported before timing: its import takes longer than a pass

    try:
        import dpkt  # noqa: F401

        have_dpkt = True
    except ImportError:
        have_dpkt = False
    with tempfile.TemporaryDirectory(prefix="tio-pcap-bench-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scapy chatters about unknown link types
        raw = os.path.join(tmp, "raw.pcap")
        ng = os.path.join(tmp, "raw.pcapng")
        eth = os.path.join(tmp, "eth.pcap")
        eth_ng = os.path.join(tmp, "eth.pcapng")
        write_capture(raw, count)
        write_capture(ng, count, "pcapng")
        write_capture(eth, count, linktype=linktypes.EN10MB)
        write_capture(eth_ng, count, "pcapng", linktypes.EN10MB)
        scapy_rates: dict[str, float] = {}  # one scapy measurement per capture, shared by its figures

        def against_scapy(name: str, tio_pass: Callable[..., int], capture: str, **options: object) -> Figure:
            """``tio_pass`` over ``capture`` beside scapy's raw reader of the same file."""
            if capture not in scapy_rates:
                scapy_rates[capture] = best_rate(partial(_scapy, capture), count, seconds)
            one_pass = partial(tio_pass, capture, **options)
            if one_pass() != count:  # best_rate counts `count` packets a pass: the pass must read them all
                raise RuntimeError(f"{name}: a pass over {capture} did not yield its {count} packets")
            reader = "scapy RawPcapNgReader" if capture.endswith(".pcapng") else "scapy RawPcapReader"
            return _mpps(name, best_rate(one_pass, count, seconds), reader, scapy_rates[capture])

        figures = [
            against_scapy("pcap parse, small packets (tio_pcap reader)", _tio_reader, raw),
            against_scapy("pcap replay via queue.read(), pacing=fast", _tio_replay, raw),
            against_scapy("pcap replay, Ethernet link type", _tio_replay, eth),
            against_scapy("pcap replay with gso_mtu=1500 inference on", _tio_replay, raw, gso_mtu=1500),
            against_scapy("pcapng parse, small packets (tio_pcap reader)", _tio_reader, ng),
            against_scapy("pcapng replay via queue.read(), pacing=fast", _tio_replay, ng),
            against_scapy("pcapng replay, Ethernet link type (Wireshark's default)", _tio_replay, eth_ng),
        ]
        packets = small_packets()
        rec = os.path.join(tmp, "rec.pcap")
        figures.append(
            _mpps(
                "record write() of small packets to pcap",
                best_rate(lambda: _tio_record(rec, packets, count), count, seconds),
                "scapy RawPcapWriter.write",
                best_rate(lambda: _scapy_record(rec, packets, count // 4), count // 4, seconds),
            )
        )
        if have_dpkt:  # the parse figures once more, against dpkt's readers
            dpkt_pcap = best_rate(partial(_dpkt, raw), count, seconds) * 1e-6
            dpkt_ng = best_rate(partial(_dpkt, ng), count, seconds) * 1e-6
            figures.append(
                Figure("pcap parse (tio_pcap reader)", figures[0].value, "Mpps", "dpkt pcap.Reader", dpkt_pcap)
            )
            figures.append(
                Figure("pcapng parse (tio_pcap reader)", figures[4].value, "Mpps", "dpkt pcapng.Reader", dpkt_ng)
            )
    return figures
