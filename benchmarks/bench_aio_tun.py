"""asyncio against the plain loop on a real TUN: writes, and read + write (needs root).

usage: python benchmarks/bench_aio_tun.py [--quick]

The process moves into a fresh network namespace (removed at exit) and opens
one TUN with offloads, addresses 198.18.0.1/24, up. Figures, packets/s, each
beside its baseline from the same run:

write          N UDP packets written into the TUN (the kernel drops them at
               routing: 198.18.5.5 is not local and forwarding is off):
               ``queue.write`` in a loop (baseline) / ``await aq.write`` with
               the queue's write_nowait (inline on the loop) / ``await
               aq.write`` through the writer thread (a queue without a
               non-blocking write: what aio did for the linux backend before).
read + write   a UDP sender (a subprocess in the namespace) floods packets
               that the TUN delivers; the forwarder reads each batch and
               writes every packet back: plain ``read``/``write`` loop
               (baseline) against ``await aq.read()`` / ``await aq.write``.
               The sender (a Python loop sharing the machine's cores) bounds
               both: this figure says whether aio keeps up, not its ceiling.

Rounds are interleaved and each figure is the best of its rounds (the
machine is shared: the best round is the least disturbed one).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import subprocess
import sys
import time

from scapy.layers.inet import IP, UDP

from tio_core.aio import AsyncQueue
from tio_core.bench import Figure
from tio_core.cli.output import figure_table
from tio_core.contract import Buffer, Packet, Queue
from tio_linux.backend import open_linux

CLONE_NEWNET = 0x40000000
LOCAL, PEER, NOWHERE = "198.18.0.1", "198.18.0.2", "198.18.5.5"
PACKET = bytes(IP(src=PEER, dst=NOWHERE) / UDP(sport=4000, dport=9) / (b"x" * 64))
SENDER = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data = b"y" * 64
while True:
    try:
        s.sendto(data, ("{PEER}", 9))
    except OSError:
        pass
"""


class WriteThroughThread(Queue):
    """The queue without its non-blocking write: aio must use its writer thread.

    close() leaves the real queue open (the benchmark owns it) and only ends the wrapper.
    """

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def read(self) -> list[Packet]:
        return self._queue.read()

    def write(self, data: Buffer) -> int:
        return self._queue.write(data)

    def close(self) -> None:
        pass


def enter_new_namespace(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def plain_writes(queue: Queue, count: int) -> float:
    write = queue.write
    started = time.perf_counter()
    for _ in range(count):
        write(PACKET)
    return count / (time.perf_counter() - started)


def aio_writes(queue: Queue, count: int) -> float:
    async def main() -> float:
        aq = AsyncQueue(queue)
        write = aq.write
        started = time.perf_counter()
        for _ in range(count):
            await write(PACKET)
        rate = count / (time.perf_counter() - started)
        if isinstance(queue, WriteThroughThread):
            await aq.aclose()  # ends the writer thread; the real queue stays open
        return rate

    return asyncio.run(main())


def plain_forward(queue: Queue, seconds: float) -> float:
    read, write = queue.read, queue.write
    moved = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for packet in read():
            write(packet.data)
            moved += 1
    return moved / (time.perf_counter() - started)


def aio_forward(queue: Queue, seconds: float) -> float:
    async def main() -> float:
        aq = AsyncQueue(queue)
        moved = 0
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            for packet in await aq.read():
                await aq.write(packet.data)
                moved += 1
        return moved / (time.perf_counter() - started)

    return asyncio.run(main())


def drain(queue: Queue) -> None:
    """Empty the TUN between rounds, so a round starts from an idle device."""
    with contextlib.suppress(BlockingIOError):
        while queue.read_nowait():  # type: ignore[attr-defined]
            pass


def run(quick: bool = False) -> list[Figure]:
    if os.geteuid() != 0:
        print("bench_aio_tun: not measured: needs root (network namespace and TUN)", file=sys.stderr)
        return []
    namespace = f"tioaio{os.getpid()}"
    count, seconds, rounds = (20_000, 1.0, 1) if quick else (100_000, 3.0, 3)
    enter_new_namespace(namespace)
    sender = None
    try:
        qset = open_linux(name=f"aio{os.getpid() % 100000}", addresses=(f"{LOCAL}/24",), up=True)
        queue = qset.queues()[0]
        best = {"plain": 0.0, "nowait": 0.0, "thread": 0.0}
        for _ in range(rounds):
            best["plain"] = max(best["plain"], plain_writes(queue, count))
            best["nowait"] = max(best["nowait"], aio_writes(queue, count))
            best["thread"] = max(best["thread"], aio_writes(WriteThroughThread(queue), count // 5))
        sender = subprocess.Popen([sys.executable, "-c", SENDER])
        time.sleep(0.5)
        moved = {"plain": 0.0, "aio": 0.0}
        for _ in range(rounds):
            drain(queue)
            moved["plain"] = max(moved["plain"], plain_forward(queue, seconds))
            drain(queue)
            moved["aio"] = max(moved["aio"], aio_forward(queue, seconds))
        qset.close()
    finally:
        if sender is not None:
            sender.kill()
            sender.wait()
        subprocess.run(["ip", "netns", "del", namespace], check=False)
    unit = "packets/s"
    write_base = "write: queue.write loop"
    forward_base = "read+write: plain loop"
    return [
        Figure(write_base, best["plain"], unit),
        Figure("write: await aq.write (write_nowait inline)", best["nowait"], unit, write_base, best["plain"], 1.0),
        Figure("write: await aq.write via writer thread (before)", best["thread"], unit, write_base, best["plain"]),
        Figure(forward_base, moved["plain"], unit),
        Figure("read+write: aio (fd reads, inline writes)", moved["aio"], unit, forward_base, moved["plain"], 1.0),
    ]


if __name__ == "__main__":
    print(figure_table(run(quick="--quick" in sys.argv[1:])))
