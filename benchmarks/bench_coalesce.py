"""Write-path coalescing throughput against one write per packet (see tio_core.bench.coalesce)."""

import sys

from tio_core.bench.coalesce import run
from tio_core.cli.output import figure_table

if __name__ == "__main__":
    print(figure_table(run(quick="--quick" in sys.argv)))
