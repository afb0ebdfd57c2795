"""Malformed captures raise CaptureFormatError naming the file, the byte offset and the fault."""

from __future__ import annotations

import os
import random
import struct
import tracemalloc
import warnings

import pytest

from tests.pcap.captures import EN10MB, RAW, block, epb, frame, idb, ip_packets, shb, spb, write_pcap, write_pcapng
from tio_core import open_backend
from tio_core.errors import EndOfStream, TioError
from tio_pcap.errors import CaptureFormatError, TruncatedCaptureWarning
from tio_pcap.reader import read_packets

PACKETS = ip_packets(4)
PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, RAW)


def record(data: bytes, caplen: int | None = None, wirelen: int | None = None) -> bytes:
    cap = len(data) if caplen is None else caplen
    return struct.pack("<IIII", 1, 2, cap, len(data) if wirelen is None else wirelen) + data


def expect_error(tmp_path, data: bytes, offset: int, words: str, **options) -> CaptureFormatError:
    path = tmp_path / "bad.cap"
    path.write_bytes(data)
    with pytest.raises(CaptureFormatError) as info:
        read_packets(path, **options)
    error = info.value
    assert isinstance(error, TioError) and isinstance(error, ValueError)
    assert error.path == str(path) and str(path) in str(error)
    assert error.offset == offset, str(error)
    assert f"offset {offset}" in str(error)
    assert words in error.problem, str(error)
    return error


FIRST = 24  # offset of the first record of a classic pcap
SECOND = FIRST + 16 + len(PACKETS[0])


@pytest.mark.parametrize(
    "data,offset,words",
    [
        pytest.param(b"", 0, "truncated file header", id="empty"),
        pytest.param(b"\x00\x01\x02\x03" + PCAP_HDR[4:], 0, "bad magic", id="bad-magic"),
        pytest.param(b"GIF89a" + b"\0" * 40, 0, "bad magic", id="gif"),
        pytest.param(PCAP_HDR[:10], 0, "truncated file header", id="short-header"),
        pytest.param(struct.pack("<IHHiIII", 0xA1B2C3D4, 3, 0, 0, 0, 65535, RAW), 0, "version", id="version"),
        pytest.param(
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 999), 0, "unknown link type 999", id="linktype"
        ),
        pytest.param(
            PCAP_HDR + record(PACKETS[0]) + b"\x01" * 7, SECOND, "truncated record header", id="short-record-header"
        ),
        pytest.param(
            PCAP_HDR + record(PACKETS[0]) + record(PACKETS[1])[:30], SECOND, "truncated record", id="short-record"
        ),
        pytest.param(
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 40, RAW) + record(PACKETS[1]),
            FIRST,
            "exceeds the snap length 40",
            id="caplen>snaplen",
        ),
        pytest.param(
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0xFFFFFFFF, RAW) + record(b"", caplen=0x7FFFFFFF),
            FIRST,
            "exceeds the limit 262144",
            id="caplen>256KiB",
        ),
    ],
)
def test_classic_pcap_faults(tmp_path, data, offset, words):
    expect_error(tmp_path, data, offset, words)


SHB = shb("<")
IDB = idb("<", RAW, snaplen=100)
START = len(SHB) + len(IDB)


def with_trailer(block_bytes: bytes, trailer: int) -> bytes:
    return block_bytes[:-4] + struct.pack("<I", trailer)


@pytest.mark.parametrize(
    "data,offset,words",
    [
        pytest.param(SHB[:8] + b"\x01\x02\x03\x04" + SHB[12:], 0, "byte-order magic", id="bom"),
        pytest.param(SHB[:20], 0, "truncated", id="short-shb"),
        pytest.param(
            SHB + IDB + with_trailer(epb("<", 0, 1, PACKETS[0]), 999),
            START,
            "block length mismatch",
            id="length-mismatch",
        ),
        pytest.param(
            SHB + IDB + epb("<", 0, 1, PACKETS[0])[:4] + struct.pack("<I", 46) + b"\0" * 40,
            START,
            "multiple of 4",
            id="length-not-aligned",
        ),
        pytest.param(
            SHB + IDB + struct.pack("<II", 6, 0x7FFFFFF0) + b"\0" * 64, START, "exceeds the limit", id="huge-length"
        ),
        pytest.param(
            SHB + IDB + epb("<", 0, 1, b"\x45" + b"\0" * 150), START, "exceeds the snap length 100", id="caplen>snaplen"
        ),
        pytest.param(SHB + IDB + epb("<", 3, 1, PACKETS[0]), START, "interface 3", id="unknown-interface"),
        pytest.param(SHB + idb("<", 4242), len(SHB), "unknown link type 4242", id="linktype"),
        pytest.param(
            SHB + IDB + block("<", 6, struct.pack("<IIIII", 0, 0, 1, 90, 90) + PACKETS[0]),
            START,
            "overruns",
            id="caplen-overruns-block",
        ),
        pytest.param(SHB + spb("<", PACKETS[0]), len(SHB), "before any interface", id="spb-before-idb"),
        pytest.param(SHB + IDB + epb("<", 0, 1, PACKETS[0])[:-10], START, "truncated block", id="truncated-block"),
    ],
)
def test_pcapng_faults(tmp_path, data, offset, words):
    expect_error(tmp_path, data, offset, words)


