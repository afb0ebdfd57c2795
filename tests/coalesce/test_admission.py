"""One test per admission rule: each fails if its rule is removed.

Every test runs on both planners (the C one and its pure twin) and, unless
noted, checks that the kernel-resegmented output equals the input.
"""

import struct

import pytest
from scapy.layers.inet import IP, TCP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.packet import Raw

from tests.support.coalesce import (
    corrupt_l4_checksum,
    fix_l4_checksum,
    normalize_df_id,
    same_wire,
    tcp4,
    tcp6,
    tcp_stream,
    udp4,
    udp6,
)
from tio_core import kernels
from tio_core.contract import GSOProto


def test_same_flow_run_becomes_one_write_gso(coalesce):
    writer = coalesce(tcp_stream(5))
    assert writer.shape() == ["G5"]


def test_run_of_one_is_the_original_object(coalesce):
    pkt = tcp4(1)
    writer = coalesce([pkt])
    assert writer.calls == [("W", pkt)] and writer.calls[0][1] is pkt


def test_merged_header_is_patched_and_payloads_are_borrowed(coalesce):
    packets = tcp_stream(3, size=100, tcp={"options": [("MSS", 1400), ("NOP", None), ("NOP", None)]})
    packets[-1] = tcp4(201, 60, flags="PA", tcp={"options": [("MSS", 1400), ("NOP", None), ("NOP", None)]})
    writer = coalesce(packets)
    ((_, ip_hdr, l4_hdr, payloads, proto),) = writer.calls
    assert proto is GSOProto.TCP
    assert len(l4_hdr) == 28
    total = 20 + 28 + 260
    assert struct.unpack_from("!H", ip_hdr, 2)[0] == total
    assert kernels.checksum(ip_hdr) == 0xFFFF  # a valid IPv4 header checksum
    partial = kernels.pseudo_header_sum(ip_hdr[12:16], ip_hdr[16:20], 6, total - 20)
    assert struct.unpack_from("!H", l4_hdr, 16)[0] == partial  # folded, not inverted
    assert l4_hdr[13] == 0x18  # PSH of the last segment carried on the merged header
    for pay, pkt in zip(payloads, packets):
        assert isinstance(pay, memoryview) and pay.obj is pkt  # no payload copy
        assert pay.readonly


def test_memoryview_inputs_are_sliced_without_copy(coalesce):
    backing = [bytearray(p) for p in tcp_stream(3)]
    writer = coalesce([memoryview(b) for b in backing])
    payloads = writer.calls[0][3]
    assert [p.obj for p in payloads] == backing


def test_views_into_one_receive_buffer(coalesce):
    # packets as slices of one big buffer, the way a batched read hands them out
    packets = tcp_stream(4)
    arena = bytearray(b"\xaa" * 7 + b"".join(packets) + b"\xbb" * 5)
    views, offset = [], 7
    for p in packets:
        views.append(memoryview(arena)[offset : offset + len(p)])
        offset += len(p)
    writer = coalesce(views)
    assert writer.shape() == ["G4"]
    assert all(p.obj is arena for p in writer.calls[0][3])


# -- IP layer -------------------------------------------------------------------
def test_ipv4_options_go_verbatim(coalesce):
    opts = [IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP()]
    packets = [
        bytes(IP(src="198.18.0.1", dst="198.18.0.2", options=opts) / TCP(seq=1 + i * 10, flags="A") / Raw(b"y" * 10))
        for i in range(3)
    ]
    assert coalesce(packets).shape() == ["W", "W", "W"]


@pytest.mark.parametrize("frag", [{"flags": "MF"}, {"frag": 8}, {"flags": "DF+MF"}, {"flags": "evil"}])
def test_ipv4_fragments_and_reserved_flag_go_verbatim(coalesce, frag):
    packets = [tcp4(1 + i * 100, ip={"flags": 0, "id": 1 + i, **frag}) for i in range(3)]
    assert coalesce(packets).shape() == ["W", "W", "W"]


@pytest.mark.parametrize("ext", [IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt])
def test_ipv6_extension_headers_go_verbatim(coalesce, ext):
    packets = [
        bytes(IPv6(src="fd00::1", dst="fd00::2") / ext() / TCP(seq=1 + i * 10, flags="A") / Raw(b"z" * 10))
        for i in range(3)
    ]
    assert coalesce(packets).shape() == ["W", "W", "W"]


def test_ipv6_extension_header_packet_seals_the_runs(coalesce):
    d1, d2 = tcp6(1), tcp6(101)
    ext = bytes(IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrDestOpt() / TCP(sport=1000, dport=2000, flags="A"))
    assert coalesce([d1, ext, d2]).shape() == ["W", "W", "W"]


