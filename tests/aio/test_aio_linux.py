"""tio_core.aio on real TUN devices (backend ``linux``) inside a throwaway network namespace.

The TUN (198.18.7.1/24) lives in a namespace the test creates and removes;
sockets in that namespace send through it (what the queues read) and
receive what the queues write.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest
from scapy.layers.inet import IP, UDP

from tio_core import GSOProto, QueueClosed
from tio_core.aio import AsyncQueue, AsyncQueueSet

from .queues import assert_close_wakes, cancel_a_waiting_read

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces and TUN devices"),
    pytest.mark.skipif(not os.path.exists("/dev/net/tun"), reason="needs /dev/net/tun"),
]
tio_linux = pytest.importorskip("tio_linux.backend")
from tio_linux.netns import Namespace, unique_ifname  # noqa: E402

TUN_ADDR = "198.18.7.1"  # the namespace's end of the TUN
PEER_ADDR = "198.18.7.2"  # "the other side": where the queue's packets claim to come from
PORT = 9000
TIMEOUT = 15.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


@pytest.fixture
def tun_in_ns():
    """open(queues=N) -> LinuxQueueSet of an up TUN in a fresh namespace; all removed afterwards."""
    ns = Namespace("aio", ipv6=False)  # IPv4 only: no router solicitations or MLD reports in the reads
    sets = []

    def open_tun(queues: int = 1):
        qset = ns.run(
            tio_linux.open_linux, name=unique_ifname("ta"), queues=queues, addresses=[f"{TUN_ADDR}/24"], up=True
        )
        sets.append(qset)
        return qset

    yield ns, open_tun
    for qset in sets:
        qset.close()
    ns.remove()


def supported_modes(open_tun) -> list[str]:
    """Every AsyncQueue mode this backend's queues support (probed on a set closed again)."""
    qset = open_tun()
    try:
        return ["thread"] + (["fd"] if AsyncQueue(qset.queues()[0]).mode == "fd" else [])
    finally:
        qset.close()  # the device goes with its last fd: no second device on the same subnet


def ours(batch, port: int = PORT) -> list[bytes]:
    """UDP payloads to ``port`` in a batch (the kernel also sends its own chatter, e.g. IPv6 RS)."""
    out = []
    for packet in batch:
        data = bytes(packet.data)
        if data[0] >> 4 != 4:
            continue
        parsed = IP(data)
        if UDP in parsed and parsed[UDP].dport == port:
            out.append(bytes(parsed[UDP].payload))
    return out


def udp_socket(ns: Namespace, bind: tuple[str, int] | None = None) -> socket.socket:
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if bind is not None:
        sock.bind(bind)
    return sock


def udp_to_ns(payload: bytes, dport: int, sport: int = 5555) -> bytes:
    """A checksummed UDP/IPv4 packet from the peer to the namespace's address."""
    return bytes(IP(src=PEER_ADDR, dst=TUN_ADDR) / UDP(sport=sport, dport=dport) / payload)


def test_read_and_write_through_a_real_tun(tun_in_ns):
    ns, open_tun = tun_in_ns
    sender = udp_socket(ns)
    receiver = udp_socket(ns, ("0.0.0.0", PORT + 1))  # bound before any TUN gives the address
    receiver.setblocking(False)

    async def main():
        for mode in supported_modes(open_tun):
            async with AsyncQueueSet(open_tun(), mode=mode) as aqs:
                aq = aqs[0]
                assert aq.mode == mode
                reader = asyncio.create_task(aq.read())
                await asyncio.sleep(0.02)
                assert not reader.done()  # waiting, with the loop free
                sender.sendto(f"hello {mode}".encode(), (PEER_ADDR, PORT))
                got = ours(await reader)
                while not got:  # skip kernel chatter batches
                    got = ours(await aq.read())
                assert got == [f"hello {mode}".encode()]

                packet = udp_to_ns(f"to ns {mode}".encode(), PORT + 1)
                assert await aq.write(packet) == len(packet)
                data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(receiver, 2048), 5)
                assert data == f"to ns {mode}".encode()

    try:
        run(main())
    finally:
        sender.close()
        receiver.close()


