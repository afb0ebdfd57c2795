"""TCP throughput and CPU per GB through TUN forwarders (iperf3 in network namespaces; needs root).

usage: python benchmarks/bench_tun.py [--quick]      (the same as: tio bench --only tun [--quick])

Everything it runs ships with tio-linux: the harness (tio_linux.bench on
tio_linux.netns), the reference forwarders (tio_linux.refforward), and the
forwarders measured (examples/tun_bridge.py and tio forward).
"""

import sys

from tio_core.cli.output import figure_table
from tio_linux.bench import run

if __name__ == "__main__":
    print(figure_table(run(quick="--quick" in sys.argv[1:])))
