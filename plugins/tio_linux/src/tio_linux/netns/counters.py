"""Counters of one network namespace, read from inside it.

Each reader runs in a thread that joined the namespace (Namespace.run):
/proc/net is the main thread's namespace, /proc/thread-self/net the reading
thread's, so the latter is what is read here.
"""

from __future__ import annotations

from typing import NamedTuple

PROC_NET = "/proc/thread-self/net"

# Counters that count packets dropped for a bad L4 checksum (TCP counts v4 and v6 together).
CHECKSUM_ERROR_COUNTERS = (
    ("Tcp", "InCsumErrors"),
    ("Udp", "InCsumErrors"),
    ("UdpLite", "InCsumErrors"),
    ("Icmp", "InCsumErrors"),
    ("Udp6", "Udp6InCsumErrors"),
    ("UdpLite6", "UdpLite6InCsumErrors"),
    ("Icmp6", "Icmp6InCsumErrors"),
)
_SNMP6_GROUPS = ("UdpLite6", "Icmp6", "Udp6", "Ip6")  # longest prefix first


def _read_paired(path: str, out: dict[str, dict[str, int]]) -> None:
    """/proc/net/snmp and netstat: a 'Group: names' line followed by a 'Group: values' line."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        group, _, keys = names.partition(":")
        out.setdefault(group, {}).update(zip(keys.split(), map(int, values.split(":", 1)[1].split()), strict=True))


def read_snmp() -> dict[str, dict[str, int]]:
    """snmp, netstat and snmp6 of the calling thread's namespace as {group: {counter: value}}.

    snmp6 counters keep their full names under their prefix's group, e.g.
    out["Udp6"]["Udp6InCsumErrors"].
    """
    out: dict[str, dict[str, int]] = {}
    _read_paired(f"{PROC_NET}/snmp", out)
    _read_paired(f"{PROC_NET}/netstat", out)
    try:
        with open(f"{PROC_NET}/snmp6") as handle:
            for line in handle:
                if line.strip():
                    key, value = line.split()
                    group = next((g for g in _SNMP6_GROUPS if key.startswith(g)), "Ip6")
                    out.setdefault(group, {})[key] = int(value)
    except FileNotFoundError:  # IPv6 disabled in this kernel
        pass
    return out


def checksum_errors(snmp: dict[str, dict[str, int]]) -> int:
    return sum(snmp.get(group, {}).get(counter, 0) for group, counter in CHECKSUM_ERROR_COUNTERS)


class LinkStats(NamedTuple):
    rx_bytes: int
    rx_packets: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_dropped: int


def read_link_stats(ifname: str) -> LinkStats:
    """One device's line of /proc/net/dev in the calling thread's namespace."""
    with open(f"{PROC_NET}/dev") as handle:
        for line in handle.readlines()[2:]:
            name, _, fields = line.partition(":")
            if name.strip() == ifname:
                v = [int(x) for x in fields.split()]
                return LinkStats(
                    rx_bytes=v[0], rx_packets=v[1], rx_dropped=v[3], tx_bytes=v[8], tx_packets=v[9], tx_dropped=v[11]
                )
    raise LookupError(f"no device {ifname!r} in this namespace")


def read_queue_packets(ifname: str) -> list[int]:
    """Packets sent through each TX queue's qdisc of ``ifname`` (mq children, by queue index).

    On a TUN, TX queue i is what the reader of queue i receives. A device with
    a single queue reports its root qdisc as one entry.
    """
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LookupError(f"no device {ifname!r} in this namespace")
        per_parent = {}
        for message in ipr.get_qdiscs(index=found[0]):
            stats = message.get_attr("TCA_STATS2")
            basic = stats.get_attr("TCA_STATS_BASIC") if stats else None
            per_parent[message["parent"]] = (message.get_attr("TCA_KIND"), basic["packets"] if basic else 0)
    root_kind, root_packets = per_parent.pop(0xFFFFFFFF, ("", 0))
    if root_kind != "mq":
        return [root_packets]
    # children of the mq root hang off minor numbers 1..N: queue index + 1
    return [packets for _, (_, packets) in sorted((parent & 0xFFFF, value) for parent, value in per_parent.items())]
