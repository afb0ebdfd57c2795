"""Fixtures: TUN queue sets inside namespaces from tio-linux's own test kit, removed even on failure."""

from __future__ import annotations

import os

import pytest

from tio_linux.netns import why_unavailable

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
