"""Network namespaces joined by TUN devices: the real-kernel test kit (and benchmark harness) of tio-linux.

    from tio_linux.netns import TunLink

    with TunLink() as link:                    # namespaces A and B, removed on exit
        qa, qb = link.open()                   # a TUN in each, configured and up
        ...                                    # your code forwards between qa and qb
        result = link.tcp(50 * 2**20)          # 50 MB A -> B, hashed on both ends
        assert result.intact, result

Needs root and /dev/net/tun (``why_unavailable()`` says what is missing).
Every namespace, device and process is removed on close(), on failure and on
Ctrl-C. Addresses only from 198.18.0.0/15 and fd00::/8. The pytest plugin
(tio_linux.pytest_plugin) wraps this in fixtures.
"""

from tio_linux.netns.counters import LinkStats
from tio_linux.netns.errors import AddressError, ForwarderError, NetnsError, TrafficError
from tio_linux.netns.link import ForwarderProcess, Side, TunLink
from tio_linux.netns.namespace import (
    Namespace,
    deferred_interrupt,
    namespaces_of,
    terminate_as_interrupt,
    unique_ifname,
    why_unavailable,
)
from tio_linux.netns.traffic import (
    UDP_SEGMENT,
    TcpTransfer,
    UdpTransfer,
    check_test_address,
    stream,
    tcp_transfer,
    udp_transfer,
)

__all__ = [
    "UDP_SEGMENT",
    "AddressError",
    "ForwarderError",
    "ForwarderProcess",
    "LinkStats",
    "Namespace",
    "NetnsError",
    "Side",
    "TcpTransfer",
    "TrafficError",
    "TunLink",
    "UdpTransfer",
    "check_test_address",
    "deferred_interrupt",
    "namespaces_of",
    "stream",
    "tcp_transfer",
    "terminate_as_interrupt",
    "udp_transfer",
    "unique_ifname",
    "why_unavailable",
]
