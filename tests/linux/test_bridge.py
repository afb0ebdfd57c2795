"""End to end: two namespaces joined by two TUNs and examples/tun_bridge.py.

The forwarder runs as its own process exactly as a user would start it; the
test moves its devices into the namespaces, then pushes TCP and UDP over
IPv4 and IPv6 through it and compares what arrives byte for byte.
"""

from __future__ import annotations

import hashlib
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from tests.linux import nsutil

BRIDGE = Path(__file__).resolve().parents[2] / "examples" / "tun_bridge.py"
UDP_SEGMENT = 103
ADDR = {4: ("198.18.0.1", "198.18.0.2", 24), 6: ("fd00::1", "fd00::2", 64)}


def _configure(name: str, addresses: list[tuple[str, int]]) -> None:
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)[0]
        for address, prefix in addresses:
            ipr.addr("add", index=index, address=address, prefixlen=prefix)
        ipr.link("set", index=index, state="up")


@pytest.fixture(params=[("segment", "process"), ("passthrough", "process"), ("segment", "thread")], ids="-".join)
def bridge(request, make_ns):
    """(nsA, nsB) joined by tun_bridge.py in the given mode; stopped and removed afterwards."""
    mode, workers = request.param
    ns_a, ns_b = make_ns(), make_ns()
    tun_a, tun_b = nsutil.unique("ba"), nsutil.unique("bb")
    proc = subprocess.Popen(
        [sys.executable, str(BRIDGE), "--mode", mode, "--workers", workers, tun_a, tun_b],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("READY"), (
            f"forwarder did not start: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        with IPRoute() as ipr:
            for name, ns in ((tun_a, ns_a), (tun_b, ns_b)):
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], net_ns_fd=ns)
        for name, ns, side in ((tun_a, ns_a, 0), (tun_b, ns_b, 1)):
            nsutil.in_ns(ns, _configure, name, [(ADDR[4][side], 24), (ADDR[6][side], 64)])
        yield ns_a, ns_b
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


def _stream(seed: int, total: int, chunk: int = 1 << 20):
    """Deterministic, incompressible-looking chunks adding up to total bytes."""
    block = hashlib.shake_256(seed.to_bytes(8, "big")).digest(chunk)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        yield piece
        sent += len(piece)
        block = block[1:] + block[:1]  # shift so chunks differ


def tcp_transfer(ns_a: str, ns_b: str, version: int, total: int) -> None:
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    src, dst, _ = ADDR[version]
    listener = nsutil.ns_socket(ns_b, family, socket.SOCK_STREAM)
    listener.bind((dst, 7000))
    listener.listen(1)
    listener.settimeout(20)
    result: dict[str, object] = {}

    def receive() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(30)
            digest, size = hashlib.sha256(), 0
            with conn:
                while chunk := conn.recv(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
            result["hash"], result["size"] = digest.hexdigest(), size
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=receive)
    thread.start()
    sender = nsutil.ns_socket(ns_a, family, socket.SOCK_STREAM)
    sender.settimeout(30)
    digest = hashlib.sha256()
    with sender, listener:
        sender.connect((dst, 7000))
        for piece in _stream(version, total):
            sender.sendall(piece)
            digest.update(piece)
        sender.shutdown(socket.SHUT_WR)
        thread.join(60)
    assert not thread.is_alive(), "receiver did not finish"
    assert "error" not in result, result.get("error")
    assert result["size"] == total
    assert result["hash"] == digest.hexdigest()


def udp_transfer(ns_a: str, ns_b: str, version: int, rounds: int = 30) -> None:
    """Each round: one UDP_SEGMENT send (a USO superpacket) and one plain datagram, then receive them all."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    src, dst, _ = ADDR[version]
    receiver = nsutil.ns_socket(ns_b, family, socket.SOCK_DGRAM)
    sender = nsutil.ns_socket(ns_a, family, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.bind((dst, 7001))
        receiver.settimeout(10)
        sender.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1200)
        for index in range(rounds):
            blob = hashlib.shake_256(bytes([version, index])).digest(1200 * 7 + 345)
            sender.sendto(blob, (dst, 7001))  # seven 1200-byte datagrams and a 345-byte one
            single = blob[:100] + index.to_bytes(4, "big")
            sender.sendto(single, (dst, 7001))
            expected = [blob[i : i + 1200] for i in range(0, len(blob), 1200)] + [single]
            assert [receiver.recv(4096) for _ in expected] == expected


@pytest.mark.slow
def test_tcp_v4_200mb_byte_exact(bridge):
    ns_a, ns_b = bridge
    before = nsutil.checksum_errors(ns_a) + nsutil.checksum_errors(ns_b)
    tcp_transfer(ns_a, ns_b, 4, 200 * 1024 * 1024)
    assert nsutil.checksum_errors(ns_a) + nsutil.checksum_errors(ns_b) == before


def test_tcp_v6_byte_exact(bridge):
    ns_a, ns_b = bridge
    before = nsutil.checksum_errors(ns_a) + nsutil.checksum_errors(ns_b)
    tcp_transfer(ns_a, ns_b, 6, 32 * 1024 * 1024)
    assert nsutil.checksum_errors(ns_a) + nsutil.checksum_errors(ns_b) == before


@pytest.mark.parametrize("version", [4, 6])
def test_udp_with_uso_byte_exact(bridge, version):
    ns_a, ns_b = bridge
    before = nsutil.checksum_errors(ns_a) + nsutil.checksum_errors(ns_b)
    udp_transfer(ns_a, ns_b, version)
    assert nsutil.checksum_errors(ns_a) + nsutil.checksum_errors(ns_b) == before
