"""Read and write paths against the real kernel: superpackets in, superpackets out."""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import threading

import pytest
from scapy.layers.inet import IP, TCP, UDP

from tests.support.packets import checksums_valid, parse, tcp_gso, udp_gso
from tests.support.tun import is_proto, read_matching, recv_stream, tcp_handshake
from tio_core import kernels
from tio_core.contract import Capabilities, GSOInfo, GSOProto, Packet
from tio_core.errors import GSOGeometryError, MalformedPacket
from tio_core.wire import GSO_NONE, GSO_TCPV4, NEEDS_CSUM, VirtioNetHdr
from tio_linux import queue as queue_module
from tio_linux.fragments import EvenFragments
from tio_linux.netns import UDP_SEGMENT
from tio_linux.queue import SetState, VnetQueue

FAMILIES = {4: ("198.18.0.1", "198.18.0.2", "198.18.0.1/24"), 6: ("fd00::1", "fd00::2", "fd00::1/64")}


@pytest.fixture(params=[4, 6], ids=["v4", "v6"])
def linked(request, open_in_ns):
    """(ns, queue, local addr in ns, peer addr behind the TUN, family) for one IP version."""
    version = request.param
    local, peer, cidr = FAMILIES[version]
    ns, qset = open_in_ns(addresses=(cidr,), up=True)
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    return ns, qset.queues()[0], local, peer, family


def test_udp_segment_socket_produces_a_uso_superpacket(linked):
    ns, queue, local, peer, family = linked
    sock = ns.socket(family, socket.SOCK_DGRAM)
    payload = os.urandom(9 * 1000 + 300)
    with sock:
        sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1000)
        sock.sendto(payload, (peer, 4000))
        packet = read_matching(queue, is_proto(17))
    ip_len = 20 if family == socket.AF_INET else 40
    assert packet.gso == GSOInfo(1000, ip_len + 8, ip_len, GSOProto.UDP)
    segments = kernels.segment(packet)
    assert len(segments) == 10
    assert all(checksums_valid(s) for s in segments)
    assert b"".join(bytes(parse(bytes(s))[UDP].payload) for s in segments) == payload


def test_plain_udp_read_has_its_checksum_finished(linked):
    ns, queue, local, peer, family = linked
    sock = ns.socket(family, socket.SOCK_DGRAM)
    with sock:
        sock.sendto(b"hello tio", (peer, 4001))
        packet = read_matching(queue, is_proto(17))
    assert not packet.gso.is_superpacket
    assert checksums_valid(packet.data)
    assert bytes(parse(bytes(packet.data))[UDP].payload) == b"hello tio"


def test_write_gso_udp_is_delivered_intact(linked):
    ns, queue, local, peer, family = linked
    sock = ns.socket(family, socket.SOCK_DGRAM)
    errors_before = ns.checksum_errors()
    with sock:
        sock.bind((local, 5000))
        sock.settimeout(5)
        payloads = [os.urandom(1200) for _ in range(8)] + [os.urandom(500)]
        queue.write_gso(*udp_gso(peer, local, 6000, 5000, payloads), payloads, GSOProto.UDP)
        received = [sock.recv(2000) for _ in payloads]
    assert received == payloads
    assert ns.checksum_errors() == errors_before


@pytest.mark.parametrize("fragments", [1, 2, 20])
def test_write_gso_tcp_is_delivered_intact(linked, fragments):
    ns, queue, local, peer, family = linked
    errors_before = ns.checksum_errors()
    conn, seq, ack = tcp_handshake(queue, ns, family, local, peer, 5001)
    with conn:
        payloads = [os.urandom(1400) for _ in range(fragments - 1)] + [os.urandom(777)]
        queue.write_gso(*tcp_gso(peer, local, 40000, 5001, seq, ack, payloads), payloads, GSOProto.TCP)
        expected = b"".join(payloads)
        received = recv_stream(conn, len(expected))
    assert received == expected
    assert ns.checksum_errors() == errors_before


@pytest.fixture
def syscalls(monkeypatch):
    """Record writev calls on the queues (still passed to the kernel)."""
    calls = []
    real = queue_module.writev

    def recording(fd, iov):
        calls.append([bytes(b) for b in iov])
        return real(fd, iov)

    monkeypatch.setattr(queue_module, "writev", recording)
    return calls


GOOD_IP, GOOD_UDP = udp_gso("198.18.0.2", "198.18.0.1", 1, 2, [b"x" * 100] * 2)


