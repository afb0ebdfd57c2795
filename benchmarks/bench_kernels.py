"""Packet-kernel throughput (segmentation, checksum) against a plain bytes copy.

Usage: python benchmarks/bench_kernels.py [--quick]
"""

import sys

from tio_core.bench import format_table
from tio_core.bench.kernels import run

if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv[1:])))
