"""Differential property tests: the C plan_gso_write and its pure twin agree.

For valid write_gso pieces, mutated ones (lengths, sizes, protos, IHL and
data-offset mismatches, IPv6 extension chains) and plain garbage, both must
return the same VirtioNetHdr (or None) or raise the same exception type with
the same message.
"""

import struct

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tio_core.contract import GSOProto
from tio_core.kernels.gso_write import py_plan_even_gso_write, py_plan_gso_write
from tio_core.kernels.native import built_extension

_ckernels = built_extension()
pytestmark = pytest.mark.skipif(_ckernels is None, reason="C kernels not built")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZEROS = memoryview(bytes(70000))  # payloads are views of it: only their lengths matter
# next headers the planner meets in an IPv6 chain: extension headers it passes, AH and fragment it refuses, others
IPV6_NEXT_HEADERS = [0, 43, 60, 44, 51, 6, 17, 50, 59, 135]
PROTOS = [GSOProto.TCP, GSOProto.UDP, GSOProto.NONE, 1, 2, 3, None, "TCP"]


def outcome(fn, *args):
    """What a call did: its result or its exception type and message."""
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the point is to compare any exception
        return ("raised", type(exc), str(exc))
    return ("ok", result, type(result))


def assert_same(ip_hdr, l4_hdr, payloads, proto):
    assert _ckernels is not None
    got_c = outcome(_ckernels.plan_gso_write, ip_hdr, l4_hdr, payloads, proto)
    got_pure = outcome(py_plan_gso_write, ip_hdr, l4_hdr, payloads, proto)
    assert got_c == got_pure, "the C plan_gso_write must match its pure twin: result, exception type and message"


