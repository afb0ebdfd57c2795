"""Differential tests: the C read loop (read_batch) and its pure twin agree on real fds.

Each side reads its own SOCK_SEQPACKET pair (one message per read, like a
TUN fd, so hostile virtio_net_hdrs the kernel would never produce can be fed
in) or pipe, fed the very same bytes; both must hand over the same packets
(bytes, after NEEDS_CSUM completion, and GSOInfo), the same drop counts and
malformed-drop messages, end on EAGAIN alike and report the same errors. The
real TUN side is in tests/linux/test_readloop_tun.py.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.packets import superpacket
from tio_core.contract import NO_GSO, GSOProto, Packet
from tio_core.kernels.native import built_extension
from tio_core.kernels.readloop import DROP_REASONS, NO_DROPS, py_read_batch
from tio_core.wire import (
    GSO_ECN,
    GSO_NONE,
    GSO_TCPV4,
    NEEDS_CSUM,
    RSC_INFO,
    VIRTIO_NET_HDR_LEN,
    VirtioNetHdr,
    vnet_header_for,
)

_ckernels = built_extension()
pytestmark = pytest.mark.skipif(_ckernels is None, reason="C kernels not built")
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
# Every gso_type number up to 6 (wire's NONE, TCPV4, UDP, TCPV6, UDP_L4 and the unnamed 2 and 6) and one far out.
GSO_TYPES = [*range(7), 0x7F]


def _pool() -> list[tuple[bytes, VirtioNetHdr]]:
    """Packets with the virtio_net_hdr a kernel would give them (the mutations start from these)."""
    pool = []
    for version in (4, 6):
        for proto in (GSOProto.TCP, GSOProto.UDP):
            for payload, mss in ((4000, 1448), (1000, 1448), (0, 1448), (3000, 500)):
                packet, _ = superpacket(version, proto, payload, mss, ext_headers=1 if version == 6 and payload else 0)
                data, hdr = bytes(packet.data), vnet_header_for(packet.gso, version)
                pool.append((data, hdr))
                pool.append((data, hdr._replace(gso_type=GSO_NONE, hdr_len=0, gso_size=0)))
                pool.append((data, VirtioNetHdr()))
    return pool


POOL = _pool()


@st.composite
def messages(draw) -> bytes:
    """One message as a vnet fd hands it: a header then a packet, mostly right, often mutated, sometimes short."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=VIRTIO_NET_HDR_LEN))  # not even a whole header
    data, hdr = draw(st.sampled_from(POOL))
    if kind >= 6:  # a field or two off
        fields = list(hdr)
        for _ in range(draw(st.integers(1, 2))):
            index = draw(st.integers(0, 5))
            if index == 0:
                fields[0] = draw(st.sampled_from([0, NEEDS_CSUM, RSC_INFO, NEEDS_CSUM | RSC_INFO, 2, 0xFF]))
            elif index == 1:
                fields[1] = draw(st.sampled_from(GSO_TYPES)) | draw(st.sampled_from([0, GSO_ECN]))
            else:
                fields[index] = draw(st.one_of(st.integers(0, 100), st.integers(0, 0xFFFF)))
        hdr = VirtioNetHdr(*fields)
    if kind == 5:
        data = data[: draw(st.integers(0, len(data)))]  # cut short
    return hdr.pack() + data


