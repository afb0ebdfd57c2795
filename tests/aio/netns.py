"""A network namespace for the asyncio Linux tests, created and always removed.

Built on tests.linux.nsutil: work inside the namespace runs in a short-lived
thread that setns()-es into it, so the test process stays in the root one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from tests.linux import nsutil

unique = nsutil.unique


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:  # /proc/sys/net follows the calling thread's namespace
        handle.write(value)


class Namespace:
    def __init__(self) -> None:
        self.name = unique("tioaio")
        nsutil.create_ns(self.name)
        try:
            # IPv4-only tests: no IPv6 on new links means no router solicitations
            # or MLD reports showing up in the TUN reads.
            self.run(_write, "/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")
        except BaseException:
            self.remove()
            raise

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) in a thread inside the namespace; its result or exception."""
        return nsutil.in_ns(self.name, fn, *args, **kwargs)

    def udp_socket(self, bind: tuple[str, int] | None = None) -> socket.socket:
        sock = nsutil.ns_socket(self.name, socket.AF_INET, socket.SOCK_DGRAM)
        if bind is not None:
            sock.bind(bind)
        return sock

    def remove(self) -> None:
        nsutil.remove_ns(self.name)
