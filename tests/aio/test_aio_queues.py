"""tio_core.aio against the in-test queues: both paths, cancellation, close."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tio_core import ConfigError, GSOProto, QueueClosed
from tio_core.aio import AsyncGSOQueue, AsyncQueue, AsyncQueueSet, LoopMismatch

from .queues import ListQueueSet, MemoryGSOQueue, MemoryQueue, SocketQueue, assert_close_wakes, cancel_a_waiting_read

TIMEOUT = 10.0


def run(coro):
    """Run one test coroutine with a deadline so a bug fails instead of hanging."""
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def pkt(i: int, size: int = 60) -> bytes:
    """A distinct payload per index (content is opaque to these queues)."""
    return i.to_bytes(4, "big") * (size // 4)


def inject(queue, *packets: bytes) -> None:
    if isinstance(queue, SocketQueue):
        for p in packets:
            queue.peer.send(p)
    else:
        queue.inject(*packets)


def sent(queue) -> list[bytes]:
    """What the queue emitted so far."""
    if isinstance(queue, SocketQueue):
        queue.peer.setblocking(False)
        out = []
        while True:
            try:
                out.append(queue.peer.recv(65536))
            except BlockingIOError:
                return out
    return list(queue.outbound)


@pytest.fixture(params=["fd", "thread"])
def mode_queue(request):
    """(queue, expected AsyncQueue.mode): a SocketQueue drives fd, a MemoryQueue threads."""
    queue = SocketQueue() if request.param == "fd" else MemoryQueue()
    yield queue, request.param
    queue.close()


async def until(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT / 2
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


# -- construction -----------------------------------------------------------


def test_mode_is_picked_from_what_the_backend_offers():
    with SocketQueue() as sq, MemoryQueue() as mq:
        assert AsyncQueue(sq).mode == "fd"
        assert AsyncQueue(sq, mode="thread").mode == "thread"
        assert AsyncQueue(mq).mode == "thread"
        with pytest.raises(ConfigError, match="fileno"):
            AsyncQueue(mq, mode="fd")
        with pytest.raises(ConfigError, match="mode"):
            AsyncQueue(mq, mode="epoll")


def test_write_gso_exists_exactly_when_the_queue_is_a_gso_writer():
    with MemoryQueue() as plain, MemoryGSOQueue() as gso:
        assert not hasattr(AsyncQueue(plain), "write_gso")
        agq = AsyncQueue(gso)
        assert isinstance(agq, AsyncGSOQueue)
        # the permissive GSOWriter (no CapsProvider) rule of the seed carries over
        assert agq.supports_gso(GSOProto.TCP) and agq.supports_gso(GSOProto.UDP)
        assert not AsyncQueue(plain).supports_gso(GSOProto.TCP)
        assert tuple(agq.capabilities()) == (False, False)

        async def main():
            await agq.write_gso(b"\x45" + bytes(19), bytes(20), [b"a" * 8, b"b" * 3], GSOProto.TCP)
            with pytest.raises(ValueError, match="bad proto"):
                await agq.write_gso(b"\x45" + bytes(19), bytes(20), [b"a"], GSOProto.NONE)

        run(main())
        assert gso.gso_writes == [(b"\x45" + bytes(19), bytes(20), [b"a" * 8, b"b" * 3], GSOProto.TCP)]


# -- reading and writing ----------------------------------------------------


def test_read_and_write_round_trip(mode_queue):
    queue, mode = mode_queue
    aq = AsyncQueue(queue)
    assert aq.mode == mode

    async def main():
        inject(queue, pkt(1), pkt(2))
        batch = await aq.read()
        assert [bytes(p.data) for p in batch] == [pkt(1), pkt(2)]
        assert await aq.write(pkt(3)) == len(pkt(3))
        with pytest.raises(ValueError) if mode == "thread" else pytest.raises(OSError):
            await aq.write(b"" if mode == "thread" else b"x" * 300_000)  # rejected by the backend
        assert await aq.write(pkt(4)) == len(pkt(4))  # still usable after an error

    run(main())
    assert sent(queue) == [pkt(3), pkt(4)]


def test_awaiting_a_read_leaves_the_loop_free(mode_queue):
    queue, _ = mode_queue
    aq = AsyncQueue(queue)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        tick_task = asyncio.create_task(ticker())
        read_task = asyncio.create_task(aq.read())
        await until(lambda: ticks >= 20, "the loop to keep running while a read waits")
        assert not read_task.done()
        inject(queue, pkt(7))
        batch = await read_task
        tick_task.cancel()
        assert [bytes(p.data) for p in batch] == [pkt(7)]

    run(main())


def test_concurrent_readers_and_writers_on_different_queues():
    """Four queues (two per path), each with its own reader and writer task."""
    queues = [SocketQueue(max_batch=8), MemoryQueue(max_batch=8), SocketQueue(), MemoryQueue()]
    per_queue = 200

    async def feeder(queue, base):
        for i in range(per_queue):
            inject(queue, pkt(base + i))
            if i % 16 == 0:
                await asyncio.sleep(0)  # interleave with the readers

    async def reader(aq):
        got = []
        while len(got) < per_queue:
            got.extend(bytes(p.data) for p in await aq.read())
        return got

    async def writer(aq, base):
        for i in range(per_queue):
            await aq.write(pkt(base + i, 100))

    async def main():
        async with AsyncQueueSet(ListQueueSet(queues)) as aqs:
            assert [aq.mode for aq in aqs] == ["fd", "thread", "fd", "thread"]
            tasks = []
            for n, aq in enumerate(aqs):
                base = n * 10_000
                tasks += [reader(aq), feeder(aq.queue, base), writer(aq, base + 5000)]
            results = await asyncio.gather(*tasks)
            for n in range(len(queues)):
                assert results[3 * n] == [pkt(n * 10_000 + i) for i in range(per_queue)]
            return [sent(q) for q in queues]  # before closing: the socket peers go with the set

    outbound = run(main())
    for n, out in enumerate(outbound):
        assert out == [pkt(n * 10_000 + 5000 + i, 100) for i in range(per_queue)]


def test_many_tasks_reading_one_queue_get_every_batch_exactly_once(mode_queue):
    queue, _ = mode_queue
    aq = AsyncQueue(queue)
    total = 60

    async def main():
        got: list[bytes] = []

        async def reader():
            while True:
                batch = await aq.read()
                got.extend(bytes(p.data) for p in batch)  # consumed before the next await
                if len(got) >= total:
                    return

        readers = [asyncio.create_task(reader()) for _ in range(5)]
        for i in range(total):
            inject(queue, pkt(i))
            await asyncio.sleep(0)
        done, pending = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        assert sorted(got) == sorted(pkt(i) for i in range(total))
        assert len(got) == total

    run(main())


def test_async_for_stops_at_end_of_stream():
    queue = MemoryQueue(max_batch=2)
    queue.inject(*(pkt(i) for i in range(5)))
    queue.end()

    async def main():
        got = []
        async for batch in AsyncQueue(queue):
            got.extend(bytes(p.data) for p in batch)
        return got

    assert run(main()) == [pkt(i) for i in range(5)]


def test_write_waits_for_writability_on_a_full_socket():
    """fd path: a write that would block waits with add_writer, then goes out."""
    queue = SocketQueue(sndbuf=4096)
    aq = AsyncQueue(queue)
    filled = queue.fill(pkt(0, 1000))
    assert filled

    async def main():
        task = asyncio.create_task(aq.write(pkt(999, 1000)))
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting for the peer to make room
        drained = sent(queue)
        assert await task == 1000
        return drained + sent(queue)

    out = run(main())
    queue.close()
    assert out[-1] == pkt(999, 1000) and len(out) == filled + 1


def test_a_write_never_overtakes_one_that_waits_for_writability():
    """Writes go out in the order they were awaited, also when the later one could go at once."""
    queue = SocketQueue(sndbuf=4096)
    aq = AsyncQueue(queue)
    filled = queue.fill(pkt(0, 1000))

    async def main():
        first = asyncio.create_task(aq.write(pkt(1, 1000)))
        await asyncio.sleep(0.05)
        assert not first.done()  # waiting for room
        drained = sent(queue)  # room now; the first writer has not run yet
        second = asyncio.create_task(aq.write(pkt(2, 1000)))
        await asyncio.gather(first, second)
        return drained + sent(queue)

    out = run(main())
    queue.close()
    assert len(out) == filled + 2
    assert out[-2:] == [pkt(1, 1000), pkt(2, 1000)], "rule: a later write does not overtake a waiting one"


def test_thread_mode_writes_inline_and_hands_a_blocked_write_to_the_writer_thread():
    """A non-blocking write runs on the loop; only one that would block goes to a thread."""
    queue = SocketQueue(sndbuf=4096)
    aq = AsyncQueue(queue, mode="thread")

    def writer_threads():
        return [t for t in threading.enumerate() if t.name == f"tio-aio-write-{id(queue):x}"]

    async def main():
        assert await aq.write(pkt(1, 1000)) == 1000
        assert not writer_threads()  # inline: no thread needed
        queue.fill(pkt(2, 1000))
        task = asyncio.create_task(aq.write(pkt(3, 1000)))
        await asyncio.sleep(0.05)
        assert not task.done() and writer_threads()  # blocked in the writer thread, loop free
        drained = sent(queue)
        assert await task == 1000
        return drained + sent(queue)

    out = run(main())
    queue.close()
    assert out[0] == pkt(1, 1000) and out[-1] == pkt(3, 1000)


# -- cancellation -------------------------------------------------------------


def test_cancelled_read_leaves_the_queue_usable_and_loses_nothing(mode_queue):
    queue, mode = mode_queue
    aq = AsyncQueue(queue)

    async def main():
        await cancel_a_waiting_read(aq)
        if mode == "fd":  # nothing left registered with the loop
            assert not asyncio.get_running_loop().remove_reader(queue.fileno())
        inject(queue, pkt(1))
        # thread path: the read running on in its thread takes this packet;
        # its batch is kept and handed to the next read, borrowed views intact.
        batch = await aq.read()
        assert [bytes(p.data) for p in batch] == [pkt(1)]
        inject(queue, pkt(2))
        assert [bytes(p.data) for p in await aq.read()] == [pkt(2)]

    run(main())


def test_read_completing_as_it_is_cancelled_keeps_its_batch():
    """Thread path race: the batch arrives just as the awaiting task is cancelled."""
    queue = MemoryQueue()
    aq = AsyncQueue(queue)

    async def main():
        queue.inject(pkt(1))
        task = asyncio.create_task(aq.read())
        await asyncio.sleep(0)  # the task submits the read and awaits it
        deadline = time.monotonic() + 5
        while queue.reads_returned == 0:  # block the loop: the result cannot be delivered yet
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(0.01)  # the thread has queued the result callback
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        batch = await aq.read()
        assert [bytes(p.data) for p in batch] == [pkt(1)]  # still valid: no read happened since
        assert queue.reads_returned == 1

    run(main())


def test_cancelled_write_finishes_before_cancellation_propagates():
    """Thread path: a write in the backend's hands cannot be taken back."""
    queue = MemoryQueue()
    aq = AsyncQueue(queue)
    queue.write_gate.clear()

    async def main():
        buffer = bytearray(pkt(5))
        task = asyncio.create_task(aq.write(buffer))
        await until(queue.writes_started.is_set, "the write to start")
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting: the backend is using our buffer
        queue.write_gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        buffer[:] = b"\0" * len(buffer)  # safe now
        assert await aq.write(pkt(6)) == len(pkt(6))

    run(main())
    assert queue.outbound == [pkt(5), pkt(6)]


