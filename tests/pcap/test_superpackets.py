"""Over-long TCP/UDP packets of a TSO/USO capture replay as superpackets."""

from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.packet import Raw

from tests.pcap.captures import ip_packets, write_pcap
from tio_core import kernels, open_backend
from tio_core.contract import NO_GSO, GSOInfo, GSOProto
from tio_core.errors import EndOfStream
from tio_core.wire import GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, VirtioNetHdr

V4 = {"src": "198.18.0.1", "dst": "198.18.0.2"}
V6 = {"src": "fd00::1", "dst": "fd00::2"}
PAYLOAD = bytes(range(256)) * 20  # 5120 bytes


def read_all(path, **options):
    packets = []
    with open_backend("pcap", path=str(path), **options) as qs:
        queue = qs.queues()[0]
        while True:
            try:
                packets.extend(p.clone() for p in queue.read())
            except EndOfStream:
                return packets, queue.stats()


def pseudo_partial(pkt: bytes, l3_len: int, proto: int) -> int:
    """Folded, not inverted, pseudo-header sum, computed here independently."""
    l4_len = len(pkt) - l3_len
    if pkt[0] >> 4 == 4:
        pseudo = pkt[12:20] + struct.pack("!BBH", 0, proto, l4_len)
    else:
        pseudo = pkt[8:40] + struct.pack("!IxxxB", l4_len, proto)
    total = sum(struct.unpack(f"!{len(pseudo) // 2}H", pseudo))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def assert_valid_segments(super_bytes: bytes, segments: list[bytes], mtu: int, payload: bytes) -> None:
    """Every segment is a valid, checksummed packet within the MTU; payloads add up."""
    joined = b""
    for seg in segments:
        assert len(seg) <= mtu
        pkt = IP(seg) if seg[0] >> 4 == 4 else IPv6(seg)
        l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
        sent = l4.chksum
        del l4.chksum
        if IP in pkt:
            sent_ip = pkt[IP].chksum
            del pkt[IP].chksum
            assert IP(bytes(pkt)).chksum == sent_ip
        rebuilt = (IP if seg[0] >> 4 == 4 else IPv6)(bytes(pkt))
        assert (rebuilt[TCP] if TCP in rebuilt else rebuilt[UDP]).chksum == sent, "bad L4 checksum"
        joined += bytes(l4.payload)
    assert joined == payload


