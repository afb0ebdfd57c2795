"""Entry point of the 'linux' backend: describes it, imports nothing heavy."""

from __future__ import annotations

from tio_core import BackendDef, BenchmarkDef, Option, hookimpl

OPTIONS = (
    Option("name", str, "tio%d", "interface name (at most 15 bytes); '%d' lets the kernel pick a number"),
    Option("queues", int, 1, "number of queues (1..256); more than 1 creates a multiqueue device"),
    Option("offloads", bool, True, "negotiate IFF_VNET_HDR offloads at all (False: plain packets)"),
    Option("tso", bool, True, "offer TCP segmentation offload (TSO4/TSO6/TSO_ECN)"),
    Option("uso", bool, True, "offer UDP segmentation offload (USO4/USO6, Linux >= 6.2)"),
    Option("mtu", int, None, "set the link MTU (68..65535) through netlink"),
    Option("addresses", list, (), "addresses with prefix, e.g. ['198.18.0.1/24', 'fd00::1/64']"),
    Option("up", bool, False, "bring the link up after creating it"),
    Option(
        "create",
        bool,
        True,
        "False: only attach to an existing device (a persistent TUN root made for this user with "
        "`ip tuntap add ... user UID`), the way it was made; no CAP_NET_ADMIN needed; mtu/addresses/up refused",
    ),
)


@hookimpl
def tio_register_backends() -> list[BackendDef]:
    return [
        BackendDef(
            name="linux",
            description="Linux /dev/net/tun with TSO/USO superpackets (IFF_VNET_HDR) and multiqueue",
            factory="tio_linux.backend:open_linux",
            options=OPTIONS,
        )
    ]


@hookimpl
def tio_register_benchmarks() -> list[BenchmarkDef]:
    return [
        BenchmarkDef(
            "tun",
            "iperf3 through two TUNs: veth, naive, raw vnet, tun_bridge, tio forward (1/N workers, 4 flows); "
            "Gbit/s and CPU s/GB",
            "tio_linux.bench:run",
            needs_root=True,
        ),
        BenchmarkDef(
            "aio",
            "asyncio against the plain loop on a TUN: writes (inline write_nowait vs a writer thread), read+write; "
            "packets/s",
            "tio_linux.aio_bench:run",
            needs_root=True,
        ),
        BenchmarkDef(
            "replay",
            "tio replay of the demo capture into a TUN beside tcpreplay --topspeed onto a veth; packets/s",
            "tio_linux.replay_bench:run",
            needs_root=True,
        ),
    ]


@hookimpl
def tio_register_contract_harness() -> dict[str, str]:
    return {"linux": "tio_linux.contract_harness:LinuxHarness"}
