"""Profile one path of the TUN benchmark while iperf3 runs through it (needs root and iperf3).

usage: python benchmarks/profile_tun.py PATH [--seconds N] [--flows N] [-- PROFILER ARGS...]

PATH is a key of tio_linux.bench.data_paths: naive, raw, pass, seg, fwd1, fwdN.
The profiler command is started just before iperf3 and stopped with SIGINT just
after it; {pid} is the forwarder's pid, {pids} all its processes (comma-separated).
Without a profiler, only the measurement is printed. Examples (docs/performance.md):

    python benchmarks/profile_tun.py fwd1 -- strace -c -f -p {pid}
    python benchmarks/profile_tun.py fwd1 -- py-spy record --threads -r 250 -f raw -o /tmp/fwd1.txt -p {pid}
    python benchmarks/profile_tun.py fwd1 -- perf record -g -p {pids} -o /tmp/fwd1.perf
"""

import argparse
import dataclasses
import sys

from tio_linux.bench import data_paths, measure, missing_requirements, workers

if __name__ == "__main__":
    argv = sys.argv[1:]
    profiler = argv[argv.index("--") + 1 :] if "--" in argv else None
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=[p.key for p in data_paths(workers()) if p.argv])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--flows", type=int, default=1)
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    problems = missing_requirements()
    if problems:
        sys.exit("not measured: " + "; ".join(problems))
    path = next(p for p in data_paths(workers()) if p.key == args.path)
    result = measure(dataclasses.replace(path, flows=args.flows), args.seconds, profiler)
    gigabytes = result.bytes / 1e9
    print(
        f"{path.name}: {result.gbit_per_s:.2f} Gbit/s, {gigabytes:.2f} GB received, "
        f"forwarder CPU {result.cpu_seconds:.2f} s ({result.cpu_per_gb:.2f} s/GB), retransmits {result.retransmits}"
    )
