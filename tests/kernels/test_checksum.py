"""Known-answer tests of the RFC 1071 checksum kernels."""

import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import checksum as scapy_checksum

from tests.support.packets import DST4, DST6, SRC4, SRC6, payload_bytes
from tio_core.errors import MalformedPacket
from tio_core.wire import GSO_NONE, NEEDS_CSUM, VirtioNetHdr


def reference_sum(data: bytes, seed: int = 0) -> int:
    """Word-by-word RFC 1071 sum with end-around carry, the textbook way."""
    if len(data) % 2:
        data += b"\0"
    total = seed
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total > 0xFFFF:  # end-around carry
        total = (total & 0xFFFF) + (total >> 16)
    return total


@pytest.mark.parametrize("n", [0, 1, 2, 3, 31, 32, 33, 64, 65, 1447, 1500, 4096, 65535])
def test_checksum_matches_textbook_and_scapy(k, n):
    data = payload_bytes(n)
    assert k.checksum(data) == reference_sum(data)
    # scapy's checksum() is the inverted sum
    assert (~k.checksum(data)) & 0xFFFF == scapy_checksum(data)


def test_checksum_seed_and_odd_tail(k):
    assert k.checksum(b"\x01") == 0x0100  # odd tail padded with a zero byte
    assert k.checksum(b"\xff\xff", 1) == 1  # end-around carry
    assert k.checksum(b"", 0x1234) == 0x1234
    assert k.checksum(b"", 0x12345) == 0x2346  # seeds above 16 bits are folded
    assert k.checksum(b"\xff\xff") == 0xFFFF
    assert k.checksum(bytearray(b"\x00\x00\x00")) == 0
    assert k.checksum(memoryview(b"\xab\xcd\xef")) == 0xABCD + 0xEF00 - 0xFFFF


def test_checksum_of_large_buffers(k):
    # Beyond the vector kernel's 1 MiB blocks, with every lane at its maximum.
    assert k.checksum(b"\xff" * (3 << 20)) == 0xFFFF
    assert k.checksum(b"\xff" * ((3 << 20) + 1)) == 0xFFFF - 0xFF  # + 0xFF00, folded
    data = payload_bytes(256) * 12289 + b"\x7f"
    from tio_core.kernels import _pykernels

    # 256 bytes of payload_bytes sum to a known value; 12289 copies, plus the odd tail 0x7F00
    block = reference_sum(payload_bytes(256))
    assert k.checksum(data) == reference_sum(b"", block * 12289 + 0x7F00) == _pykernels.checksum(data)


@pytest.mark.parametrize("seed", [-1, 1 << 32])
def test_checksum_rejects_bad_seed(k, seed):
    with pytest.raises(ValueError, match="seed"):
        k.checksum(b"ab", seed)


def test_pseudo_header_sums_match_scapy(k):
    import socket

    seg = bytes(IP(src=SRC4, dst=DST4) / UDP(sport=1, dport=2) / b"hello")
    l4 = seg[20:]
    ph = k.pseudo_header_sum(socket.inet_aton(SRC4), socket.inet_aton(DST4), 17, len(l4))
    assert (~k.checksum(l4[:6] + b"\0\0" + l4[8:], ph)) & 0xFFFF == IP(seg)[UDP].chksum
    seg6 = bytes(IPv6(src=SRC6, dst=DST6) / TCP(sport=1, dport=2) / b"hello6")
    l4 = seg6[40:]
    ph6 = k.pseudo_header_sum(
        socket.inet_pton(socket.AF_INET6, SRC6), socket.inet_pton(socket.AF_INET6, DST6), 6, len(l4)
    )
    assert (~k.checksum(l4[:16] + b"\0\0" + l4[18:], ph6)) & 0xFFFF == IPv6(seg6)[TCP].chksum


def test_pseudo_header_v6_length_above_16_bits(k):
    src, dst = bytes(16), bytes(16)
    # the 32-bit length contributes both halves
    assert k.pseudo_header_sum(src, dst, 6, 0x12345) == 0x0001 + 0x2345 + 6
    with pytest.raises(ValueError):
        k.pseudo_header_sum(bytes(4), bytes(4), 6, 0x10000)
    with pytest.raises(ValueError):
        k.pseudo_header_sum(bytes(4), bytes(16), 6, 10)
    with pytest.raises(ValueError):
        k.pseudo_header_sum(bytes(4), bytes(4), 256, 10)