def test_packet_of_unknown_flow_seals_every_open_run(coalesce):
    # an IP-options packet might belong to any flow, so nothing after it may jump ahead of it
    opts = bytes(IP(src="198.18.0.1", dst="198.18.0.2", options=[IPOption_RR()]) / TCP(flags="A") / Raw(b"o"))
    a, b = tcp_stream(2), tcp_stream(2, sport=1001)
    writer = coalesce([a[0], b[0], opts, a[1], b[1]])
    assert writer.shape() == ["W", "W", "W", "W", "W"]


def test_other_protocols_do_not_seal(coalesce):
    icmp = bytes(IP(src="198.18.0.1", dst="198.18.0.2", proto=1) / Raw(b"\x08\0\xf7\xff\0\0\0\0"))
    packets = tcp_stream(3)
    writer = coalesce([packets[0], icmp, packets[1], packets[2]], check_roundtrip=False)
    assert writer.shape() == ["G3", "W"]


def test_truncated_packet_goes_verbatim(coalesce):
    packets = tcp_stream(3)
    packets[1] = packets[1][:-1]  # IP total length now exceeds the buffer
    assert coalesce(packets).shape() == ["W", "W", "W"]


def test_trailing_bytes_beyond_ip_length_are_ignored(coalesce):
    packets = tcp_stream(3)
    padded = [p + b"\xee" * 6 for p in packets]
    writer = coalesce(padded, check_roundtrip=False)
    assert writer.shape() == ["G3"]
    assert [normalize_df_id(p) for p in writer.wire()] == [normalize_df_id(p) for p in packets]


def test_bad_ipv4_header_checksum_goes_verbatim(coalesce):
    packets = tcp_stream(3)
    bad = bytearray(packets[1])
    bad[10] ^= 0x40
    packets[1] = bytes(bad)
    assert coalesce(packets).shape() == ["W", "W", "W"]


# -- TCP flags --------------------------------------------------------------------
@pytest.mark.parametrize("flags", ["AS", "AF", "AR", "AU", "AC", "", "P"])
def test_sealing_flags_go_verbatim_and_seal_the_run(coalesce, flags):
    # the flagged packet has no payload, so the next segment would follow on if it did not seal
    first = tcp_stream(2)
    third = tcp4(201)
    writer = coalesce([*first, tcp4(201, 0, flags=flags), third])
    assert writer.shape() == ["G2", "W", "W"]


def test_reserved_tcp_bits_go_verbatim(coalesce):
    packets = tcp_stream(3)
    raw = bytearray(packets[1])
    raw[32] |= 0x01  # AE / reserved bit next to the data offset
    packets[1] = fix_l4_checksum(raw)
    assert coalesce(packets).shape() == ["W", "W", "W"]


def test_pure_ack_goes_verbatim_without_sealing(coalesce):
    d1, d2 = tcp_stream(2)
    ack = tcp4(101, 0)
    writer = coalesce([d1, ack, d2], check_roundtrip=False)
    assert writer.shape() == ["G2", "W"]
    assert same_wire(writer.wire(), [d1, d2, ack])  # the documented exception: data overtakes the pure ACK


def test_ece_joins_only_ece(coalesce):
    packets = [tcp4(1, flags="AE"), tcp4(101, flags="AE"), tcp4(201, flags="A"), tcp4(301, flags="A")]
    assert coalesce(packets).shape() == ["G2", "G2"]


def test_cwr_is_never_merged(coalesce):
    packets = [tcp4(1, flags="AC"), tcp4(101, flags="A"), tcp4(201, flags="A")]
    assert coalesce(packets).shape() == ["W", "G2"]


# -- joining a run -------------------------------------------------------------------
def test_interleaved_flows_form_separate_runs(coalesce):
    a = tcp_stream(3)
    b = tcp_stream(3, sport=1001)
    u = [udp4(50, tag=i) for i in range(3)]
    mixed = [a[0], b[0], u[0], a[1], b[1], u[1], a[2], b[2], u[2]]
    writer = coalesce(mixed, check_roundtrip=False)
    assert writer.shape() == ["G3", "G3", "G3"]
    assert same_wire(writer.wire(), a + b + u)  # each run at its first packet's position


@pytest.mark.parametrize("other", [{"dport": 2001}, {"dst": "198.18.0.3"}, {"src": "198.18.0.3"}])
def test_different_five_tuple_does_not_join(coalesce, other):
    packets = [tcp4(1), tcp4(101, **other)]
    assert coalesce(packets).shape() == ["W", "W"]


def test_sequence_gap_starts_a_new_run(coalesce):
    packets = [tcp4(1), tcp4(101), tcp4(301), tcp4(401)]
    assert coalesce(packets).shape() == ["G2", "G2"]


def test_sequence_wraps_around(coalesce):
    start = 2**32 - 150
    packets = [tcp4((start + i * 100) % 2**32) for i in range(4)]
    assert coalesce(packets).shape() == ["G4"]


