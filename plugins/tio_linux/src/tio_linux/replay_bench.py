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
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from tio_core.bench import Figure
from tio_linux.bench import BenchError, median, tio_command

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


def demo_capture() -> Path:
    """The demo capture shipped in tio_core."""
    return Path(str(resources.files("tio_core") / "data" / "demo.pcap"))


# -- the capture, as Ethernet frames for tcpreplay -------------------------------------------


class CaptureFacts(NamedTuple):
    packets: int  # records converted (IP packets)
    above_mtu: int  # of which longer than the MTU: what tcpreplay fails on a veth at that MTU


Record = tuple[int, int, int, int, int]  # seconds, fraction, captured length, wire length, data offset


def _raw_records(source: Path) -> tuple[struct.Struct, tuple[int, ...], struct.Struct, list[Record], bytes]:
    """(file header struct, its fields, record struct, [(seconds, fraction, caplen, wirelen, offset)], data)
    of a classic pcap of raw IP packets; BenchError for anything else or a cut file."""
    data = source.read_bytes()
    order = PCAP_MAGICS.get(data[:4])
    if order is None or len(data) < 24:
        raise BenchError(f"{source}: not a classic pcap capture (tcpreplay's side converts only those)")
    file_header, record = struct.Struct(order + FILE_HEADER), struct.Struct(order + RECORD_HEADER)
    fields: tuple[int, ...] = file_header.unpack_from(data)
    if fields[6] & 0xFFFF not in RAW_LINKTYPES:
        raise BenchError(f"{source}: link type {fields[6] & 0xFFFF} is not raw IP")
    records: list[Record] = []
    pos = 24
    while pos < len(data):
        if pos + 16 > len(data):
            raise BenchError(f"{source}: cut record header at byte {pos}")
        seconds, fraction, caplen, wirelen = record.unpack_from(data, pos)
        if pos + 16 + caplen > len(data):
            raise BenchError(f"{source}: cut record at byte {pos}")
        if not caplen or data[pos + 16] >> 4 not in ETHERTYPES:
            raise BenchError(f"{source}: record at byte {pos} is not an IPv4 or IPv6 packet")
        records.append((seconds, fraction, caplen, wirelen, pos + 16))
        pos += 16 + caplen
    return file_header, fields, record, records, data


def to_ethernet(source: Path, target: Path, mtu: int = MTU) -> CaptureFacts:
    """Write ``source``, a classic pcap of raw IP packets, to ``target`` as Ethernet frames.

    Each frame is ETHER_DST, ETHER_SRC, the EtherType of the packet's IP
    version, then the packet; record timestamps and the byte order are kept,
    lengths grow by 14. Anything else (pcapng, another link type, a record
    that is not IPv4/IPv6, a cut file) raises BenchError.
    """
    file_header, fields, record, records, data = _raw_records(source)
    magic, major, minor, zone, sigfigs, snaplen, _linktype = fields
    out = bytearray(file_header.pack(magic, major, minor, zone, sigfigs, snaplen + 14, LINKTYPE_ETHERNET))
    above = 0
    for seconds, fraction, caplen, wirelen, start in records:
        packet = data[start : start + caplen]
        out += record.pack(seconds, fraction, caplen + 14, wirelen + 14)
        out += ETHER_DST + ETHER_SRC + ETHERTYPES[packet[0] >> 4] + packet
        above += caplen > mtu
    target.write_bytes(out)
    return CaptureFacts(len(records), above)


def within_mtu(source: Path, target: Path, mtu: int = MTU) -> int:
    """Write the records of ``source`` (raw IP) whose packet fits the MTU to ``target``; returns how many.

    The packets tcpreplay delivers at that MTU: tio replaying them is the like-for-like rate.
    """
    file_header, fields, _record, records, data = _raw_records(source)
    out = bytearray(file_header.pack(*fields))
    kept = 0
    for _seconds, _fraction, caplen, _wirelen, start in records:
        if caplen <= mtu:
            out += data[start - 16 : start + caplen]
            kept += 1
    target.write_bytes(out)
    return kept


# -- tcpreplay's report ------------------------------------------------------------------------


class TcpreplayRun(NamedTuple):
    successful: int
    failed: int
    bytes_sent: int
    seconds: float
    cpu_seconds: float = 0.0  # the tcpreplay process's user+system time (set by measure_tcpreplay)

    @property
    def cpu_us_per_packet(self) -> float:
        return self.cpu_seconds * 1e6 / self.successful if self.successful else 0.0

    @property
    def packets_per_s(self) -> float:
        return self.successful / self.seconds if self.seconds > 0 else 0.0

    @property
    def gbit_per_s(self) -> float:
        return self.bytes_sent * 8 / self.seconds / 1e9 if self.seconds > 0 else 0.0


