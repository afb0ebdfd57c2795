"""Packet-kernel throughput (segmentation, checksum) against a plain bytes copy.

Usage: python benchmarks/bench_kernels.py [--quick]
"""

import sys

from tio_core.bench.kernels import run
from tio_core.cli.output import figure_table

if __name__ == "__main__":
    print(figure_table(run(quick="--quick" in sys.argv[1:])))