def test_write_gso_delivers_a_udp_superpacket(tun_in_ns, packet_factory):
    ns, open_tun = tun_in_ns
    qset = open_tun()
    receiver = udp_socket(ns, (TUN_ADDR, PORT + 2))
    receiver.setblocking(False)

    async def main():
        async with AsyncQueueSet(qset) as aqs:
            aq = aqs[0]
            if not aq.supports_gso(GSOProto.UDP):
                pytest.skip("this kernel did not grant USO")
            args = packet_factory.gso_write_args(
                bytes(range(256)) * 12, 1000, GSOProto.UDP, src=PEER_ADDR, dst=TUN_ADDR, dport=PORT + 2
            )
            await aq.write_gso(*args)
            loop = asyncio.get_running_loop()
            return [await asyncio.wait_for(loop.sock_recv(receiver, 4096), 5) for _ in range(4)]

    try:
        datagrams = run(main())
    finally:
        receiver.close()
    assert b"".join(datagrams) == bytes(range(256)) * 12
    assert [len(d) for d in datagrams] == [1000, 1000, 1000, 72]


def test_concurrent_readers_and_writers_on_a_multiqueue_tun(tun_in_ns):
    """Two queues: a reader and a writer task on each, all at once, then close wakes the readers."""
    ns, open_tun = tun_in_ns
    qset = open_tun(queues=2)
    senders = [udp_socket(ns) for _ in range(8)]  # 8 flows: the kernel spreads them over the queues
    receiver = udp_socket(ns, (TUN_ADDR, PORT + 3))
    receiver.setblocking(False)
    per_flow, per_writer = 25, 100

    async def main():
        loop = asyncio.get_running_loop()
        aqs = AsyncQueueSet(qset)
        collected: list[bytes] = []
        per_queue = [0, 0]

        async def reader(index, aq):
            while True:
                got = ours(await aq.read())  # QueueClosed ends this task
                collected.extend(got)
                per_queue[index] += len(got)

        async def writer(index, aq):
            for i in range(per_writer):
                await aq.write(udp_to_ns(f"w{index}-{i}".encode(), PORT + 3, sport=6000 + index))

        async def receive_all():
            got = []
            while len(got) < 2 * per_writer:
                got.append(await loop.sock_recv(receiver, 2048))
            return got

        readers = [asyncio.create_task(reader(i, aq)) for i, aq in enumerate(aqs)]
        receiving = asyncio.create_task(receive_all())
        writing = asyncio.gather(*(writer(i, aq) for i, aq in enumerate(aqs)))
        for i in range(per_flow):
            for n, sock in enumerate(senders):
                sock.sendto(f"r{n}-{i}".encode(), (PEER_ADDR, PORT))
            await asyncio.sleep(0)
        await writing
        received = await asyncio.wait_for(receiving, 5)
        deadline = time.monotonic() + 5
        while len(collected) < per_flow * len(senders) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await assert_close_wakes(aqs.aclose, readers, within=2.0)
        return collected, per_queue, received

    try:
        collected, per_queue, received = run(main())
    finally:
        for sock in senders + [receiver]:
            sock.close()
    assert sorted(collected) == sorted(f"r{n}-{i}".encode() for n in range(8) for i in range(per_flow))
    for index in range(2):  # each writer's packets arrive, in its order
        mine = [d for d in received if d.startswith(f"w{index}-".encode())]
        assert mine == [f"w{index}-{i}".encode() for i in range(per_writer)]


def test_cancellation_and_close_while_awaiting_on_a_real_tun(tun_in_ns):
    ns, open_tun = tun_in_ns
    sender = udp_socket(ns)

    async def main():
        for mode in supported_modes(open_tun):
            qset = open_tun()
            async with AsyncQueueSet(qset, mode=mode) as aqs:
                aq = aqs[0]
                await cancel_a_waiting_read(aq, wait=0.05)
                sender.sendto(b"after cancel", (PEER_ADDR, PORT))
                got = []
                while not got:
                    got = ours(await aq.read())
                assert got == [b"after cancel"]  # nothing lost, the queue still works

                waiting = [asyncio.create_task(aq.read()) for _ in range(2)]
                await asyncio.sleep(0.05)
                started = time.monotonic()
                aq.close()
                outcomes = await asyncio.gather(*waiting, return_exceptions=True)
                assert time.monotonic() - started < 1.0
                assert all(isinstance(o, QueueClosed) for o in outcomes), outcomes
                with pytest.raises(QueueClosed):
                    await aq.write(udp_to_ns(b"late", PORT))

    try:
        run(main())
    finally:
        sender.close()


def test_closing_the_linux_set_directly_wakes_awaiters(tun_in_ns):
    _, open_tun = tun_in_ns

    async def main():
        for mode in supported_modes(open_tun):
            qset = open_tun(queues=2)
            aqs = AsyncQueueSet(qset, mode=mode)
            waiting = [asyncio.create_task(aq.read()) for aq in aqs]
            await asyncio.sleep(0.05)
            await assert_close_wakes(qset.close, waiting, within=1.0)  # not through the async wrapper
            await aqs.aclose()

    run(main())
