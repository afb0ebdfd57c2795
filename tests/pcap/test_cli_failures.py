"""The pcap failures of issue 12 through the real `tio` console script: one `tio:` line, the
right exit code (2 usage, 1 runtime), never a traceback."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pcap.captures import far_future_pcapng
from tio_pcap.bench import write_capture
from tio_pcap.reader import read_packets

TIO = str(Path(sys.executable).with_name("tio"))


def tio(*args: str, limit_file_size: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # ignored stays ignored across exec: EFBIG, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, resource.RLIM_INFINITY))

    return subprocess.run(
        [TIO, *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit if limit_file_size is not None else None,
    )


def one_tio_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tio: "), f"one 'tio:' line, no traceback: {done.stderr}"
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize("pacing", [["--speed", "1e-320"], ["--pps", "1e-310"], ["--speed", "inf"], ["--pps", "nan"]])
def test_pacing_values_that_overflow_are_usage_errors(tmp_path, pacing):
    capture = tmp_path / "in.pcap"
    write_capture(str(capture), 3)
    done = tio("replay", str(capture), *pacing, "--to", f"pcap:output={tmp_path / 'out.pcap'}")
    assert done.returncode == 2, done.stderr
    assert ("speed must be" if pacing[0] == "--speed" else "rate must be") in one_tio_line(done)


def test_a_far_future_timestamp_ends_the_replay_with_a_format_error(tmp_path):
    capture, offset = far_future_pcapng(tmp_path)
    done = tio("replay", str(capture), "--speed", "1", "--to", f"pcap:output={tmp_path / 'out.pcap'}", "--json")
    assert done.returncode == 1, done.stderr
    line = one_tio_line(done)
    assert "CaptureFormatError" in line and f"byte offset {offset}" in line
    assert json.loads(done.stdout)["packets_read"] == 2


@pytest.mark.parametrize("command", ["replay", "record"])
@pytest.mark.parametrize("spelling", ["same", "symlink"])
def test_recording_over_the_capture_read_is_refused(tmp_path, command, spelling):
    capture = tmp_path / "in.pcap"
    write_capture(str(capture), 5)
    before = capture.read_bytes()
    output = capture
    if spelling == "symlink":
        output = tmp_path / "link.pcap"
        os.symlink(capture, output)
    if command == "replay":
        done = tio("replay", str(capture), "--to", f"pcap:output={output}")
    else:
        done = tio("record", "--from", f"pcap:path={capture}", str(output))
    assert done.returncode == 2, done.stderr
    assert "same file" in one_tio_line(done)
    assert capture.read_bytes() == before, "rule: the capture being read is untouched"


def test_a_full_device_is_a_runtime_error(tmp_path):
    capture = tmp_path / "in.pcap"
    write_capture(str(capture), 5)
    done = tio("replay", str(capture), "--to", "pcap:output=/dev/full")
    assert done.returncode == 1, done.stderr
    line = one_tio_line(done)
    assert "/dev/full" in line and "No space left on device" in line


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_the_file_size_limit_ends_a_replay_with_a_summary_and_a_readable_capture(tmp_path, fmt):
    capture = tmp_path / "in.pcap"
    write_capture(str(capture), 20_000)
    out = tmp_path / f"out.{fmt}"
    limit = 300_001
    done = tio("replay", str(capture), "--to", f"pcap:output={out}", "--json", limit_file_size=limit)
    assert done.returncode == 1, done.stderr
    line = one_tio_line(done)
    assert "cannot record" in line and str(out) in line and "File too large" in line, line
    summary = json.loads(done.stdout)
    assert summary["errors"] and summary["packets_read"] > 0
    recorded = read_packets(out)  # the strict reader: only complete records
    assert recorded and out.stat().st_size <= limit
    assert f"holds the {len(recorded)} complete records" in line
