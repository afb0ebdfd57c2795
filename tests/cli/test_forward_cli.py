"""`tio forward`, `replay` and `record` driven through the real console script."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
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
A4, B4 = "198.18.0.1", "198.18.0.2"


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


def transport_layer(parsed):
    """The TCP or UDP layer of a scapy packet, or None."""
    for layer in (TCP, UDP):
        if layer in parsed:
            return parsed[layer]
    return None


def flow_key(packet: bytes) -> tuple:
    parsed = IP(packet) if packet[0] >> 4 == 4 else IPv6(packet)
    l4 = transport_layer(parsed)
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
        layer = transport_layer(parsed)
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


# -- stopping: SIGINT and SIGTERM, whatever the source is blocked in ----------------------

# The runner returns within 0.8 s of a stop (tio_core.forward.runner.STOP_DEADLINE); the
# bound here only leaves room for a loaded machine to print and exit. A hang never meets it.
STOP_BOUND = 3.0


def _pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)


def _pcap_record(packet: bytes) -> bytes:
    return struct.pack("<IIII", 0, 0, len(packet), len(packet)) + packet


def _wait_until_forwarding(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the run has started (its forwarder thread exists): a signal before that ends start-up instead."""
    deadline = time.monotonic() + timeout
    while len(os.listdir(f"/proc/{proc.pid}/task")) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "tio never started forwarding"
        time.sleep(0.05)


