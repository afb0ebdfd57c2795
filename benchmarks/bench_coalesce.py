"""Write-path coalescing throughput against one write per packet (see tio_core.bench.coalesce)."""

import sys

from tio_core.bench import format_table
from tio_core.bench.coalesce import run

if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv)))
