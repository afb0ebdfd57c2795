"""Recording writes: scapy reads back exactly what was written; crash leftovers stay readable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import RawPcapNgReader, RawPcapReader

from tests.pcap.captures import RAW, ip_packets, write_pcap
from tio_core import open_backend
from tio_core.contract import Capabilities, GSOProto, queue_capabilities, supports_gso
from tio_core.errors import ConfigError, EndOfStream, MalformedPacket, OffloadError
from tio_pcap.errors import TruncatedCaptureWarning
from tio_pcap.reader import read_packets
from tio_testing.packets import expected_segments, gso_pieces


def scapy_read(path) -> tuple[list[bytes], list[float]]:
    reader = (RawPcapNgReader if str(path).endswith(".pcapng") else RawPcapReader)(str(path))
    try:
        packets, times = [], []
        for data, meta in reader:
            packets.append(data)
            times.append(meta.sec + meta.usec / 1e6 if hasattr(meta, "sec") else 0.0)
        return packets, times
    finally:
        reader.close()


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_writes_and_gso_writes_read_back_identically(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    sent = ip_packets(7, start=40)
    payloads = [b"a" * 900, b"b" * 900, b"c" * 5]
    with open_backend("pcap", output=str(out)) as qs:
        queue = qs.queues()[0]
        for data in sent:
            queue.write(data)
        queue.write_gso(*gso_pieces(6, GSOProto.UDP, payloads), payloads, GSOProto.UDP)
        queue.write(sent[0])
        assert queue.stats().packets_written == 8 and queue.stats().gso_writes == 1
    packets, _ = scapy_read(out)
    assert packets == sent + expected_segments(6, GSOProto.UDP, payloads) + sent[:1]
    assert read_packets(out) == packets  # our own reader agrees with scapy's


def test_recorded_timestamps_are_the_write_times(tmp_path):
    import time

    out = tmp_path / "t.pcap"
    before = time.time()
    with open_backend("pcap", output=str(out)) as qs:
        qs.queues()[0].write(ip_packets(1)[0])
    _, times = scapy_read(out)
    assert before - 1 <= times[0] <= time.time() + 1


def test_header_is_on_disk_at_open_and_records_at_flush(tmp_path):
    out = tmp_path / "live.pcap"
    qs = open_backend("pcap", output=str(out))
    try:
        assert read_packets(out) == []  # a valid, empty capture already
        qs.queues()[0].write(ip_packets(1)[0])
        qs.flush()
        assert read_packets(out) == ip_packets(1)
    finally:
        qs.close()


def test_a_killed_writer_leaves_a_readable_prefix(tmp_path):
    out = tmp_path / "crash.pcap"
    script = textwrap.dedent(f"""
        import os
        from tio_core import open_backend
        from tests.pcap.captures import ip_packets
        qs = open_backend("pcap", output={str(out)!r})
        queue = qs.queues()[0]
        packets = ip_packets(64)
        for n in range(3000):
            queue.write(packets[n % 64])
        os._exit(0)  # no close, no flush: what a crash leaves
    """)
    repo_root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], check=True, cwd=repo_root, timeout=60)
    expected = (ip_packets(64) * 50)[:3000]
    size = out.stat().st_size
    assert 24 < size < 24 + sum(16 + len(p) for p in expected)  # only full buffers reached the disk
    with warnings.catch_warnings():  # whether the cut fell inside a record depends on buffer sizes
        warnings.simplefilter("ignore", TruncatedCaptureWarning)
        got = read_packets(out, strict=False)
    assert got and got == expected[: len(got)]


def test_gso_writes_follow_the_advertised_capabilities(tmp_path):
    payloads = [b"x" * 500, b"y" * 500]
    with open_backend("pcap", output=str(tmp_path / "o.pcap"), tso=True, uso=False) as qs:
        queue = qs.queues()[0]
        assert queue_capabilities(queue) == Capabilities(tso=True, uso=False)
        assert supports_gso(queue, GSOProto.TCP) == (queue, True)
        assert supports_gso(queue, GSOProto.UDP) == (queue, False)
        with pytest.raises(OffloadError, match="uso=False"):
            queue.write_gso(*gso_pieces(4, GSOProto.UDP, payloads), payloads, GSOProto.UDP)
        queue.write_gso(*gso_pieces(4, GSOProto.TCP, payloads), payloads, GSOProto.TCP)
    assert scapy_read(tmp_path / "o.pcap")[0] == expected_segments(4, GSOProto.TCP, payloads)


@pytest.mark.parametrize(
    "data,words", [(b"", "empty"), (b"\x11" * 40, "not an IP packet"), (b"\x45" + b"\0" * 70000, "at most 65535")]
)
def test_bad_writes_are_rejected_and_not_recorded(tmp_path, data, words):
    out = tmp_path / "o.pcap"
    with open_backend("pcap", output=str(out)) as qs, pytest.raises(MalformedPacket, match=words):
        qs.queues()[0].write(data)
    assert read_packets(out) == []


def test_writes_without_output_are_counted_only(tmp_path):
    path = write_pcap(tmp_path / "in.pcap", ip_packets(2))
    with open_backend("pcap", path=str(path)) as qs:
        queue = qs.queues()[0]
        assert queue.write(ip_packets(1)[0]) == len(ip_packets(1)[0])
        assert queue.stats().packets_written == 1


def test_output_only_reads_end_at_once(tmp_path):
    with open_backend("pcap", output=str(tmp_path / "o.pcap")) as qs, pytest.raises(EndOfStream):
        qs.queues()[0].read()


@pytest.mark.parametrize(
    "options,words",
    [
        ({}, "give path="),
        ({"path": "same.pcap", "output": "same.pcap"}, "same file as the capture being replayed"),
        ({"output": "/nonexistent-dir/o.pcap"}, "cannot create output"),
        ({"output": "o.pcap", "gso_mtu": 20}, "gso_mtu must be"),
        ({"output": "o.pcap", "record_gso": "both"}, "must be one of"),
        ({"path": "same.pcap", "output_format": "pcapng"}, "output= is not"),
    ],
)
def test_bad_open_options(tmp_path, monkeypatch, options, words):
    monkeypatch.chdir(tmp_path)
    write_pcap(tmp_path / "same.pcap", ip_packets(1))
    with pytest.raises(ConfigError, match=words):
        open_backend("pcap", **options)


def test_add_adopts_a_capture_descriptor_as_a_new_queue(tmp_path):
    first = write_pcap(tmp_path / "a.pcap", ip_packets(3))
    second = write_pcap(tmp_path / "b.pcap", ip_packets(4, start=10), RAW, endianness=">")
    with open_backend("pcap", path=str(first), output=str(tmp_path / "o.pcap")) as qs:
        fd = os.open(second, os.O_RDONLY)
        queue = qs.add(fd)
        assert qs.queues() == [qs.queues()[0], queue]
        assert [bytes(p.data) for p in queue.read()] == ip_packets(4, start=10)
        with pytest.raises(EndOfStream):
            queue.read()
        queue.write(ip_packets(1)[0])  # every queue records into the set's output
    assert queue.closed
    with pytest.raises(OSError):
        os.fstat(fd)  # the set owned the descriptor and closed it
    bad = os.open(first, os.O_RDONLY)
    os.lseek(bad, 5, os.SEEK_SET)
    with open_backend("pcap", path=str(first)) as qs:
        from tio_pcap.errors import CaptureFormatError

        with pytest.raises(CaptureFormatError, match="bad magic"):
            qs.add(bad)
        os.fstat(bad)  # a failed adoption leaves the descriptor to the caller
        os.close(bad)
    assert scapy_read(tmp_path / "o.pcap")[0] == ip_packets(1)


@pytest.mark.parametrize("tso", [True, False])
def test_a_coalescer_writing_through_the_queue_records_the_original_packets(tmp_path, tso):
    """TSO on: the coalescer merges into write_gso and the segmented recording gives back
    exactly the packets it was handed; TSO off: it writes them one by one."""
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw

    from tio_core.coalesce import Coalescer

    stream = [
        bytes(
            IP(src="198.18.0.1", dst="198.18.0.2", id=n, flags="DF")
            / TCP(sport=7, dport=8, seq=1 + n * 1000, ack=5, flags="A")
            / Raw(bytes([n]) * 1000)
        )
        for n in range(8)
    ]
    out = tmp_path / "c.pcap"
    with open_backend("pcap", output=str(out), tso=tso) as qs:
        queue = qs.queues()[0]
        coalescer = Coalescer.for_queue(queue)
        coalescer.add_many(stream)
        coalescer.flush()
        stats = queue.stats()
    assert (stats.gso_writes > 0) == tso
    assert scapy_read(out)[0] == stream


def test_add_reads_a_capture_from_a_pipe_but_cannot_loop_it(tmp_path):
    import threading

    data = write_pcap(tmp_path / "p.pcap", ip_packets(6)).read_bytes()
    for loop, ok in ((1, True), (2, False)):
        read_end, write_end = os.pipe()
        feeder = threading.Thread(target=lambda fd=write_end: (os.write(fd, data), os.close(fd)))
        feeder.start()
        with open_backend("pcap", output=str(tmp_path / "o.pcap"), loop=loop) as qs:
            if ok:
                queue = qs.add(read_end)
                assert [bytes(p.data) for p in queue.read()] == ip_packets(6)
            else:
                with pytest.raises(ConfigError, match="seekable"):
                    qs.add(read_end)
                os.close(read_end)
        feeder.join()


@settings(max_examples=40, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from([0x45, 0x60]),
            st.binary(max_size=2000),
            st.integers(min_value=0, max_value=2**32 * 10**9 - 1),
        ),
        max_size=30,
    ),
    fmt=st.sampled_from(["pcap", "pcapng"]),
)
def test_writer_and_reader_round_trip(tmp_path_factory, records, fmt):
    """Whatever bytes and timestamps are recorded come back; pcap keeps microseconds, pcapng nanoseconds."""
    from tio_pcap.reader import CaptureReader
    from tio_pcap.writer import CaptureWriter

    path = tmp_path_factory.mktemp("rt") / f"r.{fmt}"
    writer = CaptureWriter(path, fmt)
    packets = [bytes([first]) + body for first, body, _ in records]
    for packet, (_, _, stamp) in zip(packets, records):
        writer.write(packet, stamp)
    writer.close()
    views, stamps = [], []
    with CaptureReader(path) as reader:
        while reader.read_batch(7, views, stamps):
            pass
    assert [bytes(v) for v in views] == packets
    unit = 1000 if fmt == "pcap" else 1
    assert stamps == [stamp // unit * unit for _, _, stamp in records]
