"""Differential property tests: the C kernels and their pure twins agree byte for byte.

For random valid superpackets, mutated ones and plain garbage, both must give
the same result or raise the same exception type with the same message, and
no input may crash the interpreter.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.kernels import _pykernels as pure
from tio_core.wire import VirtioNetHdr

from .conftest import IMPLEMENTATIONS

pytestmark = pytest.mark.skipif("c" not in IMPLEMENTATIONS, reason="C kernels not built")
c = IMPLEMENTATIONS.get("c")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(fn, *args):
    """What a call did: its result (segments as bytes) or its exception type and message."""
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the point is to compare any exception
        return ("raised", type(exc), str(exc))
    if isinstance(result, list):
        return ("ok", [bytes(seg) for seg in result])
    return ("ok", result)


def same(name, *args):
    got_c, got_pure = outcome(getattr(c, name), *args), outcome(getattr(pure, name), *args)
    assert got_c == got_pure
    return got_pure


@st.composite
def superpackets(draw):
    """Random valid superpacket bytes and their GSOInfo, built without any tio code."""
    version = draw(st.sampled_from([4, 6]))
    proto = draw(st.sampled_from([GSOProto.TCP, GSOProto.UDP]))
    number = 6 if proto == GSOProto.TCP else 17
    if version == 4:
        options = draw(st.binary(min_size=0, max_size=40).map(lambda b: b[: len(b) // 4 * 4]))
        l3 = bytearray(draw(st.binary(min_size=20, max_size=20)) + options)
        l3[0] = 0x40 | (len(l3) // 4)
        l3[6] &= 0x40  # DF may be set; never MF or a fragment offset
        l3[7] = 0
        l3[9] = number
    else:
        l3 = bytearray(draw(st.binary(min_size=40, max_size=40)))
        l3[0] = 0x60 | (l3[0] & 0x0F)
        exts = draw(st.lists(st.sampled_from([0, 43, 60]), max_size=3))  # the kernel segments behind these
        chain = [*exts, number]
        l3[6] = chain[0]
        for following in chain[1:]:
            units = draw(st.integers(0, 3))
            l3 += bytes([following, units]) + bytes(units * 8 + 6)
    if proto == GSOProto.TCP:
        opt_words = draw(st.integers(0, 10))
        l4 = bytearray(draw(st.binary(min_size=20 + 4 * opt_words, max_size=20 + 4 * opt_words)))
        l4[12] = (5 + opt_words) << 4 | (l4[12] & 0x0F)
    else:
        l4 = bytearray(draw(st.binary(min_size=8, max_size=8)))
    payload = draw(st.binary(min_size=0, max_size=5000))
    mss = draw(st.integers(max(1, -(-len(payload) // pure.MAX_SEGMENT_COUNT)), 2000))  # within the segment bound
    data = bytes(l3 + l4 + payload)
    return Packet(memoryview(data), GSOInfo(mss, len(l3) + len(l4), len(l3), proto))


@SETTINGS
@given(superpackets())
def test_valid_superpackets_segment_identically(packet):
    size = same("segmented_size", packet)
    result = same("segment", packet)
    assert result[0] == "ok"
    segments = result[1]
    hdr_len = packet.gso.hdr_len
    assert sum(map(len, segments)) == size[1]
    assert b"".join(s[hdr_len:] for s in segments) == bytes(packet.data[hdr_len:])
    out_c, out_pure = bytearray(7), bytearray(7)
    assert [bytes(s) for s in c.segment_into(packet, out_c)] == segments
    assert [bytes(s) for s in pure.segment_into(packet, out_pure)] == segments


@st.composite
def mutated(draw):
    """A valid superpacket with a few bytes changed, cut short or its GSOInfo bent."""
    packet = draw(superpackets())
    data = bytearray(packet.data)
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    gso = packet.gso
    if draw(st.booleans()):
        gso = GSOInfo(
            draw(st.sampled_from([gso.size, 0, 1, 65535, 65536, -3])),
            draw(st.sampled_from([gso.hdr_len, gso.hdr_len + 4, gso.hdr_len - 4, 0, 70000])),
            draw(st.sampled_from([gso.csum_start, gso.csum_start + 4, 0, 40, 65535])),
            draw(st.sampled_from([gso.proto, GSOProto.TCP, GSOProto.UDP, GSOProto.NONE, 7])),
        )
    if draw(st.booleans()):
        gso = tuple(gso)  # any sequence of four ints is a GSOInfo to the kernels
    return Packet(memoryview(bytes(data)), gso)


@SETTINGS
@given(mutated())
def test_mutated_superpackets_agree(packet):
    same("segmented_size", packet)
    same("segment", packet)


vnet_headers = st.builds(
    VirtioNetHdr,
    st.sampled_from([0, 1, 2, 3, 4, 0xFF]),
    st.sampled_from([0, 1, 3, 4, 5, 2, 6, 0x80, 0x81, 0x84, 0x85, 0xFF]),
    st.integers(0, 0xFFFF),
    st.sampled_from([0, 1, 1448, 0xFFFF]),
    st.one_of(st.integers(0, 120), st.integers(0, 0xFFFF)),
    st.sampled_from([0, 6, 16, 2, 0xFFFF]),
)


@SETTINGS
@given(vnet_headers, st.binary(max_size=300))
def test_garbage_vnet_headers_and_bytes_agree(hdr, data):
    same("gso_info_from_vnet", hdr, data)
    buf_c, buf_pure = bytearray(data), bytearray(data)
    assert outcome(c.finish_checksum, buf_c, hdr) == outcome(pure.finish_checksum, buf_pure, hdr)
    assert buf_c == buf_pure


@SETTINGS
@given(superpackets(), vnet_headers)
def test_kernel_headers_on_real_superpackets_agree(packet, hdr):
    data = bytes(packet.data)
    same("gso_info_from_vnet", hdr, data)
    kinds = {(4, GSOProto.TCP): 1, (6, GSOProto.TCP): 4}
    gso_type = kinds.get((data[0] >> 4, packet.gso.proto), 5)
    offset = 16 if packet.gso.proto == GSOProto.TCP else 6
    good = VirtioNetHdr(1, gso_type, hdr.hdr_len, max(1, packet.gso.size), packet.gso.csum_start, offset)
    result = same("gso_info_from_vnet", good, data)
    if result[1] is not None and result[0] == "ok" and hdr.hdr_len <= len(data):
        assert result[1] == packet.gso._replace(size=max(1, packet.gso.size))


@SETTINGS
@given(st.binary(max_size=3000), st.one_of(st.integers(0, 0xFFFFFFFF), st.integers(-5, 5), st.just(1 << 40)))
def test_checksums_agree(data, seed):
    same("checksum", data, seed)
    same("ipv4_header_checksum", data)
    for n in (4, 16):
        if len(data) >= 2 * n:
            same("pseudo_header_sum", data[:n], data[n : 2 * n], seed & 0x1FF, seed)


@SETTINGS
@given(
    st.binary(max_size=200), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(-2, 4), st.integers(-1, 3000)
)
def test_garbage_gsoinfo_on_garbage_bytes_agrees(data, hdr_len, csum_start, proto, size):
    packet = Packet(memoryview(data), GSOInfo(size, hdr_len, csum_start, proto))
    same("segmented_size", packet)
    same("segment", packet)


def test_bad_vnet_field_values_agree():
    for hdr in [(0, 0, 0, 0, -1, 0), (256, 0, 0, 0, 0, 0), (0, 0, 1 << 70, 0, 0, 0), (1, 2, 3)]:
        same("gso_info_from_vnet", hdr, b"\x45" + bytes(40))
        same("finish_checksum", bytearray(41), hdr)
