"""Network-namespace helpers for the Linux backend tests.

Namespaces are made with pyroute2 (no iproute2 needed). Work that must
happen inside one (creating a TUN there, opening sockets) runs in a
short-lived thread that setns()-es into it: objects created there stay in
that namespace, and the test process itself never leaves the root one.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2 import netns

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()
T = TypeVar("T")


def unique(prefix: str) -> str:
    """A short unique name (fits IFNAMSIZ) for namespaces and devices."""
    return f"{prefix}{os.getpid() % 100000}x{next(_counter)}"


def in_ns(ns: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run fn in a thread that joined namespace ``ns``; return or raise its outcome."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"in-{ns}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def ns_socket(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket living in namespace ``ns``."""
    return in_ns(ns, socket.socket, family, kind, proto)


def create_ns(name: str) -> None:
    netns.create(name)
    in_ns(name, _lo_up)


def _lo_up() -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def remove_ns(name: str) -> None:
    if name in netns.listnetns():
        netns.remove(name)


def snmp(ns: str) -> dict[str, dict[str, int]]:
    """/proc/net/snmp and /proc/net/snmp6 of a namespace as {group: {counter: value}}."""

    def read() -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with open("/proc/thread-self/net/snmp") as handle:
            lines = handle.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            group, _, keys = names.partition(":")
            out[group] = dict(zip(keys.split(), map(int, values.split(":", 1)[1].split())))
        with open("/proc/thread-self/net/snmp6") as handle:
            out["6"] = {k: int(v) for k, v in (line.split() for line in handle if line.strip())}
        return out

    # /proc/net is the main thread's (root) namespace; /proc/thread-self/net
    # is the namespace this reading thread joined
    return in_ns(ns, read)


def checksum_errors(ns: str) -> int:
    """Sum of the L4 checksum-error counters of a namespace (v4 and v6)."""
    counters = snmp(ns)
    return (
        counters["Tcp"].get("InCsumErrors", 0)
        + counters["Udp"].get("InCsumErrors", 0)
        + counters["6"].get("Udp6InCsumErrors", 0)
        + counters["Tcp"].get("InErrs", 0)
    )


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}
