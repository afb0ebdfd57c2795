"""Fixed inputs for rules that random tests hit too rarely (issue 12, item 14).

Each input sits on the edge its rule guards, so a planted bug there fails
every run, not one run in four.
"""

import struct

import pytest

from tests.support.checksum import fold, words
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.errors import MalformedPacket
from tio_core.wire import GSO_NONE, GSO_TCPV6, NEEDS_CSUM, VirtioNetHdr

SRC4, DST4 = bytes([198, 18, 0, 1]), bytes([198, 19, 0, 2])
SRC6, DST6 = bytes.fromhex("fd00" + "0" * 27 + "1"), bytes.fromhex("fd00" + "0" * 27 + "2")


# -- checksum carry folding -------------------------------------------------------
def test_checksum_folds_every_carry(k):
    assert k.checksum(b"", 0x1FFFF) == 1, "a seed's carry folds back in: 0x1FFFF -> 0xFFFF + 1 -> 1"
    assert k.checksum(b"\xff\xff", 0xFFFF0000) == 0xFFFF, "a sum of 0xFFFFFFFF folds to 0xFFFF, never to 0"
    # carries out of the seed and the data together: 0xFFFFFFFF + 4 * 0x8000 = 0x1_0001_FFFF -> 0x2_0000 -> 2
    assert k.checksum(b"\x80\x00" * 4, 0xFFFFFFFF) == 2


# -- a GSO_NONE checksum field at the very end ----------------------------------------
def test_gso_none_checksum_field_must_fit_whole(k):
    data = bytearray(64)
    data[0] = 0x45
    straddling = VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 40, len(data) - 1 - 40)  # field is the last byte + 1
    for call in (lambda: k.gso_info_from_vnet(straddling, data), lambda: k.finish_checksum(data, straddling)):
        with pytest.raises(MalformedPacket, match="lies outside the 64-byte packet"):
            call()
            pytest.fail("a checksum field at csum_start + csum_offset == len - 1 does not fit the packet")
    fitting = straddling._replace(csum_offset=len(data) - 2 - 40)
    k.gso_info_from_vnet(fitting, data)
    k.finish_checksum(data, fitting)


# -- extension headers with a non-zero length byte ---------------------------------------
def ipv6_superpacket(chain: bytes, first: int, payload: int = 300, mss: int = 100) -> tuple[bytes, int]:
    """A TCPv6 superpacket behind ``chain`` (whose last header says TCP); returns (bytes, csum_start)."""
    tcp = struct.pack("!HHIIBBHHH", 1, 2, 7, 9, 5 << 4, 0x10, 512, 0, 0)
    body = chain + tcp + bytes(range(256))[:payload] * (payload // 256 + 1)
    body = body[: len(chain) + 20 + payload]
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(body), first, 64, SRC6, DST6)
    return ip + body, 40 + len(chain)


def test_authentication_header_with_a_length_byte_is_refused_whatever_its_length(k):
    ah = bytes([6, 4, 0, 0]) + (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes(12)  # (4 + 2) * 4 = 24 bytes
    data, cs = ipv6_superpacket(ah, 51)
    hdr = VirtioNetHdr(NEEDS_CSUM, GSO_TCPV6, cs + 20, 100, cs, 16)
    for call in (
        lambda: k.gso_info_from_vnet(hdr, data),
        lambda: k.segment(Packet(memoryview(data), GSOInfo(100, cs + 20, cs, GSOProto.TCP))),
    ):
        with pytest.raises(MalformedPacket, match="IPv6 AH header in a superpacket"):
            call()
            pytest.fail("the kernel drops superpackets behind AH, so tio refuses them")


def test_destination_options_length_byte_counts_eight_byte_units(k):
    options = bytes([6, 2]) + bytes([1, 20]) + bytes(20)  # length 2: 8 + 2 * 8 = 24 bytes, one PadN option
    data, cs = ipv6_superpacket(options, 60)
    assert cs == 64
    info = k.gso_info_from_vnet(VirtioNetHdr(NEEDS_CSUM, GSO_TCPV6, 0, 100, cs, 16), data)
    assert info == GSOInfo(100, 84, 64, GSOProto.TCP), "hdr_len follows an 8-unit length byte"
    segments = k.segment(Packet(memoryview(data), info))
    assert [len(s) for s in segments] == [184] * 3
    assert all(bytes(s[40:64]) == options for s in segments)


# -- a segment whose checksum computes to 0 -------------------------------------------------
def zero_sum_superpacket(proto: int) -> tuple[Packet, int]:
    """A 2-segment IPv4 superpacket whose first segment's L4 checksum computes to exactly 0.

    The first payload word is set to the checksum the segment has with that
    word 0: adding a sum's complement makes it 0xFFFF, whose checksum is 0.
    """
    l4 = (
        struct.pack("!HHIIBBHHH", 1, 2, 7, 9, 5 << 4, 0x10, 512, 0, 0)
        if proto == 6
        else struct.pack("!HHHH", 1, 2, 8 + 200, 0)
    )
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4) + 200, 1, 0x4000, 64, proto, 0, SRC4, DST4)
    payload = bytearray(bytes(range(200)))
    payload[0:2] = b"\0\0"
    seg_l4 = bytearray(l4 + payload[:100])
    if proto == 17:
        seg_l4[4:6] = (8 + 100).to_bytes(2, "big")
    with_zero_word = ~fold(words(SRC4 + DST4) + proto + len(seg_l4) + words(bytes(seg_l4))) & 0xFFFF
    payload[0:2] = with_zero_word.to_bytes(2, "big")
    data = ip + l4 + bytes(payload)
    return Packet(memoryview(data), GSOInfo(100, 20 + len(l4), 20, GSOProto(1 if proto == 6 else 2))), 20 + (
        16 if proto == 6 else 6
    )


def test_udp_segment_whose_checksum_computes_to_zero_is_sent_as_ffff(k):
    packet, field = zero_sum_superpacket(17)
    first = k.segment(packet)[0]
    assert bytes(first[field : field + 2]) == b"\xff\xff", "UDP sends a computed 0 as 0xFFFF (0 means no checksum)"
    assert k.checksum(first[20:], words(SRC4 + DST4) + 17 + len(first) - 20) == 0xFFFF


def test_tcp_segment_whose_checksum_computes_to_zero_keeps_zero(k):
    packet, field = zero_sum_superpacket(6)
    first = k.segment(packet)[0]
    assert bytes(first[field : field + 2]) == b"\0\0", "TCP keeps a computed 0 (only UDP maps it to 0xFFFF)"
    assert k.checksum(first[20:], words(SRC4 + DST4) + 6 + len(first) - 20) == 0xFFFF
