"""How the contract suite (tio-testing) drives the linux backend on a real TUN (needs root).

    pytest --tio-contract linux

Each harness makes its own network namespace (held by a file descriptor, not
a mount, so it disappears with the process even when a run is killed) and
creates every TUN inside it. Inbound packets are injected by sending raw IP
frames on an AF_PACKET socket bound to the TUN: the kernel transmits them
through the device, so the backend's queue reads them. What the backend
writes is captured on another AF_PACKET socket with PACKET_VNET_HDR: the tap
sees a write_gso as the one GSO skb the kernel received, described by its
virtio_net_hdr, and the harness segments it with tio's kernels to list the
wire packets the kernel would produce (the suite checks them against scapy).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tio_core import kernels
from tio_core.contract import Packet, QueueSet
from tio_core.wire import GSO_NONE, VIRTIO_NET_HDR_LEN, VirtioNetHdr
from tio_linux.netns import Namespace, unique_ifname, why_unavailable
from tio_testing import ContractHarness

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23


def _capture_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # only what the device received
    sock.bind((ifname, ETH_P_ALL))
    return sock


def _inject_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    sock.bind((ifname, 0))
    return sock


class LinuxHarness(ContractHarness):
    finite = False  # a live device: reading past the inbound blocks until close
    borrow_invalidates = False  # views point into one reused per-queue buffer
    max_batch = 64
    read_timeout = 10.0
    owned_options = ("name", "up")

    @classmethod
    def unavailable(cls) -> str | None:
        return why_unavailable()

    def __init__(self, backend: str, options: Mapping[str, Any], workdir: Path) -> None:
        super().__init__(backend, options, workdir)
        # no router solicitations or MLD reports on new devices: queue 0 must read exactly the injected packets
        self.ns = Namespace("contract", ipv6=False, anonymous=True)
        self.sets: list[QueueSet] = []
        self.captures: dict[int, socket.socket] = {}

    def open(self, inbound: Sequence[bytes]) -> QueueSet:
        from tio_core import open_backend

        name = unique_ifname("tc")
        qs = self.ns.run(open_backend, self.backend, name=name, up=True, **self.options)
        self.sets.append(qs)
        self.captures[id(qs)] = self.ns.run(_capture_socket, name)
        if inbound:
            with self.ns.run(_inject_socket, name) as injector:
                for data in inbound:
                    proto = ETH_P_IP if data[0] >> 4 == 4 else ETH_P_IPV6
                    injector.sendto(data, (name, proto))
        return qs

    def outbound(self, qs: QueueSet, min_count: int = 0) -> list[bytes]:
        sock = self.captures[id(qs)]
        packets: list[bytes] = []
        deadline = time.monotonic() + 5
        while True:
            # wait for the expected count, then a short grace for extra packets
            wait = deadline - time.monotonic() if len(packets) < min_count else 0.05
            ready, _, _ = select.select([sock], [], [], max(wait, 0))
            if not ready:
                return packets
            packets.extend(self._wire_packets(sock.recv(VIRTIO_NET_HDR_LEN + 65536)))

    @staticmethod
    def _wire_packets(frame: bytes) -> list[bytes]:
        hdr = VirtioNetHdr.unpack(frame)
        data = bytearray(frame[VIRTIO_NET_HDR_LEN:])
        if hdr.base_type == GSO_NONE:
            if hdr.needs_csum:
                kernels.finish_checksum(data, hdr)
            return [bytes(data)]
        info = kernels.gso_info_from_vnet(hdr, data)
        return [bytes(s) for s in kernels.segment(Packet(memoryview(data), info))]

    def close(self) -> None:
        for sock in self.captures.values():
            sock.close()
        self.captures.clear()
        for qs in self.sets:  # TUNs go before their namespace
            qs.close()
        self.sets.clear()
        self.ns.remove()


__all__ = ["LinuxHarness"]
