"""The TUN benchmark harness (tio_linux.bench) and its reference forwarders (tio_linux.refforward).

Quick runs only: each test measures one or two paths for a second, to show the
harness works and cleans up, never to judge speed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tio_linux import bench
from tio_linux.netns import namespaces_of

needs_iperf3 = pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3 (apt-get install iperf3)")


def paths() -> dict[str, bench.DataPath]:
    return {path.key: path for path in bench.data_paths(2)}


@pytest.mark.parametrize("mode", ["plain", "vnet"])
def test_reference_forwarders_carry_tcp_and_uso_intact(tio_tun_link, mode):
    forwarder = tio_tun_link.start([sys.executable, "-m", "tio_linux.refforward", mode, "{a}", "{b}"], ready="READY")
    assert tio_tun_link.tcp(16 * 1024 * 1024, version=6).intact
    udp = tio_tun_link.udp([os.urandom(1200 * 7 + 5), b"small"], segment_size=1200)
    assert udp.intact, udp
    assert forwarder.stop() == 0
    _, err = forwarder.output()
    forwarded = int(err.split("a->b ")[1].split()[0])
    # vnet copies superpackets: far fewer packets than the wire carried
    assert forwarded > (10_000 if mode == "plain" else 0) and (mode == "plain" or forwarded < 5_000), err


@needs_iperf3
def test_a_veth_run_and_a_forwarder_run_measure_speed_and_cpu():
    veth = bench.measure(paths()["veth"], seconds=1)
    assert veth.gbit_per_s > 0 and veth.bytes > 0 and veth.cpu_seconds is None  # no forwarder, no CPU figure
    raw = bench.measure(paths()["raw"], seconds=1)
    assert raw.gbit_per_s > 0 and raw.cpu_seconds > 0
    assert raw.cpu_per_gb == raw.cpu_seconds / (raw.bytes / 1e9)
    assert namespaces_of(os.getpid()) == []


@needs_iperf3
def test_the_multi_flow_run_counts_packets_per_queue():
    path = paths()["fwdNP"]
    assert path.flows == bench.MULTI_FLOWS and path.queues == 2
    result = bench.measure(path, seconds=1)
    assert len(result.queue_packets) == 2 and sum(result.queue_packets) > 1000, result
    assert namespaces_of(os.getpid()) == []


def test_figures_put_every_path_beside_raw_vnet_from_the_same_run():
    measured = {
        "veth": [bench.Measurement(20.0, 2_500_000_000, 0)],
        "raw": [bench.Measurement(10.0, 1_000_000_000, 0, 0.5), bench.Measurement(12.0, 1_000_000_000, 0, 0.7)],
        "seg": [bench.Measurement(6.0, 1_000_000_000, 0, 1.0)],
        "fwd1": [bench.Measurement(3.0, 1_000_000_000, 0, 2.0)],
        "fwd1P": [bench.Measurement(4.0, 1_000_000_000, 0, 2.0)],
        "fwdNP": [bench.Measurement(5.0, 2_000_000_000, 0, 3.0, [300, 100])],
    }
    chosen = [p for p in bench.data_paths(2) if p.key in measured]
    figures = {f.name: f for f in bench.figures(chosen, measured)}
    seg = figures["tun_bridge.py --mode segment"]
    assert (seg.value, seg.baseline_name, seg.baseline_value) == (6.0, "raw vnet passthrough", 11.0)  # median
    assert figures["tun_bridge.py --mode segment: CPU"].value == 1.0
    assert figures["raw vnet passthrough: CPU"].value == pytest.approx(0.6)
    assert "veth pair (kernel only): CPU" not in figures  # no forwarder process to measure
    versus = figures["tio forward --both-ways, 1 worker (vs the example)"]
    assert (versus.value, versus.baseline_name, versus.baseline_value) == (3.0, "tun_bridge.py --mode segment", 6.0)
    multi = figures["tio forward, 2 workers, 4 flows"]
    assert (multi.value, multi.baseline_value) == (5.0, 4.0)
    assert figures["tio forward, 2 workers, 4 flows: CPU"].value == 1.5
    queue0 = figures["tio forward, 2 workers, 4 flows: queue 0 packets"]
    assert (queue0.value, queue0.baseline_value) == (300, 400)


def test_without_iperf3_nothing_is_measured_and_the_reason_is_said(tmp_path, capfd):
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH without iperf3
    out = subprocess.run(
        [sys.executable, "-c", "from tio_linux.bench import run; print(run(quick=True))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "[]"
    assert "not measured: iperf3 is not installed" in out.stderr


def test_nothing_refers_outside_the_repository():
    root = Path(__file__).resolve().parents[2]
    sources = [
        root / "Makefile",
        root / "benchmarks" / "bench_tun.py",
        *root.joinpath("plugins", "tio_linux").rglob("*.py"),
    ]
    assert [str(p) for p in sources if "../shared" in p.read_text() or "shared/bench" in p.read_text()] == []


@pytest.mark.slow
@needs_iperf3
def test_tio_bench_only_tun_prints_every_path():
    tio = Path(sys.executable).with_name("tio")
    out = subprocess.run([str(tio), "bench", "--only", "tun", "--quick"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for path in bench.data_paths(bench.workers()):
        assert path.name in out.stdout, (path.name, out.stdout, out.stderr)
    assert "s/GB" in out.stdout and "queue 1 packets" in out.stdout
