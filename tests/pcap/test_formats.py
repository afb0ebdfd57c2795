"""Every supported capture format and link type replays exactly its IP packets, in order."""

from __future__ import annotations

import pytest

from tests.pcap.captures import (
    EN10MB,
    IPV4,
    IPV6,
    LOOP,
    NULL,
    RAW,
    SLL,
    SLL2,
    Dot1AD,
    Dot1Q,
    Ether,
    Raw,
    epb,
    frame,
    idb,
    ip_packets,
    non_ip_frame,
    shb,
    spb,
    write_pcap,
    write_pcapng,
)
from tio_core import open_backend
from tio_core.errors import EndOfStream

LINKTYPES = [RAW, EN10MB, NULL, LOOP, SLL, SLL2]


def replay(path, **options) -> tuple[list[bytes], object]:
    """Every packet queue 0 reads until EndOfStream, and its stats."""
    got: list[bytes] = []
    with open_backend("pcap", path=str(path), **options) as qs:
        queue = qs.queues()[0]
        while True:
            try:
                batch = queue.read()
            except EndOfStream:
                break
            got.extend(bytes(p.data) for p in batch)
        return got, queue.stats()


@pytest.mark.parametrize("linktype", LINKTYPES)
@pytest.mark.parametrize("variant", ["le-us", "be-us", "le-ns", "be-ns"])
def test_classic_pcap_every_linktype(tmp_path, linktype, variant):
    packets = ip_packets(12)
    endian = "<" if variant.startswith("le") else ">"
    frames = [frame(linktype, p) for p in packets]
    frames.insert(3, non_ip_frame(linktype))
    path = write_pcap(tmp_path / "c.pcap", frames, linktype, nano=variant.endswith("ns"), endianness=endian)
    got, stats = replay(path, batch=5)
    assert got == packets
    assert stats.skipped_non_ip == 1 and stats.packets_read == len(packets)


@pytest.mark.parametrize("linktype,version", [(IPV4, 4), (IPV6, 6)])
def test_ipv4_and_ipv6_linktypes_take_only_their_version(tmp_path, linktype, version):
    packets = ip_packets(8)
    path = write_pcap(tmp_path / "c.pcap", packets, linktype)
    got, stats = replay(path)
    assert got == [p for p in packets if p[0] >> 4 == version]
    assert stats.skipped_non_ip == 4


def test_pcapng_interfaces_with_different_linktypes(tmp_path):
    packets = ip_packets(12)
    linktypes = [EN10MB, SLL2, RAW, LOOP]
    frames = [(linktypes[i % 4], frame(linktypes[i % 4], p)) for i, p in enumerate(packets)]
    frames.insert(5, (EN10MB, non_ip_frame(EN10MB)))
    got, stats = replay(write_pcapng(tmp_path / "c.pcapng", frames), batch=4)
    assert got == packets and stats.skipped_non_ip == 1


def test_vlan_and_qinq_tags_are_stripped(tmp_path):
    packets = ip_packets(4)
    mac = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
    frames = [
        bytes(Ether(**mac, type=0x8100) / Dot1Q(vlan=7, type=0x0800) / Raw(packets[0])),
        bytes(Ether(**mac, type=0x88A8) / Dot1AD(vlan=3, type=0x8100) / Dot1Q(vlan=7, type=0x0800) / Raw(packets[1])),
        bytes(Ether(**mac, type=0x86DD) / Raw(packets[2])),
        bytes(Ether(**mac, type=0x9100) / Dot1Q(vlan=9, type=0x86DD) / Raw(packets[3])),
    ]
    got, _ = replay(write_pcap(tmp_path / "v.pcap", frames, EN10MB))
    assert got == packets


@pytest.mark.parametrize("linktype", [EN10MB, SLL, SLL2, NULL])
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_link_padding_is_cut_at_the_ip_length(tmp_path, linktype, fmt):
    packets = ip_packets(4)  # 29-byte IPv4/UDP etc.: an Ethernet frame pads them to 60 bytes
    padded = [frame(linktype, p) + b"\0" * 20 for p in packets]
    if fmt == "pcap":
        path = write_pcap(tmp_path / "p.pcap", padded, linktype)
    else:
        path = write_pcapng(tmp_path / "p.pcapng", [(linktype, f) for f in padded])
    got, _ = replay(path)
    assert got == packets


