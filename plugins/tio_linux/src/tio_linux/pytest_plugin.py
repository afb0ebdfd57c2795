"""pytest fixtures for testing your own code against real TUN devices, loaded through ``pytest11``.

Fixtures (root only; elsewhere they skip the test and say why):
  tio_tun_link  a tio_linux.netns.TunLink: namespaces A and B, to be joined by two
                TUN devices that your code forwards between (link.open() for code
                in this process, link.start(argv) for a program), plus traffic
                helpers (link.tcp, link.udp) and counters; all removed afterwards
  tio_netns     a factory: tio_netns() -> tio_linux.netns.Namespace, removed afterwards

While either fixture is in use, SIGTERM is handled like Ctrl-C, so a run
stopped either way still removes every namespace, device and process.

This module is imported by every pytest run in an environment where
tio-linux is installed, so it imports the toolkit only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


def _require_root_and_tun(fixture: str) -> None:
    from tio_linux.netns import why_unavailable

    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"{fixture} {reason}")


@pytest.fixture
def tio_netns() -> Iterator[Callable[..., Any]]:
    """tio_netns(tag="", ipv6=True) -> a new Namespace; every one made is removed after the test."""
    _require_root_and_tun("tio_netns")
    from tio_linux.netns import Namespace, terminate_as_interrupt

    made: list[Namespace] = []

    def make(tag: str = "", *, ipv6: bool = True) -> Namespace:
        ns = Namespace(tag, ipv6=ipv6)
        made.append(ns)
        return ns

    with terminate_as_interrupt():
        try:
            yield make
        finally:
            for ns in made:
                ns.remove()


@pytest.fixture
def tio_tun_link() -> Iterator[Any]:
    """A TunLink (namespaces A and B, 198.18.0.1/.2 and fd00::1/::2), closed after the test."""
    _require_root_and_tun("tio_tun_link")
    from tio_linux.netns import TunLink, terminate_as_interrupt

    with terminate_as_interrupt(), TunLink() as link:
        yield link
