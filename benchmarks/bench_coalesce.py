"""Write-path coalescing throughput against one write per packet (see tio_core.bench_coalesce)."""

import sys

from tio_core.bench_coalesce import run
from tio_core.benchmark import format_table

if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv)))
