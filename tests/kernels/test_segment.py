"""Known-answer tests of superpacket segmentation, checked by scapy."""

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6

from tests.support.packets import checksums_valid, superpacket
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.errors import MalformedPacket

FIN, PSH, CWR, ECE = 0x01, 0x08, 0x80, 0x40


def check_segments(segments, packet, original):
    """The invariants every segmentation must keep; returns the scapy-parsed segments."""
    version = packet.data[0] >> 4
    layer = IP if version == 4 else IPv6
    size, hdr_len, _, proto = packet.gso
    l4 = TCP if proto == GSOProto.TCP else UDP
    parsed = [layer(bytes(s)) for s in segments]
    payload = b"".join(bytes(s[hdr_len:]) for s in segments)
    assert payload == bytes(packet.data[hdr_len:])
    for i, (raw, p) in enumerate(zip(segments, parsed)):
        assert checksums_valid(bytes(raw)), f"segment {i} has a wrong checksum"
        assert len(raw) - hdr_len == (size if i < len(segments) - 1 else len(payload) - size * (len(segments) - 1))
        assert bytes(raw[:hdr_len]) != b""
        if version == 4:
            assert p.len == len(raw)
            assert p.id == (original.id + i) & 0xFFFF
            assert p.tos == original.tos and p.ttl == original.ttl and p.flags == original.flags
            assert p.options == IP(bytes(packet.data)).options
        else:
            assert p.plen == len(raw) - 40
            assert p.tc == original.tc and p.fl == original.fl and p.hlim == original.hlim
        if l4 is UDP:
            assert p[UDP].len == len(raw) - packet.gso.csum_start
            assert p[UDP].chksum != 0
    return parsed


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("proto", [GSOProto.TCP, GSOProto.UDP])
@pytest.mark.parametrize(
    "payload,mss", [(4000, 1448), (2896, 1448), (1, 1448), (65000 - 60, 1448), (1500, 100), (333, 7)]
)
def test_segments_are_valid_and_carry_the_payload(k, version, proto, payload, mss):
    packet, original = superpacket(version, proto, payload, mss)
    segments = k.segment(packet)
    assert len(segments) == -(-payload // mss)
    assert all(isinstance(s, memoryview) for s in segments)
    check_segments(segments, packet, original)


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("proto", [GSOProto.TCP, GSOProto.UDP])
def test_header_only_superpacket_gives_one_segment(k, version, proto):
    packet, original = superpacket(version, proto, 0, 1448)
    segments = k.segment(packet)
    assert len(segments) == 1
    assert len(segments[0]) == packet.gso.hdr_len
    check_segments(segments, packet, original)


def test_gso_size_smaller_than_header(k):
    packet, original = superpacket(
        4, GSOProto.TCP, 100, 8, tcp_options=[("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")]
    )
    assert packet.gso.hdr_len > 8
    segments = k.segment(packet)
    assert len(segments) == 13
    parsed = check_segments(segments, packet, original)
    cs, end = packet.gso.csum_start, packet.gso.hdr_len
    assert all(bytes(p)[cs + 20 : end] == bytes(packet.data[cs + 20 : end]) for p in parsed)
    assert all(p[TCP].options == IP(bytes(packet.data))[TCP].options for p in parsed)


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_sequence_wraps_and_flags_are_placed(k, version):
    packet, original = superpacket(
        version, GSOProto.TCP, 3000, 1000, seq=0xFFFFFFFF - 1500, flags="FPAUCE", ip_id=0xFFFF
    )
    parsed = check_segments(k.segment(packet), packet, original)
    assert [p[TCP].seq for p in parsed] == [0xFFFFFFFF - 1500, (0xFFFFFFFF - 500), 499]
    if version == 4:
        assert [p.id for p in parsed] == [0xFFFF, 0, 1]
    flags = [int(p[TCP].flags) for p in parsed]
    assert flags[0] & CWR and not (flags[1] & CWR) and not (flags[2] & CWR)
    assert all(f & ECE and f & 0x10 and f & 0x20 for f in flags)  # ECE, ACK, URG copied
    assert [bool(f & FIN) for f in flags] == [False, False, True]
    assert [bool(f & PSH) for f in flags] == [False, False, True]
    assert all(p[TCP].ack == 99 and p[TCP].window == 5000 and p[TCP].urgptr == original[TCP].urgptr for p in parsed)


def test_ipv4_options_are_copied_to_every_segment(k):
    packet, original = superpacket(4, GSOProto.TCP, 5000, 1448, ip_options=b"\x94\x04\x00\x00" + b"\x01" * 4)
    assert packet.gso.csum_start == 28
    parsed = check_segments(k.segment(packet), packet, original)
    assert all(bytes(p)[20:28] == bytes(packet.data[20:28]) for p in parsed)


@pytest.mark.parametrize("proto", [GSOProto.TCP, GSOProto.UDP])
def test_ipv6_extension_headers_are_carried(k, proto):
    packet, original = superpacket(6, proto, 3000, 1200, ext_headers=2)
    assert packet.gso.csum_start == 56
    parsed = check_segments(k.segment(packet), packet, original)
    assert all(bytes(p)[40:56] == bytes(packet.data[40:56]) for p in parsed)


@pytest.mark.parametrize("version", [4, 6])
def test_ecn_ce_mark_is_copied(k, version):
    for proto in (GSOProto.TCP, GSOProto.UDP):
        packet, original = superpacket(version, proto, 3000, 1000, tos=0xB8 | 3)
        parsed = check_segments(k.segment(packet), packet, original)
        assert all((p.tos if version == 4 else p.tc) == 0xBB for p in parsed)


def test_odd_tails(k):
    for payload, mss in [(2999, 1000), (3001, 1000), (1001, 333)]:
        for version in (4, 6):
            for proto in (GSOProto.TCP, GSOProto.UDP):
                packet, original = superpacket(version, proto, payload, mss)
                check_segments(k.segment(packet), packet, original)


def test_the_scapy_checker_catches_a_bad_checksum():
    packet, _ = superpacket(4, GSOProto.UDP, 100, 1000)
    good = bytes(packet.data)
    assert checksums_valid(good)
    for spot in (10, 26, len(good) - 1):  # IPv4 checksum, UDP checksum, payload byte
        bad = bytearray(good)
        bad[spot] ^= 0x01
        assert not checksums_valid(bytes(bad))


def test_plain_packet_is_returned_unchanged(k):
    data = memoryview(b"\x45" + bytes(30))
    assert k.segment(Packet(data)) == [data]
    assert k.segment(Packet(data))[0] is data
    assert k.segment_into(Packet(data), bytearray())[0] is data
    assert k.segmented_size(Packet(data)) == 31


def test_segment_into_reuses_and_grows_the_buffer(k):
    packet, original = superpacket(6, GSOProto.UDP, 5000, 1000)
    need = k.segmented_size(packet)
    assert need == 5 * packet.gso.hdr_len + 5000
    out = bytearray(3)
    segments = k.segment_into(packet, out)
    assert len(out) == need
    assert [bytes(s) for s in segments] == [bytes(s) for s in k.segment(packet)]
    assert b"".join(bytes(s) for s in segments) == bytes(out[:need])
    check_segments(segments, packet, original)
    # the buffer cannot grow while views of it are alive
    bigger, _ = superpacket(6, GSOProto.UDP, 9000, 1000)
    with pytest.raises(BufferError):
        k.segment_into(bigger, out)
    del segments
    assert len(k.segment_into(bigger, out)) == 9
    big = bytearray(100000)
    k.segment_into(packet, big)
    assert len(big) == 100000
    with pytest.raises(TypeError):
        k.segment_into(packet, memoryview(bytearray(need)))


def test_segment_results_outlive_the_input(k):
    packet, _ = superpacket(4, GSOProto.TCP, 3000, 1000)
    data = bytearray(packet.data)
    segments = k.segment(Packet(memoryview(data), packet.gso))
    expected = [bytes(s) for s in segments]
    data[:] = bytes(len(data))
    assert [bytes(s) for s in segments] == expected


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda g: g._replace(proto=GSOProto.NONE), "proto"),
        (lambda g: g._replace(size=70000), "above 65535"),
        (lambda g: g._replace(hdr_len=g.hdr_len + 4), "hdr_len"),
        (lambda g: g._replace(hdr_len=-1), "hdr_len"),
        (lambda g: g._replace(csum_start=24), "csum_start"),
        (lambda g: g._replace(proto=GSOProto.UDP, hdr_len=28), "protocol"),
    ],
)
def test_segment_rejects_inconsistent_gsoinfo(k, change, message):
    packet, _ = superpacket(4, GSOProto.TCP, 3000, 1000)
    with pytest.raises(MalformedPacket, match=message):
        k.segment(Packet(packet.data, change(packet.gso)))
    with pytest.raises(MalformedPacket, match=message):
        k.segmented_size(Packet(packet.data, change(packet.gso)))


