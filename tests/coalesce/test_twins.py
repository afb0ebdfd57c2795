"""Property tests: the C planner and its pure twin agree, and after kernel-style
resegmentation the output is exactly the input in per-flow order."""

from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, IPOption_NOP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.packet import Raw

from tests.support.coalesce import RecordingWriter, corrupt_l4_checksum, normalize_df_id, tcp4, tcp6, udp4, udp6
from tio_core.coalesce import Coalescer, _pycoalesce
from tio_core.contract import GSOProto
from tio_core.wire import UDP_GSO_MAX_SEGMENTS_OLD

_ck = pytest.importorskip("tio_core._ckernels")
if not hasattr(_ck, "coalesce_plan"):
    pytest.skip("C planner not built", allow_module_level=True)

PROTOS = (GSOProto.TCP, GSOProto.UDP)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# flows: (builder name, source port, DF on IPv4)
FLOWS = [("tcp4", 1000, True), ("tcp4", 1001, False), ("tcp6", 1002, True), ("udp4", 3000, True), ("udp6", 3001, True)]
ACTIONS = ["data"] * 12 + [
    "psh",
    "gap",
    "pureack",
    "flag",
    "badsum",
    "ce",
    "options",
    "frag",
    "garbage",
    "idjump",
    "zero",
]
SIZES = [100] * 4 + [1, 7, 50, 500, 1448]
FLAGS = ["AS", "AF", "AR", "AU", "AC", "S", "AE"]


def build(events):
    """Turn (flow, action, size, variant) events into wire packets with per-flow state."""
    seq = defaultdict(lambda: 10_000)
    ident = defaultdict(lambda: 100)
    packets = []
    for flow_no, action, size, variant in events:
        kind, sport, df = FLOWS[flow_no]
        if action == "gap":
            seq[flow_no] += 1000
        if action == "idjump":
            ident[flow_no] += 1
        ip = {} if kind.endswith("6") else {"flags": "DF" if df else 0, "id": ident[flow_no] % 65536}
        if action == "ce":
            ip["tc" if kind.endswith("6") else "tos"] = 3
        if action in ("pureack", "flag", "zero"):
            size = 0
        if kind.startswith("tcp"):
            flags = {"psh": "PA", "flag": FLAGS[variant % len(FLAGS)]}.get(action, "A")
            if action == "options" and kind == "tcp4":
                ip_layer = IP(src="198.18.0.1", dst="198.18.0.2", options=[IPOption_NOP()] * 4, **ip)
                pkt = bytes(
                    ip_layer / TCP(sport=sport, dport=2000, seq=seq[flow_no], flags=flags, ack=7) / Raw(b"o" * size)
                )
            elif action == "options":
                layer = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrDestOpt()
                pkt = bytes(
                    layer / TCP(sport=sport, dport=2000, seq=seq[flow_no], flags=flags, ack=7) / Raw(b"o" * size)
                )
            elif kind == "tcp4":
                if action == "frag":
                    ip = {**ip, "flags": "MF"}
                pkt = tcp4(seq[flow_no], size, flags=flags, sport=sport, ip=ip)
            else:
                pkt = tcp6(seq[flow_no], size, flags=flags, sport=sport, ip=ip)
            seq[flow_no] = (seq[flow_no] + size) % 2**32
        else:
            build_udp = udp4 if kind == "udp4" else udp6
            pkt = build_udp(size, sport=sport, ip=ip, tag=len(packets))
        if action == "badsum":
            pkt = corrupt_l4_checksum(pkt)
        if action == "garbage":
            pkt = pkt[: variant % 60]
        ident[flow_no] += 1
        packets.append(pkt)
    return packets


events = st.lists(
    st.tuples(st.integers(0, len(FLOWS) - 1), st.sampled_from(ACTIONS), st.sampled_from(SIZES), st.integers(0, 255)),
    min_size=4,
    max_size=60,
)


def assert_plans_agree(packets, tcp=True, udp=True, verify=True):
    c_plan = _ck.coalesce_plan(list(packets), tcp, udp, verify, PROTOS)
    py_plan = _pycoalesce.plan(list(packets), tcp, udp, verify, PROTOS)
    assert len(c_plan) == len(py_plan)
    for c_item, py_item in zip(c_plan, py_plan):
        if type(py_item) is tuple:
            assert type(c_item) is tuple
            assert c_item[:2] == py_item[:2] and c_item[3] is py_item[3]
            assert [bytes(p) for p in c_item[2]] == [bytes(p) for p in py_item[2]]
            assert [p.obj for p in c_item[2]] == [p.obj for p in py_item[2]]
        else:
            assert c_item is py_item
    return c_plan


def flow_of(pkt):
    """(addresses, protocol, ports) from the header, whatever the admission says."""
    if len(pkt) >= 20 and pkt[0] >> 4 == 4:
        l4, proto, addrs = (pkt[0] & 15) * 4, pkt[9], pkt[12:20]
    elif len(pkt) >= 40 and pkt[0] >> 4 == 6:
        l4, proto, addrs = 40, pkt[6], pkt[8:40]
    else:
        return "other"
    return (addrs, proto, pkt[l4 : l4 + 4]) if len(pkt) >= l4 + 4 else "other"


