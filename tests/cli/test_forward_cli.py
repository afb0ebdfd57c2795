"""`tio forward`, `replay` and `record` driven through the real console script."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
from scapy.all import IP, TCP, UDP, IPv6
from scapy.utils import RawPcapReader

import tio_core
from tio_core import kernels

TIO = str(Path(sys.executable).with_name("tio"))
DEMO = str(resources.files("tio_core") / "data" / "demo.pcap")


def tio(*args, timeout=120):
    return subprocess.run([TIO, *args], capture_output=True, text=True, timeout=timeout)


def demo_segments() -> list[bytes]:
    """The demo capture's wire packets, segmented by the kernels directly."""
    wire = []
    with tio_core.open_backend("pcap", path=DEMO, gso_mtu=1500) as qs:
        queue = qs.queues()[0]
        while True:
            try:
                batch = queue.read()
            except tio_core.EndOfStream:
                return wire
            for packet in batch:
                wire += [bytes(seg) for seg in kernels.segment(packet)]


def read_capture(path) -> list[bytes]:
    return [bytes(data) for data, _meta in RawPcapReader(str(path))]


def without_df_ipv4_id(packet: bytes) -> bytes:
    """Mask the IPv4 ID and header checksum of DF packets (RFC 6864: no meaning)."""
    if packet[0] >> 4 == 4 and packet[6] & 0x40:
        return packet[:4] + b"\0\0" + packet[6:10] + b"\0\0" + packet[12:]
    return packet


def test_embedded_default_runs_and_its_summary_adds_up():
    result = tio("forward", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["source"], summary["sink"]) == ("pcap", "fake")
    assert summary["dropped"] == 0 and summary["errors"] == []
    assert summary["wire_packets_in"] == summary["packets_written"] + summary["dropped"]
    segments = demo_segments()
    assert summary["wire_packets_in"] == len(segments)
    assert summary["packets_written"] == len(segments)
    assert summary["bytes_written"] == sum(map(len, segments))
    assert summary["superpackets_segmented"] > 50
    assert summary["gso_writes"] > 0 and summary["segments_per_gso_write"] > 2


def test_embedded_default_human_summary():
    result = tio("forward")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("route ")
    assert "GSO writes" in result.stdout and "Gbit/s" in result.stdout


def flow_key(packet: bytes) -> tuple:
    parsed = IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)
    l4 = parsed[TCP] if TCP in parsed else parsed[UDP] if UDP in parsed else None
    return (parsed.src, parsed.dst, type(l4).__name__, getattr(l4, "sport", 0), getattr(l4, "dport", 0))


def by_flow(packets: list[bytes]) -> dict[tuple, list[bytes]]:
    flows: dict[tuple, list[bytes]] = {}
    for packet in packets:
        flows.setdefault(flow_key(packet), []).append(without_df_ipv4_id(packet))
    return flows


def test_pcap_to_pcap_without_coalescing_reproduces_the_segmented_input_exactly(tmp_path):
    out = tmp_path / "out.pcap"
    result = tio("forward", "--no-coalesce", "--from", f"pcap:path={DEMO},gso_mtu=1500", "--to", f"pcap:output={out}")
    assert result.returncode == 0, result.stderr
    assert read_capture(out) == demo_segments()


def test_pcap_to_pcap_reproduces_the_segmented_input_in_flow_order(tmp_path):
    # Coalescing keeps order within each flow (see tio_core.coalesce); a merged
    # run is re-stamped with consecutive IPv4 IDs, meaningless under DF.
    out = tmp_path / "out.pcap"
    result = tio("forward", "--from", f"pcap:path={DEMO},gso_mtu=1500", "--to", f"pcap:output={out}", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["gso_writes"] > 0
    recorded = read_capture(out)
    expected = demo_segments()
    assert len(recorded) == len(expected)
    assert by_flow(recorded) == by_flow(expected)
    for packet in recorded[:300]:  # every recorded packet is valid IP with good checksums
        parsed = IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)
        layer = parsed[TCP] if TCP in parsed else parsed[UDP] if UDP in parsed else None
        if layer is not None:
            claimed = layer.chksum
            del layer.chksum
            rebuilt = IP(bytes(parsed)) if packet[0] >> 4 == 4 else IPv6(bytes(parsed))
            assert rebuilt[type(layer)].chksum == claimed


