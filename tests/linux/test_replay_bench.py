"""The replay benchmark's pieces: the Ethernet conversion, tcpreplay's report, the figures, and a tiny real run."""

from __future__ import annotations

import shutil

import pytest
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import RawPcapReader

from tests.pcap.captures import EN10MB, RAW, ip_packets, shb, write_pcap
from tio_linux import replay_bench
from tio_linux.netns import why_unavailable
from tio_linux.replay_bench import (
    BenchError,
    CaptureFacts,
    Runs,
    TcpreplayRun,
    TioRun,
    figures,
    parse_tcpreplay,
    to_ethernet,
    within_mtu,
)
from tio_pcap.reader import read_packets

DEMO = replay_bench.demo_capture()


def tcpreplay_stdout(loops: int, seconds: str, rated: str, fps: str, device: str) -> str:
    """What tcpreplay 4.4.3 prints on stdout for the demo capture looped onto a veth at MTU 1500.

    Each loop sends the capture's 336 packets within the MTU (63045 bytes) and fails its 96 larger ones; the
    time, rates and device are what one run measured.
    """
    statistics = {
        "Successful packets:": 336 * loops,
        "Failed packets:": 96 * loops,
        "Truncated packets:": 0,
        "Retried packets (ENOBUFS):": 0,
        "Retried packets (EAGAIN):": 0,
    }
    return (
        f"Actual: {336 * loops} packets ({63045 * loops} bytes) sent in {seconds} seconds\n"
        f"Rated: {rated}\n"
        f"Flows: 7 flows, {fps} fps, 224 unique flow packets, 208 unique non-flow packets\n"
        f"Statistics for network device: {device}\n"
    ) + "".join(f"\t{name:<27}{value}\n" for name, value in statistics.items())


# What tcpreplay printed for the demo capture looped 200 times.
TCPREPLAY_SAMPLE = tcpreplay_stdout(200, "0.415851", "30320956.3 Bps, 242.56 Mbps, 161596.34 pps", "16.83", "vq7030")


def _scapy_frame(packet: bytes) -> bytes:
    ethertype = 0x0800 if packet[0] >> 4 == 4 else 0x86DD
    return bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=ethertype) / Raw(packet))


def _records(path):
    with RawPcapReader(str(path)) as reader:
        return [(bytes(data), (meta.sec, meta.usec, meta.caplen, meta.wirelen)) for data, meta in reader], reader


def test_the_ethernet_capture_holds_exactly_each_packet_behind_the_fixed_header(tmp_path):
    target = tmp_path / "demo-eth.pcap"
    facts = to_ethernet(DEMO, target)
    packets = read_packets(DEMO)
    assert facts == CaptureFacts(432, 96) == CaptureFacts(len(packets), sum(len(p) > 1500 for p in packets))
    got, reader = _records(target)
    source, _ = _records(DEMO)
    assert reader.linktype == EN10MB
    assert [frame for frame, _ in got] == [_scapy_frame(p) for p in packets], "rule: the frames are exact"
    for (_, (sec, usec, caplen, wirelen)), (_, (s_sec, s_usec, s_caplen, s_wirelen)) in zip(got, source, strict=True):
        assert (sec, usec, caplen, wirelen) == (s_sec, s_usec, s_caplen + 14, s_wirelen + 14)


def test_a_big_endian_capture_stays_big_endian(tmp_path):
    packets = ip_packets(6)
    source = write_pcap(tmp_path / "be.pcap", packets, RAW, endianness=">")
    target = tmp_path / "be-eth.pcap"
    assert to_ethernet(source, target) == CaptureFacts(6, 0)
    assert target.read_bytes()[:4] == source.read_bytes()[:4]
    assert [frame for frame, _ in _records(target)[0]] == [_scapy_frame(p) for p in packets]


def test_within_mtu_keeps_the_packets_tcpreplay_can_send(tmp_path):
    target = tmp_path / "small.pcap"
    packets = read_packets(DEMO)
    assert within_mtu(DEMO, target) == 336
    assert read_packets(target) == [p for p in packets if len(p) <= 1500]


