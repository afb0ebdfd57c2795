"""asyncio against the plain loop on a real TUN (needs root).

usage: python benchmarks/bench_aio_tun.py [--quick]      (the same as: tio bench --only aio [--quick])

The benchmark ships with tio-linux (tio_linux.aio_bench); see its docstring for what is measured.
"""

import sys

from tio_core.cli.output import figure_table
from tio_linux.aio_bench import run

if __name__ == "__main__":
    print(figure_table(run(quick="--quick" in sys.argv[1:])))
