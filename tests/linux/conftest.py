"""Fixtures: TUN queue sets inside namespaces from tio-linux's own test kit, removed even on failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tio_linux.netns import Namespace, unique_ifname, why_unavailable

SKIP_REASON = why_unavailable()


def open_fds() -> set[int]:
    """The file descriptors this process has open (to prove nothing leaks)."""
    return {int(n) for n in os.listdir("/proc/self/fd")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.root)
            if SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture
def open_in_ns(tio_netns) -> Iterator[Callable[..., tuple[Namespace, object]]]:
    """open_in_ns(ns=None, **options) -> (Namespace, LinuxQueueSet) opened inside ``ns`` or a fresh namespace.

    Queue sets are closed before their namespaces are removed (tio_netns is set up first, torn down last).
    """
    from tio_linux.backend import open_linux

    sets = []

    def opener(ns: Namespace | None = None, **options):
        ns = ns or tio_netns()
        options.setdefault("name", unique_ifname("tt"))
        qset = ns.run(open_linux, **options)
        sets.append(qset)
        if options.get("addresses") and options.get("up"):
            ns.wait_addresses(qset.name)  # an IPv6 address is tentative for a moment after the link comes up
        return ns, qset

    yield opener
    for qset in sets:
        qset.close()
