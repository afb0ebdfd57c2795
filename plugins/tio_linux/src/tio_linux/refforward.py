"""Reference forwarders between two TUN devices: the anchors the TUN benchmark measures tio against.

usage: python -m tio_linux.refforward {plain,vnet} TUN_A TUN_B [--threads]

plain  IFF_TUN|IFF_NO_PI without offloads: one read and one write per wire
       packet (what a user of a raw TUN fd, or python-pytun, gets).
vnet   IFF_VNET_HDR with TSO/USO negotiated: every read is a superpacket with
       its virtio_net_hdr, written to the other device unchanged, header
       included. No parsing, no segmenting: the ceiling for Python code that
       moves superpackets.

Both devices are created (unconfigured); READY is printed once they exist.
Each direction runs in its own process (``--threads``: two threads of one
process), reading into one reused buffer. SIGINT or SIGTERM stops both; the
packets forwarded per direction are printed to stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import threading

from tio_linux import tun
from tio_linux.errors import DeviceError

MODES = ("plain", "vnet")
BUFFER_SIZE = 256 * 1024  # larger than any superpacket plus its header: a TUN read never truncates
PR_SET_PDEATHSIG = 1


def open_device(name: str, mode: str) -> int:
    """A blocking fd of TUN ``name`` (created), with offloads in vnet mode."""
    flags = tun.IFF_TUN | tun.IFF_NO_PI | (tun.IFF_VNET_HDR if mode == "vnet" else 0)
    attached = tun.attach(name.encode(), flags)
    try:
        if mode == "vnet":
            tun.set_vnet_hdr_size(attached.fd)
            if not tun.negotiate(attached.fd, tun.wanted_mask(tso=True, uso=True)):
                raise DeviceError(0, f"the kernel granted no offload on {name}")
        os.set_blocking(attached.fd, True)
    except BaseException:
        os.close(attached.fd)
        raise
    return attached.fd


def pump(src: int, dst: int, counts: list[int]) -> None:
    """Copy every packet read from src to dst until src fails (device gone); counts[0] counts them."""
    buffer = bytearray(BUFFER_SIZE)
    view = memoryview(buffer)
    readv, write = os.readv, os.write
    try:
        while True:
            size = readv(src, (buffer,))
            try:  # noqa: SIM105 (a context manager per packet would cost more than the write)
                write(dst, view[:size])
            except OSError:  # the other side refused this one (e.g. link down): dropped, as a wire would
                pass
            counts[0] += 1
    except OSError:
        pass


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _child_pump(src: int, dst: int) -> None:
    """In a forked child: pump until SIGTERM (sent by the parent, or on its death)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent stops us
    counts = [0]
    try:
        pump(src, dst, counts)
    except SystemExit:
        pass
    finally:
        print(f"b->a {counts[0]} packets", file=sys.stderr, flush=True)
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("tun_a")
    parser.add_argument("tun_b")
    parser.add_argument("--threads", action="store_true", help="both directions as threads of one process")
    args = parser.parse_args(argv)

    fd_a = open_device(args.tun_a, args.mode)
    fd_b = open_device(args.tun_b, args.mode)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # inherited by the child, which then ignores SIGINT
    forward, backward = [0], [0]
    child = None
    if args.threads:
        threading.Thread(target=pump, args=(fd_b, fd_a, backward), daemon=True).start()
    else:
        child = os.fork()
        if child == 0:
            _child_pump(fd_b, fd_a)
    print(f"READY {args.tun_a} {args.tun_b} mode={args.mode}", flush=True)
    try:
        pump(fd_a, fd_b, forward)
    finally:
        if child:
            os.kill(child, signal.SIGTERM)
            os.waitpid(child, 0)
        print(f"a->b {forward[0]} packets" + ("" if child else f", b->a {backward[0]} packets"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
