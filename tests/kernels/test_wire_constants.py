"""One definition per fact: the C kernels' constants (csrc/wire.h) equal tio_core.wire's.

The extension exports every wire fact it is built on under wire.py's name; a
change on one side only fails here, naming the constant.
"""

import struct

import pytest

from tio_core import wire
from tio_core.coalesce import _pycoalesce
from tio_core.contract import GSOProto
from tio_core.kernels import _pykernels
from tio_core.kernels.native import built_extension

C = built_extension()
pytestmark = pytest.mark.skipif(C is None, reason="the C extension is not built")

WIRE_INTS = {name: value for name, value in vars(wire).items() if name.isupper() and type(value) is int}


def test_wire_has_the_facts_the_kernels_need():
    assert {"MAX_IP_PACKET", "GSO_TCPV4", "TCP_CSUM_OFFSET", "IPV4_DF", "TCP_CWR"} <= set(WIRE_INTS)


@pytest.mark.parametrize("name", sorted(WIRE_INTS))
def test_c_exports_each_wire_constant_with_the_same_value(name):
    assert hasattr(C, name), f"csrc/wire.h does not export {name}, which tio_core.wire defines"
    assert getattr(C, name) == WIRE_INTS[name], (
        f"{name}: C says {getattr(C, name)}, tio_core.wire says {WIRE_INTS[name]}"
    )


def test_c_exports_no_wire_constant_that_python_lacks():
    exported = {name for name in dir(C) if name.isupper() and type(getattr(C, name)) is int}
    # the kernels' own limits, tied to the pure twins below and in test_gso_write.py
    limits = {"MAX_SEGMENTED_SIZE", "MAX_SEGMENT_COUNT", "MAX_GSO_FRAGMENTS"}
    assert exported - limits <= set(WIRE_INTS), f"C-only constants: {sorted(exported - limits - set(WIRE_INTS))}"


def test_segmentation_limit_is_the_same_in_c_and_in_the_pure_twin():
    assert C.MAX_SEGMENTED_SIZE == _pykernels.MAX_SEGMENTED_SIZE
    assert C.MAX_SEGMENT_COUNT == _pykernels.MAX_SEGMENT_COUNT


SRC6, DST6 = bytes([0xFD] + [0] * 14 + [1]), bytes([0xFD] + [0] * 14 + [2])


def _tcp6(seq: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", 40000, 443, seq, 1, 5 << 4, wire.TCP_ACK, 512, 0, 0)
    return (
        struct.pack("!IHBB16s16s", 0x60000000, len(tcp) + len(payload), wire.IPPROTO_TCP, 64, SRC6, DST6)
        + tcp
        + payload
    )


@pytest.mark.parametrize("planner", ["c", "pure"])
def test_both_planners_take_exactly_wires_ipv6_extension_headers(planner):
    """csrc/coalesce.c lists the IPv6 extension headers in a switch over wire.h's names; this ties that list
    (and the pure twin's) to wire.IPV6_EXTENSION_HEADERS: a probe with such a next header seals the open run."""
    plan = C.coalesce_plan if planner == "c" else _pycoalesce.plan
    first, second = _tcp6(1, b"a" * 10), _tcp6(11, b"b" * 10)
    sealing = set()
    for next_header in range(256):
        if next_header in (wire.IPPROTO_TCP, wire.IPPROTO_UDP):
            continue  # a 40-byte probe of these is a cut-off TCP/UDP packet, which seals for its own reason
        probe = struct.pack("!IHBB16s16s", 0x60000000, 0, next_header, 64, SRC6, DST6)
        writes = plan([first, probe, second], True, True, False, (GSOProto.TCP, GSOProto.UDP))
        if len(writes) == 3:
            sealing.add(next_header)
    assert sealing == set(wire.IPV6_EXTENSION_HEADERS), (
        f"one definition per fact: the {planner} planner's IPv6 extension headers differ from "
        f"wire.IPV6_EXTENSION_HEADERS by {sorted(sealing ^ wire.IPV6_EXTENSION_HEADERS)}"
    )
