"""Fuzz driver run by test_sanitizers.py inside an AddressSanitizer process.

Usage: python fuzz_c_kernels.py PATH_TO_SANITIZED_EXTENSION ITERATIONS
Loads the sanitized build as tio_core._ckernels and throws valid, mutated and
garbage inputs at every C kernel, comparing successes with the pure twins.
Any out-of-bounds access aborts the process with an ASan report.
"""

import ctypes
import importlib.util
import random
import sys

import tio_core

spec = importlib.util.spec_from_file_location("tio_core._ckernels", sys.argv[1])
c = importlib.util.module_from_spec(spec)
sys.modules["tio_core._ckernels"] = c
spec.loader.exec_module(c)
tio_core._ckernels = c

from tio_core.bench.kernels import tcpv4_superpacket, udpv6_superpacket  # noqa: E402
from tio_core.contract import GSOInfo, GSOProto, Packet  # noqa: E402
from tio_core.errors import MalformedPacket  # noqa: E402
from tio_core.kernels import _pykernels as pure  # noqa: E402
from tio_core.wire import VirtioNetHdr  # noqa: E402

assert hasattr(ctypes.CDLL(None), "__asan_report_load1"), "ASan runtime not loaded"

EXPECTED = (MalformedPacket, ValueError, TypeError, BufferError)
rng = random.Random(20261127)
bases = [tcpv4_superpacket(n, mss) for n, mss in ((100, 1), (300, 7), (1500, 100), (9000, 1448), (9000, 700))]
bases += [udpv6_superpacket(n, mss) for n, mss in ((100, 1), (300, 7), (1500, 100), (9000, 1448), (9000, 700))]
iterations = int(sys.argv[2])
for step in range(iterations):
    base = rng.choice(bases)
    data = bytearray(base.data)
    for _ in range(rng.randint(0, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.5:
        data = data[: rng.randint(0, len(data))]
    if rng.random() < 0.1:
        data = bytearray(rng.randbytes(rng.randint(0, 120)))
    gso = base.gso
    if rng.random() < 0.5:
        gso = GSOInfo(
            rng.choice([gso.size, rng.randint(-2, 70000)]),
            rng.choice([gso.hdr_len, rng.randint(0, 70)]),
            rng.choice([gso.csum_start, rng.randint(0, 70)]),
            rng.choice([GSOProto.TCP, GSOProto.UDP, 0, 9]),
        )
    packet = Packet(memoryview(bytes(data)), gso)
    hdr = VirtioNetHdr(
        rng.randrange(8),
        rng.choice([0, 1, 3, 4, 5, 0x81, rng.randrange(256)]),
        rng.randrange(300),
        rng.randrange(3000),
        rng.randrange(120),
        rng.choice([6, 16, rng.randrange(200)]),
    )
    for name, call in (
        ("segment", lambda: c.segment(packet)),
        ("segment_into", lambda: c.segment_into(packet, bytearray(rng.randrange(50)))),
        ("segmented_size", lambda: c.segmented_size(packet)),
        ("gso_info_from_vnet", lambda: c.gso_info_from_vnet(hdr, data)),
        ("finish_checksum", lambda: c.finish_checksum(bytearray(data), hdr)),
        ("ipv4_header_checksum", lambda: c.ipv4_header_checksum(data)),
        ("checksum", lambda: c.checksum(data, rng.randrange(1 << 32))),
    ):
        try:
            result = call()
        except EXPECTED:
            continue
        if name == "segment":
            assert [bytes(s) for s in result] == [bytes(s) for s in pure.segment(packet)], step
print("fuzzed", iterations)
