"""Backend discovery finds ``fake`` without importing the backend or scapy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TIO = Path(sys.executable).with_name("tio")

PROBE = """
import sys
from tio_core.plugin.registry import BackendRegistry
registry = BackendRegistry()
spec = registry.get("fake")
print(spec.distribution, sorted(spec.options))
print([m for m in ("scapy", "tio_fake.backend", "tio_fake.packets", "tio_core.kernels") if m in sys.modules])
"""


def test_discovery_is_light():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == ("tio-fake ['blocking', 'capabilities', 'end_of_stream', 'max_batch', 'queues', 'read_timeout']")
    assert lines[1] == "[]"


def test_tio_backends_lists_fake():
    out = subprocess.run([str(TIO), "backends"], capture_output=True, text=True, check=True).stdout
    assert any(line.split()[:1] == ["fake"] and "tio-fake" in line for line in out.splitlines()), out


def test_quick_benchmark_runs_through_tio_bench():
    out = subprocess.run([str(TIO), "bench", "--quick", "--only", "fake"], capture_output=True, text=True, check=True)
    assert "packet_factory tcp_flow" in out.stdout and "scapy build per packet" in out.stdout
