"""The TUN benchmark: iperf3 TCP between two namespaces, through each data path.

    veth                        a veth pair: the kernel alone, no forwarder
    naive per-packet            tio_linux.refforward plain: one read+write per wire packet
    raw vnet passthrough        tio_linux.refforward vnet: superpackets copied with their
                                virtio_net_hdr unchanged (the baseline of every ratio)
    tun_bridge passthrough      examples/tun_bridge.py --mode passthrough (write_gso)
    tun_bridge segment          examples/tun_bridge.py --mode segment (a VPN's shape)
    tio forward, 1 / N workers  tio forward --both-ways [--workers N] (multiqueue devices)
    ... 4 flows                 iperf3 -P 4 through tio forward with 1 and N workers, and the
                                packets the kernel gave each queue (how flows spread)

Each path: Gbit/s (iperf3's receiver) beside raw vnet passthrough measured in
the same run, and CPU seconds per GB: the forwarder processes' user+system
time (from /proc) over the iperf3 run, divided by the bytes received. Rounds
are interleaved and each figure is the median of its rounds (the machine may
be shared); the min-max range of every path is printed to stderr.

Namespaces, devices and processes come from tio_linux.netns and are removed
after every run, also on failure or Ctrl-C. Needs root and iperf3; whatever is
missing is said plainly and nothing is measured.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tio_core.bench import Figure

IPERF3_PORT = 5201
QUICK_SECONDS, FULL_SECONDS = 2, 5
QUICK_ROUNDS, FULL_ROUNDS = 1, 3
MULTI_FLOWS = 4
BASELINE = "raw"
BRIDGE = Path(__file__).resolve().parents[4] / "examples" / "tun_bridge.py"  # in a source checkout
TCP_LISTEN = "0A"  # st column of /proc/net/tcp


@dataclass(frozen=True)
class DataPath:
    key: str
    name: str
    argv: tuple[str, ...] = ()  # the forwarder ({a}, {b}: the TUN names); empty: a veth pair
    queues: int = 1
    ready: str | None = None
    flows: int = 1


@dataclass
class Measurement:
    gbit_per_s: float
    bytes: int
    retransmits: int
    cpu_seconds: float | None = None
    queue_packets: list[int] = field(default_factory=list)  # per queue of TUN a: the data direction

    @property
    def cpu_per_gb(self) -> float | None:
        return self.cpu_seconds / (self.bytes / 1e9) if self.cpu_seconds is not None and self.bytes else None


def workers() -> int:
    """Worker processes for the multiqueue paths: one per core, 2 to 4."""
    return max(2, min(os.cpu_count() or 2, 4))


def tio_command() -> str:
    """The tio console script beside this Python (a venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("tio")
    return str(beside) if beside.exists() else (shutil.which("tio") or "tio")


def data_paths(n: int) -> list[DataPath]:
    ref = (sys.executable, "-m", "tio_linux.refforward")
    bridge = (sys.executable, str(BRIDGE))
    forward = (tio_command(), "forward", "-q", "--both-ways", "--from", "linux:name={a}", "--to", "linux:name={b}")
    return [
        DataPath("veth", "veth pair (kernel only)"),
        DataPath("naive", "naive per-packet forwarder", (*ref, "plain", "{a}", "{b}"), ready="READY"),
        DataPath(BASELINE, "raw vnet passthrough", (*ref, "vnet", "{a}", "{b}"), ready="READY"),
        DataPath(
            "pass", "tun_bridge.py --mode passthrough", (*bridge, "--mode", "passthrough", "{a}", "{b}"), ready="READY"
        ),
        DataPath("seg", "tun_bridge.py --mode segment", (*bridge, "--mode", "segment", "{a}", "{b}"), ready="READY"),
        DataPath("fwd1", "tio forward --both-ways, 1 worker", forward),
        DataPath("fwdN", f"tio forward --both-ways, {n} workers", (*forward, "--workers", str(n)), queues=n),
        DataPath("fwd1P", f"tio forward, 1 worker, {MULTI_FLOWS} flows", forward, flows=MULTI_FLOWS),
        DataPath(
            "fwdNP",
            f"tio forward, {n} workers, {MULTI_FLOWS} flows",
            (*forward, "--workers", str(n)),
            queues=n,
            flows=MULTI_FLOWS,
        ),
    ]


def missing_requirements() -> list[str]:
    from tio_linux.netns import why_unavailable

    problems = []
    reason = why_unavailable()
    if reason:
        problems.append(reason)
    if shutil.which("iperf3") is None:
        problems.append("iperf3 is not installed (Debian/Ubuntu: apt-get install iperf3; or `make bench` as root)")
    return problems


def _listening(port: int) -> bool:
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/thread-self/net/{table}") as handle:
                for line in handle.readlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if int(local.rsplit(":", 1)[1], 16) == port and state == TCP_LISTEN:
                        return True
        except FileNotFoundError:
            continue
    return False


class BenchError(Exception):
    """One path could not be measured (the reason is printed, the other paths go on)."""


def measure(path: DataPath, seconds: float, profiler: list[str] | None = None) -> Measurement:
    """One iperf3 run through ``path`` in fresh namespaces, removed afterwards.

    ``profiler``: a command started just before iperf3 and stopped with SIGINT
    just after it ({pid}: the forwarder's pid, {pids}: all its processes, comma-separated).
    """
    from tio_linux.netns import ForwarderError, TunLink

    with TunLink() as link:
        forwarder = None
        try:
            if path.argv:
                forwarder = link.start(list(path.argv), queues=path.queues, ready=path.ready)
            else:
                link.veth()
        except ForwarderError as exc:
            raise BenchError(str(exc).splitlines()[0]) from None
        server = link.b.ns.popen(
            ["iperf3", "-s", "-1", "-B", link.b.ipv4, "-p", str(IPERF3_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not link.b.ns.run(_listening, IPERF3_PORT):
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"iperf3 server did not start (exit code {server.poll()})")
            time.sleep(0.02)
        watcher = _start_profiler(profiler, forwarder) if profiler else None
        cpu_before = forwarder.cpu_seconds() if forwarder else 0.0
        client = link.a.ns.command(
            ["iperf3", "-c", link.b.ipv4, "-p", str(IPERF3_PORT), "-t", str(seconds), "-P", str(path.flows), "-J"],
            timeout=seconds + 30,
        )
        cpu = forwarder.cpu_seconds() - cpu_before if forwarder else None
        if watcher is not None:
            watcher.send_signal(signal.SIGINT)
            watcher.wait(60)
        try:
            end = json.loads(client.stdout)["end"]
            received, sent = end["sum_received"], end["sum_sent"]
        except (ValueError, KeyError):
            raise BenchError(f"iperf3 failed: {client.stdout[-300:]} {client.stderr[-300:]}") from None
        queues = link.a.ns.queue_packets(link.a.ifname) if path.queues > 1 else []
        return Measurement(
            received["bits_per_second"] / 1e9,
            int(received["bytes"]),
            int(sent.get("retransmits", 0)),
            cpu,
            queues,
        )


def _start_profiler(argv: list[str], forwarder) -> subprocess.Popen:
    if forwarder is None:
        raise BenchError("a profiler needs a forwarder process (not the veth path)")
    pids = forwarder.processes()
    command = [arg.replace("{pids}", ",".join(map(str, pids))).replace("{pid}", str(pids[0])) for arg in argv]
    watcher = subprocess.Popen(command)
    time.sleep(0.5)  # let it attach before the traffic starts
    return watcher


def run(quick: bool = False) -> list[Figure]:
    """Every path, rounds interleaved; Gbit/s and CPU s/GB beside raw vnet passthrough from the same run."""
    from tio_linux.netns import terminate_as_interrupt

    problems = missing_requirements()
    if problems:
        print("tio_linux bench: not measured: " + "; ".join(problems), file=sys.stderr)
        return []
    n = workers()
    paths = data_paths(n)
    if not BRIDGE.exists():
        print(f"tio_linux bench: {BRIDGE} is absent (not a source checkout): tun_bridge paths skipped", file=sys.stderr)
        paths = [p for p in paths if p.key not in ("pass", "seg")]
    seconds, rounds = (QUICK_SECONDS, QUICK_ROUNDS) if quick else (FULL_SECONDS, FULL_ROUNDS)
    results: dict[str, list[Measurement]] = {p.key: [] for p in paths}
    with terminate_as_interrupt():
        for _ in range(rounds):
            for path in paths:
                try:
                    results[path.key].append(measure(path, seconds))
                except BenchError as exc:
                    print(f"tio_linux bench: {path.name}: {exc}", file=sys.stderr)
    _print_ranges(paths, results)
    return figures(paths, results)


def median(values: Iterable[float]) -> float:
    """The median of the rounds' figures; 0.0 when no round measured one."""
    values = list(values)
    return statistics.median(values) if values else 0.0


# Issue 13's targets, as ratios to the figure's baseline (drawn as marks by `tio bench --plot`).
GBIT_TARGETS = {"pass": 0.95, "seg": 0.85, "fwd1": 0.85}
NOT_BELOW = 1.0  # tio forward against the example bridge, N workers against one


def figures(paths: list[DataPath], results: dict[str, list[Measurement]]) -> list[Figure]:
    by_key = {p.key: p for p in paths}
    gbps = {key: median([m.gbit_per_s for m in runs]) for key, runs in results.items()}
    cpu = {key: median([m.cpu_per_gb for m in runs if m.cpu_per_gb is not None]) for key, runs in results.items()}
    base = by_key[BASELINE].name if BASELINE in by_key else ""
    out = []
    for path in paths:
        if path.flows > 1 or not results[path.key]:
            continue
        target = GBIT_TARGETS.get(path.key)
        out.append(Figure(path.name, gbps[path.key], "Gbit/s", base, gbps.get(BASELINE, 0.0), target))
        if cpu[path.key]:
            out.append(Figure(f"{path.name}: CPU", cpu[path.key], "s/GB", f"{base}: CPU", cpu.get(BASELINE, 0.0)))
    if results.get("fwd1") and results.get("seg"):  # the product against the same work in the example
        fwd1, seg = by_key["fwd1"], by_key["seg"]
        out.append(Figure(f"{fwd1.name} (vs the example)", gbps["fwd1"], "Gbit/s", seg.name, gbps["seg"], NOT_BELOW))
    multi = [p for p in paths if p.flows > 1 and results[p.key]]
    if len(multi) == 2:
        one, many = multi
        out.append(Figure(many.name, gbps[many.key], "Gbit/s", one.name, gbps[one.key], NOT_BELOW))
        out.append(Figure(f"{many.name}: CPU", cpu[many.key], "s/GB", f"{one.name}: CPU", cpu[one.key]))
        per_queue = [m.queue_packets for m in results[many.key] if m.queue_packets]
        if per_queue:
            counts = [sum(column) for column in zip(*per_queue, strict=True)]
            for index, count in enumerate(counts):
                out.append(Figure(f"{many.name}: queue {index} packets", count, "packets", "all queues", sum(counts)))
    return out


def _print_ranges(paths: list[DataPath], results: dict[str, list[Measurement]]) -> None:
    print(
        "tio_linux bench: per path, min-max over rounds: Gbit/s | CPU s/GB | retransmits | queue packets",
        file=sys.stderr,
    )
    for path in paths:
        runs = results[path.key]
        if not runs:
            continue
        speeds = [m.gbit_per_s for m in runs]
        cpus = [m.cpu_per_gb for m in runs if m.cpu_per_gb is not None]
        cpu_text = f"{min(cpus):.2f}-{max(cpus):.2f}" if cpus else "-"
        queues = " ".join(str(m.queue_packets) for m in runs if m.queue_packets) or "-"
        print(
            f"  {path.name:<42} {min(speeds):6.2f}-{max(speeds):<6.2f} | {cpu_text:>11} | "
            f"{' '.join(str(m.retransmits) for m in runs)} | {queues}",
            file=sys.stderr,
        )
