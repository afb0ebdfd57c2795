"""The tio command on real TUN devices in network namespaces (root only)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pyroute2 import IPRoute
from scapy.all import IP, UDP, Raw

from tests.linux import conftest as linux_conftest
from tests.linux import nsutil

SKIP_REASON = linux_conftest.SKIP_REASON
make_ns = linux_conftest.make_ns  # the fixture, shared with the linux tests

pytestmark = [pytest.mark.root, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]

TIO = str(Path(sys.executable).with_name("tio"))
A4, B4 = "198.18.0.1", "198.18.0.2"


def tio_in_ns(ns: str, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, TIO, *args], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
    )


def write_raw_pcap(path: Path, packets: list[bytes], gap_s: float = 0.01) -> None:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
        for n, pkt in enumerate(packets):
            usec = int(n * gap_s * 1e6)
            out.write(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(pkt), len(pkt)))
            out.write(pkt)


def test_info_reports_tso_and_uso(make_ns):
    ns = make_ns()
    proc = tio_in_ns(ns, "info", f"linux:name={nsutil.unique('ti')}", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    info = json.loads(out)
    assert info["backend"] == "linux"
    assert info["queues"] == [{"index": 0, "tso": True, "uso": True, "write_gso": {"tcp": True, "udp": True}}]
    device = info["device"]
    assert device["vnet_header_bytes"] == 10 and device["mtu"] == 1500 and device["gso_fallbacks"] == 0
    assert device["offload_mask"] == 0x6F
    assert device["offloads"] == ["CSUM", "TSO4", "TSO6", "TSO_ECN", "USO4", "USO6"]


def test_info_on_a_plain_device(make_ns):
    proc = tio_in_ns(make_ns(), "info", f"linux:name={nsutil.unique('tp')},offloads=false,mtu=9000", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    info = json.loads(out)
    assert info["device"]["vnet_header_bytes"] == 0 and info["device"]["mtu"] == 9000
    assert info["device"]["offload_mask"] == 0 and info["device"]["offloads"] == []
    assert info["queues"] == [{"index": 0, "tso": False, "uso": False, "write_gso": {"tcp": False, "udp": False}}]


def test_replay_into_a_tun_reaches_a_socket(make_ns, tmp_path):
    ns = make_ns()
    port = 40400
    small = [bytes(IP(src=B4, dst=A4) / UDP(sport=5000, dport=port) / Raw(f"datagram {i}".encode())) for i in range(20)]
    # one USO-sized datagram: replayed as a superpacket (gso_mtu), cut into 1472-byte chunks
    big_payload = bytes(range(256)) * 20
    big = bytes(IP(src=B4, dst=A4) / UDP(sport=5001, dport=port) / Raw(big_payload))
    capture = tmp_path / "udp.pcap"
    write_raw_pcap(capture, small + [big])
    receiver = nsutil.ns_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("0.0.0.0", port))  # before tio configures the address: nothing is missed
    receiver.settimeout(20)
    proc = None
    try:
        # the backend creates the device and sets its address in the namespace tio runs in
        spec = f"linux:name={nsutil.unique('tr')},addresses={A4}/24,up=true"
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


def _move(ifname: str, ns: str, address: str) -> None:
    with IPRoute() as ipr:
        for _ in range(200):
            found = ipr.link_lookup(ifname=ifname)
            if found:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"tio never created {ifname}")
        ipr.link("set", index=found[0], net_ns_fd=ns)

    def configure():
        with IPRoute() as inner:
            index = inner.link_lookup(ifname=ifname)[0]
            inner.addr("add", index=index, address=address, prefixlen=24)
            inner.link("set", index=index, state="up")

    nsutil.in_ns(ns, configure)


def test_two_workers_forward_a_tcp_transfer_byte_exact(make_ns):
    ns1, ns2 = make_ns(), make_ns()
    tun_a, tun_b = nsutil.unique("wa"), nsutil.unique("wb")
    proc = subprocess.Popen(
        [
            TIO,
            "forward",
            "--workers",
            "2",
            "--both-ways",
            "--json",
            "--from",
            f"linux:name={tun_a}",
            "--to",
            f"linux:name={tun_b}",
        ],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _move(tun_a, ns1, A4)
        _move(tun_b, ns2, B4)
        data = os.urandom(64 * 1024 * 1024)
        server = nsutil.ns_socket(ns2, socket.AF_INET, socket.SOCK_STREAM)
        server.bind((B4, 5201))
        server.listen(1)
        received = hashlib.sha256()
        sizes = []

        def serve():
            conn, _ = server.accept()
            with conn:
                total = 0
                while chunk := conn.recv(1 << 20):
                    received.update(chunk)
                    total += len(chunk)
                sizes.append(total)

        thread = threading.Thread(target=serve)
        thread.start()
        client = nsutil.ns_socket(ns1, socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(60)
        client.connect((B4, 5201))
        client.sendall(data)
        client.close()
        thread.join(60)
        server.close()
        assert sizes == [len(data)]
        assert received.digest() == hashlib.sha256(data).digest()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["workers"] == 2 and summary["interrupted"] is True and summary["errors"] == []
    assert summary["packets_written"] > 1000
