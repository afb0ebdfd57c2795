"""Fixtures: namespaces and TUN queue sets that are removed even on failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.linux import nsutil


def _why_skip() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create network namespaces and TUN devices"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (load the tun module or pass the device into the container)"
    return None


SKIP_REASON = _why_skip()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.root)
            if SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture
def make_ns() -> Iterator[Callable[[], str]]:
    """Create namespaces on demand; all are removed at teardown."""
    created: list[str] = []

    def make() -> str:
        name = nsutil.unique("tiot")
        nsutil.create_ns(name)
        created.append(name)
        return name

    yield make
    for name in created:
        nsutil.remove_ns(name)


@pytest.fixture
def open_in_ns(make_ns) -> Iterator[Callable[..., tuple]]:
    """open_in_ns(**options) -> (namespace, LinuxQueueSet) created inside a fresh namespace.

    Queue sets are closed before their namespaces are removed (a TUN whose
    namespace dies while its fd is open would move to the root namespace).
    """
    from tio_linux.backend import open_linux

    sets = []

    def opener(ns: str | None = None, **options):
        ns = ns or make_ns()
        options.setdefault("name", nsutil.unique("tt"))
        qset = nsutil.in_ns(ns, open_linux, **options)
        sets.append(qset)
        return ns, qset

    yield opener
    for qset in sets:
        qset.close()