def test_larger_payload_does_not_join(coalesce):
    packets = [tcp4(1, 100), tcp4(101, 101)]
    assert coalesce(packets).shape() == ["W", "W"]


def test_shorter_payload_closes_the_run(coalesce):
    packets = [tcp4(1, 100), tcp4(101, 50), tcp4(151, 50)]
    assert coalesce(packets).shape() == ["G2", "W"]


def test_psh_closes_the_run(coalesce):
    packets = [tcp4(1), tcp4(101, flags="PA"), tcp4(201)]
    assert coalesce(packets).shape() == ["G2", "W"]


def test_64_segment_cap(coalesce):
    packets = tcp_stream(70, size=10)
    assert coalesce(packets).shape() == ["G64", "G6"]


def test_65535_byte_cap(coalesce):
    packets = tcp_stream(47, size=1448)  # 40 + 45 * 1448 = 65200 fits, 46 would not
    writer = coalesce(packets)
    assert writer.shape() == ["G45", "G2"]


def test_different_header_length_does_not_join(coalesce):
    packets = [tcp4(1), tcp4(101, tcp={"options": [("NOP", None)] * 4})]
    assert coalesce(packets).shape() == ["W", "W"]


@pytest.mark.parametrize(
    "change",
    [{"tos": 0x20}, {"tos": 0x03}, {"ttl": 9}],
    ids=["dscp", "ecn-ce", "ttl"],
)
def test_ip_fields_must_match(coalesce, change):
    base = {"tos": 0x01}  # ECT(1)
    packets = [tcp4(1, ip=base), tcp4(101, ip={**base, **change})]
    assert coalesce(packets).shape() == ["W", "W"]


def test_ecn_ce_runs_merge_among_themselves(coalesce):
    packets = [tcp4(1 + i * 100, ip={"tos": 0x03}) for i in range(3)] + [tcp4(301, ip={"tos": 0x02})]
    assert coalesce(packets).shape() == ["G3", "W"]


def test_df_must_match(coalesce):
    packets = [tcp4(1, ip={"flags": "DF", "id": 1}), tcp4(101, ip={"flags": 0, "id": 2})]
    assert coalesce(packets).shape() == ["W", "W"]


