"""TCP throughput through TUN forwarders (iperf3 in namespaces; needs root).

usage: python benchmarks/bench_tun.py [--quick]
"""

import sys

from tio_core.cli.output import figure_table
from tio_linux.bench import run

if __name__ == "__main__":
    print(figure_table(run(quick="--quick" in sys.argv[1:])))
