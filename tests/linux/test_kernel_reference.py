"""The kernel is the reference for what a superpacket may be, settled on a real TUN.

Each test writes a superpacket into a TSO/USO TUN and reads what the kernel
delivers on a second, plain TUN after routing it (see kernel_path.py). Where
the kernel refuses or drops a superpacket, tio refuses it too; where it
segments one, tio's segments are byte for byte the kernel's. Where tio
deliberately refuses geometry the kernel would still segment (hostile
sizes), gso_info_from_vnet and segment() refuse it alike, so a read never
hands out a superpacket that cannot be segmented.
"""

from __future__ import annotations

import os

import pytest

from tests.linux.kernel_path import (
    EINVAL,
    KernelPath,
    authentication,
    destination_options,
    fragment_header,
    hop_by_hop,
    routing_done,
    superpacket,
    tio_segments,
)
from tio_core import kernels
from tio_core.contract import GSOProto
from tio_core.errors import GSOGeometryError, MalformedPacket
from tio_core.kernels.gso_write import MAX_GSO_SEGMENTS, plan_gso_write
from tio_core.wire import GSO_ECN, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG

TCP, UDP = 6, 17
TCP_ACK = 0x10


@pytest.fixture(scope="module")
def kernel():
    path = KernelPath()
    yield path
    path.close()


def refusal(call):
    """The MalformedPacket message of call(), or None if it succeeded."""
    try:
        call()
    except MalformedPacket as exc:
        return str(exc)
    return None


# -- segment-count limits (issue 12, item 6) -----------------------------------------
@pytest.mark.parametrize("version", [4, 6])
def test_kernel_udp_gso_limit_is_tios_cap(kernel, version):
    cap = MAX_GSO_SEGMENTS[GSOProto.UDP]
    at_cap = superpacket(version, UDP, os.urandom(100 * cap), 100)
    assert len(kernel.segment(at_cap, expect=cap)) == cap, "the kernel takes a UDP GSO write of tio's cap"
    for payload in (100 * cap + 1, 100 * (cap + 1)):
        over = superpacket(version, UDP, os.urandom(payload), 100)
        assert kernel.segment(over) == EINVAL, "the kernel refuses one UDP GSO segment more than tio's cap"
    ip_hdr, l4_hdr = at_cap.data[: at_cap.vnet.csum_start], at_cap.data[at_cap.vnet.csum_start : at_cap.vnet.hdr_len]
    assert plan_gso_write(ip_hdr, l4_hdr, [b"x" * 100] * cap, GSOProto.UDP) is not None
    with pytest.raises(GSOGeometryError, match=f"{cap + 1} fragments, the kernel takes at most {cap} UDP segments"):
        plan_gso_write(ip_hdr, l4_hdr, [b"x" * 100] * (cap + 1), GSOProto.UDP)


@pytest.mark.parametrize("version", [4, 6])
def test_kernel_tcp_gso_has_no_segment_limit_below_64k(kernel, version):
    payload = 65535 - 60 - 20
    sp = superpacket(version, TCP, os.urandom(payload), 1)
    delivered = kernel.segment(sp, expect=payload)
    assert len(delivered) == payload, "the kernel segments 64 KiB of TCP at gso_size 1"
    assert MAX_GSO_SEGMENTS[GSOProto.TCP] < payload, "tio's TCP cap (the writev budget) is below the kernel's"
    # tio refuses this hostile geometry on purpose (MAX_SEGMENT_COUNT); validation and segmentation agree
    from_vnet = refusal(lambda: kernels.gso_info_from_vnet(sp.vnet, sp.data))
    assert from_vnet is not None and "segments" in from_vnet
    assert refusal(lambda: tio_segments(sp)) == from_vnet, "gso_info_from_vnet and segment() refuse alike"


# -- TCP flags (item 10) -----------------------------------------------------------------
FLAG_CASES = {
    "SYN": TCP_SYN,
    "RST": TCP_RST,
    "SYN+ACK": TCP_SYN | TCP_ACK,
    "RST+ACK": TCP_RST | TCP_ACK,
    "FIN": TCP_FIN,
    "FIN+PSH+ACK": TCP_FIN | TCP_PSH | TCP_ACK,
    "URG+ACK": TCP_URG | TCP_ACK,
    "ECE+ACK": TCP_ECE | TCP_ACK,
    "CWR+ACK": TCP_CWR | TCP_ACK,
    "CWR+ECE": TCP_CWR | TCP_ECE,
    "all": 0xFF,
}


