"""Capture parsing and replay speed of the pcap backend beside scapy's readers.

Usage: python benchmarks/bench_pcap.py [--quick]
"""

import sys

from tio_core.cli.output import figure_table
from tio_pcap.bench import run

if __name__ == "__main__":
    print(figure_table(run(quick="--quick" in sys.argv[1:])))
