"""The replay benchmark: ``tio replay`` into a TUN beside tcpreplay onto a veth, in the same run.

    tio replay   tio replay CAPTURE --to linux:name=T,up=true,addresses=198.18.7.1/24 --loop N in a
                 fresh namespace: every packet written into the TUN enters that namespace's stack
    tcpreplay    tcpreplay --topspeed -K --loop N -i VETH, the capture turned into Ethernet frames,
                 in namespace A; the veth's peer is in namespace B (198.18.7.1/24, the frames'
                 destination MAC), so the packets enter B's stack: the comparable path

The capture is tio's demo (LINKTYPE_RAW, 432 packets, 2.6 MB a pass). Each
figure is packets per second delivered (tio: written over its active time;
tcpreplay: its successful packets over its send time), rounds interleaved,
the median of each; the min-max range of every path goes to stderr. At MTU
1500 tcpreplay fails every packet above the MTU (EMSGSIZE); tio writes them
into the TUN whole, so beside the rates stand tcpreplay's failed count and
the number of those packets tio delivered.

Namespaces and devices come from tio_linux.netns and are removed after each
run, also on failure or Ctrl-C. Needs root; without tcpreplay it says so and
measures tio alone.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from tio_core.bench import Figure

MTU = 1500
LOCAL_CIDR = "198.18.7.1/24"  # the receiving side's address, TUN and veth peer alike
SENDER = ("198.18.7.2", "198.18.7.1", 24)  # veth addresses: A (tcpreplay's side), B (the receiver)
SENDER6 = ("fd00:7::2", "fd00:7::1", 64)
ETHER_SRC = bytes.fromhex("020000000001")
ETHER_DST = bytes.fromhex("020000000002")  # set as the receiving veth's address, so its stack takes them
QUICK_LOOPS, FULL_LOOPS = 200, 2000
QUICK_ROUNDS, FULL_ROUNDS = 1, 3
RUN_TIMEOUT_S = 300.0

# classic pcap: file header (magic, version, zone, sigfigs, snaplen, link type) and record header
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
FILE_HEADER = "IHHiIII"
RECORD_HEADER = "IIII"
LINKTYPE_ETHERNET = 1
RAW_LINKTYPES = frozenset((101, 228, 229))  # LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6
ETHERTYPES = {4: b"\x08\x00", 6: b"\x86\xdd"}


class BenchError(Exception):
    """One path could not be measured (the reason is printed, the other path goes on)."""


def demo_capture() -> Path:
    """The demo capture shipped in tio_core."""
    return Path(str(resources.files("tio_core") / "data" / "demo.pcap"))


# -- the capture, as Ethernet frames for tcpreplay -------------------------------------------


class CaptureFacts(NamedTuple):
    packets: int  # records converted (IP packets)
    above_mtu: int  # of which longer than the MTU: what tcpreplay fails on a veth at that MTU


def to_ethernet(source: Path, target: Path, mtu: int = MTU) -> CaptureFacts:
    """Write ``source``, a classic pcap of raw IP packets, to ``target`` as Ethernet frames.

    Each frame is ETHER_DST, ETHER_SRC, the EtherType of the packet's IP
    version, then the packet; record timestamps and the byte order are kept,
    lengths grow by 14. Anything else (pcapng, another link type, a record
    that is not IPv4/IPv6, a cut file) raises BenchError.
    """
    data = source.read_bytes()
    order = PCAP_MAGICS.get(data[:4])
    if order is None or len(data) < 24:
        raise BenchError(f"{source}: not a classic pcap capture (tcpreplay's side converts only those)")
    file_header, record = struct.Struct(order + FILE_HEADER), struct.Struct(order + RECORD_HEADER)
    magic, major, minor, zone, sigfigs, snaplen, linktype = file_header.unpack_from(data)
    if linktype & 0xFFFF not in RAW_LINKTYPES:
        raise BenchError(f"{source}: link type {linktype & 0xFFFF} is not raw IP")
    out = bytearray(file_header.pack(magic, major, minor, zone, sigfigs, snaplen + 14, LINKTYPE_ETHERNET))
    pos, packets, above = 24, 0, 0
    while pos < len(data):
        if pos + 16 > len(data):
            raise BenchError(f"{source}: cut record header at byte {pos}")
        seconds, fraction, caplen, wirelen = record.unpack_from(data, pos)
        packet = data[pos + 16 : pos + 16 + caplen]
        if len(packet) < caplen:
            raise BenchError(f"{source}: cut record at byte {pos}")
        ethertype = ETHERTYPES.get(packet[0] >> 4) if packet else None
        if ethertype is None:
            raise BenchError(f"{source}: record at byte {pos} is not an IPv4 or IPv6 packet")
        out += record.pack(seconds, fraction, caplen + 14, wirelen + 14)
        out += ETHER_DST + ETHER_SRC + ethertype + packet
        packets += 1
        above += caplen > mtu
        pos += 16 + caplen
    target.write_bytes(out)
    return CaptureFacts(packets, above)


# -- tcpreplay's report ------------------------------------------------------------------------


class TcpreplayRun(NamedTuple):
    successful: int
    failed: int
    bytes_sent: int
    seconds: float

    @property
    def packets_per_s(self) -> float:
        return self.successful / self.seconds if self.seconds > 0 else 0.0

    @property
    def gbit_per_s(self) -> float:
        return self.bytes_sent * 8 / self.seconds / 1e9 if self.seconds > 0 else 0.0


_ACTUAL = re.compile(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds")
_COUNTER = re.compile(r"^\s*(Successful|Failed) packets:\s+(\d+)", re.MULTILINE)


def parse_tcpreplay(stdout: str) -> TcpreplayRun:
    """What tcpreplay (4.x) reported on stdout: its 'Actual:' line and the device statistics."""
    actual = _ACTUAL.search(stdout)
    counters = {kind: int(value) for kind, value in _COUNTER.findall(stdout)}
    if actual is None or "Successful" not in counters:
        raise BenchError(f"tcpreplay printed no statistics: {stdout[-300:]!r}")
    return TcpreplayRun(counters["Successful"], counters.get("Failed", 0), int(actual[2]), float(actual[3]))


# -- the two paths -----------------------------------------------------------------------------


@dataclass
class TioRun:
    packets_per_s: float
    gbit_per_s: float
    packets_written: int
    dropped: int


def _tio() -> str:
    beside = Path(sys.executable).with_name("tio")
    return str(beside) if beside.exists() else (shutil.which("tio") or "tio")


def _finish(proc: subprocess.Popen, what: str) -> str:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BenchError(f"{what} did not finish within {RUN_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise BenchError(f"{what} exited with {proc.returncode}: {(err or out)[-300:].strip()}")
    return out


def measure_tio(capture: Path, loops: int) -> TioRun:
    """tio replay of ``capture`` looped ``loops`` times into a TUN in a fresh namespace."""
    from tio_linux.netns import Namespace, unique_ifname

    with Namespace("rp") as ns:
        sink = f"linux:name={unique_ifname('rp')},up=true,addresses={LOCAL_CIDR}"
        argv = [_tio(), "replay", str(capture), "--to", sink, "--loop", str(loops), "--json"]
        proc = ns.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = _finish(proc, "tio replay")
    try:
        summary = json.loads(out)
        return TioRun(
            float(summary["packets_per_s"]),
            float(summary["gbit_per_s"]),
            int(summary["packets_written"]),
            int(summary["dropped"]),
        )
    except (ValueError, KeyError, TypeError):
        raise BenchError(f"tio replay printed no JSON summary: {out[-300:]!r}") from None


def measure_tcpreplay(ethernet_capture: Path, loops: int) -> TcpreplayRun:
    """tcpreplay --topspeed -K of the Ethernet capture onto a veth whose peer is in another fresh namespace."""
    from tio_linux.netns import TunLink

    with TunLink(ipv4=SENDER, ipv6=SENDER6) as link:
        link.veth(mtu=MTU)
        link.b.ns.run(_set_mac, link.b.ifname, ETHER_DST)
        argv = ["tcpreplay", "--topspeed", "-K", "--loop", str(loops), "-i", link.a.ifname, str(ethernet_capture)]
        # stderr: one warning per failed packet, hundreds of thousands of lines
        proc = link.a.ns.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return parse_tcpreplay(_finish(proc, "tcpreplay"))


def _set_mac(ifname: str, mac: bytes) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]
        ipr.link("set", index=index, state="down")
        ipr.link("set", index=index, address=":".join(f"{b:02x}" for b in mac))
        ipr.link("set", index=index, state="up")


# -- the benchmark -------------------------------------------------------------------------------


def missing_requirements() -> tuple[list[str], str | None]:
    """(what stops the whole benchmark, why tcpreplay's side cannot run or None)."""
    from tio_linux.netns import why_unavailable

    reason = why_unavailable()
    tcpreplay = None
    if shutil.which("tcpreplay") is None:
        tcpreplay = (
            "tcpreplay is not installed (Debian/Ubuntu: apt-get install tcpreplay; or `make bench` as root): "
            "only tio replay is measured"
        )
    return ([reason] if reason else []), tcpreplay


def run(quick: bool = False) -> list[Figure]:
    """tio replay and tcpreplay, rounds interleaved; packets/s beside tcpreplay's from the same run."""
    from tio_linux.netns import terminate_as_interrupt

    problems, no_tcpreplay = missing_requirements()
    if problems:
        print("tio_linux replay bench: not measured: " + "; ".join(problems), file=sys.stderr)
        return []
    if no_tcpreplay:
        print(f"tio_linux replay bench: {no_tcpreplay}", file=sys.stderr)
    loops, rounds = (QUICK_LOOPS, QUICK_ROUNDS) if quick else (FULL_LOOPS, FULL_ROUNDS)
    capture = demo_capture()
    tio_runs: list[TioRun] = []
    tcp_runs: list[TcpreplayRun] = []
    with tempfile.TemporaryDirectory(prefix="tio-replay-bench-") as tmp, terminate_as_interrupt():
        ethernet = Path(tmp) / "demo-ethernet.pcap"
        facts = to_ethernet(capture, ethernet)
        for _ in range(rounds):
            try:
                tio_runs.append(measure_tio(capture, loops))
            except BenchError as exc:
                print(f"tio_linux replay bench: tio replay: {exc}", file=sys.stderr)
            if no_tcpreplay:
                continue
            try:
                tcp_runs.append(measure_tcpreplay(ethernet, loops))
            except BenchError as exc:
                print(f"tio_linux replay bench: tcpreplay: {exc}", file=sys.stderr)
    _print_ranges(tio_runs, tcp_runs, facts, loops)
    return figures(tio_runs, tcp_runs, facts, loops)


TIO_NAME = "tio replay into a TUN"
TCPREPLAY_NAME = "tcpreplay --topspeed -K onto a veth"
TARGET = 1.0  # issue 13: at least tcpreplay's packet rate


def figures(tio_runs: list[TioRun], tcp_runs: list[TcpreplayRun], facts: CaptureFacts, loops: int) -> list[Figure]:
    if not tio_runs:
        return []
    tio_pps = statistics.median(r.packets_per_s for r in tio_runs)
    tio_gbps = statistics.median(r.gbit_per_s for r in tio_runs)
    tcp_pps = statistics.median(r.packets_per_s for r in tcp_runs) if tcp_runs else 0.0
    tcp_gbps = statistics.median(r.gbit_per_s for r in tcp_runs) if tcp_runs else 0.0
    baseline = TCPREPLAY_NAME if tcp_runs else ""
    out = [
        Figure(TIO_NAME, tio_pps, "packets/s", baseline, tcp_pps, TARGET if tcp_runs else None),
        Figure(f"{TIO_NAME}: bytes", tio_gbps, "Gbit/s", f"{baseline}: bytes" if tcp_runs else "", tcp_gbps),
    ]
    # The packets above the MTU: tio delivered every one it was given unless it counted drops.
    worst = min(tio_runs, key=lambda r: r.dropped)
    delivered_big = max(0, facts.above_mtu * loops - worst.dropped)
    failed = statistics.median(r.failed for r in tcp_runs) if tcp_runs else 0.0
    out.append(
        Figure(
            f"{TIO_NAME}: packets above MTU {MTU} delivered",
            delivered_big,
            "packets",
            "tcpreplay: packets failed (above the MTU)" if tcp_runs else "",
            failed,
        )
    )
    return out


def _print_ranges(tio_runs: list[TioRun], tcp_runs: list[TcpreplayRun], facts: CaptureFacts, loops: int) -> None:
    print(
        f"tio_linux replay bench: demo capture ({facts.packets} packets, {facts.above_mtu} above MTU {MTU}) "
        f"x {loops} loops; min-max over rounds:",
        file=sys.stderr,
    )
    if tio_runs:
        pps = [r.packets_per_s for r in tio_runs]
        written = " ".join(str(r.packets_written) for r in tio_runs)
        dropped = " ".join(str(r.dropped) for r in tio_runs)
        print(
            f"  {TIO_NAME:<40} {min(pps):10.0f}-{max(pps):<10.0f} packets/s | written {written} | dropped {dropped}",
            file=sys.stderr,
        )
    if tcp_runs:
        pps = [r.packets_per_s for r in tcp_runs]
        print(
            f"  {TCPREPLAY_NAME:<40} {min(pps):10.0f}-{max(pps):<10.0f} packets/s | successful "
            f"{' '.join(str(r.successful) for r in tcp_runs)} | failed {' '.join(str(r.failed) for r in tcp_runs)}",
            file=sys.stderr,
        )
    if tio_runs and tcp_runs:
        ratios = [t.packets_per_s / c.packets_per_s for t, c in zip(tio_runs, tcp_runs, strict=False) if c.seconds]
        if ratios:
            print(f"  per-round ratio tio/tcpreplay: {' '.join(f'{r:.2f}' for r in ratios)}", file=sys.stderr)
