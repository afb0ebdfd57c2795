"""The fake's non-blocking writes (NonBlockingWriter / NonBlockingGSOWriter), driven through tio_core.aio."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

import tio_core
from tio_core import GSOGeometryError, GSOProto, MalformedPacket, QueueClosed
from tio_core.aio import AsyncQueueSet
from tio_core.contract import NonBlockingGSOWriter, NonBlockingWriter
from tio_fake import FakeQueueSet, fake_pair
from tio_fake.packets import PacketFactory

FACTORY = PacketFactory()
TIMEOUT = 10.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("tio-aio-write")]


@pytest.mark.parametrize("capabilities", [None, "tso+uso"])
def test_every_fake_queue_declares_the_non_blocking_writes(capabilities):
    with FakeQueueSet(capabilities=capabilities) as qs:
        mine, _peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with _peer:
            for queue in [qs[0], qs.add(mine.detach())]:
                assert isinstance(queue, NonBlockingWriter), f"{type(queue).__name__} is not a NonBlockingWriter"
                assert isinstance(queue, NonBlockingGSOWriter), f"{type(queue).__name__} lacks write_gso_nowait"


def test_memory_queue_writes_run_inline_on_the_loop():
    """No writer thread: aio calls write_nowait/write_gso_nowait directly, and they record like write/write_gso."""
    left, right = fake_pair(max_batch=16)
    flow = FACTORY.udp_flow(5, 100)
    gso_args = FACTORY.gso_write_args(3000, 1000, GSOProto.TCP)

    async def main():
        async with AsyncQueueSet(left) as la:
            for packet in flow:
                assert await la[0].write(packet) == len(packet)
            await la[0].write_gso(*gso_args)
            assert writer_threads() == [], "a memory fake's write must not need a writer thread"
            with pytest.raises(MalformedPacket):
                await la[0].write(b"\x45garbage")
            with pytest.raises(GSOGeometryError):
                await la[0].write_gso(gso_args[0], gso_args[1], [b"x" * 10, b"y" * 20], GSOProto.TCP)

    run(main())
    assert [bytes(p.data) for p in right[0].read()] == flow + FACTORY.tcp_flow(3, 1000)
    assert left[0].written_packets() == flow + FACTORY.tcp_flow(3, 1000)
    assert left.closed, "leaving AsyncQueueSet closes the set"
    with pytest.raises(QueueClosed):
        left[0].write_nowait(flow[0])
    with pytest.raises(QueueClosed):
        left[0].write_gso_nowait(*gso_args)
    right.close()


def test_write_nowait_to_a_closed_peer_is_counted_like_write():
    left, right = fake_pair()
    right.close()
    packet = FACTORY.udp(b"lost")
    assert left[0].write_nowait(packet) == len(packet)
    left[0].write_gso_nowait(*FACTORY.gso_write_args(3000, 1000, GSOProto.UDP))
    assert left[0].peer_drops == 4
    left.close()


@pytest.fixture
def fd_queue():
    """An FdQueue on one end of a SOCK_SEQPACKET socketpair with a tiny send buffer; yields (set, queue, peer)."""
    qs = tio_core.open_backend("fake", max_batch=64)
    mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)  # the kernel's minimum: a few datagrams fill it
    queue = qs.add(mine.detach())
    yield qs, queue, peer
    qs.close()
    peer.close()


def fill(queue, packet: bytes) -> int:
    """write_nowait until the socket refuses; returns how many went in."""
    count = 0
    while True:
        try:
            queue.write_nowait(packet)
        except BlockingIOError:
            return count
        count += 1
        assert count < 100_000, "write_nowait never reported a full socket"


def drain(peer: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            data = peer.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return got
        if not data:  # the queue's end closed
            return got
        got.append(data)


def test_fd_queue_write_nowait_refuses_a_full_socket_and_accepts_nothing(fd_queue):
    _qs, queue, peer = fd_queue
    packet = FACTORY.udp(b"x" * 100)
    accepted = fill(queue, packet)
    assert accepted >= 1
    assert len(queue.writes) == accepted, "a refused write_nowait must not be recorded"
    assert drain(peer) == [packet] * accepted, "every accepted write reached the socket, in order"


def test_aio_waits_for_a_full_fd_queue_then_writes(fd_queue):
    """fd mode: BlockingIOError makes aio wait for POLLOUT; the write completes once the peer reads."""
    _qs, queue, peer = fd_queue
    filler = FACTORY.udp(b"f" * 100)
    accepted = fill(queue, filler)
    last = FACTORY.udp(b"last")

    async def main():
        async with AsyncQueueSet(_qs) as aqs:
            aq = aqs[1]
            assert aq.mode == "fd"
            write = asyncio.create_task(aq.write(last))
            await asyncio.sleep(0.05)
            assert not write.done(), "the write must wait while the socket is full"
            received = await asyncio.get_running_loop().run_in_executor(None, drain, peer)
            assert await write == len(last)
            return received + drain(peer)

    received = run(main())
    assert received == [filler] * accepted + [last]
    assert writer_threads() == []


def test_write_gso_nowait_segments_the_socket_cannot_take_go_out_first_later(fd_queue):
    _qs, queue, peer = fd_queue
    gso_args = FACTORY.gso_write_args(500 * 40, 500, GSOProto.UDP)  # more datagrams than the socket queues
    queue.write_gso_nowait(*gso_args)  # accepted whole, although the socket cannot take all 40 now
    assert len(queue.writes) == 1
    with pytest.raises(BlockingIOError):  # segments of the first call still wait: nothing new is accepted
        queue.write_nowait(FACTORY.udp(b"next"))
    assert len(queue.writes) == 1
    got: list[bytes] = []
    while len(got) < 40:
        got += drain(peer)
        queue.read_nowait()  # reading the queue also hands waiting segments to the socket
    assert queue.write_nowait(FACTORY.udp(b"next"))
    got += drain(peer)
    expected = queue.writes[0].packets()
    assert len(expected) == 40
    assert got == expected + [FACTORY.udp(b"next")], "segments must leave in order, before later writes"


def test_close_counts_segments_the_socket_never_took(fd_queue):
    qs, queue, peer = fd_queue
    queue.write_gso_nowait(*FACTORY.gso_write_args(500 * 40, 500, GSOProto.UDP))
    queued = len(drain(peer))  # the socket took some; read them to make room for nothing else
    qs.close()
    assert queue.unsent_drops > 0
    assert queued + len(drain(peer)) + queue.unsent_drops == 40, "every accepted segment is sent or counted"