@contextlib.contextmanager
def seqpacket_fed(payloads: list[bytes]) -> Iterator[socket.socket]:
    """The reading end of a SOCK_SEQPACKET pair holding ``payloads`` as messages (non-blocking).

    The sending end stays open meanwhile: once it closes, reads see end of file (zero-byte short reads).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        for payload in payloads:
            theirs.send(payload)
        ours.setblocking(False)
        yield ours


def normalised(result):
    """A read_batch result as comparable values: packets as (bytes, GSOInfo), errors as (type, errno, text)."""
    packets, drops, idle, error, malformed = result
    assert all(type(p) is Packet and type(p.data) is memoryview for p in packets)
    shown = [(bytes(p.data), p.gso) for p in packets]
    failure = None if error is None else (type(error), error.errno, str(error))
    return shown, drops, idle, failure, malformed


def read_both(fd_c: int, fd_pure: int, vnet: bool, max_batch: int, size: int, headroom: int, calls: int = 50):
    """Read both fds batch by batch until both are idle; assert every batch agrees. Returns the batches."""
    assert _ckernels is not None
    buf_c, buf_pure = bytearray(size), bytearray(size)
    batches = []
    for _ in range(calls):
        got_c = normalised(_ckernels.read_batch(fd_c, buf_c, vnet, max_batch, headroom))
        got_pure = normalised(py_read_batch(fd_pure, buf_pure, vnet, max_batch, headroom))
        assert got_c == got_pure, "the C read_batch must match its pure twin: packets, drops, idle, errors"
        batches.append(got_c)
        if got_c[2] or got_c[3] is not None:
            break
    return batches


@SETTINGS
@given(
    payloads=st.lists(messages(), max_size=24),
    max_batch=st.integers(1, 70),
    size=st.sampled_from([4096, 9000, 70000, 200000]),
    headroom_part=st.sampled_from([1, 2, 4, 16]),
)
@example(payloads=[VirtioNetHdr().pack() + POOL[0][0]] * 3, max_batch=64, size=70000, headroom_part=16)
def test_vnet_batches_agree(payloads, max_batch, size, headroom_part):
    """Right, mutated and short messages, any batch cap and buffer geometry (truncations included)."""
    with seqpacket_fed(payloads) as a, seqpacket_fed(payloads) as b:
        batches = read_both(a.fileno(), b.fileno(), True, max_batch, size, max(1, size // headroom_part))
    assert batches[-1][2], "the last batch ends on EAGAIN"
    accepted = sum(len(batch[0]) for batch in batches)
    dropped = sum(sum(batch[1]) for batch in batches)
    assert accepted + dropped == len(payloads), "every message read is handed over or counted as dropped"


def test_each_drop_reason_and_the_finished_checksum():
    """One message per outcome, in order: the reasons and packets are fixed here, not only equal."""
    tcp, hdr = POOL[0]
    assert hdr.gso_type == GSO_TCPV4
    plain_csum = next(p for p in POOL if p[1].flags == NEEDS_CSUM and p[1].gso_type == GSO_NONE)
    payloads = [
        b"\x00" * 5,  # short_read
        VirtioNetHdr(NEEDS_CSUM, 2, 40, 1000, 20, 16).pack() + tcp,  # gso_type
        hdr._replace(csum_start=9).pack() + tcp,  # malformed
        plain_csum[1].pack() + plain_csum[0],  # checksum completed
        hdr._replace(hdr_len=100).pack() + tcp,  # hdr_len corrected
        VirtioNetHdr().pack() + bytes(12000),  # truncated: fills the room
    ]
    with seqpacket_fed(payloads) as a, seqpacket_fed(payloads) as b:
        (batch,) = read_both(a.fileno(), b.fileno(), True, 64, 12000, 1)
    packets, drops, idle, error, malformed = batch
    assert dict(zip(DROP_REASONS, drops, strict=True)) == {
        "short_read": 1,
        "truncated": 1,
        "gso_type": 1,
        "malformed": 1,
    }
    assert malformed == ("csum_start 9 does not match the IPv4 header length 20",)
    assert idle and error is None
    (finished, finished_gso), (super_bytes, super_gso) = packets
    assert finished_gso == NO_GSO and finished != plain_csum[0], "the NEEDS_CSUM checksum was completed in place"
    assert super_bytes == tcp and super_gso.hdr_len == hdr.hdr_len and super_gso.size == hdr.gso_size


def test_packets_share_the_buffer_and_plain_ones_share_no_gso():
    """Borrowing rule: every packet is a view into the caller's bytearray, laid back to back."""
    assert _ckernels is not None
    plain = [VirtioNetHdr().pack() + POOL[2][0][: 100 + i] for i in range(5)]
    for read in (_ckernels.read_batch, py_read_batch):
        buf = bytearray(8192)
        with seqpacket_fed(plain) as sock:
            packets, drops, idle, error, _ = read(sock.fileno(), buf, True, 64, 1024)
        assert drops == NO_DROPS and idle and error is None
        assert all(p.data.obj is buf and p.gso is NO_GSO for p in packets)
        assert bytes(buf[: sum(len(p.data) for p in packets)]) == b"".join(m[VIRTIO_NET_HDR_LEN:] for m in plain)


def test_batch_cap_and_headroom_end_a_batch_before_eagain():
    plain = [VirtioNetHdr().pack() + POOL[2][0] for _ in range(10)]
    with seqpacket_fed(plain) as a, seqpacket_fed(plain) as b:
        capped = read_both(a.fileno(), b.fileno(), True, 3, 1 << 20, 1)
    assert [(len(batch[0]), batch[2]) for batch in capped] == [(3, False)] * 3 + [(1, True)]
    size = len(POOL[2][0])
    with seqpacket_fed(plain) as a, seqpacket_fed(plain) as b:  # room for two packets above the headroom
        roomy = read_both(a.fileno(), b.fileno(), True, 64, 2 * size + 1000, 1001)
    assert [(len(batch[0]), batch[2]) for batch in roomy] == [(2, False)] * 5 + [(0, True)]
    assert all(batch[1] == NO_DROPS for batch in capped + roomy)


