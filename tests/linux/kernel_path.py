"""A real kernel as the reference segmenter: superpacket in, segments out.

Two TUN devices in one namespace with forwarding on: ``offloaded`` (TSO/USO
negotiated) takes a superpacket written with its virtio_net_hdr, the kernel
routes it to ``plain`` (no offloads, so the kernel must segment it in
software on the way out) and the test reads the wire packets there. Both
MTUs are 65535, so nothing is refused for size after segmentation.

Forwarding decrements the TTL / hop limit (and so changes the IPv4 header
checksum): ``tio_segments`` segments the same superpacket with that one
change applied, so equal bytes mean tio segments exactly as the kernel does.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import time
from typing import NamedTuple

from tio_core import kernels
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.wire import GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, VirtioNetHdr
from tio_linux.backend import open_linux
from tio_linux.netns import Namespace, unique_ifname

SRC4, DST4 = "198.18.0.2", "198.19.0.2"  # behind the offloaded TUN -> behind the plain one
SRC6, DST6 = "fd00:a::2", "fd00:b::2"
IDLE = 0.3  # seconds without a packet after which the kernel is taken to be done


class Superpacket(NamedTuple):
    """Packet bytes (L4 checksum field = pseudo-header partial) and the header a kernel takes with them."""

    data: bytes
    vnet: VirtioNetHdr

    @property
    def gso(self) -> GSOInfo:
        proto = GSOProto.UDP if self.vnet.gso_type == GSO_UDP_L4 else GSOProto.TCP
        return GSOInfo(self.vnet.gso_size, self.vnet.hdr_len, self.vnet.csum_start, proto)


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _words(data: bytes) -> int:
    data = data + b"\0" * (len(data) & 1)
    return sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def superpacket(
    version: int,
    proto: int,
    payload: bytes,
    gso_size: int,
    *,
    tcp_flags: int = 0x10,
    urgent: int = 0,
    ext_chain: list[tuple[int, bytes]] | None = None,
) -> Superpacket:
    """A TCP/UDP superpacket from 198.18.0.2 / fd00:a::2 to 198.19.0.2 / fd00:b::2.

    ext_chain: IPv6 extension headers as (type, bytes without the next-header byte).
    """
    chain = ext_chain or []
    if proto == 6:  # ports, seq 1000, ack 5, data offset 5, flags, window, checksum, urgent pointer
        l4 = struct.pack("!HHIIBBHHH", 40000, 443, 1000, 5, 5 << 4, tcp_flags, 65535, 0, urgent)
    else:
        l4 = struct.pack("!HHHH", 40000, 4789, 8 + len(payload), 0)
    next_types = [kind for kind, _ in chain[1:]] + [proto]
    ext = b"".join(bytes([following]) + body for (_, body), following in zip(chain, next_types))
    l4_len = len(l4) + len(payload)
    if version == 4:
        src, dst = bytes([198, 18, 0, 2]), bytes([198, 19, 0, 2])
        ip = bytearray(bytes([0x45, 0]) + (20 + l4_len).to_bytes(2, "big") + bytes([0, 1, 0x40, 0, 64, proto, 0, 0]))
        ip += src + dst
        ip[10:12] = (~_fold(_words(bytes(ip))) & 0xFFFF).to_bytes(2, "big")
    else:
        src, dst = bytes.fromhex("fd00000a" + "0" * 23 + "2"), bytes.fromhex("fd00000b" + "0" * 23 + "2")
        first = chain[0][0] if chain else proto
        ip = bytearray(bytes([0x60, 0, 0, 0]) + (len(ext) + l4_len).to_bytes(2, "big") + bytes([first, 64]))
        ip += src + dst + ext
    partial = _fold(_words(src + dst) + proto + l4_len)
    field = 16 if proto == 6 else 6
    l4 = l4[:field] + partial.to_bytes(2, "big") + l4[field + 2 :]
    cs = len(ip)
    gso_type = GSO_UDP_L4 if proto == 17 else GSO_TCPV4 if version == 4 else GSO_TCPV6
    vnet = VirtioNetHdr(NEEDS_CSUM, gso_type, cs + len(l4), gso_size, cs, field)
    return Superpacket(bytes(ip) + l4 + payload, vnet)


def hop_by_hop() -> tuple[int, bytes]:
    """An 8-byte hop-by-hop options header holding one PadN option."""
    return 0, bytes([0, 1, 4, 0, 0, 0, 0])


def destination_options() -> tuple[int, bytes]:
    return 60, bytes([0, 1, 4, 0, 0, 0, 0])


def routing_done() -> tuple[int, bytes]:
    """A routing header with no segments left (type 0)."""
    return 43, bytes([0, 0, 0, 0, 0, 0, 0])


def authentication(icv: int = 12) -> tuple[int, bytes]:
    """An AH header: length byte (total / 4 - 2), reserved, SPI 1, sequence 1, ICV."""
    return 51, bytes([(12 + icv) // 4 - 2, 0, 0]) + (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes(icv)


def fragment_header() -> tuple[int, bytes]:
    return 44, bytes([0, 0, 0]) + (7).to_bytes(4, "big")


def tio_segments(sp: Superpacket) -> list[bytes]:
    """tio's segments of ``sp`` as they leave a router: TTL / hop limit one lower."""
    data = bytearray(sp.data)
    data[8 if data[0] >> 4 == 4 else 7] -= 1
    return [bytes(s) for s in kernels.segment(Packet(memoryview(bytes(data)), sp.gso))]