def test_replay_and_record_commands(tmp_path):
    out = tmp_path / "rec.pcap"
    replay = tio("replay", DEMO, "--gso-mtu", "1500", "--to", f"pcap:output={out}", "--json")
    assert replay.returncode == 0, replay.stderr
    assert len(read_capture(out)) == len(demo_segments())
    again = tmp_path / "again.pcap"
    record = tio("record", "--from", f"pcap:path={out}", str(again), "--json")
    assert record.returncode == 0, record.stderr
    assert by_flow(read_capture(again)) == by_flow(read_capture(out))


def test_limit_stops_after_that_many_packets():
    summary = json.loads(tio("forward", "--limit", "10", "--json").stdout)
    assert summary["packets_read"] == 10


@pytest.mark.parametrize(
    "args,message",
    [
        (["forward", "--from", "nosuch:x=1", "--to", "fake"], "no backend named 'nosuch'"),
        (["forward", "--from", "pcap:paht=x", "--to", "fake"], "has no option 'paht'"),
        (["forward", "--from", "pcap:loop=often", "--to", "fake"], "option 'loop' must be an integer"),
        (["forward", "--from", "fake"], "needs both a source"),
        (["forward", "--workers", "0"], "--workers must be at least 1"),
        (["forward", "--config", "/nonexistent/tio.toml"], "cannot read config"),
        (["replay", DEMO, "--to", "fake", "--speed", "2", "--pps", "5"], "choose one pacing"),
        (["info", "fake", "queues=lots"], "option 'queues' must be an integer"),
        (["forward", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_usage_exits_2_naming_the_problem(args, message):
    result = tio(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_bad_config_file_exits_2(tmp_path):
    config = tmp_path / "tio.toml"
    config.write_text('[forward]\nspeed = 3\n[forward.from]\nbackend = "fake"\n[forward.to]\nbackend = "fake"\n')
    result = tio("forward", "--config", str(config))
    assert result.returncode == 2 and "[forward] has unknown keys: speed" in result.stderr
    config.write_text(
        '[forward.from]\nbackend = "pcap"\n[forward.from.options]\npath = 5\n[forward.to]\nbackend = "fake"\n'
    )
    result = tio("forward", "--config", str(config))
    assert result.returncode == 2 and "option 'path' must be a string" in result.stderr


def test_config_file_selects_backends(tmp_path):
    out = tmp_path / "c.pcap"
    config = tmp_path / "tio.toml"
    config.write_text(
        f'[forward]\ncoalesce = false\n[forward.from]\nbackend = "pcap"\n'
        f'[forward.from.options]\npath = "{DEMO}"\ngso_mtu = 1500\n'
        f'[forward.to]\nbackend = "pcap"\n[forward.to.options]\noutput = "{out}"\n'
    )
    summary = json.loads(tio("forward", "--config", str(config), "--json").stdout)
    assert summary["gso_writes"] == 0 and summary["verbatim_writes"] == summary["packets_written"]
    assert len(read_capture(out)) == summary["packets_written"]


def test_ctrl_c_stops_cleanly_with_a_summary(tmp_path):
    out = tmp_path / "slow.pcap"
    proc = subprocess.Popen(
        [
            TIO,
            "forward",
            "--from",
            f"pcap:path={DEMO},gso_mtu=1500,loop=0,pacing=rate,rate=400",
            "--to",
            f"pcap:output={out}",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] is True
    assert summary["packets_read"] > 100
    assert summary["wire_packets_in"] == summary["packets_written"] + summary["dropped"]
    assert len(read_capture(out)) == summary["packets_written"]


def test_bench_prints_ratios_and_plots(tmp_path):
    plot = tmp_path / "bench.png"
    result = tio("bench", "--quick", "--only", "kernels", "--plot", str(plot), "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:2] == ["measurement", "value"] and header[-1] == "ratio"
    assert "checksum 64KiB (C)" in result.stdout and "bytes copy" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_unknown_name_is_a_usage_error():
    result = tio("bench", "--only", "nosuch")
    assert result.returncode == 2 and "unknown benchmark nosuch" in result.stderr
