"""The coalescer against a real kernel: a TUN with TSO/USO in a namespace.

What the kernel delivers to sockets must be exactly the stream/datagrams the
staged packets carried, with merging actually happening (write_gso calls), and
a packet with a bad checksum must be dropped by the kernel as if it had not
been coalesced.
"""

from __future__ import annotations

import os
import socket

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from tests.support.coalesce import corrupt_l4_checksum
from tests.support.tun import recv_stream, tcp_handshake
from tio_core.coalesce import Coalescer

pytestmark = pytest.mark.root
if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
    pytest.skip("needs root and /dev/net/tun", allow_module_level=True)
tio_linux = pytest.importorskip("tio_linux.backend")


def ip_df(**kw):
    return IP(flags="DF", **kw)  # scapy repeats ID 1: only DF packets may merge with equal IDs


FAMILIES = {4: (ip_df, "198.18.0.1", "198.18.0.2", "198.18.0.1/24"), 6: (IPv6, "fd00::1", "fd00::2", "fd00::1/64")}


class Counting:
    """Forwards to the queue and counts the writes of each kind."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.writes = 0
        self.gso_segments: list[int] = []

    def capabilities(self):
        return self.queue.capabilities()

    def write(self, data):
        self.writes += 1
        return self.queue.write(data)

    def write_gso(self, ip_hdr, l4_hdr, payloads, proto):
        self.gso_segments.append(len(payloads))
        return self.queue.write_gso(ip_hdr, l4_hdr, payloads, proto)


@pytest.fixture(params=[4, 6], ids=["v4", "v6"])
def linked(request, open_in_ns):  # noqa: F811
    layer, local, peer, cidr = FAMILIES[request.param]
    ns, qset = open_in_ns(addresses=(cidr,), up=True)
    queue = qset.queues()[0]
    caps = queue.capabilities()
    if not (caps.tso and caps.uso):
        pytest.skip(f"kernel granted {caps}")
    family = socket.AF_INET if request.param == 4 else socket.AF_INET6
    return ns, queue, layer, local, peer, family


def test_udp_runs_reach_the_socket_intact_and_bad_checksums_are_dropped(linked):
    ns, queue, layer, local, peer, family = linked
    sock = ns.socket(family, socket.SOCK_DGRAM)
    with sock:
        sock.bind((local, 5100))
        sock.settimeout(5)
        payloads = [os.urandom(1200) for _ in range(20)] + [os.urandom(300)]
        packets = [bytes(layer(src=peer, dst=local) / UDP(sport=6000, dport=5100) / Raw(p)) for p in payloads]
        bad = corrupt_l4_checksum(bytes(layer(src=peer, dst=local) / UDP(sport=6000, dport=5100) / Raw(b"bad")))
        tail = [bytes(layer(src=peer, dst=local) / UDP(sport=6000, dport=5100) / Raw(b"t" * 99)) for _ in range(3)]
        errors_before = ns.checksum_errors()
        writer = Counting(queue)
        co = Coalescer.for_queue(writer)
        co.add_many([*packets, bad, *tail])
        co.flush()
        received = [sock.recv(2000) for _ in range(len(payloads) + len(tail))]
    assert (writer.gso_segments, writer.writes) == ([21, 3], 1)
    assert received == payloads + [b"t" * 99] * 3
    assert ns.checksum_errors() == errors_before + 1  # the kernel dropped the bad one


def test_tcp_run_reaches_the_socket_as_the_same_stream(linked):
    ns, queue, layer, local, peer, family = linked
    conn, seq, ack = tcp_handshake(queue, ns, family, local, peer, 5101, sport=40001)
    with conn:
        chunks = [os.urandom(1400) for _ in range(30)] + [os.urandom(321)]
        packets = []
        for index, chunk in enumerate(chunks):
            flags = "PA" if index == len(chunks) - 1 else "A"
            packets.append(
                bytes(
                    layer(src=peer, dst=local)
                    / TCP(sport=40001, dport=5101, flags=flags, seq=seq, ack=ack, window=65535)
                    / Raw(chunk)
                )
            )
            seq += len(chunk)
        errors_before = ns.checksum_errors()
        writer = Counting(queue)
        co = Coalescer.for_queue(writer)
        co.add_many(packets)
        co.flush()
        expected = b"".join(chunks)
        received = recv_stream(conn, len(expected))
    assert (writer.gso_segments, writer.writes) == ([31], 0)
    assert received == expected
    assert ns.checksum_errors() == errors_before
