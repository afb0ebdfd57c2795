#!/usr/bin/env python3
"""Generate src/tio_core/data/demo.pcap, the embedded default of `tio forward`.

Reproducible (fixed seed and timestamps): a few MB of mixed TCP/UDP, IPv4/IPv6
traffic as tcpdump sees it on a TSO/USO-enabled TUN with MTU 1500, i.e. TCP
and UDP packets larger than the MTU (superpackets) between ordinary ones.
Link type RAW (101). Needs scapy (a test dependency); run from the repo root.
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "tio_core" / "data" / "demo.pcap"
MTU = 1500
LINKTYPE_RAW = 101
START = 1_790_000_000  # fixed capture time (seconds)


def tcp_mss(ip_header_len: int) -> int:
    return MTU - ip_header_len - 20


def build(rng: random.Random) -> list[bytes]:
    packets: list[bytes] = []
    flows = [
        (IP(src="198.18.0.1", dst="198.19.0.1", flags="DF", id=1000 * n), 20, 40000 + n, 5201) for n in range(2)
    ] + [(IPv6(src="fd00::1", dst="fd00:1::1", fl=0x12345 + n), 40, 41000 + n, 5201) for n in range(2)]
    seqs = [rng.randrange(2**32) for _ in flows]
    for round_ in range(16):
        for index, (ip, ip_len, sport, dport) in enumerate(flows):
            mss = tcp_mss(ip_len)
            segments = rng.randrange(2, 44)
            payload = rng.randbytes(mss * segments - rng.randrange(0, mss // 2))
            pkt = (
                ip.copy()
                / TCP(sport=sport, dport=dport, seq=seqs[index], ack=12345, flags="PA", window=501)
                / Raw(payload)
            )
            if ip_len == 20:
                pkt[IP].id = (ip.id + round_ * 50) & 0xFFFF
            packets.append(bytes(pkt))
            seqs[index] = (seqs[index] + len(payload)) % 2**32
            # the peer's pure ACK and a small request on the same flow
            back = ip.copy()
            back.src, back.dst = ip.dst, ip.src
            packets.append(
                bytes(back / TCP(sport=dport, dport=sport, seq=12345, ack=seqs[index], flags="A", window=8192))
            )
            packets.append(
                bytes(
                    ip.copy()
                    / TCP(sport=sport, dport=dport, seq=seqs[index], ack=12345, flags="PA", window=501)
                    / Raw(rng.randbytes(rng.randrange(20, 400)))
                )
            )
            seqs[index] = (seqs[index] + len(packets[-1]) - ip_len - 20) % 2**32
        # UDP: a USO-sized datagram burst and small datagrams, v4 and v6
        chunk = 1400
        for ip in (IP(src="198.18.0.1", dst="198.19.0.2"), IPv6(src="fd00::1", dst="fd00:1::2")):
            big = rng.randbytes(chunk * rng.randrange(2, 20) - rng.randrange(0, 700))
            packets.append(bytes(ip.copy() / UDP(sport=4433, dport=4433) / Raw(big)))
            for _ in range(6):
                packets.append(
                    bytes(ip.copy() / UDP(sport=5353, dport=53) / Raw(rng.randbytes(rng.randrange(30, 300))))
                )
        packets.append(bytes(IP(src="198.18.0.1", dst="198.19.0.3") / ICMP(id=7, seq=round_) / Raw(b"tio" * 16)))
    return packets


def write_pcap(path: Path, packets: list[bytes]) -> None:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_RAW))
        for n, pkt in enumerate(packets):
            usec = n * 250  # 4000 packets/s
            out.write(struct.pack("<IIII", START + usec // 1_000_000, usec % 1_000_000, len(pkt), len(pkt)))
            out.write(pkt)


def main() -> int:
    packets = build(random.Random(20261127))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    write_pcap(OUTPUT, packets)
    big = sum(1 for p in packets if len(p) > MTU)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes, {len(packets)} packets, {big} larger than MTU {MTU})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