class KernelPath:
    """offloaded TUN -> kernel forwarding -> plain TUN, inside a private namespace."""

    def __init__(self) -> None:
        self._sets = []
        self.ns = Namespace("kr")
        try:
            self.offloaded = self._open(addresses=("198.18.0.1/24", "fd00:a::1/64"))
            self.plain = self._open(addresses=("198.19.0.1/24", "fd00:b::1/64"), offloads=False)
            self.ns.run(self._configure)
        except BaseException:
            self.close()
            raise
        self._in_fd = self.offloaded.queues()[0].fileno()
        self._out_fd = self.plain.queues()[0].fileno()

    def _open(self, **options):
        qset = self.ns.run(open_linux, name=unique_ifname("tkr"), mtu=65535, up=True, **options)
        self._sets.append(qset)
        return qset

    def _configure(self) -> None:
        from pyroute2 import IPRoute

        for path in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"):
            with open(path, "w") as handle:
                handle.write("1")
        with IPRoute() as ipr:  # room for every segment of a 64 KiB superpacket at gso_size 1
            ipr.link("set", index=ipr.link_lookup(ifname=self.plain.name)[0], txqlen=100_000)

    def segment(self, sp: Superpacket, expect: int | None = None) -> int | list[bytes]:
        """Write ``sp`` into the offloaded TUN; the errno the kernel refused it with, or what reached the plain TUN.

        Reading stops after ``expect`` packets or IDLE seconds of silence.
        """
        try:
            os.write(self._in_fd, sp.vnet.pack() + sp.data)
        except OSError as exc:
            return exc.errno
        dst = sp.data[16:20] if sp.data[0] >> 4 == 4 else sp.data[24:40]
        delivered: list[bytes] = []
        deadline = time.monotonic() + IDLE
        while expect is None or len(delivered) < expect:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out_fd], [], [], left)[0]:
                break
            try:
                data = os.read(self._out_fd, 70000)
            except BlockingIOError:
                continue
            if (data[16:20] if data[0] >> 4 == 4 else data[24:40]) == dst:  # not the kernel's own IPv6 chatter
                delivered.append(data)
            deadline = time.monotonic() + IDLE
        return delivered

    def close(self) -> None:
        for qset in self._sets:
            qset.close()
        self.ns.remove()


EINVAL = errno.EINVAL
