"""Capture timestamps come back to the nanosecond (issue 12, item 14).

The files are written byte by byte here (no scapy, no tio writer), with
fractions that only survive exact nanosecond arithmetic: 999,999,999 ns,
a single nanosecond, and microsecond files whose fraction must be scaled.
"""

import struct

import pytest

from tio_pcap.reader import CaptureReader

LINKTYPE_RAW = 101
PACKET = bytes([0x45]) + bytes(19)
NS = 1_000_000_000
# (seconds, fraction in the file's unit)
NANO_RECORDS = [(1_700_000_000, 999_999_999), (1_700_000_001, 1), (0, 0), (4_294_967_295, 123_456_789)]
MICRO_RECORDS = [(1_700_000_000, 999_999), (1_700_000_001, 1), (4_294_967_295, 123_456)]


def classic(path, order: str, nano: bool, records) -> None:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
    for sec, frac in records:
        out += struct.pack(order + "IIII", sec, frac, len(PACKET), len(PACKET)) + PACKET
    path.write_bytes(bytes(out))


def pcapng_nanosecond(path, stamps) -> None:
    """One section, one interface with if_tsresol 9 (nanoseconds), one Enhanced Packet Block per stamp."""

    def block(kind, body):
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)  # if_tsresol = 10^-9, end of options
    idb = block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, 65535) + options)
    epbs = b"".join(
        block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(PACKET), len(PACKET)) + PACKET)
        for ts in stamps
    )
    path.write_bytes(shb + idb + epbs)


def read_stamps(path) -> list[int]:
    views, stamps = [], []
    with CaptureReader(path) as reader:
        while reader.read_batch(3, views, stamps):
            pass
    assert [bytes(v) for v in views] == [PACKET] * len(stamps)
    return stamps


@pytest.mark.parametrize("order", ["<", ">"], ids=["le", "be"])
def test_nanosecond_pcap_keeps_every_nanosecond(tmp_path, order):
    path = tmp_path / "ns.pcap"
    classic(path, order, True, NANO_RECORDS)
    assert read_stamps(path) == [sec * NS + frac for sec, frac in NANO_RECORDS], (
        "a nanosecond pcap's timestamps are read to the nanosecond"
    )


@pytest.mark.parametrize("order", ["<", ">"], ids=["le", "be"])
def test_microsecond_pcap_is_scaled_to_nanoseconds(tmp_path, order):
    path = tmp_path / "us.pcap"
    classic(path, order, False, MICRO_RECORDS)
    assert read_stamps(path) == [sec * NS + frac * 1000 for sec, frac in MICRO_RECORDS], (
        "a microsecond pcap's fraction is scaled by exactly 1000"
    )


def test_nanosecond_pcapng_keeps_every_nanosecond(tmp_path):
    stamps = [sec * NS + frac for sec, frac in NANO_RECORDS]
    path = tmp_path / "ns.pcapng"
    pcapng_nanosecond(path, stamps)
    assert read_stamps(path) == stamps, "an if_tsresol=9 pcapng's timestamps are read to the nanosecond"