CASES = {
    "tcp4": (IP(**V4) / TCP(sport=1, dport=2, seq=10, flags="PA") / Raw(PAYLOAD), 20, 40, GSOProto.TCP),
    "tcp4-timestamps": (
        IP(**V4)
        / TCP(sport=1, dport=2, flags="A", options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
        / Raw(PAYLOAD),
        20,
        52,
        GSOProto.TCP,
    ),
    "udp4": (IP(**V4) / UDP(sport=3, dport=4) / Raw(PAYLOAD), 20, 28, GSOProto.UDP),
    "tcp6": (IPv6(**V6) / TCP(sport=1, dport=2, flags="FPA") / Raw(PAYLOAD), 40, 60, GSOProto.TCP),
    "udp6-ext": (IPv6(**V6) / IPv6ExtHdrDestOpt() / UDP(sport=3, dport=4) / Raw(PAYLOAD), 48, 56, GSOProto.UDP),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gso_mtu_infers_superpackets_that_segment_into_valid_packets(tmp_path, name):
    packet, l3_len, hdr_len, proto = CASES[name]
    wire = bytes(packet)
    small = ip_packets(2)
    path = write_pcap(tmp_path / "tso.pcap", [small[0], wire, small[1]])
    got, stats = read_all(path, gso_mtu=1500)
    assert [p.gso for p in got] == [NO_GSO, GSOInfo(1500 - hdr_len, hdr_len, l3_len, proto), NO_GSO]
    assert stats.superpackets == 1
    superpacket = got[1]
    data = bytes(superpacket.data)
    field = l3_len + (16 if proto == GSOProto.TCP else 6)
    assert data[:field] == wire[:field] and data[field + 2 :] == wire[field + 2 :]
    assert struct.unpack_from("!H", data, field)[0] == pseudo_partial(wire, l3_len, 6 if proto == GSOProto.TCP else 17)
    # the shared validation of kernel metadata accepts it and agrees on every field
    gso_type = GSO_UDP_L4 if proto == GSOProto.UDP else GSO_TCPV4 if wire[0] >> 4 == 4 else GSO_TCPV6
    vnet = VirtioNetHdr(NEEDS_CSUM, gso_type, hdr_len, 1500 - hdr_len, l3_len, 16 if proto == GSOProto.TCP else 6)
    assert kernels.gso_info_from_vnet(vnet, superpacket.data) == superpacket.gso
    segments = [bytes(s) for s in kernels.segment(superpacket)]
    assert len(segments) == -(-len(PAYLOAD) // (1500 - hdr_len))
    assert_valid_segments(data, segments, 1500, PAYLOAD)


def test_mss_sets_the_segment_size(tmp_path):
    wire = bytes(IP(**V4) / TCP(sport=1, dport=2, flags="A") / Raw(PAYLOAD))
    got, _ = read_all(write_pcap(tmp_path / "mss.pcap", [wire]), mss=1000)
    assert got[0].gso == GSOInfo(1000, 40, 20, GSOProto.TCP)
    segments = [bytes(s) for s in kernels.segment(got[0])]
    assert len(segments) == 6
    assert_valid_segments(wire, segments, 1040, PAYLOAD)


def test_packets_that_are_not_superpackets_stay_plain(tmp_path):
    big = PAYLOAD[:3000]
    plain = [
        bytes(IP(**V4) / TCP(flags="S") / Raw(big)),  # SYN never travels in a superpacket
        bytes(IP(**V4, flags="MF") / UDP() / Raw(big)),  # an IP fragment
        bytes(IP(**V4) / TCP(flags="A") / Raw(PAYLOAD[:1400])),  # fits the MTU
        bytes(IP(**V4, proto=47) / Raw(big)),  # not TCP/UDP
    ]
    got, stats = read_all(write_pcap(tmp_path / "plain.pcap", plain), gso_mtu=1500)
    assert [bytes(p.data) for p in got] == plain
    assert all(p.gso == NO_GSO for p in got) and stats.superpackets == 0


def test_without_gso_options_large_packets_are_plain(tmp_path):
    wire = bytes(IP(**V4) / TCP(flags="A") / Raw(PAYLOAD))
    got, _ = read_all(write_pcap(tmp_path / "big.pcap", [wire]))
    assert bytes(got[0].data) == wire and got[0].gso == NO_GSO


def test_recorded_superpacket_replays_as_the_same_segments(tmp_path):
    """record_gso="superpacket" then replay with gso_mtu: the same wire packets as a segmented recording."""
    payloads = [bytes([i]) * 1200 for i in range(1, 6)] + [b"z" * 77]
    ip = bytes(IP(**V4, id=9, proto=6, len=20 + 20 + sum(map(len, payloads))))
    tcp = bytearray(bytes(TCP(sport=5, dport=6, seq=1, flags="PA")))
    tcp[16:18] = pseudo_partial(ip + bytes(tcp) + b"".join(payloads), 20, 6).to_bytes(2, "big")
    outputs = {}
    for mode in ("superpacket", "segmented"):
        out = tmp_path / f"{mode}.pcap"
        with open_backend("pcap", output=str(out), record_gso=mode) as qs:
            qs.queues()[0].write_gso(ip, bytes(tcp), payloads, GSOProto.TCP)
        outputs[mode] = out
    superpackets, _ = read_all(outputs["superpacket"], gso_mtu=1240)
    assert len(superpackets) == 1 and superpackets[0].gso == GSOInfo(1200, 40, 20, GSOProto.TCP)
    segmented, _ = read_all(outputs["segmented"])
    assert [bytes(s) for s in kernels.segment(superpackets[0])] == [bytes(p.data) for p in segmented]
    assert socket.inet_ntoa(bytes(segmented[0].data)[12:16]) == V4["src"]
