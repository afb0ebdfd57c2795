"""The tio command on real TUN devices in network namespaces (root only)."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.all import IP, UDP, Raw

from tio_linux.netns import Namespace, unique_ifname, why_unavailable

SKIP_REASON = why_unavailable()

pytestmark = [pytest.mark.root, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]

TIO = str(Path(sys.executable).with_name("tio"))
A4, B4 = "198.18.0.1", "198.18.0.2"


def tio_in_ns(ns: Namespace, *args: str, **popen) -> subprocess.Popen:
    return ns.popen([TIO, *args], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def write_raw_pcap(path: Path, packets: list[bytes], gap_s: float = 0.01) -> None:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
        for n, pkt in enumerate(packets):
            usec = int(n * gap_s * 1e6)
            out.write(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(pkt), len(pkt)))
            out.write(pkt)


def test_info_reports_tso_and_uso(tio_netns):
    ns = tio_netns()
    proc = tio_in_ns(ns, "info", f"linux:name={unique_ifname('ti')}", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    info = json.loads(out)
    assert info["backend"] == "linux"
    assert info["queues"] == [{"index": 0, "tso": True, "uso": True, "write_gso": {"tcp": True, "udp": True}}]
    device = info["device"]
    assert device["vnet_header_bytes"] == 10 and device["mtu"] == 1500 and device["gso_fallbacks"] == 0
    assert device["offload_mask"] == 0x6F
    assert device["offloads"] == ["CSUM", "TSO4", "TSO6", "TSO_ECN", "USO4", "USO6"]


def test_info_on_a_plain_device(tio_netns):
    proc = tio_in_ns(tio_netns(), "info", f"linux:name={unique_ifname('tp')},offloads=false,mtu=9000", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    info = json.loads(out)
    assert info["device"]["vnet_header_bytes"] == 0 and info["device"]["mtu"] == 9000
    assert info["device"]["offload_mask"] == 0 and info["device"]["offloads"] == []
    assert info["queues"] == [{"index": 0, "tso": False, "uso": False, "write_gso": {"tcp": False, "udp": False}}]


def test_replay_into_a_tun_reaches_a_socket(tio_netns, tmp_path):
    ns = tio_netns()
    port = 40400
    small = [bytes(IP(src=B4, dst=A4) / UDP(sport=5000, dport=port) / Raw(f"datagram {i}".encode())) for i in range(20)]
    # one USO-sized datagram: replayed as a superpacket (gso_mtu), cut into 1472-byte chunks
    big_payload = bytes(range(256)) * 20
    big = bytes(IP(src=B4, dst=A4) / UDP(sport=5001, dport=port) / Raw(big_payload))
    capture = tmp_path / "udp.pcap"
    write_raw_pcap(capture, small + [big])
    receiver = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("0.0.0.0", port))  # before tio configures the address: nothing is missed
    receiver.settimeout(20)
    proc = None
    try:
        # the backend creates the device and sets its address in the namespace tio runs in
        spec = f"linux:name={unique_ifname('tr')},addresses={A4}/24,up=true"
        proc = tio_in_ns(ns, "replay", str(capture), "--gso-mtu", "1500", "--pps", "200", "--to", spec, "--json")
        got = [receiver.recv(65535) for _ in range(20 + 4)]
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        receiver.close()
        if proc and proc.poll() is None:
            proc.kill()
    assert got[:20] == [f"datagram {i}".encode() for i in range(20)]
    chunk = 1500 - 20 - 8
    assert got[20:] == [big_payload[i : i + chunk] for i in range(0, len(big_payload), chunk)]
    summary = json.loads(out)
    assert summary["packets_written"] == 24 and summary["dropped"] == 0


def test_two_workers_forward_a_tcp_transfer_byte_exact(tio_tun_link):
    forwarder = tio_tun_link.start(
        [
            TIO,
            "forward",
            "--workers",
            "2",
            "--both-ways",
            "--json",
            "--from",
            "linux:name={a}",
            "--to",
            "linux:name={b}",
        ],
        queues=2,
    )
    result = tio_tun_link.tcp(64 * 1024 * 1024)
    assert result.intact, result
    code = forwarder.stop(signal.SIGINT, timeout=60)
    out, err = forwarder.output()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["workers"] == 2 and summary["interrupted"] is True and summary["errors"] == []
    assert summary["packets_written"] > 1000
