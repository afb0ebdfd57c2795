"""The Linux queue's non-blocking writes (root: a real TUN in a namespace).

write_nowait / write_gso_nowait make the queue a NonBlockingWriter /
NonBlockingGSOWriter, so tio_core.aio writes inline on the event loop instead
of handing every packet to a writer thread.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.support.packets import udp_gso
from tests.support.tun import LISTEN_PORT, LOCAL, PEER, PEER_PORT, datagram_to_listener
from tio_core.aio import AsyncQueue
from tio_core.contract import GSOProto, NonBlockingGSOWriter, NonBlockingWriter
from tio_core.errors import QueueClosed
from tio_linux.netns import why_unavailable

SKIP_REASON = why_unavailable()
pytestmark = [pytest.mark.root, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]


def test_write_nowait_delivers_like_write(udp_listener_queue):
    queue, sock = udp_listener_queue
    assert isinstance(queue, NonBlockingWriter), "rule: the linux queue offers a non-blocking write"
    packet = datagram_to_listener(b"inline")
    assert queue.write_nowait(packet) == len(packet)
    assert sock.recv(2000) == b"inline"


def test_write_gso_nowait_delivers_like_write_gso(udp_listener_queue):
    queue, sock = udp_listener_queue
    if not hasattr(queue, "write_gso"):
        pytest.skip("a plain queue has no write_gso")
    assert isinstance(queue, NonBlockingGSOWriter)
    payloads = [os.urandom(1000) for _ in range(5)] + [os.urandom(10)]
    queue.write_gso_nowait(*udp_gso(PEER, LOCAL, PEER_PORT, LISTEN_PORT, payloads), payloads, GSOProto.UDP)
    assert [sock.recv(2000) for _ in payloads] == payloads


def test_nowait_writes_on_a_closed_queue_raise_queue_closed(udp_listener_queue):
    queue, _ = udp_listener_queue
    queue.close()
    with pytest.raises(QueueClosed):
        queue.write_nowait(datagram_to_listener(b"late"))
    if hasattr(queue, "write_gso_nowait"):
        with pytest.raises(QueueClosed):
            queue.write_gso_nowait(
                *udp_gso(PEER, LOCAL, PEER_PORT, LISTEN_PORT, [b"x" * 100]), [b"x" * 100], GSOProto.UDP
            )


def test_aio_writes_inline_without_a_writer_thread(udp_listener_queue):
    queue, sock = udp_listener_queue

    async def main():
        aq = AsyncQueue(queue)
        for i in range(20):
            await aq.write(datagram_to_listener(b"aio %d" % i))
        return aq

    aq = asyncio.run(main())
    assert aq._writer is None, "rule: with write_nowait, aio writes never go through a writer thread"
    assert [sock.recv(2000) for _ in range(20)] == [b"aio %d" % i for i in range(20)]