def test_records_cut_by_the_snap_length_are_skipped_and_counted(tmp_path):
    packets = ip_packets(3)
    path = tmp_path / "s.pcap"
    write_pcap(path, packets, RAW)
    data = bytearray(path.read_bytes())
    # claim the first record was 100 bytes longer on the wire than captured
    wire_field = 24 + 12
    data[wire_field : wire_field + 4] = (len(packets[0]) + 100).to_bytes(4, "little")
    path.write_bytes(data)
    got, stats = replay(path)
    assert got == packets[1:] and stats.skipped_truncated == 1


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_big_endian_simple_packets_and_resolutions(tmp_path, order):
    packets = ip_packets(6)
    data = (
        shb(order)
        + idb(order, RAW, tsresol=9)
        + idb(order, EN10MB, tsresol=0x80 | 20)
        + epb(order, 0, 5_000_000_000, packets[0])
        + epb(order, 1, 3 << 20, frame(EN10MB, packets[1]))
        + spb(order, packets[2])
        + block_unknown(order)
        + shb(order)
        + idb(order, SLL, tsoffset=100)
        + epb(order, 0, 7_000_000, frame(SLL, packets[3]))
        + spb(order, frame(SLL, packets[4]))
        + epb(order, 0, 8_000_000, frame(SLL, packets[5]))
    )
    path = tmp_path / "h.pcapng"
    path.write_bytes(data)
    from tio_pcap.reader import CaptureReader

    views, stamps = [], []
    with CaptureReader(path) as reader:
        while reader.read_batch(2, views, stamps):
            pass
    assert [bytes(v) for v in views] == packets
    # ns resolution, 2^-20 s resolution, SPB keeps the last stamp, then microseconds plus a 100 s offset
    assert stamps == [5_000_000_000, 3_000_000_000, 3_000_000_000, 107_000_000_000, 107_000_000_000, 108_000_000_000]


def block_unknown(order: str) -> bytes:
    from tests.pcap.captures import block

    return block(order, 0x00000BAD, b"custom body")


def test_loop_and_limit(tmp_path):
    packets = ip_packets(5)
    path = write_pcap(tmp_path / "l.pcap", packets)
    got, stats = replay(path, loop=3, batch=4)
    assert got == packets * 3 and stats.passes == 3
    got, _ = replay(path, loop=3, limit=7, batch=4)
    assert got == (packets * 2)[:7]
    got, _ = replay(path, loop=0, limit=23)
    assert got == (packets * 5)[:23]


def test_empty_capture_ends_at_once_even_when_looping_forever(tmp_path):
    got, stats = replay(write_pcap(tmp_path / "e.pcap", []), loop=0)
    assert got == [] and stats.packets_read == 0


def test_large_capture_streams_in_bounded_memory(tmp_path, monkeypatch):
    import tracemalloc

    from tio_pcap import reader

    monkeypatch.setattr(reader, "WHOLE_FILE_LIMIT", 1 << 20)  # the capture is larger: it streams
    packets = ip_packets(64)
    frames = packets * 600  # ~3 MB, several reader chunks
    path = write_pcap(tmp_path / "big.pcap", frames)
    tracemalloc.start()
    try:
        count = 0
        with open_backend("pcap", path=str(path), batch=256) as qs:
            queue = qs.queues()[0]
            while True:
                try:
                    count += len(queue.read())
                except EndOfStream:
                    break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(frames)
    assert peak < 4 * (1 << 20), f"peak {peak} bytes for a {path.stat().st_size} byte capture"


@pytest.mark.parametrize("kind", ["pcap-raw", "pcap-ether-be", "pcapng-mixed", "pcapng-hand-be"])
def test_records_straddling_read_chunks(tmp_path, kind):
    """Small read chunks put record and block boundaries everywhere; the packets do not change."""
    import random

    from scapy.layers.inet import IP, UDP

    from tests.pcap.captures import RAW, SLL2
    from tio_pcap.reader import CaptureReader

    rng = random.Random(kind)
    packets = [
        bytes(IP(src="198.18.0.1", dst="198.18.0.2", id=n) / UDP() / Raw(bytes([n % 256]) * rng.randint(0, 9000)))
        for n in range(120)
    ]
    path = tmp_path / "chunks.cap"
    if kind == "pcap-raw":
        write_pcap(path, packets, RAW)
    elif kind == "pcap-ether-be":
        write_pcap(path, [frame(EN10MB, p) for p in packets], EN10MB, endianness=">")
    elif kind == "pcapng-mixed":
        write_pcapng(path, [(lt, frame(lt, p)) for lt, p in zip([EN10MB, RAW, SLL2] * 40, packets)])
    else:
        path.write_bytes(
            shb(">")
            + idb(">", RAW)
            + b"".join(spb(">", p) if n % 3 == 0 else epb(">", 0, n, p) for n, p in enumerate(packets))
        )
    for chunk in (4096, 5000, 1 << 20):
        views: list = []
        with CaptureReader(path, chunk_size=chunk, whole_file_limit=0) as reader:
            while reader.read_batch(rng.randint(1, 50), views):
                pass
        assert [bytes(v) for v in views] == packets, chunk
        # the same when each batch's views are dropped before the next read (the chunk is then reused)
        got: list[bytes] = []
        with CaptureReader(path, chunk_size=chunk, whole_file_limit=0) as reader:
            while reader.read_batch(rng.randint(1, 50), views := []):
                got.extend(bytes(v) for v in views)
                for view in views:
                    view.release()
        assert got == packets, chunk
