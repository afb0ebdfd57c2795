"""Bridge two TUN devices in both directions: the data path of a VPN, minus the crypto.

usage: python examples/tun_bridge.py [--mode segment|passthrough] TUN_A TUN_B

Both devices are created with offloads (TSO/USO superpackets) and left
unconfigured; move them into namespaces and bring them up as you like (this
is what tio_linux.netns.TunLink.start does). It prints READY once both exist
and runs until SIGINT/SIGTERM.

segment      every superpacket read is cut into wire-sized packets (what a
             VPN must do before encrypting each one), then the packets are
             coalesced back into superpackets on the other device's write
             path (what a VPN does after decrypting).
passthrough  superpackets go straight to the other device with write_gso.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import threading
from collections import Counter

from tio_core import kernels
from tio_core.coalesce import Coalescer
from tio_core.contract import GSOProto, Queue, supports_gso
from tio_core.errors import QueueClosed, TioError
from tio_linux.backend import open_linux
from tio_linux.fragments import EvenFragments

PR_SET_PDEATHSIG = 1
SCRATCH_SIZE = 128 * 1024  # segments of one 64 KiB superpacket, with their headers


def pump_segment(src: Queue, dst: Queue, stats: Counter) -> None:
    """src -> dst, cutting superpackets into wire packets and coalescing them again."""
    coalescer = Coalescer.for_queue(dst)
    segment_into = kernels.segment_into
    # one scratch buffer per superpacket of a batch: the coalescer borrows
    # the segments until flush(), and the buffers are reused batch after batch
    scratch = [bytearray(SCRATCH_SIZE) for _ in range(64)]
    while True:
        batch = src.read()
        staged = []
        used = 0
        for packet in batch:
            if packet.gso.size:
                staged.extend(segment_into(packet, scratch[used]))
                used += 1
            else:
                staged.append(packet.data)
        coalescer.add_many(staged)
        try:
            coalescer.flush()
        except QueueClosed:
            raise
        except TioError as exc:  # e.g. the other side is down: drop, as a link would
            stats[type(exc).__name__] += 1
        stats["packets"] += len(staged)


def pump_passthrough(src: Queue, dst: Queue, stats: Counter) -> None:
    """src -> dst, superpackets written as they are with one write_gso each."""
    write = dst.write
    # Asked once: the queue itself segments if the kernel later refuses GSO.
    offload = {proto: supports_gso(dst, proto)[1] for proto in (GSOProto.TCP, GSOProto.UDP)}
    while True:
        for packet in src.read():
            gso = packet.gso
            try:
                if not gso.size:
                    write(packet.data)
                elif offload[gso.proto]:
                    data, start, end, size = packet.data, gso.csum_start, gso.hdr_len, gso.size
                    # the payload stays one span: one iovec instead of one per segment
                    dst.write_gso(data[:start], data[start:end], EvenFragments(data, end, size), gso.proto)
                else:  # the other side has no offload for this protocol: segment here
                    for segment in kernels.segment(packet):
                        write(segment)
            except QueueClosed:
                raise
            except TioError as exc:
                stats[type(exc).__name__] += 1
            stats["packets"] += 1


PUMPS = {"segment": pump_segment, "passthrough": pump_passthrough}


def start_pumps(directions: list[tuple[Queue, Queue]], mode: str, stats: Counter) -> list[threading.Thread]:
    """One pumping thread per (src, dst); each ends when its queues close."""
    pump = PUMPS[mode]

    def guarded(src: Queue, dst: Queue) -> None:
        try:
            pump(src, dst, stats)
        except QueueClosed:
            pass

    threads = []
    for src, dst in directions:
        thread = threading.Thread(target=guarded, args=(src, dst), name=f"{src.name}->{dst.name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def fork_worker(directions: list[tuple[Queue, Queue]], mode: str) -> int:
    """Pump ``directions`` in a child process (its own GIL); returns its pid.

    The child shares the TUN fds, dies with SIGTERM (the default action) and
    also when the parent dies, so nothing outlives the bridge.
    """
    pid = os.fork()
    if pid:
        return pid
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
        for thread in start_pumps(directions, mode, Counter()):
            thread.join()
    finally:
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(PUMPS), default="segment")
    parser.add_argument("--queues", type=int, default=1, help="queues per device (one pump per queue and direction)")
    parser.add_argument(
        "--workers",
        choices=("process", "thread"),
        default="process",
        help="process: B->A runs in a forked child, so the two directions do not share one GIL",
    )
    parser.add_argument("tun_a")
    parser.add_argument("tun_b")
    args = parser.parse_args(argv)

    a = open_linux(name=args.tun_a, queues=args.queues)
    try:
        b = open_linux(name=args.tun_b, queues=args.queues)
    except BaseException:
        a.close()
        raise
    forward = list(zip(a.queues(), b.queues()))
    backward = [(qb, qa) for qa, qb in forward]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stats: Counter = Counter()
    child = fork_worker(backward, args.mode) if args.workers == "process" else None
    threads = start_pumps(forward if child else forward + backward, args.mode, stats)
    caps = a.queues()[0].capabilities() if hasattr(a.queues()[0], "capabilities") else None
    print(f"READY {a.name} {b.name} mode={args.mode} workers={args.workers} capabilities={caps}", flush=True)
    stop.wait()
    if child:
        os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)
    a.close()
    b.close()
    for thread in threads:
        thread.join(2)
    drops = {f"{q.name}[{i}]": q.drop_counts() for s in (a, b) for i, q in enumerate(s.queues()) if q.drop_counts()}
    print(f"stopped: {dict(stats)} drops={drops} gso_fallbacks={a.gso_fallbacks + b.gso_fallbacks}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