def test_truncated_last_record_is_tolerated_when_not_strict(tmp_path):
    path = write_pcap(tmp_path / "t.pcap", PACKETS)
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # what a crash mid-write leaves
    with pytest.raises(CaptureFormatError):
        read_packets(path)
    with pytest.warns(TruncatedCaptureWarning, match="truncated record"):
        assert read_packets(path, strict=False) == PACKETS[:-1]
    with pytest.warns(TruncatedCaptureWarning), open_backend("pcap", path=str(path), strict=False) as qs:
        queue = qs.queues()[0]
        assert [bytes(p.data) for p in queue.read()] == PACKETS[:-1]
        with pytest.raises(EndOfStream):
            queue.read()


def test_truncated_pcapng_block_is_tolerated_when_not_strict(tmp_path):
    data = shb("<") + idb("<", EN10MB) + b"".join(epb("<", 0, i, frame(EN10MB, p)) for i, p in enumerate(PACKETS))
    path = tmp_path / "t.pcapng"
    path.write_bytes(data[:-3])
    with pytest.warns(TruncatedCaptureWarning, match="truncated block"):
        assert read_packets(path, strict=False) == PACKETS[:-1]


def test_error_at_open_names_the_file(tmp_path):
    with pytest.raises(CaptureFormatError, match="cannot open capture") as info:
        open_backend("pcap", path=str(tmp_path / "missing.pcap"))
    assert "missing.pcap" in str(info.value)


# -- fuzz ---------------------------------------------------------------------------
def _valid_captures(tmp_path) -> list[bytes]:
    packets = ip_packets(12)
    pcap = write_pcap(tmp_path / "f.pcap", [frame(EN10MB, p) for p in packets], EN10MB).read_bytes()
    raw_be = write_pcap(tmp_path / "g.pcap", packets, RAW, endianness=">", nano=True).read_bytes()
    ng = write_pcapng(tmp_path / "f.pcapng", [(RAW, p) for p in packets]).read_bytes()
    hand = (
        shb(">")
        + idb(">", EN10MB, tsresol=9)
        + spb(">", frame(EN10MB, packets[0]))
        + b"".join(epb(">", 0, i, frame(EN10MB, p)) for i, p in enumerate(packets))
    )
    return [pcap, raw_be, ng, hand]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        kind = rng.random()
        where = rng.randrange(len(buf))
        if kind < 0.4:
            buf[where] = rng.randrange(256)
        elif kind < 0.7:  # a lying 32-bit field: lengths, ids, types
            buf[where : where + 4] = rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32)]).to_bytes(
                4, rng.choice(["little", "big"])
            )
        elif kind < 0.85:
            del buf[where:]
        else:
            buf[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
    return bytes(buf)


def test_fuzzed_captures_raise_only_the_documented_error_in_bounded_memory(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "fuzz.cap"
    outcomes = {"ok": 0, "error": 0}
    tracemalloc.start()
    try:
        for valid in _valid_captures(tmp_path):
            for _ in range(300):
                path.write_bytes(_mutate(rng, valid))
                tracemalloc.reset_peak()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", TruncatedCaptureWarning)
                        with open_backend(
                            "pcap", path=str(path), gso_mtu=100, strict=rng.random() < 0.5, batch=5
                        ) as qs:
                            queue = qs.queues()[0]
                            while True:
                                try:
                                    queue.read()
                                except EndOfStream:
                                    break
                    outcomes["ok"] += 1
                except CaptureFormatError as exc:
                    assert exc.path == str(path) and 0 <= exc.offset <= len(path.read_bytes())
                    outcomes["error"] += 1
                _, peak = tracemalloc.get_traced_memory()
                assert peak < 4 * (1 << 20), f"{peak} bytes allocated for a {path.stat().st_size} byte capture"
    finally:
        tracemalloc.stop()
    assert outcomes["ok"] > 50 and outcomes["error"] > 50, outcomes


def test_packets_before_a_fault_are_delivered_then_the_fault_is_raised_for_good(tmp_path):
    bad_record = struct.pack("<IIII", 1, 2, 70000, 70000)
    data = PCAP_HDR + b"".join(record(p) for p in PACKETS) + bad_record + b"\0" * 100
    path = tmp_path / "mid.pcap"
    path.write_bytes(data)
    offset = 24 + sum(16 + len(p) for p in PACKETS)
    with open_backend("pcap", path=str(path)) as qs:
        queue = qs.queues()[0]
        assert [bytes(p.data) for p in queue.read()] == PACKETS
        for _ in range(2):
            with pytest.raises(CaptureFormatError) as info:
                queue.read()
            assert info.value.offset == offset


def test_a_rejected_capture_is_not_left_open(tmp_path):
    path = tmp_path / "junk.pcap"
    path.write_bytes(b"not a capture at all")
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(CaptureFormatError):
            open_backend("pcap", path=str(path))
    assert set(os.listdir("/proc/self/fd")) <= before
