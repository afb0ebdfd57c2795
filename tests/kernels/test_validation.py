"""gso_info_from_vnet: every validation rule, and the hdr_len correction."""

import pytest

from tests.support.packets import superpacket
from tio_core import wire
from tio_core.contract import NO_GSO, GSOInfo, GSOProto
from tio_core.errors import MalformedPacket
from tio_core.wire import VirtioNetHdr

TYPES = {
    (4, GSOProto.TCP): wire.GSO_TCPV4,
    (6, GSOProto.TCP): wire.GSO_TCPV6,
    (4, GSOProto.UDP): wire.GSO_UDP_L4,
    (6, GSOProto.UDP): wire.GSO_UDP_L4,
}


def kernel_view(version=4, proto=GSOProto.TCP, **kw):
    """A superpacket plus the virtio_net_hdr a kernel would put in front of it."""
    packet, _ = superpacket(version, proto, 3000, 1448, **kw)
    gso = packet.gso
    offset = 16 if proto == GSOProto.TCP else 6
    # the kernel's hdr_len may span the whole first segment
    hdr = VirtioNetHdr(wire.NEEDS_CSUM, TYPES[version, proto], gso.hdr_len + 1448, 1448, gso.csum_start, offset)
    return hdr, bytearray(packet.data), gso


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("proto", [GSOProto.TCP, GSOProto.UDP])
def test_valid_superpacket_gives_corrected_gsoinfo(k, version, proto):
    hdr, data, gso = kernel_view(version, proto)
    info = k.gso_info_from_vnet(hdr, data)
    assert info == gso and isinstance(info, GSOInfo)
    assert info.proto is proto
    assert info.hdr_len == gso.csum_start + (20 if proto == GSOProto.TCP else 8)


def test_hdr_len_from_tcp_data_offset_and_ext_headers(k):
    hdr, data, gso = kernel_view(
        4, GSOProto.TCP, tcp_options=[("MSS", 1400), ("NOP", None), ("NOP", None), ("SAckOK", b"")]
    )
    assert k.gso_info_from_vnet(hdr._replace(hdr_len=0), data).hdr_len == 20 + 28
    hdr, data, gso = kernel_view(6, GSOProto.UDP, ext_headers=2)
    assert k.gso_info_from_vnet(hdr, data) == GSOInfo(1448, 64, 56, GSOProto.UDP)
    hdr, data, _ = kernel_view(4, GSOProto.TCP)
    assert k.gso_info_from_vnet(hdr._replace(gso_type=wire.GSO_TCPV4 | wire.GSO_ECN), data).proto == GSOProto.TCP


def test_gso_none_gives_no_gso(k):
    hdr, data, _ = kernel_view()
    assert k.gso_info_from_vnet(VirtioNetHdr(), data) is NO_GSO or k.gso_info_from_vnet(VirtioNetHdr(), data) == NO_GSO
    assert k.gso_info_from_vnet(VirtioNetHdr(wire.DATA_VALID), b"") == NO_GSO
    assert k.gso_info_from_vnet(hdr._replace(gso_type=wire.GSO_NONE, gso_size=0), data) == NO_GSO


CASES = {
    "rsc_info": (lambda h, d: (h._replace(flags=wire.NEEDS_CSUM | wire.RSC_INFO), d), "RSC_INFO"),
    "short_v4": (lambda h, d: (h, d[:19]), "shorter than an IPv4 header"),
    "short_v6": (
        lambda h, d: (h._replace(gso_type=wire.GSO_TCPV6), bytes([0x60]) + d[1:39]),
        "shorter than an IPv6 header",
    ),
    "empty": (lambda h, d: (h, b""), "IP version 0"),
    "version_5": (lambda h, d: (h, bytes([0x55]) + d[1:]), "IP version 5"),
    "gso_size_0": (lambda h, d: (h._replace(gso_size=0), d), "gso_size 0"),
    "ecn_on_udp": (lambda h, d: (h._replace(gso_type=wire.GSO_UDP_L4 | wire.GSO_ECN), d), "ECN"),
    "ecn_on_none": (lambda h, d: (h._replace(gso_type=wire.GSO_NONE | wire.GSO_ECN), d), "ECN"),
    "tcpv6_on_v4": (lambda h, d: (h._replace(gso_type=wire.GSO_TCPV6), d), "IPv4 packet"),
    "tcpv4_on_v6": (lambda h, d: (h._replace(gso_type=wire.GSO_TCPV4), kernel_view(6)[1]), "IPv6 packet"),
    "v4_fragment_mf": (lambda h, d: (h, d[:6] + bytes([0x20 | d[6]]) + d[7:]), "fragment"),
    "v4_fragment_offset": (lambda h, d: (h, d[:7] + b"\x01" + d[8:]), "fragment"),
    "legacy_udp": (lambda h, d: (h._replace(gso_type=wire.GSO_UDP), d), "legacy UDP"),
    "unknown_type": (lambda h, d: (h._replace(gso_type=2), d), "unknown GSO type"),
    "csum_start_outside": (lambda h, d: (h._replace(csum_start=len(d)), d), "outside"),
    "csum_start_mismatch": (lambda h, d: (h._replace(csum_start=24), d), "csum_start 24"),
    "csum_offset_wrong": (lambda h, d: (h._replace(csum_offset=6), d), "csum_offset"),
    "hdr_len_outside": (lambda h, d: (h._replace(hdr_len=len(d) + 1), d), "hdr_len"),
    "tcp_doff_small": (lambda h, d: (h, d[:32] + bytes([0x40]) + d[33:]), "data offset 16"),
    "tcp_hdr_cut": (lambda h, d: (h._replace(hdr_len=0), d[:35]), "does not fit"),
    "tcp_options_cut": (lambda h, d: (h._replace(hdr_len=0), d[:32] + bytes([0xF0]) + d[33:50]), "beyond"),
    "proto_mismatch": (lambda h, d: (h._replace(gso_type=wire.GSO_UDP_L4), d), "protocol 6"),
    "none_csum_outside": (lambda h, d: (h._replace(gso_type=wire.GSO_NONE, csum_offset=len(d)), d), "outside"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_superpackets_are_rejected(k, case):
    make, message = CASES[case]
    hdr, data, _ = kernel_view()
    bad_hdr, bad_data = make(hdr, data)
    with pytest.raises(MalformedPacket, match=message):
        k.gso_info_from_vnet(bad_hdr, bad_data)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d.__setitem__(6, 44), "fragment"),  # fragment header before UDP
        (lambda d: d.__setitem__(41, 3), "not at csum_start"),  # hop-by-hop length now too long
        (lambda d: d.__setitem__(6, 59), "not an extension header"),
    ],
)
def test_ipv6_extension_chain_must_reach_csum_start(k, mutate, message):
    hdr, data, _ = kernel_view(6, GSOProto.UDP, ext_headers=2)
    mutate(data)
    with pytest.raises(MalformedPacket, match=message):
        k.gso_info_from_vnet(hdr, data)


def test_ipv6_ext_header_cut_off(k):
    hdr, data, _ = kernel_view(6, GSOProto.UDP, ext_headers=2)
    data = data[:41]
    with pytest.raises(MalformedPacket):
        k.gso_info_from_vnet(hdr._replace(csum_start=56), data)