# -- closing --------------------------------------------------------------------


def test_close_wakes_awaiting_reader_and_writer(mode_queue):
    queue, mode = mode_queue
    aq = AsyncQueue(queue)

    async def main():
        readers = [asyncio.create_task(aq.read()) for _ in range(3)]
        if mode == "thread":
            queue.write_gate.clear()
        else:
            queue.fill(pkt(0, 1000))
        writer = asyncio.create_task(aq.write(pkt(1, 1000)))
        await asyncio.sleep(0.05)
        await assert_close_wakes(aq.close, [*readers, writer], within=1.0)
        with pytest.raises(QueueClosed):
            await aq.read()
        with pytest.raises(QueueClosed):
            await aq.write(pkt(2))
        aq.close()  # idempotent
        await aq.aclose()

    run(main())


def test_closing_the_wrapped_queue_directly_still_wakes_awaiters(mode_queue):
    """fd mode cannot see a closed fd: the closed-flag backstop must end the wait."""
    queue, _ = mode_queue
    aq = AsyncQueue(queue)

    async def main():
        task = asyncio.create_task(aq.read())
        await asyncio.sleep(0.02)
        started = time.monotonic()
        queue.close()  # behind the wrapper's back
        with pytest.raises(QueueClosed):
            await task
        assert time.monotonic() - started < 1.0
        await aq.aclose()  # the wrapper still tidies up

    run(main())


