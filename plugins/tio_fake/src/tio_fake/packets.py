"""PacketFactory: TCP/UDP IPv4/IPv6 packets, flows, superpackets and broken variants for tests.

scapy builds each distinct header *template* once (it is slow, about a
thousand packets a second, and keeps stale checksums when a field changes
after a build). Packets are then made by copying the template bytes,
patching lengths, IDs and sequence numbers in place and recomputing the
checksums with tio's packet kernels, so flows of thousands of packets cost
little. Every result is plain ``bytes`` (or a tio ``Packet`` for
superpackets); ``parse()`` turns bytes back into scapy objects for checks.

Default addresses are inside 198.18.0.0/15 and fd00::/8.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from functools import lru_cache

from tio_core import kernels
from tio_core.contract import GSOInfo, GSOProto, Packet
from tio_core.wire import VirtioNetHdr, vnet_header_for

V4_SRC, V4_DST = "198.18.0.2", "198.18.0.1"
V6_SRC, V6_DST = "fd00::2", "fd00::1"
# One set of defaults for every builder (the table in plugins/tio_fake/README.md lists them; a test keeps both equal).
SPORT, DPORT = 40000, 5000
TCP_FLAGS_DEFAULT = "A"
WINDOW, TTL, TOS = 65535, 64, 0
PROTO_NUMBERS = {GSOProto.TCP: 6, GSOProto.UDP: 17}
TCP_FIN, TCP_PSH, TCP_CWR = 0x01, 0x08, 0x80

MALFORMED_KINDS = (
    "empty",  # zero bytes
    "bad_version",  # first nibble 5
    "truncated",  # a valid packet cut short: its length fields claim more
    "bad_ip_length",  # IPv4 total length / IPv6 payload length larger than the bytes
    "bad_ihl",  # IPv4 header length below 20
    "gso_wrong_proto",  # a TCP superpacket whose GSOInfo says UDP
    "gso_bad_hdr_len",  # superpacket GSOInfo.hdr_len that does not match its headers
    "gso_bad_csum_start",  # superpacket GSOInfo.csum_start not at the L4 header
)


def payload_pattern(size: int, offset: int = 0) -> bytes:
    """Deterministic stream bytes: byte i is (offset + i) % 251, so reordering shows."""
    period = bytes(range(251))
    start = offset % 251
    reps = (start + size) // 251 + 1
    return (period * reps)[start : start + size]


class PacketFactory:
    """Builds test packets; one instance per test session keeps the templates warm."""

    def __init__(self) -> None:
        self._template = lru_cache(maxsize=512)(self._build_template)

    # -- templates ------------------------------------------------------------
    def _build_template(
        self,
        proto: GSOProto,
        src: str,
        dst: str,
        sport: int,
        dport: int,
        ttl: int,
        tos: int,
        flags: str,
        window: int,
        ack: int,
        tcp_options: tuple,
    ) -> tuple[bytes, int, int]:
        """(header bytes, IP header length, L4 header length) built once by scapy."""
        from scapy.layers.inet import IP, TCP, UDP
        from scapy.layers.inet6 import IPv6
        from scapy.packet import Packet as ScapyPacket

        l4: ScapyPacket
        ip: ScapyPacket
        if proto == GSOProto.TCP:
            l4 = TCP(sport=sport, dport=dport, flags=flags, window=window, ack=ack, options=list(tcp_options))
        else:
            l4 = UDP(sport=sport, dport=dport)
        if _version(src) == 4:
            ip = IP(src=src, dst=dst, ttl=ttl, tos=tos, flags="DF")
        else:
            ip = IPv6(src=src, dst=dst, hlim=ttl, tc=tos)
        raw = bytes(ip / l4)
        ip_len = len(bytes(ip))  # no options or extension headers in templates
        return raw, ip_len, len(raw) - ip_len

    def _headers(self, proto, src, dst, sport, dport, ttl, tos, flags, window, ack, tcp_options, version):
        src, dst = _addresses(src, dst, version)
        flags = _flag_text(flags)
        return self._template(GSOProto(proto), src, dst, sport, dport, ttl, tos, flags, window, ack, tuple(tcp_options))

    @staticmethod
    def payload(size: int, offset: int = 0) -> bytes:
        """payload_pattern(size, offset): stream bytes in which reordering or loss shows."""
        return payload_pattern(size, offset)

    # -- single packets -----------------------------------------------------------
    def tcp(
        self,
        payload: bytes = b"",
        *,
        src: str | None = None,
        dst: str | None = None,
        version: int | None = None,
        sport: int = SPORT,
        dport: int = DPORT,
        seq: int = 1,
        ack: int = 0,
        flags: str | int = TCP_FLAGS_DEFAULT,
        window: int = WINDOW,
        ttl: int = TTL,
        tos: int = TOS,
        ip_id: int = 1,
        tcp_options: Sequence = (),
    ) -> bytes:
        """One fully checksummed TCP packet (IPv4 unless ``version=6`` or IPv6 addresses)."""
        hdr, ip_len, l4_len = self._headers(
            GSOProto.TCP, src, dst, sport, dport, ttl, tos, flags, window, ack, tcp_options, version
        )
        return _finish(hdr, ip_len, l4_len, payload, GSOProto.TCP, ip_id, seq)

    def udp(
        self,
        payload: bytes = b"",
        *,
        src: str | None = None,
        dst: str | None = None,
        version: int | None = None,
        sport: int = SPORT,
        dport: int = DPORT,
        ttl: int = TTL,
        tos: int = TOS,
        ip_id: int = 1,
    ) -> bytes:
        """One fully checksummed UDP packet."""
        hdr, ip_len, l4_len = self._headers(GSOProto.UDP, src, dst, sport, dport, ttl, tos, "", 0, 0, (), version)
        return _finish(hdr, ip_len, l4_len, payload, GSOProto.UDP, ip_id, 0)

    # -- flows --------------------------------------------------------------------
    def tcp_flow(
        self,
        count: int,
        size: int = 1000,
        *,
        payload: bytes | None = None,
        seq: int = 1,
        ip_id: int = 1,
        flags: str | int = TCP_FLAGS_DEFAULT,
        last_flags: str | int | None = None,
        **fields,
    ) -> list[bytes]:
        """``count`` consecutive TCP segments of ``size`` payload bytes (seq and IPv4 ID advance).

        ``payload`` (default: payload_pattern) is cut into the segments, the
        last one possibly shorter; ``last_flags`` replaces the flags of the
        last segment (e.g. "FPA").
        """
        chunks = _chunks(count, size, payload)
        out = []
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            seg_flags = last_flags if last and last_flags is not None else flags
            out.append(self.tcp(chunk, seq=seq & 0xFFFFFFFF, ip_id=(ip_id + index) & 0xFFFF, flags=seg_flags, **fields))
            seq += len(chunk)
        return out

    def udp_flow(
        self, count: int, size: int = 1000, *, payload: bytes | None = None, ip_id: int = 1, **fields
    ) -> list[bytes]:
        """``count`` UDP datagrams of one flow carrying consecutive pieces of ``payload``."""
        return [
            self.udp(chunk, ip_id=(ip_id + i) & 0xFFFF, **fields)
            for i, chunk in enumerate(_chunks(count, size, payload))
        ]

    # -- superpackets ---------------------------------------------------------------
    def tso(self, payload: bytes | int, mss: int = 1000, **fields) -> Packet:
        """A TCP superpacket as a TSO-enabled TUN hands it to a reader; ``fields`` are those of tcp().

        With the same arguments its segments are exactly ``tcp_flow``'s packets
        (both default to flags "A"); ``tso(..., flags="PA")`` segments into
        ``tcp_flow(..., last_flags="PA")``, since the kernel keeps PSH for the last segment.

        Length fields cover the whole packet, the IPv4 header checksum is
        valid and the TCP checksum field holds the pseudo-header partial
        (virtio NEEDS_CSUM); GSOInfo says how to cut it. ``payload`` may be
        bytes or a size (payload_pattern bytes); it must need two or more
        segments of ``mss``.
        """
        data = _payload(payload)
        _check_superpacket_size(len(data), mss)
        return _superpacket(self.tcp(data, **fields), len(data), mss, GSOProto.TCP)

    def uso(self, payload: bytes | int, size: int = 1000, **fields) -> Packet:
        """A UDP (USO) superpacket: one datagram header, ``payload`` cut in ``size`` chunks on segmentation.

        ``fields`` are those of udp().
        """
        data = _payload(payload)
        _check_superpacket_size(len(data), size)
        return _superpacket(self.udp(data, **fields), len(data), size, GSOProto.UDP)

    def gso_write_args(self, payload: bytes | int, size: int = 1000, proto: GSOProto = GSOProto.TCP, **fields):
        """(ip_hdr, transport_hdr, payloads, proto) for ``queue.write_gso(*args)``, as a coalescer fills them.

        ``fields`` are those of tcp()/udp(). Length fields cover all of
        ``payload`` and the L4 checksum holds the pseudo-header partial; a
        payload of at most ``size`` bytes gives the one-fragment form.
        """
        data = _payload(payload)
        if not data or size < 1:
            raise ValueError(f"write_gso arguments need payload bytes and size >= 1, got {len(data)} and {size}")
        if proto == GSOProto.TCP:
            packet = _superpacket(self.tcp(data, **fields), len(data), size, GSOProto.TCP)
        elif proto == GSOProto.UDP:
            packet = _superpacket(self.udp(data, **fields), len(data), size, GSOProto.UDP)
        else:
            raise ValueError(f"proto must be GSOProto.TCP or GSOProto.UDP, got {proto!r}")
        ip_len, hdr_len = packet.gso.csum_start, packet.gso.hdr_len
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        return bytes(packet.data[:ip_len]), bytes(packet.data[ip_len:hdr_len]), pieces, GSOProto(proto)

    @staticmethod
    def vnet_header(packet: Packet) -> VirtioNetHdr:
        """The virtio_net_hdr a kernel puts before ``packet`` (a superpacket or a plain one)."""
        return vnet_header_for(packet.gso, packet.data[0] >> 4)

    # -- broken input -----------------------------------------------------------------
    def malformed(self, kind: str, *, version: int = 4) -> bytes | Packet:
        """A packet that is wrong in one documented way (see MALFORMED_KINDS).

        Plain kinds return bytes, ``gso_*`` kinds a Packet. Injecting any of
        them into a fake queue raises tio_core.errors.MalformedPacket.
        """
        good = self.udp(payload_pattern(100), version=version)
        if kind == "empty":
            return b""
        if kind == "bad_version":
            return bytes([0x50 | (good[0] & 0x0F)]) + good[1:]
        if kind == "truncated":
            return good[:-10]
        if kind == "bad_ip_length":
            field = slice(2, 4) if version == 4 else slice(4, 6)
            claimed = int.from_bytes(good[field], "big") + 20
            return good[: field.start] + claimed.to_bytes(2, "big") + good[field.stop :]
        if kind == "bad_ihl":
            if version != 4:
                raise ValueError("bad_ihl exists only for IPv4")
            return bytes([0x44]) + good[1:]
        if kind.startswith("gso_"):
            sp = self.tso(3000, 1000, version=version)
            gso = sp.gso
            if kind == "gso_wrong_proto":
                return Packet(sp.data, gso._replace(proto=GSOProto.UDP))
            if kind == "gso_bad_hdr_len":
                return Packet(sp.data, gso._replace(hdr_len=gso.hdr_len + 4))
            if kind == "gso_bad_csum_start":
                return Packet(sp.data, gso._replace(csum_start=gso.csum_start + 2))
        raise ValueError(f"unknown malformed kind {kind!r}; choose one of {', '.join(MALFORMED_KINDS)}")

    # -- checking ---------------------------------------------------------------------
    @staticmethod
    def parse(data: bytes | bytearray | memoryview):
        """scapy IP or IPv6 object for ``data``."""
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6

        raw = bytes(data)
        return IP(raw) if raw and raw[0] >> 4 == 4 else IPv6(raw)

    @classmethod
    def checksums_valid(cls, data: bytes | bytearray | memoryview) -> bool:
        """True when scapy, rebuilding the packet with fresh checksums, gets the same bytes."""
        from scapy.layers.inet import IP, TCP, UDP

        pkt = cls.parse(data)
        for layer in (IP, TCP, UDP):
            if pkt.haslayer(layer):
                del pkt[layer].chksum
        return bytes(pkt) == bytes(data)


# -- byte-level helpers ------------------------------------------------------------------
def _version(address: str) -> int:
    return ipaddress.ip_address(address).version


def _addresses(src: str | None, dst: str | None, version: int | None) -> tuple[str, str]:
    if version is None:
        given = src or dst
        version = _version(given) if given else 4
    if version not in (4, 6):
        raise ValueError(f"IP version must be 4 or 6, got {version}")
    default_src, default_dst = (V4_SRC, V4_DST) if version == 4 else (V6_SRC, V6_DST)
    src, dst = src or default_src, dst or default_dst
    if _version(src) != version or _version(dst) != version:
        raise ValueError(f"addresses {src} and {dst} are not both IPv{version}")
    return src, dst


def _flag_text(flags: str | int) -> str:
    if isinstance(flags, int):
        from scapy.layers.inet import TCP

        return str(TCP(flags=flags).flags)
    return flags


def _payload(payload: bytes | int) -> bytes:
    return payload_pattern(payload) if isinstance(payload, int) else bytes(payload)


def _chunks(count: int, size: int, payload: bytes | None) -> list[bytes]:
    if count < 1 or size < 1:
        raise ValueError(f"a flow needs count >= 1 and size >= 1, got count={count} size={size}")
    data = payload_pattern(count * size) if payload is None else bytes(payload)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    if len(chunks) != count:
        raise ValueError(f"{len(data)} payload bytes in {size}-byte segments make {len(chunks)}, not {count}")
    return chunks


def _check_superpacket_size(total: int, size: int) -> None:
    if size < 1 or total <= size:
        raise ValueError(f"a superpacket needs more than one segment: {total} payload bytes with size {size}")


def _finish(template: bytes, ip_len: int, l4_len: int, payload: bytes, proto: GSOProto, ip_id: int, seq: int) -> bytes:
    """Template + payload with lengths, ID, seq and checksums patched in."""
    packet = bytearray(template)
    packet += payload
    l4_total = l4_len + len(payload)
    if ip_len + l4_total > 65535:
        raise ValueError(f"packet would be {ip_len + l4_total} bytes, an IP packet is at most 65535")
    if packet[0] >> 4 == 4:
        struct.pack_into("!HH", packet, 2, ip_len + l4_total, ip_id & 0xFFFF)
        packet[10:12] = b"\0\0"
        struct.pack_into("!H", packet, 10, kernels.ipv4_header_checksum(packet[:ip_len]))
    else:
        struct.pack_into("!H", packet, 4, l4_total)
    if proto == GSOProto.TCP:
        struct.pack_into("!I", packet, ip_len + 4, seq & 0xFFFFFFFF)
    else:
        struct.pack_into("!H", packet, ip_len + 4, l4_total)  # UDP length
    _store_l4_checksum(packet, ip_len, proto, partial=False)
    return bytes(packet)


def _superpacket(packet: bytes, payload_len: int, size: int, proto: GSOProto) -> Packet:
    """``packet`` as an offloading TUN hands it out: the L4 checksum holds the pseudo-header partial."""
    raw = bytearray(packet)
    ip_len = 20 if raw[0] >> 4 == 4 else 40  # templates carry no IP options or extension headers
    _store_l4_checksum(raw, ip_len, proto, partial=True)
    return Packet(memoryview(bytes(raw)), GSOInfo(size, len(raw) - payload_len, ip_len, proto))


def _store_l4_checksum(packet: bytearray, ip_len: int, proto: GSOProto, partial: bool) -> None:
    """Write the full L4 checksum, or with partial=True the folded, not inverted, pseudo-header sum."""
    if packet[0] >> 4 == 4:
        src, dst = bytes(packet[12:16]), bytes(packet[16:20])
    else:
        src, dst = bytes(packet[8:24]), bytes(packet[24:40])
    csum_at = ip_len + (16 if proto == GSOProto.TCP else 6)
    packet[csum_at : csum_at + 2] = b"\0\0"
    pseudo = kernels.pseudo_header_sum(src, dst, PROTO_NUMBERS[proto], len(packet) - ip_len)
    if partial:
        value = pseudo
    else:
        value = 0xFFFF - kernels.checksum(memoryview(packet)[ip_len:], pseudo)
        if value == 0 and proto == GSOProto.UDP:
            value = 0xFFFF  # 0 means "no checksum" in UDP
    struct.pack_into("!H", packet, csum_at, value)


__all__ = ["MALFORMED_KINDS", "PacketFactory", "payload_pattern"]