@pytest.mark.parametrize("ecn_bit", [False, True], ids=["plain-type", "ecn-type"])
@pytest.mark.parametrize("flags", FLAG_CASES.values(), ids=FLAG_CASES.keys())
@pytest.mark.parametrize("version", [4, 6])
def test_tcp_flags_are_segmented_as_the_kernel_does(kernel, version, flags, ecn_bit):
    sp = superpacket(version, TCP, os.urandom(3000), 1000, tcp_flags=flags, urgent=7 if flags & TCP_URG else 0)
    if ecn_bit:
        sp = sp._replace(vnet=sp.vnet._replace(gso_type=sp.vnet.gso_type | GSO_ECN))
    delivered = kernel.segment(sp, expect=3)
    assert len(delivered) == 3, "the kernel accepts and segments TCP superpackets whatever their flags"
    assert tio_segments(sp) == delivered, "tio copies SYN/RST/URG/ECE, keeps FIN/PSH last and CWR first, as the kernel"


# -- IPv6 extension headers (item 10) ------------------------------------------------------
CHAINS = {
    "hop-by-hop": [hop_by_hop()],
    "destination": [destination_options()],
    "routing": [routing_done()],
    "hbh+dst": [hop_by_hop(), destination_options()],
    "hbh twice": [hop_by_hop(), hop_by_hop()],
    "8000 hbh": [hop_by_hop()] * 8000,
}


@pytest.mark.parametrize("proto", [TCP, UDP], ids=["tcp", "udp"])
@pytest.mark.parametrize("chain", CHAINS.values(), ids=CHAINS.keys())
def test_ipv6_extension_chains_are_segmented_as_the_kernel_does(kernel, chain, proto):
    payload = 1000 if len(chain) > 1000 else 3000
    sp = superpacket(6, proto, os.urandom(payload), 500, ext_chain=chain)
    delivered = kernel.segment(sp, expect=payload // 500)
    assert len(delivered) == payload // 500, "the kernel segments superpackets behind these extension headers"
    assert kernels.gso_info_from_vnet(sp.vnet, sp.data) == sp.gso, "a read hands such a superpacket out"
    assert tio_segments(sp) == delivered, "tio segments behind extension headers byte for byte as the kernel"


@pytest.mark.parametrize("proto", [TCP, UDP], ids=["tcp", "udp"])
@pytest.mark.parametrize(
    "chain, named",
    [([authentication()], "AH"), ([hop_by_hop(), authentication(36)], "AH"), ([fragment_header()], "fragment")],
    ids=["ah", "hbh+ah-long", "fragment"],
)
def test_superpackets_the_kernel_drops_are_refused(kernel, chain, named, proto):
    plain = superpacket(6, proto, os.urandom(400), 500, ext_chain=chain)
    assert len(kernel.segment(plain._replace(vnet=plain.vnet._replace(gso_type=0)), expect=1)) == 1, (
        "the kernel forwards a plain packet with this header (control)"
    )
    sp = superpacket(6, proto, os.urandom(3000), 1000, ext_chain=chain)
    assert kernel.segment(sp) == [], "the kernel drops a superpacket behind this header"
    message = refusal(lambda: kernels.gso_info_from_vnet(sp.vnet, sp.data))
    assert message is not None and named in message, "tio refuses superpackets the kernel cannot segment"
    assert refusal(lambda: tio_segments(sp)) == message


# -- geometry validation and segmentation agree (item 10) -------------------------------
def test_hostile_extension_geometry_is_refused_by_validation_and_segmentation_alike(kernel):
    sp = superpacket(6, TCP, os.urandom(1000), 1, ext_chain=[hop_by_hop()] * 8000)
    delivered = kernel.segment(sp, expect=1000)
    assert len(delivered) == 1000 and len(delivered[0]) == 64061, "the kernel makes 64 MB of it"
    from_vnet = refusal(lambda: kernels.gso_info_from_vnet(sp.vnet, sp.data))
    assert from_vnet is not None and "above the" in from_vnet, "tio refuses more than MAX_SEGMENTED_SIZE of output"
    assert refusal(lambda: tio_segments(sp)) == from_vnet, "gso_info_from_vnet and segment() refuse alike"


@pytest.mark.parametrize("proto", [TCP, UDP], ids=["tcp", "udp"])
def test_payload_within_one_gso_size_is_one_packet(kernel, proto):
    sp = superpacket(4, proto, os.urandom(700), 1000)
    delivered = kernel.segment(sp, expect=1)
    assert len(delivered) == 1
    assert tio_segments(sp) == delivered, "a superpacket of one segment comes out as that one packet"