def test_segment_rejects_oversized_segments_and_output(k):
    # a 65535-byte IPv6 payload with gso size 65535 would need a 65575-byte IPv6 packet: fine;
    # but an IPv4 segment cannot exceed 65535 bytes in total
    packet, _ = superpacket(4, GSOProto.UDP, 65535 - 28, 65535)
    assert len(k.segment(packet)) == 1
    big = Packet(memoryview(bytes(packet.data) + b"x"), packet.gso)
    with pytest.raises(MalformedPacket, match="more than an IPv4 packet"):
        k.segment(big)
    # a tiny gso size would ask for too many segments
    packet, _ = superpacket(6, GSOProto.UDP, k.MAX_SEGMENT_COUNT, 1)
    assert k.segmented_size(packet) == k.MAX_SEGMENT_COUNT * 49
    packet, _ = superpacket(6, GSOProto.UDP, k.MAX_SEGMENT_COUNT + 1, 1)
    for call in (k.segmented_size, k.segment):
        with pytest.raises(MalformedPacket, match=f"{k.MAX_SEGMENT_COUNT + 1} segments of 1 bytes, above the"):
            call(packet)
    # a small gso size with huge headers would ask for too much memory
    packet, _ = superpacket(6, GSOProto.UDP, 40000, 40)
    hdr = bytearray(packet.data[:40])
    hdr[6] = 60  # 15 destination-options headers of 2048 bytes each, then UDP
    ext = b"".join(bytes([60 if i < 14 else 17, 255]) + bytes(2046) for i in range(15))
    data = bytes(hdr) + ext + bytes(packet.data[40:])
    huge = Packet(memoryview(data), GSOInfo(40, 40 + len(ext) + 8, 40 + len(ext), GSOProto.UDP))
    with pytest.raises(MalformedPacket, match="-byte limit"):
        k.segment(huge)
