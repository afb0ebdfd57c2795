"""iperf3 TCP throughput between two namespaces, through seven data paths.

(a) a veth pair: the kernel's own limit on this machine
(b) the naive per-packet forwarder (plain TUN, one read/write per packet)
(c) raw vnet passthrough (IFF_VNET_HDR, superpackets copied header and all)
(d) tio_bridge --mode passthrough: superpackets written back with write_gso
(e) tio_bridge --mode segment: cut into wire packets, coalesced again (a VPN's shape)
(f), (g) `tio forward --both-ways` with 1 and 2 worker processes (multiqueue
    devices, one queue per worker)

Targets on the 2-core dev machine: (e) >= 4x (b) and (d) >= 0.9x (c).

The runs reuse ../shared/bench/tunbench.sh and naive_fwd.py next to the
repository (they create and remove the namespaces) and the forwarder in
examples/tun_bridge.py. Needs root, iperf3 and those files; whatever is
missing is said plainly and nothing is measured. Runs are interleaved and
repeated, keeping each path's best, because the machine is shared.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tio_core.bench import Figure

REPO = Path(__file__).resolve().parents[4]
SHARED_BENCH = REPO.parent / "shared" / "bench"
TUNBENCH = SHARED_BENCH / "tunbench.sh"
NAIVE = SHARED_BENCH / "naive_fwd.py"
BRIDGE = REPO / "examples" / "tun_bridge.py"

NAMES = {
    "a": "(a) veth, kernel limit",
    "b": "(b) naive per-packet forwarder",
    "c": "(c) raw vnet passthrough",
    "d": "(d) tio passthrough (write_gso)",
    "e": "(e) tio segment+coalesce (VPN shape)",
    "f": "(f) tio forward --both-ways, 1 worker",
    "g": "(g) tio forward --both-ways, 2 workers",
}
TIO = Path(sys.executable).with_name("tio")
# tunbench appends the two TUN names: they become $1 and $2 of this script
_TIO_FORWARD = 'exec "$0" forward -q --both-ways --workers {n} --from "linux:name=$1" --to "linux:name=$2"'


def missing_requirements() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces and TUN devices)")
    if shutil.which("iperf3") is None:
        problems.append("iperf3 is not installed (apt-get install iperf3)")
    if shutil.which("ip") is None:
        problems.append("iproute2 'ip' is not installed")
    for path in (TUNBENCH, NAIVE):
        if not path.exists():
            problems.append(f"{path} is absent (the shared tunbench.sh/naive_fwd.py next to the repository)")
    if not BRIDGE.exists():
        problems.append(f"{BRIDGE} is absent (run from a source checkout)")
    return problems


def _command(path: str, seconds: int) -> list[str]:
    if path == "a":
        return ["bash", str(TUNBENCH), "veth", str(seconds)]
    forwarder = {
        "b": [sys.executable, str(NAIVE), "plain"],
        "c": [sys.executable, str(NAIVE), "vnet"],
        "d": [sys.executable, str(BRIDGE), "--mode", "passthrough"],
        "e": [sys.executable, str(BRIDGE), "--mode", "segment"],
        "f": ["bash", "-c", _TIO_FORWARD.format(n=1), str(TIO)],
        "g": ["bash", "-c", _TIO_FORWARD.format(n=2), str(TIO)],
    }[path]
    return ["bash", str(TUNBENCH), "fwd", str(seconds), "--", *forwarder]


def measure(path: str, seconds: int) -> float:
    """Gbit/s of one iperf3 run through ``path``; 0.0 if the run failed."""
    try:
        result = subprocess.run(_command(path, seconds), capture_output=True, text=True, timeout=seconds + 40)
    except subprocess.TimeoutExpired:
        print(f"tio_linux bench: {NAMES[path]} timed out", file=sys.stderr)
        return 0.0
    found = re.search(r"([\d.]+) Gbit/s", result.stdout)
    if not found:
        print(
            f"tio_linux bench: {NAMES[path]} failed: {result.stdout.strip()} {result.stderr.strip()}", file=sys.stderr
        )
        return 0.0
    return float(found.group(1))


def run(quick: bool = False) -> list[Figure]:
    problems = missing_requirements()
    if problems:
        print("tio_linux bench: not measured: " + "; ".join(problems), file=sys.stderr)
        return []
    # quick: the VPN-shape comparison only, one short run each
    paths, seconds, rounds = ("be", 1, 1) if quick else ("abcdefg", 5, 2)
    best = dict.fromkeys(paths, 0.0)
    for _ in range(rounds):
        for path in paths:
            best[path] = max(best[path], measure(path, seconds))
    unit = "Gbit/s"
    figures = [Figure(NAMES["b"], best["b"], unit)]
    for path in paths:
        if path != "b":
            figures.append(Figure(NAMES[path], best[path], unit, NAMES["b"], best["b"]))
    if "c" in paths:
        figures += [Figure(NAMES[p], best[p], unit, NAMES["c"], best["c"]) for p in ("a", "d", "e")]
    if "g" in paths:
        figures.append(Figure(NAMES["g"], best["g"], unit, NAMES["f"], best["f"]))
    return figures
