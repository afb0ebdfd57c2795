"""A network namespace for the asyncio Linux tests, created and always removed.

Work that must happen inside the namespace (creating the TUN and its
addresses, opening sockets) runs in a short-lived thread that setns()-es
into it; what it creates stays there while the test process itself never
leaves the root namespace.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


def unique(prefix: str) -> str:
    """Short (IFNAMSIZ-safe) unique name."""
    return f"{prefix}{os.getpid() % 100000}a{next(_counter)}"


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:  # /proc/sys/net follows the calling thread's namespace
        handle.write(value)


class Namespace:
    def __init__(self) -> None:
        from pyroute2 import netns

        self.name = unique("tioaio")
        netns.create(self.name)
        try:
            # IPv4-only tests: no IPv6 on new links means no router solicitations
            # or MLD reports showing up in the TUN reads.
            self.run(_write, "/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")
        except BaseException:
            self.remove()
            raise

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) in a thread inside the namespace; its result or exception."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({self.name}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                box["result"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"in-{self.name}")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["result"]

    def udp_socket(self, bind: tuple[str, int] | None = None) -> socket.socket:
        sock = self.run(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        if bind is not None:
            sock.bind(bind)
        return sock

    def remove(self) -> None:
        from pyroute2 import netns

        if self.name in netns.listnetns():
            netns.remove(self.name)
