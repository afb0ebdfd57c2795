"""The C read loop and its pure twin on a real TUN: the same packets, GSOInfo, drop counts and errors.

The kernel makes the same packets twice: the same sockets send the same
datagrams (IPv6 gets a flow label hashed from the flow), once read with the
C read_batch and once with py_read_batch. Only the IPv4 ID (and so the IPv4
header checksum, both the kernel's and not covered by the L4 checksum the
read loop completes) differs between the rounds, and is compared as zero.
tests/kernels/test_readloop_differential.py covers hostile headers, caps
and errors on socket pairs and pipes.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket

import pytest

from tests.support.packets import checksums_valid
from tio_core.contract import GSOProto
from tio_core.errors import QueueClosed
from tio_core.kernels.native import built_extension
from tio_core.kernels.readloop import NO_DROPS, py_read_batch
from tio_core.wire import GSO_NONE, NEEDS_CSUM, VirtioNetHdr
from tio_linux import queue as queue_module
from tio_linux.netns import UDP_SEGMENT

_ckernels = built_extension()
pytestmark = pytest.mark.skipif(_ckernels is None, reason="C kernels not built")
FAMILIES = {4: ("198.18.0.1", "198.18.0.2", "198.18.0.1/24"), 6: ("fd00::1", "fd00::2", "fd00::1/64")}
PLAIN_SIZES = {4100: 1, 4101: 100, 4102: 1400}  # destination port: payload bytes
GSO_PORT, GSO_PAYLOAD, GSO_SIZE = 4103, 9300, 1000
IMPLEMENTATIONS = {"c": _ckernels.read_batch if _ckernels else None, "pure": py_read_batch}


def _udp_destination(data: bytes) -> int | None:
    version = data[0] >> 4
    proto, l4 = (data[9], (data[0] & 0x0F) * 4) if version == 4 else (data[6], 40)
    return int.from_bytes(data[l4 + 2 : l4 + 4], "big") if proto == socket.IPPROTO_UDP else None


def _without_ipv4_id(data: bytes) -> bytes:
    if data[0] >> 4 != 4:
        return data
    return data[:4] + bytes(2) + data[6:10] + bytes(2) + data[12:]


def _read_round(fd: int, read, ip_len: int):
    """What one implementation reads of the script: our UDP packets (bytes, GSOInfo) in order, and the drops."""
    buf = bytearray(queue_module.BUFFER_SIZE)
    ours, drops = [], NO_DROPS
    plain_left, gso_left = set(PLAIN_SIZES), GSO_PAYLOAD
    while plain_left or gso_left > 0:
        assert select.select([fd], [], [], 5)[0], "the script's packets never arrived"
        packets, batch_drops, _, error, _ = read(fd, buf, True, queue_module.MAX_BATCH, queue_module.HEADROOM)
        assert error is None
        drops = tuple(a + b for a, b in zip(drops, batch_drops, strict=True))
        for packet in packets:  # skip the kernel's IPv6 chatter (router solicitations, MLD)
            data = bytes(packet.data)
            port = _udp_destination(data)
            if port == GSO_PORT:
                gso_left -= len(data) - (packet.gso.hdr_len if packet.gso.size else ip_len + 8)
            elif port in plain_left:
                plain_left.discard(port)
            else:
                continue
            ours.append((data, packet.gso))
    return ours, drops


@pytest.mark.parametrize("version", [4, 6])
def test_a_real_tun_reads_the_same_with_c_and_pure(open_in_ns, version):
    local, peer, cidr = FAMILIES[version]
    ns, qset = open_in_ns(addresses=(cidr,), up=True)
    queue = qset.queues()[0]
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    ip_len = 20 if version == 4 else 40
    payloads = {port: os.urandom(size) for port, size in PLAIN_SIZES.items()}
    gso_payload = os.urandom(GSO_PAYLOAD)
    rounds = {}
    with ns.socket(family, socket.SOCK_DGRAM) as plain, ns.socket(family, socket.SOCK_DGRAM) as gso:
        gso.setsockopt(socket.SOL_UDP, UDP_SEGMENT, GSO_SIZE)
        for name, read in IMPLEMENTATIONS.items():
            for port, payload in payloads.items():
                plain.sendto(payload, (peer, port))
            gso.sendto(gso_payload, (peer, GSO_PORT))
            rounds[name] = _read_round(queue.fileno(), read, ip_len)
    compared = {name: ([(_without_ipv4_id(d), gso) for d, gso in got], drops) for name, (got, drops) in rounds.items()}
    assert compared["c"] == compared["pure"], "the C read_batch must read a real TUN as its pure twin does"
    packets, drops = rounds["c"]
    assert drops == NO_DROPS
    plain_packets = [data for data, gso in packets if not gso.size]
    assert len(plain_packets) >= len(PLAIN_SIZES) and all(checksums_valid(d) for d in plain_packets)
    if queue.capabilities().uso:  # the kernel hands the send over as one USO superpacket
        assert [gso for _, gso in packets if gso.size] == [(GSO_SIZE, ip_len + 8, ip_len, GSOProto.UDP)]


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_reading_a_removed_device_is_ebadfd_and_the_queue_says_removed(open_in_ns, monkeypatch, implementation):
    ns, qset = open_in_ns(up=True)
    queue = qset.queues()[0]
    assert ns.delete_link(qset.name)
    read = IMPLEMENTATIONS[implementation]
    packets, drops, idle, error, _ = read(queue.fileno(), bytearray(1 << 17), True, 64, 65536)
    assert (packets, drops, idle) == ([], NO_DROPS, False)
    assert isinstance(error, OSError) and error.errno == errno.EBADFD
    monkeypatch.setattr(queue_module, "read_batch", read)
    with pytest.raises(QueueClosed, match="was removed"):
        queue.read_nowait()


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_the_queue_counts_drops_and_logs_why_a_packet_was_malformed(monkeypatch, caplog, implementation):
    """VnetQueue on a SOCK_SEQPACKET pair with either read loop: counters and the debug log as before the C loop."""
    monkeypatch.setattr(queue_module, "read_batch", IMPLEMENTATIONS[implementation])
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    state = queue_module.SetState(0, 0)
    queue = queue_module.VnetQueue(ours.detach(), state, "seqpacket")
    try:
        good = bytes([0x45]) + bytes(19)
        theirs.send(b"\x00" * 3)
        theirs.send(VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 60000, 6).pack() + good)
        theirs.send(VirtioNetHdr(NEEDS_CSUM, 9, 0, 0, 0, 0).pack() + good)
        theirs.send(VirtioNetHdr().pack() + good)
        with caplog.at_level(logging.DEBUG, logger="tio_linux"):
            assert [bytes(p.data) for p in queue.read()] == [good]
        assert queue.drop_counts() == {"short_read": 1, "malformed": 1, "gso_type": 1}
        (record,) = [r for r in caplog.records if "malformed" in r.getMessage()]
        assert "seqpacket" in record.getMessage() and "lies outside the 20-byte packet" in record.getMessage()
    finally:
        queue.close()
        state.release()
        theirs.close()
