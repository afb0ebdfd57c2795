"""End to end: tcpdump on a real TSO/USO TUN captures superpackets; replaying that file
gives back the very packets and GSOInfo the kernel handed to the TUN reader.

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


def _read_udp(queue, deadline: float):
    while time.monotonic() < deadline:
        for packet in queue.read():
            data = packet.data
            if (data[9] if data[0] >> 4 == 4 else data[6]) == 17:
                return packet.clone()
    raise AssertionError("the UDP superpacket never reached the TUN")


@pytest.mark.parametrize("version", [4, 6])
def test_tcpdump_capture_of_a_uso_superpacket_replays_as_the_kernel_delivered_it(tmp_path, version):
    from tests.linux import nsutil
    from tio_linux.backend import open_linux

    family, cidr, peer = FAMILIES[version]
    ns = nsutil.unique("tiop")
    nsutil.create_ns(ns)
    capture = tmp_path / "tun.pcap"
    qset = tcpdump = None
    try:
        qset = nsutil.in_ns(ns, open_linux, name=nsutil.unique("tp"), addresses=(cidr,), up=True, mtu=1500)
        ifname = qset.name
        tcpdump = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{ns}", "tcpdump", "-Z", "root", "-i", ifname, "--immediate-mode", "-U", "-s", "262144", "-w", str(capture),
             "udp port 9999"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert b"listening on" in tcpdump.stderr.readline()
        payload = os.urandom(4 * 1200 + 345)
        sock = nsutil.ns_socket(ns, family, socket.SOCK_DGRAM)
        with sock:
            sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1200)
            sock.sendto(payload, (peer, 9999))
        from_kernel = _read_udp(qset.queues()[0], time.monotonic() + 10)
        time.sleep(0.2)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(10)
    finally:
        if tcpdump is not None and tcpdump.poll() is None:
            tcpdump.kill()
            tcpdump.wait()
        if qset is not None:
            qset.close()
        nsutil.remove_ns(ns)
    assert from_kernel.gso.is_superpacket and from_kernel.gso.proto == GSOProto.UDP
    replayed = []
    with open_backend("pcap", path=str(capture), mss=1200) as qs:
        try:
            while True:
                replayed.extend(p.clone() for p in qs.queues()[0].read())
        except EndOfStream:
            pass
    assert len(replayed) == 1
    assert replayed[0].gso == from_kernel.gso
    assert bytes(replayed[0].data) == bytes(from_kernel.data)
    assert [bytes(s) for s in kernels.segment(replayed[0])] == [bytes(s) for s in kernels.segment(from_kernel)]