@pytest.mark.parametrize(
    "change",
    [
        {"ack": 8},
        {"window": 513},
        {"urgptr": 3},
        {"options": [("NOP", None), ("NOP", None), ("NOP", None), ("EOL", None)]},
    ],
    ids=["ack", "window", "urgptr", "options"],
)
def test_tcp_fields_must_match(coalesce, change):
    base = {"options": [("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None)]}
    packets = [tcp4(1, tcp=base), tcp4(101, tcp={**base, **change})]
    assert coalesce(packets).shape() == ["W", "W"]


def test_ipv4_without_df_needs_counting_ids(coalesce):
    counting = [tcp4(1 + i * 100, ip={"flags": 0, "id": (0xFFFE + i) % 65536}) for i in range(4)]  # wraps at 65536
    assert coalesce(counting).shape() == ["G4"]
    jumping = [tcp4(1, ip={"flags": 0, "id": 5}), tcp4(101, ip={"flags": 0, "id": 7})]
    assert coalesce(jumping).shape() == ["W", "W"]


def test_ipv4_with_df_ignores_ids_and_kernel_restamps_them(coalesce):
    packets = [tcp4(1 + i * 100, ip={"flags": "DF", "id": [9, 400, 3][i]}) for i in range(3)]
    writer = coalesce(packets)  # the roundtrip check applies the DF exception
    assert writer.shape() == ["G3"]
    ids = [struct.unpack_from("!H", p, 4)[0] for p in writer.wire()]
    assert ids == [9, 10, 11]
    assert [kernels.checksum(p[:20]) for p in writer.wire()] == [0xFFFF] * 3


def test_ipv6_run(coalesce):
    packets = [tcp6(1 + i * 200, 200) for i in range(4)]
    assert coalesce(packets).shape() == ["G4"]


@pytest.mark.parametrize("change", [{"tc": 4}, {"fl": 5}, {"hlim": 3}], ids=["class", "flow-label", "hop-limit"])
def test_ipv6_fields_must_match(coalesce, change):
    packets = [tcp6(1), tcp6(101, ip=change)]
    assert coalesce(packets).shape() == ["W", "W"]


# -- checksums -------------------------------------------------------------------
def test_bad_tcp_checksum_goes_verbatim_and_seals(coalesce):
    packets = tcp_stream(3)
    packets[1] = corrupt_l4_checksum(packets[1])
    assert coalesce(packets).shape() == ["W", "W", "W"]


def test_bad_first_segment_is_not_a_seed(coalesce):
    packets = tcp_stream(3)
    packets[0] = corrupt_l4_checksum(packets[0])
    assert coalesce(packets).shape() == ["W", "G2"]


def test_only_packets_that_merge_have_their_checksum_verified(monkeypatch):
    """A packet written as it is keeps its own checksum: verifying it would only cost time."""
    from tio_core.coalesce import _pycoalesce

    verified = []
    real = _pycoalesce._l4_checksum_ok
    monkeypatch.setattr(
        _pycoalesce, "_l4_checksum_ok", lambda view, *rest: verified.append(bytes(view)) or real(view, *rest)
    )
    lone = [tcp4(1, 100, sport=1000 + i) for i in range(5)]  # five flows, one segment each
    run = tcp_stream(3, seq=1, sport=7)  # one flow of three segments
    writes = _pycoalesce.plan(lone + run, True, True, True, (GSOProto.TCP, GSOProto.UDP))
    assert writes[:5] == lone and len(writes) == 6 and len(writes[5][2]) == 3
    assert sorted(verified) == sorted(run), (
        f"rule: only the segments that join a run are verified ({len(verified)} verified, 3 merged)"
    )


def test_verification_can_be_turned_off(coalesce):
    packets = tcp_stream(3)
    packets[1] = corrupt_l4_checksum(packets[1])
    writer = coalesce(packets, verify_checksums=False, check_roundtrip=False)
    assert writer.shape() == ["G3"]  # the caller trusts its source: the run gets a fresh checksum


# -- lanes -------------------------------------------------------------------------
def test_disabled_lane_passes_through(coalesce):
    assert coalesce(tcp_stream(3), tcp=False).shape() == ["W", "W", "W"]
    assert coalesce([udp4(50, tag=i) for i in range(3)], udp=False).shape() == ["W", "W", "W"]


# -- UDP ---------------------------------------------------------------------------
@pytest.mark.parametrize("build", [udp4, udp6])
def test_udp_equal_payloads_merge_and_shorter_closes(coalesce, build):
    packets = [build(300, tag=i) for i in range(3)] + [build(100, tag=3), build(100, tag=4)]
    writer = coalesce(packets)
    assert writer.shape() == ["G4", "W"]
    assert writer.calls[0][4] is GSOProto.UDP
    l4 = writer.calls[0][2]
    assert struct.unpack_from("!H", l4, 4)[0] == 8 + 1000  # UDP length patched


def test_udp_larger_payload_starts_new_run(coalesce):
    packets = [udp4(100, tag=0), udp4(100, tag=1), udp4(200, tag=2), udp4(200, tag=3)]
    assert coalesce(packets).shape() == ["G2", "G2"]


def test_udp_64_segment_cap(coalesce):
    packets = [udp4(20, tag=i) for i in range(70)]
    assert coalesce(packets).shape() == ["G64", "G6"]


def test_udp_zero_length_goes_verbatim_and_seals(coalesce):
    packets = [udp4(50, tag=0), udp4(50, tag=1), udp4(0), udp4(50, tag=2), udp4(50, tag=3)]
    assert coalesce(packets).shape() == ["G2", "W", "G2"]


def test_udp_length_field_must_match_ip_payload(coalesce):
    packets = [udp4(50, tag=i) for i in range(3)]
    raw = bytearray(packets[1])
    struct.pack_into("!H", raw, 24, 8 + 40)  # claims 40 payload bytes of the 50
    packets[1] = fix_l4_checksum(raw)
    assert coalesce(packets).shape() == ["W", "W", "W"]


@pytest.mark.parametrize("verify", [True, False])
def test_udp_zero_checksum_goes_verbatim(coalesce, verify):
    # merging would give the segments a checksum they did not have, even unverified
    packets = [udp4(50, tag=i) for i in range(3)]
    raw = bytearray(packets[1])
    raw[26:28] = b"\0\0"  # "no checksum" on IPv4
    packets[1] = bytes(raw)
    assert coalesce(packets, verify_checksums=verify).shape() == ["W", "W", "W"]


def test_udp_bad_checksum_goes_verbatim(coalesce):
    packets = [udp6(50, tag=i) for i in range(3)]
    packets[2] = corrupt_l4_checksum(packets[2])
    assert coalesce(packets).shape() == ["G2", "W"]


def test_dscp_mismatch_on_udp(coalesce):
    packets = [udp4(50, tag=0), udp4(50, tag=1, ip={"tos": 0x04})]
    assert coalesce(packets).shape() == ["W", "W"]


def test_df_exception_is_the_only_difference(coalesce):
    # sanity for the helper: without DF normalisation the restamped IDs differ
    packets = [tcp4(1 + i * 100, ip={"flags": "DF", "id": 50 - i}) for i in range(2)]
    writer = coalesce(packets)
    assert writer.wire() != packets
    assert [normalize_df_id(p) for p in writer.wire()] == [normalize_df_id(p) for p in packets]
