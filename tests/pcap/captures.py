"""Capture files for the pcap tests: scapy's writers, plus a small pcapng
block builder for what scapy cannot write (big-endian sections, Simple
Packet Blocks, if_tsresol, raw link types on several interfaces)."""

from __future__ import annotations

import struct
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, PcapWriter

RAW, IPV4, IPV6, EN10MB, NULL, LOOP, SLL, SLL2 = 101, 228, 229, 1, 0, 108, 113, 276
SNAPLEN = 262144


def ip_packets(count: int = 8, start: int = 0) -> list[bytes]:
    """Valid IPv4/IPv6 TCP/UDP packets, all different."""
    out = []
    for n in range(start, start + count):
        payload = bytes([n & 0xFF]) * (1 + n * 7 % 200)
        if n % 4 == 0:
            pkt = IP(src="198.18.0.1", dst="198.18.0.2", id=n) / UDP(sport=1000 + n, dport=53) / Raw(payload)
        elif n % 4 == 1:
            pkt = IP(src="198.18.0.1", dst="198.18.0.2", id=n) / TCP(sport=2000, dport=80, seq=n) / Raw(payload)
        elif n % 4 == 2:
            pkt = IPv6(src="fd00::1", dst="fd00::2", fl=n) / UDP(sport=3000, dport=53) / Raw(payload)
        else:
            pkt = IPv6(src="fd00::1", dst="fd00::2", fl=n) / TCP(sport=4000, dport=443, seq=n) / Raw(payload)
        out.append(bytes(pkt))
    return out


def frame(linktype: int, packet: bytes) -> bytes:
    """packet framed for linktype, as a capture on such a link holds it (scapy builds the L2)."""
    v6 = packet[0] >> 4 == 6
    ethertype = 0x86DD if v6 else 0x0800
    if linktype in (RAW, IPV4, IPV6):
        return packet
    if linktype == EN10MB:
        return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=ethertype) / Raw(packet))
    if linktype == NULL:
        return bytes(Loopback(type=24 if v6 else 2) / Raw(packet))  # host order, as BSD writes it
    if linktype == LOOP:
        return struct.pack("!I", 24 if v6 else 2) + packet
    if linktype == SLL:
        return bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=ethertype) / Raw(packet))
    if linktype == SLL2:
        return bytes(CookedLinuxV2(proto=ethertype, ifindex=3, pkttype=0, lladdrlen=6) / Raw(packet))
    raise ValueError(linktype)


def non_ip_frame(linktype: int) -> bytes:
    """A frame that carries no IP packet on that link."""
    if linktype == EN10MB:
        return bytes(
            Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="198.18.0.1", pdst="198.18.0.2")
        )
    if linktype in (RAW, IPV4, IPV6):
        return b"\x10" * 30  # version nibble 1
    if linktype in (NULL, LOOP):
        return struct.pack("<I", 7) + b"\x00" * 30
    if linktype == SLL:
        return bytes(CookedLinux(proto=0x0806) / ARP())
    if linktype == SLL2:
        return bytes(CookedLinuxV2(proto=0x0806) / ARP())
    raise ValueError(linktype)


def write_pcap(
    path: Path,
    frames: list[bytes],
    linktype: int = RAW,
    *,
    nano: bool = False,
    endianness: str = "<",
    times: list[float] | None = None,
    snaplen: int = SNAPLEN,
) -> Path:
    """Classic pcap through scapy's PcapWriter with an explicit link type."""
    writer = PcapWriter(str(path), linktype=linktype, nano=nano, endianness=endianness, snaplen=snaplen)
    writer.linktype = linktype  # scapy drops a falsy linktype (NULL is 0)
    writer._write_header(None)  # write_packet() alone writes no file header
    for index, data in enumerate(frames):
        stamp = times[index] if times is not None else 1_700_000_000 + index * 0.001
        sec = int(stamp)
        if nano:
            writer.write_packet(data, sec=sec, usec=round((stamp - sec) * 1e9))
        else:
            writer.write_packet(data, sec=sec, usec=round((stamp - sec) * 1e6))
    writer.close()
    return path


def write_pcapng(path: Path, frames: list[tuple[int, bytes]]) -> Path:
    """pcapng through scapy: one interface per distinct link type, Enhanced Packet Blocks."""
    writer = PcapNgWriter(str(path))
    writer.linktype = frames[0][0]
    writer._write_header(None)
    for index, (linktype, data) in enumerate(frames):
        ifname = None if linktype == frames[0][0] else f"if{linktype}".encode()
        writer._write_packet(data, linktype=linktype, sec=1_700_000_000 + index, ifname=ifname)
    writer.close()
    return path


# -- hand-built pcapng blocks -------------------------------------------------------
def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", btype, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))


def shb(order: str = "<") -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(
    order: str, linktype: int, snaplen: int = SNAPLEN, tsresol: int | None = None, tsoffset: int | None = None
) -> bytes:
    options = struct.pack(order + "HH", 2, 4) + b"tun0"  # if_name, skipped by the reader
    if tsresol is not None:
        options += struct.pack(order + "HHB3x", 9, 1, tsresol)
    if tsoffset is not None:
        options += struct.pack(order + "HHq", 14, 8, tsoffset)
    options += struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options)


def epb(order: str, interface: int, ts: int, data: bytes, wirelen: int | None = None) -> bytes:
    wire = len(data) if wirelen is None else wirelen
    return block(order, 6, struct.pack(order + "IIIII", interface, ts >> 32, ts & 0xFFFFFFFF, len(data), wire) + data)


def spb(order: str, data: bytes) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(data)) + data)


# -- timestamps pacing cannot follow --------------------------------------------------------
def far_future_pcapng(directory: Path) -> tuple[Path, int]:
    """(capture, offset of its third packet): seconds resolution (if_tsresol 0), the third packet
    stamped 2**64 - 1 s, ~5.8e11 years ahead."""
    stamps = [1_700_000_000, 1_700_000_000, 2**64 - 1, 1_700_000_001]
    head = shb() + idb("<", 101, tsresol=0)
    blocks = [epb("<", 0, ts, packet) for ts, packet in zip(stamps, ip_packets(4), strict=True)]
    path = directory / "far.pcapng"
    path.write_bytes(head + b"".join(blocks))
    return path, len(head) + len(blocks[0]) + len(blocks[1])


def far_future_pcap(directory: Path) -> tuple[Path, int]:
    """(capture, offset of its third packet): classic pcap, the third packet 2.6e9 s after the second
    (at speed 1e-9 a wait of 2.6e18 s)."""
    packets = ip_packets(4)
    times = [1_700_000_000, 1_700_000_000, 4_294_967_295, 1_700_000_001]
    path = write_pcap(directory / "far.pcap", packets, times=times)
    return path, 24 + 16 + len(packets[0]) + 16 + len(packets[1])


__all__ = ["ARP", "Dot1AD", "Dot1Q", "Ether", "IP", "IPv6", "Raw", "TCP", "UDP"]
