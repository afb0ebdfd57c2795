"""Running tio as a user does (the console script) and reading what it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from scapy.utils import RawPcapReader

TIO = str(Path(sys.executable).with_name("tio"))
DEMO = str(resources.files("tio_core") / "data" / "demo.pcap")
DEMO_PACKETS = 432  # records in the demo capture (see scripts/make_demo_capture.py)


def tio(*args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIO, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def tio_json(*args: str, **kwargs: Any) -> dict[str, Any]:
    result = tio(*args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def read_capture(path: str | Path) -> list[bytes]:
    return [bytes(data) for data, _meta in RawPcapReader(str(path))]
