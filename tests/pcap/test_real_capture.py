"""End to end: tcpdump on a real TSO/USO TUN captures superpackets; replaying that file
gives back the very packets and GSOInfo the kernel handed to the TUN reader (USO with
mss=, TSO with gso_mtu= and TCP timestamps in the headers).

Runs in a network namespace the test creates and removes; needs root, /dev/net/tun,
tcpdump and nsenter, and the tio-linux backend.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tio_core import kernels, open_backend
from tio_core.contract import GSOProto
from tio_core.errors import EndOfStream

UDP_SEGMENT = 103
FAMILIES = {4: (socket.AF_INET, "198.18.7.1/24", "198.18.7.2"), 6: (socket.AF_INET6, "fd00:7::1/64", "fd00:7::2")}


def _why_skip() -> str | None:
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        return "needs root and /dev/net/tun"
    if not (shutil.which("tcpdump") and shutil.which("nsenter")):
        return "needs tcpdump and nsenter"
    try:
        import tio_linux  # noqa: F401
    except ImportError:
        return "needs the tio-linux backend"
    return None


pytestmark = [pytest.mark.root, pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))]


class CapturedTun:
    """A TUN in a fresh namespace with tcpdump writing what crosses it; all removed at exit."""

    def __init__(self, capture, version: int, bpf: str) -> None:
        self.capture, self.version, self.bpf = capture, version, bpf
        self.family, self.cidr, self.peer = FAMILIES[version]
        self.local = self.cidr.split("/")[0]

    def __enter__(self) -> CapturedTun:
        from tio_linux.backend import open_linux
        from tio_linux.netns import Namespace, unique_ifname

        self.ns = Namespace("p")
        self.qset = self.tcpdump = None
        try:
            self.qset = self.ns.run(open_linux, name=unique_ifname("tp"), addresses=(self.cidr,), up=True, mtu=1500)
            self.queue = self.qset.queues()[0]
            self.tcpdump = subprocess.Popen(
                [
                    "nsenter",
                    f"--net={self.ns.path}",
                    "tcpdump",
                    "-Z",
                    "root",
                    "-i",
                    self.qset.name,
                    "--immediate-mode",
                    "-U",
                    "-s",
                    "262144",
                    "-w",
                    str(self.capture),
                    self.bpf,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            assert b"listening on" in self.tcpdump.stderr.readline()
        except BaseException:
            self.__exit__()
            raise
        return self

    def socket(self, kind: int) -> socket.socket:
        return self.ns.socket(self.family, kind)

    def stop_capture(self) -> None:
        time.sleep(0.2)  # let tcpdump write the last packet
        self.tcpdump.send_signal(signal.SIGINT)
        self.tcpdump.wait(10)

    def __exit__(self, *exc_info: object) -> None:
        if self.tcpdump is not None and self.tcpdump.poll() is None:
            self.tcpdump.kill()
            self.tcpdump.wait()
        if self.qset is not None:
            self.qset.close()
        self.ns.remove()


def replay_all(path, **options) -> list:
    packets = []
    with open_backend("pcap", path=str(path), **options) as qs:
        try:
            while True:
                packets.extend(p.clone() for p in qs.queues()[0].read())
        except EndOfStream:
            return packets


def _read_udp(queue, deadline: float):
    while time.monotonic() < deadline:
        for packet in queue.read():
            data = packet.data
            if (data[9] if data[0] >> 4 == 4 else data[6]) == 17:
                return packet.clone()
    raise AssertionError("the UDP superpacket never reached the TUN")


@pytest.mark.parametrize("version", [4, 6])
def test_tcpdump_capture_of_a_uso_superpacket_replays_as_the_kernel_delivered_it(tmp_path, version):
    capture = tmp_path / "tun.pcap"
    with CapturedTun(capture, version, "udp port 9999") as tun:
        payload = os.urandom(4 * 1200 + 345)
        with tun.socket(socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1200)
            sock.sendto(payload, (tun.peer, 9999))
        from_kernel = _read_udp(tun.queue, time.monotonic() + 10)
        tun.stop_capture()
    assert from_kernel.gso.is_superpacket and from_kernel.gso.proto == GSOProto.UDP
    replayed = replay_all(capture, mss=1200)
    assert len(replayed) == 1
    assert replayed[0].gso == from_kernel.gso
    assert bytes(replayed[0].data) == bytes(from_kernel.data)
    assert [bytes(s) for s in kernels.segment(replayed[0])] == [bytes(s) for s in kernels.segment(from_kernel)]


@pytest.mark.parametrize("version", [4, 6])
def test_tcpdump_capture_of_tso_superpackets_replays_as_the_kernel_delivered_them(tmp_path, version):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    capture = tmp_path / "tun.pcap"
    layer = IP if version == 4 else IPv6
    with CapturedTun(capture, version, "tcp port 5001") as tun:
        listener = tun.socket(socket.SOCK_STREAM)
        listener.bind((tun.local, 5001))
        listener.listen(1)
        listener.settimeout(5)
        options = [("MSS", 1460), ("NOP", None), ("NOP", None), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]
        tun.queue.write(
            bytes(
                layer(src=tun.peer, dst=tun.local)
                / TCP(sport=40000, dport=5001, flags="S", seq=1000, window=65535, options=options)
            )
        )
        synack = _read_tcp(tun.queue, lambda tcp: tcp.flags == "SA")
        tun.queue.write(
            bytes(
                layer(src=tun.peer, dst=tun.local)
                / TCP(
                    sport=40000,
                    dport=5001,
                    flags="A",
                    seq=1001,
                    ack=synack.seq + 1,
                    window=65535,
                    options=[("NOP", None), ("NOP", None), ("Timestamp", (2, _tsval(synack)))],
                )
            )
        )
        conn, _ = listener.accept()
        listener.close()
        with conn:
            conn.sendall(os.urandom(6 * 1448 + 100))
            from_kernel = []
            deadline = time.monotonic() + 10
            while sum(len(p.data) for p in from_kernel) < 6 * 1448 + 100 and time.monotonic() < deadline:
                from_kernel.extend(p.clone() for p in tun.queue.read() if p.gso.is_superpacket)
            tun.stop_capture()
    assert from_kernel, "the kernel sent no TSO superpacket"
    replayed = [p for p in replay_all(capture, gso_mtu=1500) if p.gso.is_superpacket]
    assert [p.gso for p in replayed] == [p.gso for p in from_kernel]
    assert from_kernel[0].gso.hdr_len == from_kernel[0].gso.csum_start + 32  # timestamps in every segment
    assert [bytes(p.data) for p in replayed] == [bytes(p.data) for p in from_kernel]


def _tsval(tcp) -> int:
    """The timestamp a SYN-ACK sent, which the ACK must echo."""
    return next(value[0] for name, value in tcp.options if name == "Timestamp")


def _read_tcp(queue, predicate, limit: int = 200):
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    for _ in range(limit):
        for packet in queue.read():
            data = bytes(packet.data)
            pkt = IP(data) if data[0] >> 4 == 4 else IPv6(data)
            if TCP in pkt and predicate(pkt[TCP]):
                return pkt[TCP]
    raise AssertionError("the expected TCP packet never arrived")
