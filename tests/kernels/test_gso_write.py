"""plan_gso_write: the one geometry check of every backend's write_gso (issue 12, items 6 and 11).

A write it lets through is one a Linux TUN takes, with pieces that agree
with each other; everything else is a GSOGeometryError before any syscall.
Every plan_gso_write test runs against the C version and its pure twin
(the `plan` fixture); test_gso_write_differential.py compares them on
hypothesis' pieces.
"""

import os
import struct
import subprocess
import sys

import pytest

from tio_core.contract import GSOProto
from tio_core.errors import GSOGeometryError
from tio_core.kernels import gso_write
from tio_core.kernels.gso_write import MAX_GSO_SEGMENTS, plan_even_gso_write, py_plan_gso_write
from tio_core.kernels.native import PURE_ENV, built_extension
from tio_core.wire import GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, VirtioNetHdr

SRC4, DST4 = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
SRC6, DST6 = bytes.fromhex("fd00" + "0" * 27 + "1"), bytes.fromhex("fd00" + "0" * 27 + "2")


def ipv4(proto=6, ihl=5, options=b""):
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 0, 1, 0x4000, 64, proto, 0, SRC4, DST4) + options


def ipv6(next_header=6, chain=b""):
    return struct.pack("!IHBB16s16s", 6 << 28, 0, next_header, 64, SRC6, DST6) + chain


def tcp(doff=5, options=b""):
    return struct.pack("!HHIIBBHHH", 1, 2, 100, 5, doff << 4, 0x10, 512, 0, 0) + options


UDP = struct.pack("!HHHH", 1, 2, 0, 0)
HOP_BY_HOP = bytes([6, 0, 1, 4, 0, 0, 0, 0])  # next header TCP, one PadN option

PLANNERS = {"pure": py_plan_gso_write}
if (_ckernels := built_extension()) is not None:
    PLANNERS["c"] = _ckernels.plan_gso_write


@pytest.fixture(params=sorted(PLANNERS))
def plan(request):
    """Each plan_gso_write implementation in turn (the C one and its pure twin)."""
    return PLANNERS[request.param]


def test_agreeing_pieces_give_the_kernels_header(plan):
    assert plan(ipv4(), tcp(), [b"a" * 100] * 3, GSOProto.TCP) == VirtioNetHdr(NEEDS_CSUM, GSO_TCPV4, 40, 100, 20, 16)
    options = tcp(8, bytes(12))
    assert plan(ipv4(17, 7, bytes(8)), UDP, [b"a"] * 2, GSOProto.UDP).gso_type == GSO_UDP_L4
    assert plan(ipv6(0, HOP_BY_HOP), options, [b"a"] * 2, GSOProto.TCP) == VirtioNetHdr(
        NEEDS_CSUM, GSO_TCPV6, 80, 1, 48, 16
    )
    assert plan(ipv4(), tcp(), [b"a" * 100], GSOProto.TCP).gso_type == GSO_NONE


@pytest.mark.parametrize(
    ("ip_hdr", "l4_hdr", "proto", "message"),
    [
        (ipv4(17), tcp(), GSOProto.TCP, "IP protocol 17 does not match GSO proto TCP"),
        (ipv4(6), UDP, GSOProto.UDP, "IP protocol 6 does not match GSO proto UDP"),
        (ipv6(17), tcp(), GSOProto.TCP, "IP protocol 17 does not match GSO proto TCP"),
        (ipv6(0, HOP_BY_HOP), UDP, GSOProto.UDP, "IP protocol 6 does not match GSO proto UDP"),
        (ipv4(ihl=6), tcp(), GSOProto.TCP, "IHL says 24 header bytes, ip_hdr has 20"),
        (ipv4(ihl=5, options=bytes(4)), tcp(), GSOProto.TCP, "IHL says 20 header bytes, ip_hdr has 24"),
        (ipv4(), tcp(6), GSOProto.TCP, "TCP data offset says 24 header bytes, transport_hdr has 20"),
        (ipv4(), tcp(5, bytes(4)), GSOProto.TCP, "TCP data offset says 20 header bytes, transport_hdr has 24"),
        (ipv4(17), UDP + bytes(4), GSOProto.UDP, "UDP header is 12 bytes, must be 8"),
        (ipv6(51, bytes([6, 4]) + bytes(22)), tcp(), GSOProto.TCP, "AH header in a superpacket"),
        (ipv6(44, bytes([6]) + bytes(7)), tcp(), GSOProto.TCP, "fragment header in a superpacket"),
        (ipv6(0, HOP_BY_HOP + bytes(8)), tcp(), GSOProto.TCP, "not an extension header"),
    ],
)
def test_pieces_that_disagree_are_refused(plan, ip_hdr, l4_hdr, proto, message):
    for payloads in ([b"a" * 100] * 3, [b"a" * 100]):  # a superpacket or a single segment alike
        with pytest.raises(GSOGeometryError, match=message):
            plan(ip_hdr, l4_hdr, payloads, proto)
            pytest.fail("write_gso pieces must agree: IP protocol, IHL, TCP data offset, UDP header size")
        with pytest.raises(GSOGeometryError, match=message):
            plan_even_gso_write(ip_hdr, l4_hdr, 300, 100, proto)