def _stop(proc: subprocess.Popen, signum: int) -> tuple[str, str, float]:
    """Send ``signum``; return stdout, stderr and the seconds until the process exited."""
    sent = time.monotonic()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=30)
    return stdout, stderr, time.monotonic() - sent


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_a_paced_replay_with_the_summary(tmp_path, signum):
    out = tmp_path / "slow.pcap"
    proc = subprocess.Popen(
        [TIO, "forward", "--from", f"pcap:path={DEMO},gso_mtu=1500,loop=0,pacing=rate,rate=400"]
        + ["--to", f"pcap:output={out}", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_until_forwarding(proc)
    time.sleep(1.0)
    stdout, stderr, took = _stop(proc, signum)
    assert proc.returncode == 0, f"rule: a stop by {signum.name} is clean (exit 0): {stderr}"
    assert took < STOP_BOUND, f"rule: {signum.name} stops the run within a second ({took:.2f} s)"
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["packets_read"] > 100
    assert summary["wire_packets_in"] == summary["packets_written"] + summary["dropped"]
    assert len(read_capture(out)) == summary["packets_written"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_a_fifo_source_whose_writer_stalled_mid_capture(tmp_path, signum):
    fifo, out = tmp_path / "live.fifo", tmp_path / "out.pcap"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [TIO, "forward", "--from", f"pcap:path={fifo}", "--to", f"pcap:output={out}", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = os.open(fifo, os.O_WRONLY)  # blocks until tio opened the FIFO for reading
    try:
        packets = [bytes(IP(src=A4, dst=B4) / UDP(sport=i)) for i in range(128)]
        records = b"".join(map(_pcap_record, packets))
        os.write(writer, _pcap_header() + records + _pcap_record(bytes(IP() / UDP()))[:25])  # then stall mid-record
        _wait_until_forwarding(proc)
        time.sleep(0.5)  # tio is now blocked in a pipe read, holding the FIFO open
        stdout, stderr, took = _stop(proc, signum)
    finally:
        os.close(writer)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert took < STOP_BOUND, f"rule: a reader blocked in a pipe does not hold up {signum.name} ({took:.2f} s)"
    summary = json.loads(stdout)
    assert summary["interrupted"] is True
    assert summary["packets_written"] == 128 == len(read_capture(out))
    assert summary["wire_packets_in"] == summary["packets_written"] + summary["dropped"]


def _wait_until_blocked_in_open(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until tio sits in openat() (a FIFO with no writer yet): /proc/PID/syscall names the call."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, "tio never blocked opening the FIFO"
        with contextlib.suppress(OSError), open(f"/proc/{proc.pid}/syscall") as status:
            if status.read().split()[0] == str(SYS_OPENAT):
                return
        time.sleep(0.05)


SYS_OPENAT = 257  # x86-64


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the openat syscall number is x86-64's")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_opening_the_source_ends_cleanly_with_exit_0(tmp_path, signum):
    fifo = tmp_path / "never-written.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [TIO, "replay", str(fifo), "--to", "fake"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job has SIGINT ignored; tio must see it as a terminal's Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_until_blocked_in_open(proc)
        stdout, stderr, took = _stop(proc, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (
        f"rule: {signum.name} before the run started is a clean stop (exit 0), got {proc.returncode}: {stderr!r}"
    )
    assert took < STOP_BOUND
    assert stderr.strip() == f"tio: interrupted by {signum.name} before anything was read", (
        f"rule: a stop during start-up says so in one line: {stderr!r}"
    )


# -- process layout on live TUNs (root: tio forward joins two namespaces) ----------------------

FORWARD_BOTH_WAYS = [TIO, "forward", "--both-ways", "--json", "--from", "linux:name={a}", "--to", "linux:name={b}"]


def _summary_after(fwd, signum: int | None = None, processes: list[int] | None = None) -> tuple[dict, str, int, float]:
    """Signal the forwarder (or each of ``processes``), wait; (JSON summary, stderr, exit code, seconds)."""
    sent = time.monotonic()
    if processes is None:
        if signum is not None:
            fwd.popen.send_signal(signum)
    else:
        for pid in processes:
            os.kill(pid, signal.SIGINT)
    code = fwd.popen.wait(30)
    took = time.monotonic() - sent
    out, err = fwd.output()
    return json.loads(out), err, code, took


@pytest.mark.root
@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_both_ways_runs_each_direction_in_its_own_process_and_stops_with_one_summary(tio_tun_link, how):
    fwd = tio_tun_link.start(FORWARD_BOTH_WAYS)
    tree = fwd.processes()
    assert len(tree) == 3, f"rule: each direction runs in its own process (no shared GIL): {tree}"
    assert tio_tun_link.tcp(8 * 1024 * 1024).intact
    if how == "SIGTERM":  # only tio itself, as `kill` would
        summary, err, code, took = _summary_after(fwd, signal.SIGTERM)
    else:  # a terminal's Ctrl-C reaches tio and its workers alike
        summary, err, code, took = _summary_after(fwd, processes=tree)
    assert code == 0, err
    assert took < STOP_BOUND, f"rule: {how} stops the run within a second ({took:.2f} s)"
    assert summary["interrupted"] is True and summary["errors"] == []
    for direction in (summary, summary["reverse"]):
        assert direction["wire_packets_in"] == direction["packets_written"] + direction["dropped"]
        assert [q["queue"] for q in direction["per_queue"]] == [0]
    assert summary["superpackets_segmented"] > 0 and summary["gso_writes"] > 0
    assert summary["active_s"] > 0 and summary["elapsed_s"] >= summary["active_s"]


@pytest.mark.root
def test_a_worker_that_dies_ends_the_run_with_exit_1_and_the_summary(tio_tun_link):
    fwd = tio_tun_link.start(FORWARD_BOTH_WAYS)
    assert tio_tun_link.tcp(1024 * 1024).intact
    time.sleep(0.5)  # a progress report from each worker
    os.kill(fwd.processes()[-1], signal.SIGKILL)
    summary, err, code, _ = _summary_after(fwd)
    assert code == 1, "rule: a worker that died is a runtime error"
    assert "was killed by SIGKILL" in err and "its counts are those it last reported" in err
    assert summary["wire_packets_in"] == summary["packets_written"] + summary["dropped"]


@pytest.mark.root
def test_workers_spread_flows_over_the_queues(tio_tun_link):
    import threading

    fwd = tio_tun_link.start([*FORWARD_BOTH_WAYS, "--workers", "2"], queues=2)
    assert len(fwd.processes()) == 5, "one process per queue and direction, and the supervisor"
    results = []
    flows = [threading.Thread(target=lambda: results.append(tio_tun_link.tcp(2 * 1024 * 1024))) for _ in range(16)]
    for flow in flows:
        flow.start()
    for flow in flows:
        flow.join(120)
    assert len(results) == 16 and all(r.intact for r in results)
    summary, err, code, _ = _summary_after(fwd, signal.SIGTERM)
    assert code == 0, err
    per_queue = {q["queue"]: q["packets_read"] for q in summary["per_queue"]}
    # 16 flows hashed over 2 queues: all on one queue has probability 2**-15
    assert set(per_queue) == {0, 1} and min(per_queue.values()) > 0, f"rule: flows spread over queues {per_queue}"
    assert summary["wire_packets_in"] == summary["packets_written"] + summary["dropped"]