@pytest.mark.parametrize(
    ("ip_hdr", "l4_hdr", "payloads", "proto", "message"),
    [
        (GOOD_IP, GOOD_UDP, [b"x" * 10], GSOProto.NONE, "proto"),
        (GOOD_IP, GOOD_UDP[:7], [b"x" * 10], GSOProto.UDP, "at least 8"),
        (GOOD_IP, GOOD_UDP + bytes(11), [b"x" * 10], GSOProto.TCP, None),  # 19-byte TCP header
        (GOOD_IP, GOOD_UDP, [b"x" * 10, b""], GSOProto.UDP, "empty"),
        (GOOD_IP, GOOD_UDP, [b"x" * 10, b"x" * 11], GSOProto.UDP, "must be 10"),
        (GOOD_IP, GOOD_UDP, [b"x" * 10, b"x" * 5, b"x" * 5], GSOProto.UDP, "must be 10"),
        (GOOD_IP, GOOD_UDP, [b"x"] * 129, GSOProto.UDP, "at most 128 UDP segments"),
        (GOOD_IP, GOOD_UDP, [b"x" * 30000] * 3, GSOProto.UDP, "at most 65535"),
        (b"\x50" + GOOD_IP[1:], GOOD_UDP, [b"x" * 10] * 2, GSOProto.UDP, "IP version"),
        (GOOD_IP[:19], GOOD_UDP, [b"x" * 10] * 2, GSOProto.UDP, "IPv4 header"),
    ],
)
def test_write_gso_geometry_errors_before_the_syscall(open_in_ns, syscalls, ip_hdr, l4_hdr, payloads, proto, message):
    _, qset = open_in_ns(up=True)
    with pytest.raises(GSOGeometryError, match=message) as info:
        qset.queues()[0].write_gso(ip_hdr, l4_hdr, payloads, proto)
    assert isinstance(info.value, ValueError)
    assert syscalls == []


def test_write_gso_empty_list_is_a_no_op(open_in_ns, syscalls):
    _, qset = open_in_ns(up=True)
    qset.queues()[0].write_gso(GOOD_IP, GOOD_UDP, [], GSOProto.UDP)
    assert syscalls == []


def test_one_writev_per_superpacket_with_the_planned_header(open_in_ns, syscalls):
    _, qset = open_in_ns(addresses=("198.18.0.1/24",), up=True)
    payloads = [b"a" * 100, b"b" * 100, b"c" * 40]
    qset.queues()[0].write_gso(GOOD_IP, GOOD_UDP, payloads, GSOProto.UDP)
    (iov,) = syscalls
    hdr = VirtioNetHdr.unpack(iov[0])
    assert hdr.flags == NEEDS_CSUM and hdr.gso_size == 100 and hdr.csum_start == 20 and hdr.csum_offset == 6
    assert iov[1:] == [GOOD_IP, GOOD_UDP, *payloads]


def test_einval_on_gso_write_segments_in_userspace_and_stops_offering_gso(linked, monkeypatch, caplog):
    ns, queue, local, peer, family = linked
    real = queue_module.writev
    refused = []

    def regression(fd, iov):  # a kernel with the known EINVAL regression
        if VirtioNetHdr.unpack(iov[0]).gso_type != GSO_NONE:
            refused.append(len(iov))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, iov)

    monkeypatch.setattr(queue_module, "writev", regression)
    sock = ns.socket(family, socket.SOCK_DGRAM)
    with sock, caplog.at_level(logging.WARNING, logger="tio_linux"):
        sock.bind((local, 5002))
        sock.settimeout(5)
        first = [os.urandom(1000) for _ in range(4)]
        second = [os.urandom(800) for _ in range(3)]
        queue.write_gso(*udp_gso(peer, local, 6000, 5002, first), first, GSOProto.UDP)
        assert queue.capabilities() == Capabilities(tso=False, uso=False)
        queue.write_gso(*udp_gso(peer, local, 6000, 5002, second), second, GSOProto.UDP)
        received = [sock.recv(2000) for _ in range(7)]
    assert received == first + second  # nothing lost
    assert len(refused) == 1  # the second write never tried GSO
    assert sum("rejected a valid GSO write" in r.message for r in caplog.records) == 1


def test_plain_write_rejected_by_the_kernel_is_malformed(open_in_ns):
    _, qset = open_in_ns(up=True)
    with pytest.raises(MalformedPacket, match="EINVAL"):
        qset.queues()[0].write(b"\x00" * 40)  # IP version 0
    with pytest.raises(MalformedPacket, match="empty"):
        qset.queues()[0].write(b"")