def is_pure_ack(pkt):
    if len(pkt) < 40 or flow_of(pkt) == "other" or flow_of(pkt)[1] != 6:
        return False
    l4 = (pkt[0] & 15) * 4 if pkt[0] >> 4 == 4 else 40
    ip_len = int.from_bytes(pkt[2:4], "big") if pkt[0] >> 4 == 4 else 40 + int.from_bytes(pkt[4:6], "big")
    if len(pkt) < l4 + 20:
        return False
    flags = pkt[l4 + 13]
    return flags & 0x10 and not flags & ~0x58 and ip_len == l4 + (pkt[l4 + 12] >> 4) * 4


def assert_per_flow_order(got, want):
    got = [normalize_df_id(bytes(p)) for p in got]
    want = [normalize_df_id(bytes(p)) for p in want]
    assert Counter(got) == Counter(want)  # nothing lost, nothing invented
    for pure_acks in (False, True):  # pure ACKs may be overtaken by data, not by each other

        def per_flow(packets, pure_acks=pure_acks):
            flows = defaultdict(list)
            for p in packets:
                if bool(is_pure_ack(p)) == pure_acks:
                    flows[flow_of(p)].append(p)
            return flows

        assert per_flow(got) == per_flow(want)


@SETTINGS
@given(events, st.booleans(), st.booleans())
def test_random_traffic_round_trips_and_twins_agree(evs, tcp, udp):
    packets = build(evs)
    assert_plans_agree(packets, tcp, udp)
    writer = RecordingWriter()
    co = Coalescer(writer, tcp=tcp, udp=udp, implementation="c")
    co.add_many(packets)
    co.flush()
    assert_per_flow_order(writer.wire(), packets)


@SETTINGS
@given(events, st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6), st.booleans())
def test_mutated_packets_twins_agree(evs, flips, verify):
    # hostile input for the C parser: random byte flips and truncations
    packets = [bytearray(p) for p in build(evs)]
    for index, (pos, value) in enumerate(flips):
        if packets:
            target = packets[index * 7 % len(packets)]
            if target:
                target[pos % len(target)] = value
    assert_plans_agree(packets, True, True, verify)


@SETTINGS
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_random_bytes_twins_agree(blobs):
    plan = assert_plans_agree(blobs)
    assert all(type(item) is bytes for item in plan)  # nothing mergeable in noise


# -- fixed inputs for the caps (issue 12, items 6 and 14) -------------------------------
def test_the_twins_share_a_segment_cap_that_every_gso_write_takes():
    from tio_core.kernels.gso_write import MAX_GSO_SEGMENTS

    # the C planner's cap is wire.h's TIO_UDP_GSO_MAX_SEGMENTS_OLD, tied to wire.py by test_wire_constants
    assert _pycoalesce.MAX_SEGMENTS == UDP_GSO_MAX_SEGMENTS_OLD == _ck.UDP_GSO_MAX_SEGMENTS_OLD
    for proto in PROTOS:
        assert MAX_GSO_SEGMENTS[proto] >= _pycoalesce.MAX_SEGMENTS, (
            f"a run never exceeds what a {proto.name} write takes"
        )


@pytest.mark.parametrize("build_udp", [udp4, udp6], ids=["v4", "v6"])
def test_long_udp_streams_are_cut_at_the_cap(coalesce, build_udp):
    packets = [build_udp(20, tag=i) for i in range(3 * _pycoalesce.MAX_SEGMENTS + 5)]
    cap = _pycoalesce.MAX_SEGMENTS
    assert coalesce(packets).shape() == [f"G{cap}"] * 3 + ["G5"], "UDP runs stop at the kernel's segment cap"


def tcp_run(sizes):
    seqs = [1 + sum(sizes[:i]) for i in range(len(sizes))]
    return [tcp4(seq, size) for seq, size in zip(seqs, sizes)]


def udp_run(sizes):
    return [udp4(size, tag=i) for i, size in enumerate(sizes)]


# payload sizes of runs whose merged packet is exactly 65535 bytes, and one byte more
EXACT_CAP = {
    "tcp4": (tcp_run, 40, [13099] * 5, [8187] * 8),
    "udp4": (udp_run, 28, [1100] * 59 + [607], [1100] * 59 + [608]),
}


@pytest.mark.parametrize("kind", EXACT_CAP)
def test_a_run_may_end_exactly_at_the_65535_byte_cap_counting_the_l4_header(coalesce, kind):
    make, headers, exact, over = EXACT_CAP[kind]
    assert headers + sum(exact) == 65535 and headers + sum(over) == 65536
    assert coalesce(make(exact)).shape() == [f"G{len(exact)}"], "a merged packet of exactly 65535 bytes is made"
    assert coalesce(make(over)).shape() == [f"G{len(over) - 1}", "W"], (
        "a merged packet never exceeds 65535 bytes, its IP and L4 headers included"
    )
