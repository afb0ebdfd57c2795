"""The asyncio benchmark (tio_linux.aio_bench): its packet, and a quick real run through `tio bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import IP, UDP

from tio_linux import aio_bench
from tio_linux.netns import namespaces_of

TIO = str(Path(sys.executable).with_name("tio"))


def test_the_benchmark_packet_is_a_valid_udp_datagram_to_a_non_local_address():
    packet = IP(aio_bench.PACKET)
    checked = IP(bytes(IP(src=packet.src, dst=packet.dst, id=0) / UDP(sport=4000, dport=9) / aio_bench.PAYLOAD))
    assert bytes(checked) == aio_bench.PACKET, "rule: the written packet has both checksums right (as scapy's)"
    assert (packet.src, packet.dst) == (aio_bench.PEER, aio_bench.NOWHERE)


def test_tio_bench_only_aio_measures_in_a_namespace_it_removes():
    proc = subprocess.Popen(
        [TIO, "bench", "--only", "aio", "--quick", "--json", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    (area,) = json.loads(stdout)["areas"]
    figures = {f["name"]: f for f in area["figures"]}
    inline = figures["aio write: await aq.write (write_nowait inline)"]
    assert inline["baseline_name"] == "aio write: queue.write loop" and inline["value"] > 0
    assert figures["aio read+write: await aq.read/write"]["baseline_value"] > 0, "the plain loop moved packets"
    assert namespaces_of(proc.pid) == [], "rule: the benchmark's namespace is removed"
