"""scapy-built superpackets and an independent checker for the segments the kernels produce."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.packet import Raw

from tio_core.contract import GSOInfo, GSOProto, Packet

SRC4, DST4 = "198.18.0.1", "198.19.255.254"
SRC6, DST6 = "fd00::1", "fd00:ffff::2"


def payload_bytes(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def superpacket(
    version: int = 4,
    proto: GSOProto = GSOProto.TCP,
    payload: int = 4000,
    mss: int = 1448,
    *,
    seq: int = 1000,
    flags: str = "PA",
    ip_id: int = 77,
    tos: int = 0,
    ip_options: bytes = b"",
    tcp_options: list | None = None,
    ext_headers: int = 0,
) -> tuple[Packet, object]:
    """A superpacket (as a kernel hands it) and the scapy packet it was built from."""
    if version == 4:
        l3 = IP(src=SRC4, dst=DST4, id=ip_id, tos=tos, ttl=61, flags="DF")
        if ip_options:
            l3.options = [ip_options]
    else:
        l3 = IPv6(src=SRC6, dst=DST6, tc=tos, hlim=61, fl=0x12345)
        for i in range(ext_headers):
            l3 = l3 / (IPv6ExtHdrHopByHop() if i == 0 else IPv6ExtHdrDestOpt())
    if proto == GSOProto.TCP:
        l4 = TCP(sport=40000, dport=443, seq=seq, ack=99, flags=flags, window=5000, options=tcp_options or [])
    else:
        l4 = UDP(sport=40000, dport=4789)
    pkt = l3 / l4 / Raw(payload_bytes(payload)) if payload else l3 / l4
    data = bytes(pkt)
    parsed = (IP if version == 4 else IPv6)(data)
    l4_layer = parsed[TCP] if proto == GSOProto.TCP else parsed[UDP]
    l4_bytes = bytes(l4_layer)
    csum_start = len(data) - len(l4_bytes)
    hdr_len = csum_start + (l4_layer.dataofs * 4 if proto == GSOProto.TCP else 8)
    return Packet(memoryview(data), GSOInfo(mss, hdr_len, csum_start, proto)), pkt


def checksums_ok(seg: bytes) -> bool:
    """True when scapy, recomputing every checksum of ``seg``, gets the stored values."""
    layer = IP if seg[0] >> 4 == 4 else IPv6
    stored = layer(seg)
    fresh = layer(seg)
    fields = []
    if layer is IP:
        fields.append((stored, fresh))
    for l4 in (TCP, UDP):
        if l4 in stored:
            fields.append((stored[l4], fresh[l4]))
    for _, f in fields:
        del f.chksum
    rebuilt = layer(bytes(fresh))
    for s, _ in fields:
        want = s.chksum
        got = rebuilt[type(s)].chksum if type(s) is not layer else rebuilt.chksum
        if want != got:
            return False
    return True
