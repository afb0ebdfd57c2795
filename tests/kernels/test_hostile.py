"""Hostile and odd inputs: typed errors, never a crash, never a write out of bounds."""

import random

import pytest

from tests.support.packets import superpacket
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.errors import MalformedPacket, TioError
from tio_core.wire import VirtioNetHdr


def test_non_contiguous_and_released_buffers(k):
    strided = memoryview(bytearray(100))[::2]
    for call in (
        lambda: k.checksum(strided),
        lambda: k.ipv4_header_checksum(strided),
        lambda: k.finish_checksum(strided, VirtioNetHdr(1, 0, 0, 0, 0, 6)),
        lambda: k.gso_info_from_vnet(VirtioNetHdr(), strided),
        lambda: k.segment(Packet(strided, GSOInfo(10, 28, 20, GSOProto.UDP))),
    ):
        with pytest.raises(BufferError):
            call()
    released = memoryview(b"abc")
    released.release()
    with pytest.raises(ValueError):
        k.checksum(released)
    with pytest.raises(TypeError):
        k.checksum("not bytes")


def test_malformed_packet_is_a_tio_value_error(k):
    with pytest.raises(MalformedPacket) as info:
        k.gso_info_from_vnet(VirtioNetHdr(4), b"")
    assert isinstance(info.value, TioError) and isinstance(info.value, ValueError)


def test_segment_into_refuses_its_own_output_as_input(k):
    packet, _ = superpacket(4, GSOProto.TCP, 3000, 1000)
    out = bytearray(20000)
    out[: len(packet.data)] = packet.data
    aliased = Packet(memoryview(out)[: len(packet.data)], packet.gso)
    with pytest.raises(ValueError, match="output buffer"):
        k.segment_into(aliased, out)


def test_segments_are_independent_writable_views(k):
    packet, _ = superpacket(6, GSOProto.TCP, 3000, 1000)
    segments = k.segment(packet)
    assert [s.readonly for s in segments] == [False] * 3
    assert all(s.contiguous and s.format == "B" and s.nbytes == len(s) for s in segments)
    before = [bytes(s) for s in segments]
    segments[1][:] = bytes(len(segments[1]))
    assert bytes(segments[0]) == before[0] and bytes(segments[2]) == before[2]
    assert bytes(segments[1][2:5]) == b"\0\0\0"  # slicing a segment view works


def test_random_byte_soup_never_crashes(k):
    rng = random.Random(1234)
    valid = [superpacket(v, p, 1500, 500)[0] for v in (4, 6) for p in (GSOProto.TCP, GSOProto.UDP)]
    for _ in range(3000):
        base = rng.choice(valid)
        data = bytearray(base.data)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randint(0, len(data))]
        gso = base.gso._replace(
            size=rng.choice([base.gso.size, 1, 65535]), csum_start=rng.choice([base.gso.csum_start, rng.randrange(80)])
        )
        hdr = VirtioNetHdr(
            rng.randrange(8), rng.choice([1, 4, 5, 0x81]), rng.randrange(200), 500, gso.csum_start, rng.choice([6, 16])
        )
        for call, args in (
            (k.segment, (Packet(memoryview(bytes(data)), gso),)),
            (k.gso_info_from_vnet, (hdr, data)),
            (k.finish_checksum, (bytearray(data), hdr)),
        ):
            try:
                call(*args)
            except MalformedPacket:
                pass