_ACTUAL = re.compile(r"Actual: (\d+) packets \((\d+) bytes\) sent in ([\d.]+) seconds")
_RATED = re.compile(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps")
_COUNTER = re.compile(r"^\s*(Successful|Failed) packets:\s+(\d+)", re.MULTILINE)


def parse_tcpreplay(stdout: str) -> TcpreplayRun:
    """What tcpreplay (4.x) reported on stdout: its 'Actual:' and 'Rated:' lines and the device statistics.

    The send time comes from the rated packet rate when there is one: the
    'Actual:' line rounds runs longer than a second to 10 ms.
    """
    actual = _ACTUAL.search(stdout)
    counters = {kind: int(value) for kind, value in _COUNTER.findall(stdout)}
    if actual is None or "Successful" not in counters:
        raise BenchError(f"tcpreplay printed no statistics: {stdout[-300:]!r}")
    successful = counters["Successful"]
    seconds = float(actual[3])
    rated = _RATED.search(stdout)
    if rated is not None and float(rated[1]) > 0 and successful == int(actual[1]):
        seconds = successful / float(rated[1])
    return TcpreplayRun(successful, counters.get("Failed", 0), int(actual[2]), seconds)


# -- the two paths -----------------------------------------------------------------------------


@dataclass
class TioRun:
    packets_per_s: float
    gbit_per_s: float
    packets_written: int
    dropped: int
    cpu_seconds: float  # the tio process's user+system time
    startup_cpu_seconds: float = 0.0  # of which start-up and teardown (a one-packet run's CPU), set by run()

    @property
    def cpu_us_per_packet(self) -> float:
        """CPU per packet replayed, start-up and teardown left out."""
        busy = max(0.0, self.cpu_seconds - self.startup_cpu_seconds)
        return busy * 1e6 / self.packets_written if self.packets_written else 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _finish(proc: subprocess.Popen, what: str, cpu_before: float) -> tuple[str, float]:
    """The process's stdout and its CPU seconds (it is the only child that ends meanwhile)."""
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BenchError(f"{what} did not finish within {RUN_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise BenchError(f"{what} exited with {proc.returncode}: {(err or out or '')[-300:].strip()}")
    return out, _children_cpu() - cpu_before


def measure_tio(capture: Path, loops: int, limit: int | None = None) -> TioRun:
    """tio replay of ``capture`` looped ``loops`` times (at most ``limit`` packets) into a TUN in a fresh namespace."""
    from tio_linux.netns import Namespace, unique_ifname

    with Namespace("rp") as ns:
        sink = f"linux:name={unique_ifname('rp')},up=true,addresses={LOCAL_CIDR}"
        argv = [tio_command(), "replay", str(capture), "--to", sink, "--loop", str(loops), "--json"]
        if limit is not None:
            argv += ["--limit", str(limit)]
        cpu_before = _children_cpu()
        proc = ns.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, cpu = _finish(proc, "tio replay", cpu_before)
    try:
        summary = json.loads(out)
        return TioRun(
            float(summary["packets_per_s"]),
            float(summary["gbit_per_s"]),
            int(summary["packets_written"]),
            int(summary["dropped"]),
            cpu,
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
        cpu_before = _children_cpu()
        proc = link.a.ns.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out, cpu = _finish(proc, "tcpreplay", cpu_before)
        return parse_tcpreplay(out)._replace(cpu_seconds=cpu)


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
    runs = Runs()
    with tempfile.TemporaryDirectory(prefix="tio-replay-bench-") as tmp, terminate_as_interrupt():
        ethernet, small = Path(tmp) / "demo-ethernet.pcap", Path(tmp) / "demo-within-mtu.pcap"
        facts = to_ethernet(capture, ethernet)
        within_mtu(capture, small)
        startup: list[TioRun] = []
        for _ in range(rounds):
            _attempt("tio replay of one packet (start-up CPU)", startup, measure_tio, capture, 1, 1)
            _attempt("tio replay", runs.tio, measure_tio, capture, loops)
            _attempt("tio replay (packets within the MTU)", runs.tio_small, measure_tio, small, loops)
            if not no_tcpreplay:
                _attempt("tcpreplay", runs.tcpreplay, measure_tcpreplay, ethernet, loops)
    startup_cpu = median(r.cpu_seconds for r in startup)
    for tio in (*runs.tio, *runs.tio_small):
        tio.startup_cpu_seconds = startup_cpu
    _print_ranges(runs, facts, loops)
    return figures(runs, facts, loops)


@dataclass
class Runs:
    tio: list[TioRun] = field(default_factory=list)
    tio_small: list[TioRun] = field(default_factory=list)  # the capture's packets within the MTU only
    tcpreplay: list[TcpreplayRun] = field(default_factory=list)


def _attempt(what: str, into: list, measure, *args) -> None:
    try:
        into.append(measure(*args))
    except BenchError as exc:
        print(f"tio_linux replay bench: {what}: {exc}", file=sys.stderr)


TIO_NAME = "tio replay into a TUN"
TIO_SMALL_NAME = f"tio replay, packets <= MTU {MTU} only"
TCPREPLAY_NAME = "tcpreplay --topspeed -K onto a veth"
TARGET = 1.0  # issue 13: at least tcpreplay's packet rate


def figures(runs: Runs, facts: CaptureFacts, loops: int) -> list[Figure]:
    """Packets/s, Gbit/s and CPU per packet of tio beside tcpreplay (medians over rounds)."""
    if not runs.tio and not runs.tio_small:
        return []
    tcp = runs.tcpreplay
    base = TCPREPLAY_NAME if tcp else ""
    tcp_pps = median(r.packets_per_s for r in tcp)
    tcp_cpu = median(r.cpu_us_per_packet for r in tcp)
    out = []
    for name, tio in ((TIO_NAME, runs.tio), (TIO_SMALL_NAME, runs.tio_small)):
        if not tio:
            continue
        target = TARGET if tcp and tio is runs.tio else None
        out.append(Figure(name, median(r.packets_per_s for r in tio), "packets/s", base, tcp_pps, target))
        out.append(
            Figure(
                f"{name}: CPU",
                median(r.cpu_us_per_packet for r in tio),
                "us/packet",
                f"{base}: CPU" if tcp else "",
                tcp_cpu,
            )
        )
    if runs.tio:
        tcp_gbps = median(r.gbit_per_s for r in tcp)
        out.append(
            Figure(
                f"{TIO_NAME}: bytes",
                median(r.gbit_per_s for r in runs.tio),
                "Gbit/s",
                base and f"{base}: bytes",
                tcp_gbps,
            )
        )
        # The packets above the MTU: tio delivered every one it was given unless it counted drops.
        worst = max(r.dropped for r in runs.tio)
        delivered_big = max(0, facts.above_mtu * loops - worst)
        failed = median(r.failed for r in tcp)
        out.append(
            Figure(
                f"{TIO_NAME}: packets above MTU {MTU} delivered",
                delivered_big,
                "packets",
                "tcpreplay: packets failed (above the MTU)" if tcp else "",
                failed,
            )
        )
    return out


def _print_ranges(runs: Runs, facts: CaptureFacts, loops: int) -> None:
    print(
        f"tio_linux replay bench: demo capture ({facts.packets} packets, {facts.above_mtu} above MTU {MTU}) "
        f"x {loops} loops; min-max over rounds (CPU: user+system of the process, tio's start-up left out):",
        file=sys.stderr,
    )
    for name, tio in ((TIO_NAME, runs.tio), (TIO_SMALL_NAME, runs.tio_small)):
        if tio:
            pps, cpu = [r.packets_per_s for r in tio], [r.cpu_us_per_packet for r in tio]
            written = " ".join(str(r.packets_written) for r in tio)
            dropped = " ".join(str(r.dropped) for r in tio)
            print(
                f"  {name:<40} {min(pps):8.0f}-{max(pps):<8.0f} packets/s | {min(cpu):.2f}-{max(cpu):.2f} us/packet "
                f"| written {written} | dropped {dropped}",
                file=sys.stderr,
            )
    if runs.tcpreplay:
        tcp = runs.tcpreplay
        pps, cpu = [r.packets_per_s for r in tcp], [r.cpu_us_per_packet for r in tcp]
        print(
            f"  {TCPREPLAY_NAME:<40} {min(pps):8.0f}-{max(pps):<8.0f} packets/s | {min(cpu):.2f}-{max(cpu):.2f} "
            f"us/packet | successful {' '.join(str(r.successful) for r in tcp)} | failed "
            f"{' '.join(str(r.failed) for r in tcp)}",
            file=sys.stderr,
        )
        for name, tio in ((TIO_NAME, runs.tio), (TIO_SMALL_NAME, runs.tio_small)):
            ratios = [t.packets_per_s / c.packets_per_s for t, c in zip(tio, tcp, strict=False) if c.packets_per_s]
            if ratios:
                print(f"  per-round ratio {name} / tcpreplay: {' '.join(f'{r:.2f}' for r in ratios)}", file=sys.stderr)
