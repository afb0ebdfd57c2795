"""Suite-wide pytest set-up: a reproducible hypothesis profile for CI, and fixtures shared by test areas.

With CI=true (as CI services set it), or HYPOTHESIS_PROFILE=ci, every
hypothesis test runs derandomized: the same examples in every run, so a
failure in CI fails again on a developer's machine. HYPOTHESIS_PROFILE may
name any registered profile ("default" is hypothesis' own, random).
Tests that set max_examples themselves keep their count; the rest run
CI_MAX_EXAMPLES examples.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from tio_linux.netns import Namespace, unique_ifname

CI_MAX_EXAMPLES = 100

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=CI_MAX_EXAMPLES,
    deadline=None,  # a loaded CI machine must not turn slowness into failures
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _profile_name() -> str | None:
    if os.environ.get("HYPOTHESIS_PROFILE"):
        return os.environ["HYPOTHESIS_PROFILE"]
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        return "ci"
    return None


if _profile_name() is not None:
    settings.load_profile(_profile_name())


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


@pytest.fixture(params=[True, False], ids=["vnet", "plain"])
def udp_listener_queue(request, open_in_ns) -> Iterator[tuple[object, socket.socket]]:
    """(queue, socket), once with offloads (vnet) and once without (plain): the first queue of an up TUN addressed
    tests.support.tun.LOCAL and a UDP socket bound to LOCAL:LISTEN_PORT in its namespace (5 s timeout)."""
    from tests.support.tun import LISTEN_PORT, LOCAL

    ns, qset = open_in_ns(addresses=(f"{LOCAL}/24",), up=True, offloads=request.param)
    with ns.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCAL, LISTEN_PORT))
        sock.settimeout(5)
        yield qset.queues()[0], sock