@pytest.mark.parametrize("options", [b"", b"\x94\x04\x00\x00", b"\x01" * 40])
def test_ipv4_header_checksum_matches_scapy(k, options):
    pkt = IP(src=SRC4, dst=DST4, id=4242, ttl=3)
    if options:
        pkt.options = [options]
    raw = bytes(pkt / b"xyz")
    ihl = (raw[0] & 15) * 4
    assert k.ipv4_header_checksum(raw[:ihl]) == IP(raw).chksum
    # the stored checksum field does not influence the result
    assert k.ipv4_header_checksum(raw) == IP(raw).chksum


@pytest.mark.parametrize("hdr", [b"\x45" + bytes(18), b"\x44" + bytes(30), b"\x46" + bytes(22), b"\x65" + bytes(30)])
def test_ipv4_header_checksum_rejects_bad_headers(k, hdr):
    with pytest.raises(MalformedPacket):
        k.ipv4_header_checksum(hdr)


def _partial(pkt: bytes, version: int, csum_start: int, field: int) -> bytearray:
    """pkt with its L4 checksum replaced by the kernel's partial (pseudo-header sum)."""

    buf = bytearray(pkt)
    if version == 4:
        src, dst, proto = pkt[12:16], pkt[16:20], pkt[9]
    else:
        src, dst, proto = pkt[8:24], pkt[24:40], pkt[6]
    from tio_core.kernels import _pykernels

    partial = _pykernels.pseudo_header_sum(src, dst, proto, len(pkt) - csum_start)
    buf[field : field + 2] = partial.to_bytes(2, "big")
    return buf


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
@pytest.mark.parametrize("n", [0, 1, 999, 1000])
def test_finish_checksum_completes_partial(k, version, proto, n):
    l3 = IP(src=SRC4, dst=DST4) if version == 4 else IPv6(src=SRC6, dst=DST6)
    l4 = TCP(sport=5, dport=6, flags="A") if proto == "tcp" else UDP(sport=5, dport=6)
    pkt = bytes(l3 / l4 / payload_bytes(n))
    start = 20 if version == 4 else 40
    offset = 16 if proto == "tcp" else 6
    buf = _partial(pkt, version, start, start + offset)
    k.finish_checksum(buf, VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, start, offset))
    assert bytes(buf) == pkt


def test_finish_checksum_udp_zero_becomes_ffff_tcp_zero_stays(k):
    # Pick the last two payload bytes so that the whole sum is 0xFFFF, i.e. the
    # true checksum is 0: UDP must send 0xFFFF (0 means "none"), TCP sends 0.
    hdr_udp = VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 20, 6)
    pkt = _partial(bytes(IP(src=SRC4, dst=DST4) / UDP(sport=5, dport=6) / b"\0\0"), 4, 20, 26)
    partial = int.from_bytes(pkt[26:28], "big")
    covered = bytes(pkt[20:26]) + b"\0\0" + bytes(pkt[28:])
    pkt[-2:] = ((0xFFFF - reference_sum(covered, partial)) & 0xFFFF).to_bytes(2, "big")
    k.finish_checksum(pkt, hdr_udp)
    assert pkt[26:28] == b"\xff\xff"
    assert IP(bytes(pkt))[UDP].chksum == 0xFFFF  # scapy agrees
    tcp = bytearray(20 + 20 + 2)
    tcp[0] = 0x45
    tcp[36:38] = b"\xff\xff"  # an all-zero segment whose partial is 0xFFFF sums to 0xFFFF
    k.finish_checksum(tcp, VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 20, 16))
    assert tcp[36:38] == b"\0\0"


def test_finish_checksum_out_of_bounds_and_readonly(k):
    buf = bytearray(40)
    with pytest.raises(MalformedPacket, match="outside"):
        k.finish_checksum(buf, VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 30, 9))
    with pytest.raises(MalformedPacket, match="outside"):
        k.finish_checksum(buf, VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 65535, 65535))
    with pytest.raises(TypeError):
        k.finish_checksum(bytes(40), VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 20, 6))
    # without NEEDS_CSUM nothing is touched
    k.finish_checksum(buf, VirtioNetHdr(0, GSO_NONE, 0, 0, 65535, 65535))
    assert buf == bytearray(40)