def test_segment_caps_are_per_protocol(plan):
    assert MAX_GSO_SEGMENTS == {GSOProto.TCP: 250, GSOProto.UDP: 128}
    for proto, ip_hdr, l4_hdr in ((GSOProto.TCP, ipv4(), tcp()), (GSOProto.UDP, ipv4(17), UDP)):
        cap = MAX_GSO_SEGMENTS[proto]
        assert plan(ip_hdr, l4_hdr, [b"x"] * cap, proto).gso_size == 1
        assert plan_even_gso_write(ip_hdr, l4_hdr, cap, 1, proto).gso_size == 1
        with pytest.raises(GSOGeometryError, match=f"{cap + 1} fragments"):
            plan(ip_hdr, l4_hdr, [b"x"] * (cap + 1), proto)
            pytest.fail(f"a {proto.name} write_gso carries at most {cap} segments")
        with pytest.raises(GSOGeometryError, match=f"{cap + 1} fragments"):
            plan_even_gso_write(ip_hdr, l4_hdr, cap + 1, 1, proto)


@pytest.mark.parametrize(("ip_hdr", "l4_hdr", "proto"), [(ipv4(), tcp(), GSOProto.TCP), (ipv6(17), UDP, GSOProto.UDP)])
def test_a_superpacket_may_be_exactly_65535_bytes_counting_its_headers(plan, ip_hdr, l4_hdr, proto):
    room = 65535 - len(ip_hdr) - len(l4_hdr)
    exact = [b"x" * 1000] * (room // 1000) + [b"x" * (room % 1000)]
    assert plan(ip_hdr, l4_hdr, exact, proto).hdr_len == len(ip_hdr) + len(l4_hdr)
    assert plan_even_gso_write(ip_hdr, l4_hdr, room, 1000, proto) == plan(ip_hdr, l4_hdr, exact, proto)
    with pytest.raises(GSOGeometryError, match="would be 65536 bytes, at most 65535"):
        plan(ip_hdr, l4_hdr, [*exact[:-1], exact[-1] + b"x"], proto)
        pytest.fail("a superpacket never exceeds 65535 bytes, its IP and L4 headers included")
    with pytest.raises(GSOGeometryError, match="would be 65536 bytes, at most 65535"):
        plan_even_gso_write(ip_hdr, l4_hdr, room + 1, 1000, proto)


def _selected_kernels(pure_env):
    env = {k: v for k, v in os.environ.items() if k != PURE_ENV}
    if pure_env is not None:
        env[PURE_ENV] = pure_env
    code = (
        "from tio_core.kernels import gso_write, readloop\n"
        "for fn in (gso_write.plan_gso_write, gso_write.plan_even_gso_write, readloop.read_batch):\n"
        "    print(fn.__module__)"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_write_planners_and_read_loop_are_c_when_built_and_the_twins_under_tio_pure():
    twins = ["tio_core.kernels.gso_write", "tio_core.kernels.gso_write", "tio_core.kernels.readloop"]
    assert _selected_kernels("1").split() == twins, "TIO_PURE=1 selects the pure twins"
    expected = twins if built_extension() is None else ["tio_core._ckernels"] * 3
    assert _selected_kernels(None).split() == expected, "the C planners and read loop are used when built"


@pytest.mark.skipif(built_extension() is None, reason="the C extension is not built")
def test_the_fragment_cap_is_one_value_in_c_and_python():
    assert built_extension().MAX_GSO_FRAGMENTS == gso_write.MAX_GSO_FRAGMENTS, "MAX_GSO_FRAGMENTS: C copy != twin's"
