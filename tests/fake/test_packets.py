"""PacketFactory output checked against scapy and the packet kernels."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from tio_core import kernels
from tio_core.contract import GSOProto
from tio_core.errors import MalformedPacket
from tio_fake import check_ip_packet, open_fake
from tio_fake.packets import MALFORMED_KINDS, PacketFactory, payload_pattern

FACTORY = PacketFactory()


def test_payload_pattern_is_a_continuous_stream():
    whole = payload_pattern(1000)
    assert payload_pattern(300, 700) == whole[700:] and len(whole) == 1000
    assert whole[250:252] == bytes([250, 0])


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_matches_scapy_byte_for_byte(version):
    ip = (
        IP(src="198.18.0.2", dst="198.18.0.1", ttl=33, tos=8, flags="DF", id=77)
        if version == 4
        else IPv6(src="fd00::2", dst="fd00::1", hlim=33, tc=8)
    )
    want = ip / TCP(sport=1234, dport=80, seq=99, ack=5, flags="PA", window=1000) / Raw(b"hello")
    got = FACTORY.tcp(
        b"hello", version=version, sport=1234, dport=80, seq=99, ack=5, flags="PA", window=1000, ttl=33, tos=8, ip_id=77
    )
    assert got == bytes(want)


@pytest.mark.parametrize("payload", [b"", b"x", b"odd-length!"])
def test_udp_matches_scapy_byte_for_byte(payload):
    want = IPv6(src="fd00::5", dst="fd00::6") / UDP(sport=53, dport=5353) / Raw(payload)
    assert FACTORY.udp(payload, src="fd00::5", dst="fd00::6", sport=53, dport=5353) == bytes(want)
    want4 = IP(src="198.19.1.1", dst="198.19.1.2", flags="DF", id=9) / UDP(sport=53, dport=5353) / Raw(payload)
    assert FACTORY.udp(payload, src="198.19.1.1", dst="198.19.1.2", sport=53, dport=5353, ip_id=9) == bytes(want4)


def test_tcp_options_are_kept():
    data = FACTORY.tcp(b"x", tcp_options=(("MSS", 1400), ("NOP", None), ("WScale", 7)))
    assert IP(data)[TCP].dataofs == 7 and PacketFactory.checksums_valid(data)  # 8 option bytes


def test_tcp_flow_progression():
    flow = FACTORY.tcp_flow(50, 100, seq=2**32 - 150, ip_id=65530, last_flags="FPA")
    parsed = [IP(p) for p in flow]
    assert [p.id for p in parsed[:7]] == [65530, 65531, 65532, 65533, 65534, 65535, 0]
    assert [p[TCP].seq for p in parsed[:3]] == [2**32 - 150, 2**32 - 50, 50]
    assert b"".join(bytes(p[TCP].payload) for p in parsed) == payload_pattern(5000)
    assert str(parsed[-1][TCP].flags) == "FPA" and str(parsed[0][TCP].flags) == "A"
    assert all(PacketFactory.checksums_valid(p) for p in flow)


def test_udp_flow_with_given_payload_and_short_last():
    flow = FACTORY.udp_flow(3, 400, payload=b"z" * 1000, version=6)
    assert [len(IPv6(p)[UDP].payload) for p in flow] == [400, 400, 200]
    assert all(PacketFactory.checksums_valid(p) for p in flow)
    with pytest.raises(ValueError, match="not 4"):
        FACTORY.udp_flow(4, 400, payload=b"z" * 1000)


@pytest.mark.parametrize("version", [4, 6])
def test_tso_superpacket_segments_into_the_equivalent_flow(version):
    payload = payload_pattern(4321, 17)
    superpacket = FACTORY.tso(payload, 1000, seq=500, ip_id=40, flags="PA", version=version)
    assert superpacket.gso.is_superpacket and superpacket.gso.proto == GSOProto.TCP
    assert superpacket.gso.hdr_len == superpacket.gso.csum_start + 20
    segments = [bytes(s) for s in kernels.segment(superpacket)]
    assert segments == FACTORY.tcp_flow(
        5, 1000, payload=payload, seq=500, ip_id=40, flags="A", last_flags="PA", version=version
    )
    assert all(PacketFactory.checksums_valid(s) for s in segments)


@pytest.mark.parametrize("version", [4, 6])
def test_uso_superpacket_segments_into_the_equivalent_datagrams(version):
    payload = payload_pattern(2500)
    superpacket = FACTORY.uso(payload, 1200, ip_id=7, version=version)
    assert superpacket.gso.hdr_len == superpacket.gso.csum_start + 8
    segments = [bytes(s) for s in kernels.segment(superpacket)]
    assert segments == FACTORY.udp_flow(3, 1200, payload=payload, ip_id=7, version=version)


def test_superpacket_carries_kernel_like_partial_checksum():
    superpacket = FACTORY.tso(3000, 1000)
    data = bytearray(superpacket.data)
    # Finishing the partial as a NEEDS_CSUM packet gives the valid checksum of the whole superpacket.
    kernels.finish_checksum(data, PacketFactory.vnet_header(superpacket)._replace(gso_type=0, gso_size=0))
    assert PacketFactory.checksums_valid(bytes(data))
    assert kernels.gso_info_from_vnet(PacketFactory.vnet_header(superpacket), superpacket.data) == superpacket.gso


def test_superpackets_are_accepted_by_the_fake():
    with open_fake() as queue_set:
        queue_set.inject(FACTORY.tso(5000, 1400, version=6), FACTORY.uso(3000, 1000))
        assert [p.gso.size for p in queue_set[0].read()] == [1400, 1000]


def test_gso_write_args_reassemble_into_the_superpacket():
    ip_hdr, l4_hdr, payloads, proto = FACTORY.gso_write_args(2500, 1000, GSOProto.UDP, ip_id=3)
    assert [len(p) for p in payloads] == [1000, 1000, 500] and proto == GSOProto.UDP
    assert ip_hdr + l4_hdr + b"".join(payloads) == bytes(FACTORY.uso(2500, 1000, ip_id=3).data)
    tcp_args = FACTORY.gso_write_args(2500, 1000, GSOProto.TCP, version=6, seq=9)
    assert b"".join(tcp_args[:2]) + b"".join(tcp_args[2]) == bytes(FACTORY.tso(2500, 1000, version=6, seq=9).data)


@pytest.mark.parametrize("kind", [k for k in MALFORMED_KINDS if not k.startswith("gso_")])
@pytest.mark.parametrize("version", [4, 6])
def test_plain_malformed_variants_raise_malformed_packet(kind, version):
    if kind == "bad_ihl" and version == 6:
        with pytest.raises(ValueError, match="IPv4"):
            FACTORY.malformed(kind, version=version)
        return
    bad = FACTORY.malformed(kind, version=version)
    with pytest.raises(MalformedPacket):
        check_ip_packet(bad, "test")


@pytest.mark.parametrize("kind", [k for k in MALFORMED_KINDS if k.startswith("gso_")])
@pytest.mark.parametrize("version", [4, 6])
def test_gso_malformed_variants_raise_malformed_packet(kind, version):
    bad = FACTORY.malformed(kind, version=version)
    with pytest.raises(MalformedPacket):
        kernels.segment(bad)
    vnet = PacketFactory.vnet_header(bad)
    if kind == "gso_bad_hdr_len":
        # A kernel's hdr_len is only a hint, corrected on read; a Packet's must already be right.
        assert kernels.gso_info_from_vnet(vnet, bad.data) == bad.gso._replace(hdr_len=bad.gso.hdr_len - 4)
    else:
        with pytest.raises(MalformedPacket):
            kernels.gso_info_from_vnet(vnet, bad.data)
    with open_fake() as queue_set, pytest.raises(MalformedPacket):
        queue_set.inject(bad)


def test_factory_input_errors():
    with pytest.raises(ValueError, match="unknown malformed kind"):
        FACTORY.malformed("sideways")
    with pytest.raises(ValueError, match="not both IPv6"):
        FACTORY.udp(src="fd00::1", dst="198.18.0.1")
    with pytest.raises(ValueError, match="more than one segment"):
        FACTORY.tso(1000, 1000)
    with pytest.raises(ValueError, match="at most 65535"):
        FACTORY.udp(b"x" * 65510)
    with pytest.raises(TypeError, match="colour"):
        FACTORY.tso(3000, 1000, colour="red")
    with pytest.raises(TypeError, match="flags"):
        FACTORY.gso_write_args(3000, 1000, GSOProto.UDP, flags="A")
    with pytest.raises(ValueError, match="proto"):
        FACTORY.gso_write_args(3000, 1000, GSOProto.NONE)


def test_parse_returns_scapy_layers():
    assert isinstance(PacketFactory.parse(FACTORY.udp(version=6)), IPv6)
    assert isinstance(PacketFactory.parse(memoryview(FACTORY.udp())), IP)


# -- one set of defaults, documented in one table ---------------------------------------
BUILDERS = ("tcp", "udp", "tcp_flow", "udp_flow", "tso", "uso", "gso_write_args")
README = Path(__file__).resolve().parents[2] / "plugins" / "tio_fake" / "README.md"
TABLE_ROW = re.compile(r"^\| `(?P<names>[^|]+?)` \| `(?P<value>[^`]+)` \|", re.M)


def builder_defaults() -> dict[str, dict[str, object]]:
    """{parameter: {builder: default}} for every defaulted parameter of every builder, payload aside."""
    found: dict[str, dict[str, object]] = {}
    for name in BUILDERS:
        for param in inspect.signature(getattr(PacketFactory, name)).parameters.values():
            if param.default is not inspect.Parameter.empty and param.name != "payload":
                found.setdefault(param.name, {})[name] = param.default
    return found


def test_every_builder_shares_one_set_of_defaults():
    for param, by_builder in builder_defaults().items():
        assert len(set(map(repr, by_builder.values()))) == 1, (
            f"packet_factory default of {param!r} differs: {by_builder}"
        )


def test_the_defaults_table_lists_every_default_as_the_code_has_it():
    table = {}
    for row in TABLE_ROW.finditer(README.read_text()):
        for name in row["names"].split("`, `"):
            table[name] = eval(row["value"], {"GSOProto": GSOProto})  # literals and GSOProto members only
    code = {param: next(iter(by_builder.values())) for param, by_builder in builder_defaults().items()}
    assert table == code, "plugins/tio_fake/README.md's packet_factory defaults table disagrees with the code"


@pytest.mark.parametrize("version", [4, 6])
def test_default_superpackets_segment_into_the_default_flows(version):
    data = payload_pattern(3500)
    tcp = [bytes(s) for s in kernels.segment(FACTORY.tso(data, 1000, version=version))]
    assert tcp == FACTORY.tcp_flow(4, 1000, payload=data, version=version)
    udp = [bytes(s) for s in kernels.segment(FACTORY.uso(data, 1000, version=version))]
    assert udp == FACTORY.udp_flow(4, 1000, payload=data, version=version)
    assert IP(FACTORY.tcp(version=4))[TCP].dport == IP(FACTORY.udp(version=4))[UDP].dport == 5000
