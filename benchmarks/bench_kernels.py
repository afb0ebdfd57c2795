"""Packet-kernel throughput (segmentation, checksum) against a plain bytes copy.

Usage: python benchmarks/bench_kernels.py [--quick]
"""

import sys

from tio_core.bench_kernels import run
from tio_core.benchmark import format_table

if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv[1:])))
