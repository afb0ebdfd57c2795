"""Property: whatever reads are cancelled and whenever, every packet arrives once, in order."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tio_core.aio import AsyncQueue

from .queues import MemoryQueue, SocketQueue

operations = st.lists(
    st.one_of(
        st.tuples(st.just("inject"), st.integers(1, 5)),
        st.tuples(st.just("read"), st.just(0)),
        st.tuples(st.just("cancel_read"), st.integers(0, 3)),  # cancel after this many ms
    ),
    max_size=25,
)


def numbered(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8


async def play(queue, aq, ops) -> tuple[list[bytes], int]:
    injected, received = 0, []

    def inject(n):
        nonlocal injected
        packets = [numbered(injected + k) for k in range(n)]
        injected += n
        if isinstance(queue, SocketQueue):
            for p in packets:
                queue.peer.send(p)
        else:
            queue.inject(*packets)

    for op, arg in ops:
        if op == "inject":
            inject(arg)
        elif op == "read" and len(received) < injected:
            received.extend(bytes(p.data) for p in await aq.read())
        elif op == "cancel_read":
            task = asyncio.create_task(aq.read())
            await asyncio.sleep(arg / 1000)
            task.cancel()
            try:
                batch = await task
            except asyncio.CancelledError:
                continue
            received.extend(bytes(p.data) for p in batch)  # it finished before the cancel
    while len(received) < injected:
        received.extend(bytes(p.data) for p in await aq.read())
    return received, injected


@pytest.mark.parametrize("kind", [MemoryQueue, SocketQueue])
@settings(max_examples=40, deadline=None)
@given(ops=operations)
def test_cancelled_reads_never_lose_or_repeat_packets(kind, ops):
    queue = kind(max_batch=3)
    aq = AsyncQueue(queue)
    try:
        received, injected = asyncio.run(asyncio.wait_for(play(queue, aq, ops), 10))
    finally:
        aq.close()
    assert received == [numbered(i) for i in range(injected)]