@st.composite
def ip_headers(draw, number):
    """An IPv4 header (with options) or an IPv6 header with an extension chain, leading to `number`."""
    if draw(st.booleans()):
        options = bytes(4 * draw(st.integers(0, 10)))
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 1, 0x4000, 64, number, 0, bytes(4), bytes(4)))
        hdr[0] = 0x40 | (5 + len(options) // 4)
        return bytes(hdr + options)
    chain = [*draw(st.lists(st.sampled_from(IPV6_NEXT_HEADERS), max_size=3)), number]
    hdr = bytearray(struct.pack("!IHBB16s16s", 6 << 28, 0, chain[0], 64, bytes(16), bytes(16)))
    for following in chain[1:]:
        units = draw(st.integers(0, 3))
        hdr += bytes([following, units]) + bytes(units * 8 + 6)
    return bytes(hdr)


@st.composite
def transport_headers(draw, tcp):
    if tcp:
        words = draw(st.integers(0, 10))
        hdr = bytearray(draw(st.binary(min_size=20 + 4 * words, max_size=20 + 4 * words)))
        hdr[12] = (5 + words) << 4 | (hdr[12] & 0x0F)
        return bytes(hdr)
    return draw(st.binary(min_size=8, max_size=8))


@st.composite
def payload_lists(draw):
    """Even fragments (the last may be shorter), or random sizes, as bytes, bytearray or views; rarely none."""
    if draw(st.integers(0, 9)) == 5:  # not 0: hypothesis draws the bounds far more often
        return []
    if draw(st.booleans()):
        size, count = draw(st.integers(1, 1500)), draw(st.integers(1, 260))
        sizes = [size] * count
        if count and draw(st.booleans()):
            sizes[-1] = draw(st.integers(0, size + 1))
    else:
        sizes = draw(st.lists(st.integers(0, 2000), min_size=1, max_size=8))
    kind = draw(st.sampled_from([bytes, bytearray, memoryview]))
    return [kind(ZEROS[:size]) if kind is not memoryview else ZEROS[:size] for size in sizes]


def mutate(data, draw):
    """data with a few bytes overwritten, cut short or extended."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        if out:
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.sampled_from([None, "cut", "extend"]))
    if cut == "cut":
        out = out[: draw(st.integers(0, len(out)))]
    elif cut == "extend":
        out += bytes(draw(st.sampled_from([1, 4, 8])))
    return bytes(out)


@st.composite
def write_gso_calls(draw):
    """The pieces of a write_gso: valid, mutated, or with a proto that does not fit."""
    tcp = draw(st.booleans())
    proto = GSOProto.TCP if tcp else GSOProto.UDP
    number = 6 if tcp else 17
    if draw(st.integers(0, 4)) == 0:
        number = draw(st.sampled_from([6, 17, 0, 50]))  # an IP protocol that may not be proto's
    ip_hdr = draw(ip_headers(number))
    l4_hdr = draw(transport_headers(tcp))
    if draw(st.booleans()):
        ip_hdr = mutate(ip_hdr, draw)
    if draw(st.booleans()):
        l4_hdr = mutate(l4_hdr, draw)
    if draw(st.integers(0, 4)) == 0:
        proto = draw(st.sampled_from(PROTOS))
    return ip_hdr, l4_hdr, draw(payload_lists()), proto


V4_TCP = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 1, 0x4000, 64, 6, 0, bytes(4), bytes(4))
V6_TCP = struct.pack("!IHBB16s16s", 6 << 28, 0, 6, 64, bytes(16), bytes(16))
TCP = struct.pack("!HHIIBBHHH", 1, 2, 100, 5, 5 << 4, 0x10, 512, 0, 0)
TCP_CWR = TCP[:13] + bytes([0x90]) + TCP[14:]
UDP = bytes(8)
LONG_HOP_BY_HOP = bytes([6, 255]) + bytes(255 * 8 + 6)  # the longest extension header: joined on the heap


@SETTINGS
@given(write_gso_calls())
@example((V4_TCP, TCP, [ZEROS[:1448]] * 44, GSOProto.TCP))
@example((V6_TCP, TCP_CWR, [ZEROS[:1448]] * 43 + [ZEROS[:100]], GSOProto.TCP))
@example((V6_TCP[:6] + b"\x11" + V6_TCP[7:], UDP, [ZEROS[:1000]] * 64, GSOProto.UDP))
@example((V6_TCP[:6] + b"\x00" + V6_TCP[7:] + LONG_HOP_BY_HOP, TCP, [ZEROS[:8]] * 3, GSOProto.TCP))
@example((V6_TCP[:6] + b"\x00" + V6_TCP[7:] + bytes([6, 255]) + bytes(65600), TCP, [b"x"], GSOProto.TCP))
@example((V4_TCP, TCP[:19], [b"x"], 1))  # a short header with a proto that has no .name
@example((V4_TCP, TCP, [], "not a proto"))  # no payloads: a no-op before anything is checked
@example((b"", b"", [b"x"], GSOProto.UDP))
def test_c_and_pure_plan_gso_write_agree(call):
    assert_same(*call)


@st.composite
def even_write_gso_calls(draw):
    """The pieces of a write_gso with EvenFragments: headers as above, the payload as a size and a fragment size."""
    ip_hdr, l4_hdr, _, proto = draw(write_gso_calls())
    payload_bytes = draw(st.one_of(st.integers(1, 66000), st.sampled_from([0, -1, 65535, 65536, 2**70])))
    gso_size = draw(st.one_of(st.integers(1, 2000), st.sampled_from([0, -5, 65535, 70000, 2**70])))
    return ip_hdr, l4_hdr, payload_bytes, gso_size, proto


@SETTINGS
@given(even_write_gso_calls())
@example((V4_TCP, TCP, 44 * 1448, 1448, GSOProto.TCP))
@example((V6_TCP, TCP_CWR, 43 * 1448 + 100, 1448, GSOProto.TCP))
@example((V4_TCP, TCP, 251, 1, GSOProto.TCP))  # one fragment above the cap
@example((V4_TCP, TCP, 65535 - 40, 1000, GSOProto.TCP))  # exactly 65535 bytes
@example((V4_TCP, TCP, 65536, 1000, GSOProto.TCP))  # a payload larger than any packet
@example((V4_TCP, TCP, 0, 1000, GSOProto.TCP))
@example((V4_TCP, TCP, 1000, 0, "not a proto"))  # the sizes are checked before the proto
@example((V4_TCP, TCP, 1000, 2**70, GSOProto.TCP))  # one fragment: gso_size 0 in the header
def test_c_and_pure_plan_even_gso_write_agree(call):
    assert _ckernels is not None
    got_c = outcome(_ckernels.plan_even_gso_write, *call)
    got_pure = outcome(py_plan_even_gso_write, *call)
    assert got_c == got_pure, "the C plan_even_gso_write must match its pure twin: result, exception type and message"


@SETTINGS
@given(write_gso_calls(), st.integers(1, 1500), st.integers(1, 300), st.integers(0, 1499))
def test_even_plan_is_the_plan_of_the_same_fragments(call, size, count, shorter):
    """EvenFragments' constant-time check lets through exactly what plan_gso_write does for its slices."""
    ip_hdr, l4_hdr, _, proto = call
    payload_bytes = size * count - shorter % size  # the last fragment may be shorter
    fragments = [ZEROS[i : i + size] for i in range(0, payload_bytes, size)]
    even = outcome(py_plan_even_gso_write, ip_hdr, l4_hdr, payload_bytes, size, proto)
    listed = outcome(py_plan_gso_write, ip_hdr, l4_hdr, fragments, proto)
    if payload_bytes > 65535:  # refused up front, before the headers are looked at
        assert even[0] == "raised" and listed[0] == "raised"
    else:
        assert even == listed, "plan_even_gso_write must agree with plan_gso_write on the same fragments"