def _written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda d: _written(d / "x.pcapng", shb()), "not a classic pcap"),
        (lambda d: write_pcap(d / "e.pcap", [bytes(Ether() / Raw(b"x" * 30))], EN10MB), "not raw IP"),
        (lambda d: write_pcap(d / "n.pcap", [b"\x00" * 30], RAW), "not an IPv4 or IPv6 packet"),
        (lambda d: _written(d / "c.pcap", write_pcap(d / "t.pcap", ip_packets(2), RAW).read_bytes()[:-5]), "cut"),
    ],
    ids=["pcapng", "ethernet", "not-ip", "cut"],
)
def test_what_cannot_be_converted_is_refused_with_the_reason(tmp_path, make, problem):
    source = make(tmp_path)
    with pytest.raises(BenchError, match=problem):
        to_ethernet(source, tmp_path / "out.pcap")


# The same for 2000 loops: beyond a second, the 'Actual:' line rounds the time to 10 ms.
TCPREPLAY_LONG_SAMPLE = tcpreplay_stdout(2000, "1.78", "70528378.3 Bps, 564.22 Mbps, 375882.86 pps", "3.91", "ta5966x2")


def test_tcpreplays_report_is_read_from_its_statistics():
    run = parse_tcpreplay(TCPREPLAY_SAMPLE)
    assert (run.successful, run.failed, run.bytes_sent) == (67200, 19200, 12609000)
    assert run.seconds == pytest.approx(0.415851, rel=1e-5)
    assert run.packets_per_s == pytest.approx(161596.34, rel=1e-6)


def test_the_rate_of_a_long_run_is_tcpreplays_precise_one_not_the_rounded_time():
    run = parse_tcpreplay(TCPREPLAY_LONG_SAMPLE)
    assert (run.successful, run.failed) == (672000, 192000)
    assert run.packets_per_s == pytest.approx(375882.86, rel=1e-6), "not 672000 / 1.78"


def test_a_report_without_statistics_is_a_bench_error():
    with pytest.raises(BenchError, match="no statistics"):
        parse_tcpreplay("tcpreplay: Fatal Error: failed to open device\n")


def test_figures_put_tio_beside_tcpreplay_with_the_target():
    tio = [TioRun(300_000, 10.0, 864_000, 0, 4.0, 0.5), TioRun(320_000, 11.0, 864_000, 0, 3.5, 0.5)]
    small = [TioRun(400_000, 1.0, 672_000, 0, 2.0, 0.5)]
    tcp = [TcpreplayRun(672_000, 192_000, 126_090_000, 2.0, 1.5)]
    out = {f.name: f for f in figures(Runs(tio, small, tcp), CaptureFacts(432, 96), 2000)}
    main = out[replay_bench.TIO_NAME]
    assert (main.value, main.baseline_value, main.target) == (310_000, 336_000, 1.0)
    assert out[f"{replay_bench.TIO_NAME}: packets above MTU 1500 delivered"].value == 192_000
    assert out[f"{replay_bench.TIO_NAME}: packets above MTU 1500 delivered"].baseline_value == 192_000
    assert out[f"{replay_bench.TIO_SMALL_NAME}: CPU"].value == pytest.approx(1.5e6 / 672_000)


def test_without_tcpreplay_tio_is_measured_alone_with_no_baseline():
    tio = [TioRun(300_000, 10.0, 864_000, 0, 4.0)]
    out = figures(Runs(tio, [], []), CaptureFacts(432, 96), 2000)
    assert out and all(f.baseline_value == 0 and f.baseline_name == "" and f.target is None for f in out)


SKIP_ROOT = why_unavailable()


@pytest.mark.root
@pytest.mark.skipif(SKIP_ROOT is not None, reason=SKIP_ROOT or "")
@pytest.mark.skipif(shutil.which("tcpreplay") is None, reason="tcpreplay is not installed (apt-get install tcpreplay)")
def test_a_tiny_real_run_of_both_paths(tmp_path):
    ethernet = tmp_path / "demo-eth.pcap"
    to_ethernet(DEMO, ethernet)
    tcp = replay_bench.measure_tcpreplay(ethernet, 2)
    assert (tcp.successful, tcp.failed) == (2 * 336, 2 * 96), "tcpreplay fails exactly the packets above the MTU"
    tio = replay_bench.measure_tio(DEMO, 2)
    assert (tio.packets_written, tio.dropped) == (2 * 432, 0), "tio replay delivers every packet"
