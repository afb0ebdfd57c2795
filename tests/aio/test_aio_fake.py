"""tio_core.aio with the fake backend: memory queues (thread path) and fd queues (fd path)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from scapy.layers.inet import IP, UDP

import tio_core
from tio_core import Capabilities, GSOProto, QueueClosed
from tio_core.aio import AsyncGSOQueue, AsyncQueueSet

from .queues import assert_close_wakes, cancel_a_waiting_read

tio_fake = pytest.importorskip("tio_fake")

TIMEOUT = 10.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


@pytest.fixture(scope="module")
def flow(packet_factory):
    """40 distinct, fully checksummed UDP/IPv4 packets."""
    return packet_factory.udp_flow(40, 200, src="198.18.0.1", dst="198.18.1.1")


def payloads(batch) -> list[bytes]:
    return [bytes(p.data) for p in batch]


def test_fake_queues_take_the_thread_path_and_keep_the_contract(flow, packet_factory):
    async def main():
        async with AsyncQueueSet(tio_core.open_backend("fake", queues=2, max_batch=8)) as aqs:
            q0, q1 = aqs
            assert q0.mode == q1.mode == "thread"
            assert isinstance(q0, AsyncGSOQueue) and q0.supports_gso(GSOProto.UDP)
            aqs.queue_set.inject(*flow[:10])
            got = payloads(await q0.read()) + payloads(await q0.read())
            assert got == flow[:10]
            assert await q0.write(flow[0]) == len(flow[0])
            await q0.write_gso(
                *packet_factory.gso_write_args(3000, 1000, GSOProto.UDP, src="198.18.0.1", dst="198.18.1.1")
            )
            with pytest.raises(tio_core.MalformedPacket):
                await q0.write(b"\x45garbage")
            with pytest.raises(tio_core.GSOGeometryError):
                await q0.write_gso(b"\x45" + bytes(19), bytes(8), [b"x" * 10, b"y" * 20], GSOProto.UDP)
            wire = [IP(p) for p in aqs.queue_set[0].written_packets()]
            assert len(wire) == 4 and all(UDP in p for p in wire)
            assert [len(p[UDP].payload) for p in wire[1:]] == [1000, 1000, 1000]

    run(main())


def test_capabilities_pass_through():
    async def main():
        async with AsyncQueueSet(tio_core.open_backend("fake", capabilities="tso")) as aqs:
            assert aqs[0].capabilities() == Capabilities(tso=True, uso=False)
            assert aqs[0].supports_gso(GSOProto.TCP) and not aqs[0].supports_gso(GSOProto.UDP)

    run(main())


def test_concurrent_readers_and_writers_across_a_fake_pair(flow):
    """Two queues per side; on each, a writer feeds the peer while a reader drains it."""
    left, right = tio_fake.fake_pair(queues=2, max_batch=4)

    async def pump(src_aq, packets):
        for p in packets:
            await src_aq.write(p)
            await asyncio.sleep(0)

    async def drain(dst_aq, count):
        got = []
        while len(got) < count:
            got.extend(payloads(await dst_aq.read()))
        return got

    async def main():
        async with AsyncQueueSet(left) as la, AsyncQueueSet(right) as ra:
            halves = flow[:20], flow[20:]
            results = await asyncio.gather(
                pump(la[0], halves[0]),
                drain(ra[0], 20),
                pump(ra[1], halves[1]),
                drain(la[1], 20),
                pump(ra[0], halves[1]),
                drain(la[0], 20),
            )
            assert results[1] == halves[0] and results[3] == halves[1] and results[5] == halves[1]

    run(main())


def test_cancelled_read_keeps_a_valid_batch_on_the_fake(flow):
    """The fake poisons borrowed views on the next read: the kept batch must predate it."""
    qs = tio_core.open_backend("fake", max_batch=4)

    async def main():
        async with AsyncQueueSet(qs) as aqs:
            await cancel_a_waiting_read(aqs[0])
            qs.inject(*flow[:6])
            first = await aqs[0].read()  # the batch of the read that outlived its task
            assert payloads(first) == flow[:4]
            assert payloads(await aqs[0].read()) == flow[4:6]
            with pytest.raises(ValueError):  # and the contract still bites: borrow ended
                bytes(first[0].data)

    run(main())


def test_close_wakes_awaiters_on_every_fake_queue():
    qs = tio_core.open_backend("fake", queues=3)

    async def main():
        aqs = AsyncQueueSet(qs)
        waiting = [asyncio.create_task(aq.read()) for aq in aqs for _ in range(2)]
        await asyncio.sleep(0.05)
        await assert_close_wakes(aqs.aclose, waiting, within=2.0)
        assert qs.closed and all(q.closed for q in qs.queues())

    run(main())


def test_end_of_stream_ends_async_iteration(flow):
    qs = tio_core.open_backend("fake", max_batch=16, end_of_stream=True)
    qs.inject(*flow)

    async def main():
        async with AsyncQueueSet(qs) as aqs:
            got = []
            async for batch in aqs[0]:
                got.extend(payloads(batch))
            return got

    assert run(main()) == flow


@pytest.fixture
def fd_set():
    """A fake set with one socket-backed queue (add(fd)); yields (set, async queue, peer socket)."""
    qs = tio_core.open_backend("fake", max_batch=8)
    mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    aqs = AsyncQueueSet(qs)
    aq = aqs.add(mine.detach())
    yield qs, aq, peer
    aqs.close()
    peer.close()


def test_fake_fd_queue_takes_the_fd_path(fd_set, flow):
    qs, aq, peer = fd_set
    assert aq.mode == "fd" and aq.fileno() == qs[1].fileno()

    async def main():
        reader = asyncio.create_task(aq.read())
        await asyncio.sleep(0.02)
        assert not reader.done()
        for p in flow[:3]:
            peer.send(p)
        assert payloads(await reader) == flow[:3]
        await aq.write(flow[5])
        assert peer.recv(65536) == flow[5]

    run(main())


def test_fake_fd_queue_cancel_then_close_while_awaiting(fd_set, flow):
    qs, aq, peer = fd_set

    async def main():
        loop = asyncio.get_running_loop()
        await cancel_a_waiting_read(aq)
        assert not loop.remove_reader(aq.fileno())  # nothing left registered
        peer.send(flow[0])
        assert payloads(await aq.read()) == [flow[0]]  # usable, nothing lost
        waiting = asyncio.create_task(aq.read())
        await asyncio.sleep(0.02)
        aq.close()
        with pytest.raises(QueueClosed):
            await waiting
        assert qs[1].closed

    run(main())