def test_queue_set_context_manager_closes_everything_and_stops_threads():
    queues = [MemoryQueue(), SocketQueue(), MemoryGSOQueue()]
    qs = ListQueueSet(queues)

    async def main():
        before = set(threading.enumerate())
        async with AsyncQueueSet(qs) as aqs:
            assert len(aqs) == 3 and aqs.queues() == aqs.queues()  # stable wrappers
            assert isinstance(aqs[2], AsyncGSOQueue)
            with pytest.raises(NotImplementedError):
                aqs.add(0)
            waiting = [asyncio.create_task(aq.read()) for aq in aqs]
            await asyncio.sleep(0.05)
            threads = [t for t in set(threading.enumerate()) - before if t.name.startswith("tio-aio-")]
            assert len(threads) == 2  # one reader thread per thread-path queue
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, QueueClosed) for r in results), results
        assert aqs.closed and qs.closed and qs.resources_closed
        assert not any(t.is_alive() for t in threads)
        with pytest.raises(QueueClosed):
            await aqs[0].read()
        with pytest.raises(QueueClosed):
            aqs.add(3)

    run(main())


def test_async_queue_context_manager_closes_the_queue_and_its_threads():
    queue = MemoryQueue()

    async def main():
        before = set(threading.enumerate())
        async with AsyncQueue(queue) as aq:
            queue.inject(pkt(1))
            assert [bytes(p.data) for p in await aq.read()] == [pkt(1)]
            await aq.write(pkt(2))
            threads = [t for t in set(threading.enumerate()) - before if t.name.startswith("tio-aio-")]
            assert len(threads) == 2  # its reader and its writer
        assert aq.closed and queue._closed
        assert not any(t.is_alive() for t in threads)

    run(main())


def test_closing_after_a_cancelled_read_drops_its_batch_cleanly():
    queue = MemoryQueue()
    aq = AsyncQueue(queue)

    async def main():
        await cancel_a_waiting_read(aq)
        queue.inject(pkt(1))
        await until(lambda: queue.reads_returned == 1, "the orphaned read to finish")
        await aq.aclose()
        with pytest.raises(QueueClosed):
            await aq.read()

    run(main())


def test_using_one_queue_from_two_loops_is_refused():
    with MemoryQueue() as queue:
        aq = AsyncQueue(queue)
        queue.inject(pkt(1))
        run(aq.read())
        with pytest.raises(LoopMismatch):
            run(aq.read())


def test_close_after_the_loop_ended_with_a_read_in_flight():
    """A wrapper outliving its loop (asyncio.run returned) still closes cleanly."""
    queue = MemoryQueue()
    aq = AsyncQueue(queue)

    async def main():
        task = asyncio.create_task(aq.read())
        await asyncio.sleep(0.01)
        task.cancel()  # the read stays in flight in its thread

    run(main())
    aq.close()
    assert aq.closed and queue._closed
