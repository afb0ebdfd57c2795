"""asyncio against the plain loop on a real TUN: writes, and read + write (needs root).

usage: tio bench --only aio [--quick]     (or python benchmarks/bench_aio_tun.py [--quick])

The measurement runs in a child process inside a fresh network namespace
(tio_linux.netns, removed afterwards whatever happens) that opens one TUN
with offloads, addresses 198.18.0.1/24, up. Figures, packets/s, each beside
its baseline from the same run:

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
import ipaddress
import json
import os
import struct
import subprocess
import sys
import time

from tio_core import kernels
from tio_core.aio import AsyncQueue
from tio_core.bench import Figure
from tio_core.contract import Buffer, Packet, Queue
from tio_core.wire import IPPROTO_UDP

LOCAL, PEER, NOWHERE = "198.18.0.1", "198.18.0.2", "198.18.5.5"
PAYLOAD = b"x" * 64
MEASURE_TIMEOUT_S = 300


def udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An IPv4/UDP packet with both checksums right (what the TUN's stack would accept)."""
    src_b, dst_b = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    udp_len = 8 + len(payload)
    ip_hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, IPPROTO_UDP, 0, src_b, dst_b))
    struct.pack_into("!H", ip_hdr, 10, ~kernels.checksum(ip_hdr) & 0xFFFF)
    udp = bytearray(struct.pack("!HHHH", sport, dport, udp_len, 0) + payload)
    seed = kernels.pseudo_header_sum(src_b, dst_b, IPPROTO_UDP, udp_len)
    struct.pack_into("!H", udp, 6, ~kernels.checksum(udp, seed) & 0xFFFF or 0xFFFF)
    return bytes(ip_hdr + udp)


PACKET = udp_packet(PEER, NOWHERE, 4000, 9, PAYLOAD)
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


def measure(quick: bool) -> list[Figure]:
    """The measurement itself: runs in the namespace made by run() (it creates a TUN there)."""
    from tio_linux.backend import open_linux

    count, seconds, rounds = (20_000, 1.0, 1) if quick else (100_000, 3.0, 3)
    sender = None
    qset = open_linux(name=f"aio{os.getpid() % 100000}", addresses=(f"{LOCAL}/24",), up=True)
    try:
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
    finally:
        if sender is not None:
            sender.kill()
            sender.wait()
        qset.close()
    unit = "packets/s"
    write_base = "aio write: queue.write loop"
    forward_base = "aio read+write: plain loop"
    return [
        Figure(write_base, best["plain"], unit),
        Figure("aio write: await aq.write (write_nowait inline)", best["nowait"], unit, write_base, best["plain"], 1.0),
        Figure("aio write: await aq.write via writer thread (before)", best["thread"], unit, write_base, best["plain"]),
        Figure(forward_base, moved["plain"], unit),
        Figure("aio read+write: await aq.read/write", moved["aio"], unit, forward_base, moved["plain"], 1.0),
    ]


def run(quick: bool = False) -> list[Figure]:
    """tio bench's entry: measure() in a child process inside a fresh namespace; [] if that cannot be made."""
    from tio_linux.netns import Namespace, why_unavailable

    reason = why_unavailable()
    if reason:
        print(f"aio: not measured: {reason}", file=sys.stderr)
        return []
    argv = [sys.executable, "-m", "tio_linux.aio_bench", "--measure", *(["--quick"] if quick else [])]
    with Namespace("aio") as namespace:
        done = namespace.command(argv, timeout=MEASURE_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"the aio measurement failed (exit {done.returncode}): {done.stderr.strip()}")
    return [Figure(*fields) for fields in json.loads(done.stdout)]


if __name__ == "__main__":
    if "--measure" in sys.argv[1:]:  # inside the namespace: figures as JSON on stdout
        print(json.dumps([list(figure) for figure in measure(quick="--quick" in sys.argv[1:])]))
    else:
        from tio_core.cli.output import figure_table

        print(figure_table(run(quick="--quick" in sys.argv[1:])))