@pytest.mark.parametrize(
    ("room", "expected"),
    [(20000, ([10240], (0, 0, 0, 0), True)), (1000, ([], (0, 8, 0, 0), False))],
    ids=["fits", "fills-the-room"],
)
def test_plain_fd_reads_a_pipe_alike(room, expected):
    """vnet=False: no header, the bytes as they come; a read that fills the room is a truncation."""
    chunk = bytes(range(256)) * 40
    ends = [os.pipe2(os.O_NONBLOCK) for _ in range(2)]
    try:
        for _, write_end in ends:
            os.write(write_end, chunk)
        packets, drops, idle, error, _ = read_both(ends[0][0], ends[1][0], False, 8, room, 1, calls=1)[0]
        assert ([len(data) for data, _ in packets], drops, idle) == expected and error is None
        assert all(data == chunk and gso is NO_GSO for data, gso in packets)
    finally:
        for fds in ends:
            for fd in fds:
                os.close(fd)


def test_end_of_file_counts_short_reads_up_to_the_cap():
    ends = [os.pipe2(os.O_NONBLOCK) for _ in range(2)]
    try:
        for _, write_end in ends:
            os.close(write_end)
        (batch,) = read_both(ends[0][0], ends[1][0], True, 7, 4096, 1, calls=1)
        assert batch == ([], (7, 0, 0, 0), False, None, ())
    finally:
        for read_end, _ in ends:
            os.close(read_end)


def reset_pair(kind: int, queued: list[bytes]) -> socket.socket:
    """Our end of a unix pair whose peer closed with data of ours unread: our reads see ECONNRESET
    (a SOCK_SEQPACKET end before its queued messages, a SOCK_STREAM end after its queued bytes)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
    for payload in queued:
        theirs.send(payload)
    ours.send(b"unread")
    theirs.close()
    ours.setblocking(False)
    return ours


def test_a_failing_first_read_is_returned_not_raised():
    """The error object comes back for the caller to map and raise; the next call reads on."""
    queued = [VirtioNetHdr().pack() + POOL[2][0]]
    with reset_pair(socket.SOCK_SEQPACKET, queued) as a, reset_pair(socket.SOCK_SEQPACKET, queued) as b:
        (failed,) = read_both(a.fileno(), b.fileno(), True, 1, 70000, 1, calls=1)
        (after,) = read_both(a.fileno(), b.fileno(), True, 1, 70000, 1, calls=1)
    packets, drops, idle, (kind, errno_value, text), malformed = failed
    assert packets == [] and drops == NO_DROPS and not idle and not malformed
    assert kind is ConnectionResetError and errno_value == errno.ECONNRESET and "reset" in text
    assert [data for data, _ in after[0]] == [POOL[2][0]]


def test_a_failure_after_packets_ends_the_batch_and_hands_them_over():
    """Packets read before a failing read are handed over; the failure is not raised with them."""
    with reset_pair(socket.SOCK_STREAM, [b"m" * 300]) as a, reset_pair(socket.SOCK_STREAM, [b"m" * 300]) as b:
        first = read_both(a.fileno(), b.fileno(), False, 64, 4096, 1, calls=1)[0]
    assert first == ([(b"m" * 300, NO_GSO)], NO_DROPS, False, None, ())


def test_a_closed_fd_is_ebadf():
    read_end, write_end = os.pipe()
    os.close(write_end)
    os.close(read_end)
    (batch,) = read_both(read_end, read_end, True, 64, 4096, 1, calls=1)
    assert batch[0] == [] and batch[3] is not None and batch[3][:2] == (OSError, errno.EBADF)


def test_argument_errors_agree():
    assert _ckernels is not None
    for args in ((0, b"abc", True, 1, 1), (0, bytearray(10), True, 1, 0), (2**40, bytearray(10), True, 1, 1)):
        outcomes = []
        for read in (_ckernels.read_batch, py_read_batch):
            with pytest.raises((TypeError, ValueError, OverflowError)) as info:
                read(*args)
            outcomes.append((type(info.value), str(info.value)))
        assert outcomes[0] == outcomes[1], "the C read_batch must refuse bad arguments as its pure twin does"