@pytest.fixture
def seqpacket_queue():
    """A VnetQueue over a SOCK_SEQPACKET pair: one message per read, like a TUN fd,
    so hostile vnet headers the kernel would never produce can be fed in."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    state = SetState(0, 0)
    queue = VnetQueue(ours.detach(), state, "seqpacket")
    yield queue, theirs
    queue.close()
    state.release()
    theirs.close()


def test_malformed_reads_are_dropped_and_counted(seqpacket_queue):
    queue, peer = seqpacket_queue
    good = bytes(IP(src="198.18.0.2", dst="198.18.0.1") / UDP(sport=1, dport=2) / b"payload")
    tcp = bytes(IP(src="198.18.0.2", dst="198.18.0.1") / TCP() / (b"z" * 3000))
    peer.send(b"\x00" * 5)  # shorter than the header
    peer.send(VirtioNetHdr(NEEDS_CSUM, 2, 40, 1000, 20, 16).pack() + tcp)  # unknown GSO type
    peer.send(VirtioNetHdr(NEEDS_CSUM, GSO_TCPV4, 40, 1000, 9, 16).pack() + tcp)  # csum_start inside the IP header
    peer.send(VirtioNetHdr(NEEDS_CSUM, GSO_TCPV4, 40, 1000, 20, 6).pack() + tcp)  # wrong csum_offset for TCP
    peer.send(VirtioNetHdr(NEEDS_CSUM, GSO_NONE, 0, 0, 60000, 6).pack() + good)  # checksum outside the packet
    peer.send(VirtioNetHdr().pack() + good)
    peer.send(VirtioNetHdr(NEEDS_CSUM, GSO_TCPV4, 9999, 1000, 20, 16).pack() + tcp)  # hdr_len beyond the packet
    peer.send(VirtioNetHdr(NEEDS_CSUM, GSO_TCPV4, 100, 1000, 20, 16).pack() + tcp)  # hdr_len with payload: corrected
    packets = queue.read()
    assert [bytes(p.data) for p in packets] == [good, tcp]
    assert packets[1].gso == GSOInfo(1000, 40, 20, GSOProto.TCP)
    assert queue.drop_counts() == {"short_read": 1, "gso_type": 1, "malformed": 4}
    peer.send(VirtioNetHdr().pack() + good)  # the queue keeps working
    assert [bytes(p.data) for p in queue.read()] == [good]


def test_reads_share_one_buffer_and_cap_the_batch(seqpacket_queue):
    queue, peer = seqpacket_queue
    packets = [bytes(IP(src="198.18.0.2", dst="198.18.0.1") / UDP() / struct.pack("!I", i)) for i in range(100)]
    for data in packets:
        peer.send(VirtioNetHdr().pack() + data)
    first = queue.read()
    assert len(first) == queue_module.MAX_BATCH
    assert len({id(p.data.obj) for p in first}) == 1
    assert [bytes(p.data) for p in first] == packets[:64]
    assert [bytes(p.data) for p in queue.read()] == packets[64:]


def test_packet_clone_is_independent(seqpacket_queue):
    queue, peer = seqpacket_queue
    a = bytes(IP(src="198.18.0.2", dst="198.18.0.1") / UDP() / b"A")
    b = bytes(IP(src="198.18.0.2", dst="198.18.0.1") / UDP() / b"B")
    peer.send(VirtioNetHdr().pack() + a)
    kept = queue.read()[0].clone()
    peer.send(VirtioNetHdr().pack() + b)
    assert bytes(queue.read()[0].data) == b and bytes(kept.data) == a
    assert isinstance(kept, Packet)


def test_even_fragments_is_the_sequence_of_slices():
    data = bytes(range(256)) * 10
    frags = EvenFragments(data, 60, 700)
    expected = [data[i : i + 700] for i in range(60, len(data), 700)]
    assert len(frags) == len(expected) == 4
    assert [bytes(f) for f in frags] == expected and bytes(frags[-1]) == expected[-1]
    assert [bytes(f) for f in frags[1:3]] == expected[1:3]
    with pytest.raises(IndexError):
        frags[4]
    with pytest.raises(GSOGeometryError):
        EvenFragments(data, len(data), 700)


def test_write_gso_with_even_fragments_is_one_iovec_and_delivered_intact(linked, syscalls):
    ns, queue, local, peer, family = linked
    sock = ns.socket(family, socket.SOCK_DGRAM)
    with sock:
        sock.bind((local, 5003))
        sock.settimeout(5)
        payloads = [os.urandom(1000) for _ in range(5)] + [os.urandom(10)]
        ip_hdr, udp_hdr = udp_gso(peer, local, 6000, 5003, payloads)
        body = bytearray(100) + b"".join(payloads)
        queue.write_gso(ip_hdr, udp_hdr, EvenFragments(body, 100, 1000), GSOProto.UDP)
        assert [sock.recv(2000) for _ in payloads] == payloads
    (iov,) = syscalls
    assert len(iov) == 4 and iov[3] == b"".join(payloads)
    assert VirtioNetHdr.unpack(iov[0]).gso_size == 1000


@pytest.mark.parametrize(
    ("payload_bytes", "size", "message"),
    [(251 * 10, 10, "251 fragments"), (65535, 30000, "at most 65535")],
)
def test_even_fragments_geometry_errors_before_the_syscall(open_in_ns, syscalls, payload_bytes, size, message):
    _, qset = open_in_ns(up=True)
    with pytest.raises(GSOGeometryError, match=message):
        qset.queues()[0].write_gso(GOOD_IP, GOOD_UDP, EvenFragments(bytes(payload_bytes), 0, size), GSOProto.UDP)
    assert syscalls == []


def _pump(src, dst, seen, stop):
    """Forward src -> dst, segmenting superpackets; keep clones of the first superpackets."""
    try:
        while not stop.is_set():
            for packet in src.read():
                if packet.gso.is_superpacket and len(seen) < 8:
                    seen.append(packet.clone())
                for segment in kernels.segment(packet):
                    dst.write(segment)
    except Exception:  # QueueClosed at teardown ends the pump
        return


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_bulk_transfer_reads_superpackets_that_segment_validly(open_in_ns, version):
    local, peer, _ = FAMILIES[version]
    prefix = 24 if version == 4 else 64
    ns_a, qa_set = open_in_ns(addresses=(f"{local}/{prefix}",), up=True)
    ns_b, qb_set = open_in_ns(addresses=(f"{peer}/{prefix}",), up=True)
    qa, qb = qa_set.queues()[0], qb_set.queues()[0]
    seen, stop = [], threading.Event()
    pumps = [
        threading.Thread(target=_pump, args=args, daemon=True) for args in ((qa, qb, seen, stop), (qb, qa, [], stop))
    ]
    for thread in pumps:
        thread.start()
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    listener = ns_b.socket(family, socket.SOCK_STREAM)
    listener.bind((peer, 7100))
    listener.listen(1)
    sender = ns_a.socket(family, socket.SOCK_STREAM)
    data = os.urandom(4 << 20)
    received = bytearray()
    with listener, sender:
        sender.settimeout(20)
        sender.connect((peer, 7100))
        conn, _ = listener.accept()
        conn.settimeout(20)
        with conn:
            reader = threading.Thread(
                target=lambda: [received.extend(c) for c in iter(lambda: conn.recv(1 << 20), b"")]
            )
            reader.start()
            sender.sendall(data)
            sender.shutdown(socket.SHUT_WR)
            reader.join(30)
    stop.set()
    qa_set.close()
    qb_set.close()
    for thread in pumps:
        thread.join(5)
    assert bytes(received) == data
    tcp_supers = [p for p in seen if p.gso.proto == GSOProto.TCP]
    assert tcp_supers, "a bulk TCP transfer produced no superpacket"
    for packet in tcp_supers:
        pkt = parse(bytes(packet.data))
        ip_len = pkt[IP].ihl * 4 if version == 4 else 40
        assert packet.gso.csum_start == ip_len
        assert packet.gso.hdr_len == ip_len + pkt[TCP].dataofs * 4
        payload = bytes(pkt[TCP].payload)
        assert len(payload) > packet.gso.size
        segments = [parse(bytes(s)) for s in kernels.segment(packet)]
        assert len(segments) == -(-len(payload) // packet.gso.size)
        assert all(checksums_valid(bytes(s)) for s in segments)
        assert [len(s[TCP].payload) for s in segments[:-1]] == [packet.gso.size] * (len(segments) - 1)
        assert [s[TCP].seq for s in segments] == [
            (pkt[TCP].seq + i * packet.gso.size) & 0xFFFFFFFF for i in range(len(segments))
        ]
        assert b"".join(bytes(s[TCP].payload) for s in segments) == payload


def test_plain_queue_reads_and_writes_real_packets(open_in_ns):
    ns, qset = open_in_ns(offloads=False, addresses=("198.18.0.1/24",), up=True)
    queue = qset.queues()[0]
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind(("198.18.0.1", 5004))
        sock.settimeout(5)
        sock.sendto(b"x" * 1000, ("198.18.0.2", 4002))
        first = read_matching(queue, is_proto(17))
        assert not first.gso.is_superpacket and checksums_valid(first.data)
        reply = bytes(IP(src="198.18.0.2", dst="198.18.0.1") / UDP(sport=4002, dport=5004) / b"pong")
        assert queue.write(reply) == len(reply)
        assert sock.recv(100) == b"pong"
