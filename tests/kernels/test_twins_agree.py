"""Fixed inputs on which the C kernels and their pure twins once disagreed (issue 12, item 12).

Each test states the rule: the same result, or the same exception type and
message, for the same input.
"""

import ctypes

import pytest

from tests.support.packets import superpacket
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.errors import MalformedPacket
from tio_core.kernels import _pykernels as pure
from tio_core.wire import VirtioNetHdr

from .conftest import IMPLEMENTATIONS

pytestmark = pytest.mark.skipif("c" not in IMPLEMENTATIONS, reason="C kernels not built")
c = IMPLEMENTATIONS.get("c")


def outcome(fn, *args):
    try:
        result = fn(*args)
    except Exception as exc:  # noqa: BLE001 - any exception is compared
        return ("raised", type(exc), str(exc))
    return ("ok", [bytes(s) for s in result] if isinstance(result, list) else result)


def agree(name, *args):
    got_c, got_pure = outcome(getattr(c, name), *args), outcome(getattr(pure, name), *args)
    assert got_c == got_pure, f"C and pure {name} must agree on the same input"
    return got_c


@pytest.mark.parametrize("offset", [0, 100], ids=["at-start", "inside"])
def test_output_buffer_reached_through_a_second_exporter_is_refused_by_both(offset):
    packet, _ = superpacket(4, GSOProto.TCP, 3000, 1000)
    size = len(packet.data)
    for k in (c, pure):
        out = bytearray(20000)
        out[offset : offset + size] = packet.data
        alias = (ctypes.c_char * size).from_buffer(out, offset)  # a ctypes array exports out's memory
        aliased = Packet(memoryview(alias).cast("B"), packet.gso)
        before = bytes(out)
        with pytest.raises(ValueError, match="the packet's bytes live in the output buffer"):
            k.segment_into(aliased, out)
            pytest.fail(f"{k.__name__}.segment_into must refuse input that aliases its output")
        assert bytes(out) == before, "a refused segment_into leaves the output buffer as it was"
        del aliased, alias


def test_input_beside_the_output_buffer_is_not_mistaken_for_an_alias():
    packet, _ = superpacket(6, GSOProto.UDP, 3000, 1000)
    for k in (c, pure):
        out = bytearray(len(packet.data) + 20000)
        out[: len(packet.data)] = packet.data
        source = bytearray(packet.data)  # equal bytes, other memory
        assert len(k.segment_into(Packet(memoryview(source), packet.gso), out)) == 3


@pytest.mark.parametrize(
    "gso",
    [(1000, 40, 20, 1), (1000, 40, 20, GSOProto.TCP), [1000, 40, 20, 1], (0, 40, 20, 1), (-5, 0, 0, 0)],
    ids=["tuple", "tuple-with-enum", "list", "plain-size-0", "plain-negative"],
)
def test_gso_as_a_plain_sequence_agrees(gso):
    packet, _ = superpacket(4, GSOProto.TCP, 3000, 1000)
    plain = Packet(packet.data, gso)
    for name in ("segmented_size", "segment"):
        assert agree(name, plain)[0] == "ok", f"{name} takes a GSOInfo given as a plain sequence"
    assert agree("segment_into", plain, bytearray(10))[0] == "ok"


@pytest.mark.parametrize("gso", [(1000, 40, 20), (1000, 40, 20, 1, 0), (b"x", 40, 20, 1), (1000, "x", 20, 1)])
def test_malformed_gso_sequences_raise_the_same_error(gso):
    packet, _ = superpacket(4, GSOProto.TCP, 3000, 1000)
    assert agree("segment", Packet(packet.data, gso))[0] == "raised"


NOT_BUFFERS = ["text", None, 5, 3.5, object()]


@pytest.mark.parametrize("value", NOT_BUFFERS, ids=lambda v: type(v).__name__)
def test_non_buffer_input_gives_the_same_message(value):
    hdr = VirtioNetHdr(1, 0, 0, 0, 0, 6)
    for name, args in {
        "checksum": (value,),
        "pseudo_header_sum": (value, b"abcd", 6, 20),
        "ipv4_header_checksum": (value,),
        "finish_checksum": (value, hdr),
        "gso_info_from_vnet": (hdr, value),
        "segment": (Packet(value, GSOInfo(1000, 40, 20, GSOProto.TCP)),),
        "segmented_size": (Packet(value, GSOInfo(1000, 40, 20, GSOProto.TCP)),),
    }.items():
        result = agree(name, *args)
        assert result[0] == "raised" and result[1] is TypeError, f"{name} refuses non-buffer input with TypeError"


def test_hostile_geometry_is_bounded_the_same_way_in_both():
    # 64 KiB at gso size 1: the C loop took 55 ms, the pure one seconds; both now refuse it up front
    packet, _ = superpacket(4, GSOProto.TCP, 65535 - 40, 1)
    for name in ("segmented_size", "segment"):
        result = agree(name, packet)
        assert result[:2] == ("raised", MalformedPacket), f"{name} refuses more than MAX_SEGMENT_COUNT segments"
        assert f"above the {pure.MAX_SEGMENT_COUNT}-segment limit" in result[2]
    hdr = VirtioNetHdr(1, 1, 40, 1, 20, 16)
    assert agree("gso_info_from_vnet", hdr, bytes(packet.data)) == agree("segment", packet), (
        "a read refuses what segment() refuses"
    )
    at_limit, _ = superpacket(4, GSOProto.TCP, pure.MAX_SEGMENT_COUNT, 1)
    assert len(agree("segment", at_limit)[1]) == pure.MAX_SEGMENT_COUNT


def test_the_segment_limits_are_the_same_in_both():
    assert (c.MAX_SEGMENT_COUNT, c.MAX_SEGMENTED_SIZE) == (pure.MAX_SEGMENT_COUNT, pure.MAX_SEGMENTED_SIZE)
