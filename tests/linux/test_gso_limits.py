"""The Linux backend keeps its offloads: it never sizes a GSO write the kernel refuses.

The EINVAL fallback (segment in userspace, stop offering GSO) exists for
kernels that wrongly refuse valid GSO writes. A write the kernel refuses by
its own rules must never reach it: plan_gso_write, the one check every
backend uses, refuses it first. On a kernel with the older, smaller UDP
segment limit the backend lowers its UDP limit instead of giving up GSO.
"""

from __future__ import annotations

import errno
import logging
import os
import socket

import pytest

from tests.support.packets import udp_gso
from tio_core.contract import Capabilities, GSOProto
from tio_core.errors import GSOGeometryError, QueueClosed
from tio_core.wire import GSO_NONE, UDP_GSO_MAX_SEGMENTS, UDP_GSO_MAX_SEGMENTS_OLD, VirtioNetHdr
from tio_linux import queue as queue_module
from tio_linux.fragments import EvenFragments

LOCAL, PEER, CIDR = "198.18.0.1", "198.18.0.2", "198.18.0.1/24"


@pytest.fixture
def device(open_in_ns):
    """(namespace, queue set, queue 0) of a TUN with TSO and USO."""
    ns, qset = open_in_ns(addresses=(CIDR,), up=True)
    queue = qset.queues()[0]
    if queue.capabilities() != Capabilities(tso=True, uso=True):
        pytest.skip(f"kernel granted {queue.capabilities()}")
    return ns, qset, queue


@pytest.fixture
def gso_headers(monkeypatch):
    """The virtio_net_hdr of every writev the queues make (each still goes to the kernel)."""
    seen = []
    real = queue_module.writev

    def recording(fd, iov):
        seen.append(VirtioNetHdr.unpack(bytes(iov[0])))
        return real(fd, iov)

    monkeypatch.setattr(queue_module, "writev", recording)
    return seen


def receive(sock, count):
    return [sock.recv(2000) for _ in range(count)]


@pytest.mark.parametrize("as_even_fragments", [False, True], ids=["list", "EvenFragments"])
def test_udp_write_above_the_kernel_limit_is_refused_before_the_syscall(device, gso_headers, as_even_fragments):
    ns, qset, queue = device
    payloads = [os.urandom(100) for _ in range(UDP_GSO_MAX_SEGMENTS + 1)]
    ip_hdr, udp_hdr = udp_gso(PEER, LOCAL, 6000, 5010, payloads)
    pieces = EvenFragments(b"".join(payloads), 0, 100) if as_even_fragments else payloads
    with pytest.raises(GSOGeometryError, match="the kernel takes at most"):
        queue.write_gso(ip_hdr, udp_hdr, pieces, GSOProto.UDP)
    assert gso_headers == [], "a write the kernel refuses by its rules never reaches it"
    assert queue.capabilities() == Capabilities(tso=True, uso=True), "offloads stay after a refused UDP write"
    assert qset.gso_fallbacks == 0, "the EINVAL fallback only answers writes valid by the kernel's rules"
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind((LOCAL, 5010))
        sock.settimeout(5)
        at_limit = payloads[:UDP_GSO_MAX_SEGMENTS]
        queue.write_gso(*udp_gso(PEER, LOCAL, 6000, 5010, at_limit), at_limit, GSOProto.UDP)
        assert receive(sock, len(at_limit)) == at_limit
    assert [h.gso_size for h in gso_headers] == [100], "the write at the limit is one GSO write"


def test_a_kernel_with_the_older_udp_limit_keeps_gso(device, monkeypatch, caplog):
    ns, qset, queue = device
    real = queue_module.writev
    gso_writes = []

    def older_kernel(fd, iov):  # refuses UDP GSO writes above 64 segments, as kernels before UDP_MAX_SEGMENTS 128
        hdr = VirtioNetHdr.unpack(bytes(iov[0]))
        if hdr.gso_type != GSO_NONE:
            segments = -(-(sum(map(len, iov[3:]))) // hdr.gso_size)
            gso_writes.append(segments)
            if segments > UDP_GSO_MAX_SEGMENTS_OLD:
                raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, iov)

    monkeypatch.setattr(queue_module, "writev", older_kernel)
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    large = [os.urandom(200) for _ in range(100)]
    small = [os.urandom(200) for _ in range(UDP_GSO_MAX_SEGMENTS_OLD)]
    with sock, caplog.at_level(logging.INFO, logger="tio_linux"):
        sock.bind((LOCAL, 5011))
        sock.settimeout(5)
        for payloads in (large, small, large):
            queue.write_gso(*udp_gso(PEER, LOCAL, 6000, 5011, payloads), payloads, GSOProto.UDP)
            assert receive(sock, len(payloads)) == payloads, "nothing is lost on a kernel with a smaller limit"
    assert gso_writes == [100, UDP_GSO_MAX_SEGMENTS_OLD], "after one refusal, larger UDP writes skip GSO"
    assert queue.capabilities() == Capabilities(tso=True, uso=True), "the older UDP limit does not cost the offloads"
    assert sum("at most 64 UDP segments" in r.message for r in caplog.records) == 1


def test_write_gso_of_even_fragments_on_a_closed_queue_raises_queue_closed(device):
    _, qset, queue = device
    payloads = [b"p" * 100] * 3
    ip_hdr, udp_hdr = udp_gso(PEER, LOCAL, 6000, 5012, payloads)
    queue.close()
    for name, args in {
        "valid": (ip_hdr, udp_hdr, EvenFragments(b"p" * 300, 0, 100), GSOProto.UDP),
        "too many": (ip_hdr, udp_hdr, EvenFragments(b"p" * 300, 0, 1), GSOProto.UDP),
        "pieces disagree": (ip_hdr, udp_hdr, EvenFragments(b"p" * 300, 0, 100), GSOProto.TCP),
    }.items():
        with pytest.raises(QueueClosed):
            queue.write_gso(*args)
            pytest.fail(f"write_gso on a closed queue must raise QueueClosed ({name} arguments)")
