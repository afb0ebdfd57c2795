"""Bounded fuzzing of the C packet kernels against their pure twins (driven by test_fuzz.py).

Usage: python -m tests.kernels.fuzz_kernels [--extension PATH] [--seconds S] [--seed N]

With --extension, that build (an AddressSanitizer one, say) is loaded as
tio_core._ckernels before anything imports the real one. Every target then
runs for S seconds on random and mutated input from its own seeded
generator and checks:

* C and pure give the same result, or the same exception type and message;
* segments are valid: lengths, IPv4 ID, TCP sequence and flags, checksums,
  and every other header byte as in the superpacket;
* resegmentation is exact: the payloads join back into the superpacket's,
  gso_info_from_vnet never accepts what segment() refuses, the coalescer's
  writes resegment into exactly the packets it was given;
* nothing crashes (under ASan: nothing touches memory out of bounds).

Prints "TARGET ITERATIONS" per target. A finding raises AssertionError
naming the target, seed, iteration and input, so it can be replayed.
"""

from __future__ import annotations

import argparse
import array
import importlib.util
import random
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable

from tests.support.checksum import fold, words

EXPECTED_ERRORS = (ValueError, TypeError, BufferError)  # MalformedPacket is a ValueError


def load_extension(path: str) -> None:
    """Load the build at ``path`` as tio_core._ckernels (before tio_core.kernels picks one)."""
    import tio_core

    spec = importlib.util.spec_from_file_location("tio_core._ckernels", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["tio_core._ckernels"] = module
    spec.loader.exec_module(module)
    tio_core._ckernels = module


# -- inputs -------------------------------------------------------------------------------
SRC4, DST4 = bytes([198, 18, 0, 1]), bytes([198, 19, 0, 2])
SRC6, DST6 = bytes.fromhex("fd00" + "0" * 27 + "1"), bytes.fromhex("fd00" + "0" * 27 + "2")


def random_superpacket(rng: random.Random) -> tuple[bytes, tuple[int, int, int, int]]:
    """A valid superpacket (L4 checksum field: the pseudo-header partial) and its (size, hdr_len, cs, proto)."""
    v4, tcp = rng.random() < 0.5, rng.random() < 0.6
    proto = 6 if tcp else 17
    payload_len = rng.choice([0, 1, rng.randint(2, 3000), rng.randint(3000, 9000), rng.randint(9000, 65000)])
    if tcp:
        options = bytes(4 * rng.randint(0, 10))
        flags = rng.choice([0x10, 0x18, 0x11, 0x19, 0x90, 0x50, 0x12, 0x14, 0x30, rng.randrange(256)])
        l4 = struct.pack("!HHIIBBHHH", 40000, 443, rng.getrandbits(32), 5, (5 + len(options) // 4) << 4, flags, 9, 0, 0)
        l4 += options
    else:
        l4 = struct.pack("!HHHH", 40000, 4789, (8 + payload_len) & 0xFFFF, 0)
    if v4:
        options = bytes(4 * rng.randint(0, 10))
        ip = bytearray(
            struct.pack(
                "!BBHHHBBH4s4s",
                0x45 + len(options) // 4,
                rng.randrange(256),
                0,
                rng.getrandbits(16),
                rng.choice([0, 0x4000]),
                64,
                proto,
                0,
                SRC4,
                DST4,
            )
        )
        ip += options
    else:
        kinds = rng.choices([0, 43, 60], k=rng.choice([0, 0, 1, 2, 3]))
        chain = [*kinds, proto]
        ext = b"".join(
            bytes([chain[i + 1], units]) + bytes(units * 8 + 6)
            for i, units in ((i, rng.randint(0, 4)) for i in range(len(kinds)))
        )
        ip = bytearray(struct.pack("!IHBB16s16s", 6 << 28 | rng.getrandbits(20), 0, chain[0], 64, SRC6, DST6)) + ext
    payload = rng.randbytes(min(payload_len, 65535 - len(ip) - len(l4)))
    l4_len = len(l4) + len(payload)
    if v4:
        ip[2:4] = (len(ip) + l4_len).to_bytes(2, "big")
    else:
        ip[4:6] = (len(ip) - 40 + l4_len).to_bytes(2, "big")
    src, dst = (SRC4, DST4) if v4 else (SRC6, DST6)
    partial = fold(words(src + dst) + proto + l4_len)
    field = 16 if tcp else 6
    l4 = l4[:field] + partial.to_bytes(2, "big") + l4[field + 2 :]
    # mostly real MSS values; rarely hostile ones (tiny, or above the payload)
    size = rng.choice([rng.randint(1, 100), rng.randint(100, 1500), 1448, 536, rng.randint(1500, 65535)])
    size = max(size, -(-payload_len // 600)) if rng.random() < 0.95 else size  # keep the pure twin quick
    return bytes(ip) + l4 + payload, (size, len(ip) + len(l4), len(ip), 1 if tcp else 2)


def mutated(rng: random.Random) -> tuple[bytes, object]:
    """A superpacket, perhaps with flipped bytes, cut short, extended or its GSOInfo bent."""
    data, gso = random_superpacket(rng)
    data = bytearray(data)
    if rng.random() < 0.4:
        for _ in range(rng.randint(1, 8)):
            if data:
                position = rng.randrange(min(len(data), 200)) if rng.random() < 0.8 else rng.randrange(len(data))
                data[position] = rng.randrange(256)
    if rng.random() < 0.15:
        data = data[: rng.randint(0, len(data))]
    if rng.random() < 0.05:
        data += rng.randbytes(rng.randint(1, 100))
    if rng.random() < 0.05:
        data = bytearray(rng.randbytes(rng.randint(0, 120)))
    if rng.random() < 0.3:
        size, hdr_len, cs, proto = gso
        gso = (
            rng.choice([size, size, -1, 0, 1, 65535, 65536, rng.randint(1, 3000)]),
            rng.choice([hdr_len, hdr_len, hdr_len + 4, hdr_len - 4, 0, 70000]),
            rng.choice([cs, cs, cs + 8, cs - 8, 0, 40, 65535]),
            rng.choice([proto, proto, 1, 2, 0, 9]),
        )
    return bytes(data), gso


def exact(rng: random.Random, data: bytes) -> bytes | memoryview:
    """data as bytes, or (half the time) in a buffer that ends exactly where the data ends.

    bytes and bytearray keep a spare byte after their data, so reading one
    past the end would go unnoticed even under ASan; an array's buffer is
    allocated to the byte (with PYTHONMALLOC=malloc, ASan guards its end).
    """
    return memoryview(tight(data)) if rng.random() < 0.5 else data


def tight(data: bytes) -> array.array:
    """An array holding data in an allocation of exactly len(data) bytes (repetition allocates to size)."""
    buffer = array.array("B", b"\0") * len(data)
    buffer[:] = array.array("B", data)  # same length: copied in place, no reallocation
    return buffer


# -- targets ------------------------------------------------------------------------------
class Fuzz:
    """The targets, each taking a seeded Random and checking one input."""

    def __init__(self) -> None:
        from tio_core.coalesce import _pycoalesce
        from tio_core.contract import GSOInfo, GSOProto, Packet
        from tio_core.kernels import _pykernels
        from tio_core.kernels.gso_write import assemble_superpacket, plan_gso_write, py_plan_gso_write
        from tio_core.kernels.native import built_extension
        from tio_core.wire import VirtioNetHdr

        self.c, self.pure, self.pycoalesce = built_extension(), _pykernels, _pycoalesce
        assert self.c is not None, "the C kernels are not built"
        self.GSOInfo, self.GSOProto, self.Packet, self.VirtioNetHdr = GSOInfo, GSOProto, Packet, VirtioNetHdr
        self.assemble, self.plan_gso_write, self.py_plan_gso_write = (
            assemble_superpacket,
            plan_gso_write,
            py_plan_gso_write,
        )
        self.targets: dict[str, Callable[[random.Random], None]] = {
            "checksum": self.checksum,
            "pseudo_header_sum": self.pseudo_header_sum,
            "ipv4_header_checksum": self.ipv4_header_checksum,
            "finish_checksum": self.finish_checksum,
            "gso_info_from_vnet": self.gso_info_from_vnet,
            "segmented_size": self.segmented_size,
            "segment": self.segment,
            "segment_into": self.segment_into,
            "coalesce_plan": self.coalesce_plan,
            "plan_gso_write": self.plan_gso_write_target,
        }

    @staticmethod
    def outcome(fn, *args):
        try:
            result = fn(*args)
        except EXPECTED_ERRORS as exc:
            return ("raised", type(exc), str(exc))
        return ("ok", [bytes(s) for s in result] if isinstance(result, list) else result)

    def agree(self, name, *args):
        got_c = self.outcome(getattr(self.c, name), *args)
        got_pure = self.outcome(getattr(self.pure, name), *args)
        assert got_c == got_pure, f"C and pure {name} differ: {got_c!r:.300} vs {got_pure!r:.300}"
        return got_c

    def packet(self, rng):
        data, gso = mutated(rng)
        if rng.random() < 0.7 and len(gso) == 4 and gso[3] in (1, 2):
            gso = self.GSOInfo(gso[0], gso[1], gso[2], self.GSOProto(gso[3]))
        return self.Packet(memoryview(exact(rng, data)), gso)

    # checksums
    def checksum(self, rng):
        data = rng.randbytes(rng.choice([rng.randint(0, 64), rng.randint(0, 3000), rng.randint(60000, 70000)]))
        seed = rng.choice([0, rng.getrandbits(16), rng.getrandbits(32), 0xFFFFFFFF, -1, 1 << 32])
        result = self.agree("checksum", exact(rng, data), seed)
        if result[0] == "ok":
            complement = (~result[1] & 0xFFFF).to_bytes(2, "big")
            padded = data + b"\0" * (len(data) & 1)
            assert self.c.checksum(padded + complement, seed) == 0xFFFF, "a sum plus its complement is 0xFFFF"

    def pseudo_header_sum(self, rng):
        size = rng.choice([4, 16, 4, 16, rng.randint(0, 20)])
        other = size if rng.random() < 0.9 else rng.randint(0, 20)
        proto = rng.choice([6, 17, rng.randint(-5, 300)])
        length = rng.choice([rng.randint(0, 0xFFFF), rng.randint(0, 1 << 33), -1])
        self.agree(
            "pseudo_header_sum", exact(rng, rng.randbytes(size)), exact(rng, rng.randbytes(other)), proto, length
        )

    def ipv4_header_checksum(self, rng):
        data, _ = mutated(rng)
        result = self.agree("ipv4_header_checksum", exact(rng, data))
        if result[0] == "ok":
            ihl = (data[0] & 0x0F) * 4
            header = data[:10] + result[1].to_bytes(2, "big") + data[12:ihl]
            assert self.c.checksum(header) == 0xFFFF, "the header checksum makes the header sum to 0xFFFF"

    def vnet_header(self, rng, data, gso):
        size, hdr_len, cs, proto = gso
        v4 = bool(data) and data[0] >> 4 == 4
        gso_type = 5 if proto == 2 else (1 if v4 else 4)
        fields = [1, gso_type, hdr_len & 0xFFFF, max(0, min(size, 0xFFFF)), cs & 0xFFFF, 16 if proto == 1 else 6]
        for _ in range(rng.choice([0, 0, 1, 2])):
            index = rng.randrange(6)
            fields[index] = rng.choice([0, 1, 3, 0x80, 0x85, 0xFF, rng.randint(0, 0xFFFF), -1, 0x10000])
        if rng.random() < 0.2:
            fields[1] = 0  # GSO_NONE with a checksum to finish
        return self.VirtioNetHdr(*fields)

    def finish_checksum(self, rng):
        data, gso = mutated(rng)
        hdr = self.vnet_header(rng, data, gso)
        kind = bytearray if rng.random() < 0.5 else tight
        buf_c, buf_pure = kind(data), kind(data)
        got_c, got_pure = (
            self.outcome(self.c.finish_checksum, buf_c, hdr),
            self.outcome(self.pure.finish_checksum, buf_pure, hdr),
        )
        assert got_c == got_pure and bytes(buf_c) == bytes(buf_pure), f"C and pure finish_checksum differ: {got_c!r}"
        if got_c[0] == "ok" and hdr.flags & 1:
            field = hdr.csum_start + hdr.csum_offset
            partial = int.from_bytes(data[field : field + 2], "big")
            rest = bytes(buf_c[hdr.csum_start : field]) + b"\0\0" + bytes(buf_c[field + 2 :])
            stored = int.from_bytes(buf_c[field : field + 2], "big")
            assert fold(words(rest) + partial + stored) == 0xFFFF, "a finished checksum verifies"

    def gso_info_from_vnet(self, rng):
        data, gso = mutated(rng)
        hdr = self.vnet_header(rng, data, gso)
        result = self.agree("gso_info_from_vnet", hdr, exact(rng, data))
        if result[0] == "ok" and result[1].size > 0:
            # validation agrees with segmentation: what a read hands out can be segmented
            segments = self.c.segment(self.Packet(memoryview(data), result[1]))
            self.check_segments(data, result[1], segments)

    # segmentation
    def segmented_size(self, rng):
        packet = self.packet(rng)
        result = self.agree("segmented_size", packet)
        if result[0] == "ok":
            assert result[1] == sum(map(len, self.c.segment(packet))), "segmented_size is what segment() fills"

    def segment(self, rng):
        packet = self.packet(rng)
        result = self.agree("segment", packet)
        if result[0] == "ok" and len(packet.gso) == 4 and packet.gso[0] > 0:
            self.check_segments(bytes(packet.data), packet.gso, result[1])

    def segment_into(self, rng):
        packet = self.packet(rng)
        start = rng.choice([0, 7, 100, 70000])
        out_c, out_pure = bytearray(start), bytearray(start)
        got_c, got_pure = (
            self.outcome(self.c.segment_into, packet, out_c),
            self.outcome(self.pure.segment_into, packet, out_pure),
        )
        assert got_c == got_pure, f"C and pure segment_into differ: {got_c!r:.300} vs {got_pure!r:.300}"
        if got_c[0] == "ok" and len(packet.gso) == 4 and packet.gso[0] > 0:
            assert got_c[1] == [bytes(s) for s in self.c.segment(packet)], "segment_into == segment"
            total = sum(map(len, got_c[1]))
            assert out_c[:total] == b"".join(got_c[1]) == out_pure[:total], "segments lie back to back in out"

    def check_segments(self, data: bytes, gso, segments) -> None:
        """Segments against the spec, with the pure checksums as the reference."""
        size, hdr_len, cs, proto = gso
        tcp, v4 = proto == 1, data[0] >> 4 == 4
        payload = data[hdr_len:]
        count = max(1, -(-len(payload) // size))
        assert len(segments) == count, "one segment per gso size of payload"
        assert b"".join(bytes(s[hdr_len:]) for s in segments) == payload, "resegmentation is exact"
        first_id = int.from_bytes(data[4:6], "big")
        first_seq = int.from_bytes(data[cs + 4 : cs + 8], "big") if tcp else 0
        field = cs + (16 if tcp else 6)
        src, dst = (data[12:16], data[16:20]) if v4 else (data[8:24], data[24:40])
        for i, seg in enumerate(segments):
            seg = bytes(seg)
            assert len(seg) - hdr_len == min(size, len(payload) - i * size) or (not payload and len(seg) == hdr_len)
            want = bytearray(data[:hdr_len])
            if v4:
                want[2:4] = len(seg).to_bytes(2, "big")
                want[4:6] = ((first_id + i) & 0xFFFF).to_bytes(2, "big")
                want[10:12] = seg[10:12]
                assert self.pure.checksum(seg[:cs]) == 0xFFFF, "the IPv4 header checksum holds"
            else:
                want[4:6] = (len(seg) - 40).to_bytes(2, "big")
            if tcp:
                want[cs + 4 : cs + 8] = ((first_seq + i * size) & 0xFFFFFFFF).to_bytes(4, "big")
                if i != count - 1:
                    want[cs + 13] &= ~0x09 & 0xFF  # FIN and PSH only on the last segment
                if i != 0:
                    want[cs + 13] &= ~0x80 & 0xFF  # CWR only on the first
            else:
                want[cs + 4 : cs + 6] = (len(seg) - cs).to_bytes(2, "big")
            want[field : field + 2] = seg[field : field + 2]
            assert seg[:hdr_len] == bytes(want), f"segment {i}: header bytes other than its own fields are copied"
            pseudo = self.pure.pseudo_header_sum(src, dst, 6 if tcp else 17, len(seg) - cs)
            assert self.pure.checksum(seg[cs:], pseudo) == 0xFFFF, f"segment {i}: the L4 checksum holds"
            assert tcp or seg[field : field + 2] != b"\0\0", "a UDP checksum is never sent as 0"

    # coalescing
    def coalesce_plan(self, rng):
        from tio_core.contract import GSOProto

        wire = []
        for _ in range(rng.randint(1, 4)):
            data, gso = random_superpacket(rng)
            size = max(gso[0], -(-(len(data) - gso[1]) // 64))
            segments = self.c.segment(
                self.Packet(memoryview(data), self.GSOInfo(size, gso[1], gso[2], GSOProto(gso[3])))
            )
            wire.extend(bytes(s) for s in segments[: rng.randint(1, 80)])
        if rng.random() < 0.3:
            rng.shuffle(wire)
        mutate = rng.random() < 0.3
        if mutate:
            for _ in range(rng.randint(1, 6)):
                index = rng.randrange(len(wire))
                packet = bytearray(wire[index])
                if packet:
                    packet[rng.randrange(min(len(packet), 80))] = rng.randrange(256)
                wire[index] = bytes(packet[: rng.randint(0, len(packet))] if rng.random() < 0.2 else packet)
        tcp, udp, verify = rng.random() < 0.8, rng.random() < 0.8, rng.random() < 0.9
        protos = (GSOProto.TCP, GSOProto.UDP)
        batch = [exact(rng, packet) for packet in wire]
        c_plan = self.c.coalesce_plan(list(batch), tcp, udp, verify, protos)
        pure_plan = self.pycoalesce.plan(list(batch), tcp, udp, verify, protos)
        flat = [
            item if type(item) is not tuple else (bytes(item[0]), bytes(item[1]), [bytes(p) for p in item[2]], item[3])
            for item in c_plan
        ]
        assert flat == [
            item if type(item) is not tuple else (bytes(item[0]), bytes(item[1]), [bytes(p) for p in item[2]], item[3])
            for item in pure_plan
        ], "C and pure coalescing plans differ"
        resegmented = []
        for item in c_plan:
            if type(item) is not tuple:
                resegmented.append(bytes(item))
                continue
            self.plan_gso_write(*item)  # every run is a write_gso every backend takes
            resegmented.extend(bytes(s) for s in self.c.segment(self.assemble(*item)))
        if verify and not mutate:
            assert Counter(map(_normalize_df_id, resegmented)) == Counter(map(_normalize_df_id, wire)), (
                "the coalescer's writes resegment into exactly its input"
            )

    # write_gso geometry
    def plan_gso_write_target(self, rng):
        """A superpacket cut into write_gso pieces (headers in tight buffers), often bent: C and pure agree."""
        data, gso = mutated(rng)
        size, hdr_len, cs = (max(0, min(value, len(data))) for value in gso[:3])
        ip_hdr, l4_hdr, payload = data[:cs], data[cs:hdr_len], data[hdr_len:]
        step = size if size > 0 else rng.randint(1, 2000)
        sizes = [len(payload[i : i + step]) for i in range(0, len(payload), step)]
        if rng.random() < 0.3 and sizes:  # bend the fragment sizes
            sizes[rng.randrange(len(sizes))] = rng.choice([0, 1, step - 1, step + 1, rng.randint(0, 3000)])
        if rng.random() < 0.1:
            sizes = [rng.randint(1, 9)] * rng.choice([127, 128, 129, 249, 250, 251, 300])
        payloads = [memoryview(tight(bytes(n))) if rng.random() < 0.2 else bytes(n) for n in sizes]  # only sizes count
        proto = self.GSOProto.TCP if gso[3] == 1 else self.GSOProto.UDP
        if rng.random() < 0.1:
            proto = rng.choice([self.GSOProto.TCP, self.GSOProto.UDP, self.GSOProto.NONE])
        args = (exact(rng, ip_hdr), exact(rng, l4_hdr), payloads, proto)
        got_c, got_pure = self.outcome(self.c.plan_gso_write, *args), self.outcome(self.py_plan_gso_write, *args)
        assert got_c == got_pure, f"C and pure plan_gso_write differ: {got_c!r:.300} vs {got_pure!r:.300}"


def _normalize_df_id(pkt: bytes) -> bytes:
    """IPv4 with DF: the ID (and so the header checksum) carries no meaning and may be re-stamped."""
    if len(pkt) >= 20 and pkt[0] >> 4 == 4 and pkt[6] & 0x40:
        return pkt[:4] + b"\0\0" + pkt[6:10] + b"\0\0" + pkt[12:]
    return pkt


def run(seconds: float, seed: int) -> dict[str, int]:
    fuzz = Fuzz()
    iterations = {}
    for name, target in fuzz.targets.items():
        rng = random.Random(f"{seed}:{name}")
        deadline = time.monotonic() + seconds
        count = 0
        while count == 0 or time.monotonic() < deadline:
            state = rng.getstate()
            try:
                target(rng)
            except Exception as exc:
                rng.setstate(state)
                raise AssertionError(
                    f"fuzz finding in {name}, seed {seed}, iteration {count}: {exc!r}\n"
                    f"replay: the input after {count} from random.Random({f'{seed}:{name}'!r})"
                ) from exc
            count += 1
        iterations[name] = count
    return iterations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extension", help="a build of tio_core._ckernels to load instead of the installed one")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per target")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--expect-asan", action="store_true", help="fail unless the ASan runtime is loaded")
    args = parser.parse_args(argv)
    if args.expect_asan:
        import ctypes

        assert hasattr(ctypes.CDLL(None), "__asan_report_load1"), "the AddressSanitizer runtime is not loaded"
    if args.extension:
        load_extension(args.extension)
    for name, count in run(args.seconds, args.seed).items():
        print(name, count, flush=True)


if __name__ == "__main__":
    main()
