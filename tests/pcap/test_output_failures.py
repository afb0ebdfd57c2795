"""Recording when the output fails mid-run: disk full (ENOSPC), file size limit (EFBIG).

The rule (issue 12, item 2): the capture keeps only complete records (as many as fit), the
failure is a typed CaptureWriteError naming the file, the OS error and the records written, and
the set counts the packets it lost. The limits are real: RLIMIT_FSIZE in a subprocess (SIGXFSZ
ignored, so the kernel answers EFBIG), /dev/full, and a 64 KiB tmpfs in a private mount
namespace (root only).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tio_core import open_backend
from tio_core.errors import ConfigError, QueueClosed, TioError
from tio_pcap.bench import small_packets
from tio_pcap.errors import CaptureWriteError
from tio_pcap.reader import read_packets

REPO_ROOT = Path(__file__).resolve().parents[2]
PCAP_HEADER = 24
PCAPNG_HEADER = 28 + 32  # section header block, interface description block
FOUR_PAYLOADS = [b"a" * 300, b"b" * 300, b"c" * 300, b"d" * 100]

# Writes count packets (plain writes, or write_gso of FOUR_PAYLOADS recorded as one superpacket)
# under an optional RLIMIT_FSIZE, keeps writing once after the first failure, closes the set,
# and prints what happened as JSON.
SCRIPT = r"""
import json, resource, signal, sys
from tio_core import open_backend
from tio_core.contract import GSOProto
from tio_core.errors import QueueClosed, TioError
from tio_pcap.bench import small_packets
from tio_pcap.errors import CaptureWriteError
from tests.pcap.test_output_failures import FOUR_PAYLOADS, gso_pieces

out, fmt, limit, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
packets = small_packets()
report = {"accepted": 0, "raised_by": None, "refused_after": None}
qs = open_backend("pcap", output=out, output_format=fmt,
                  record_gso="superpacket" if mode == "gso" else "segmented")
queue = qs.queues()[0]

def describe(exc, where):
    report.update(raised_by=where, type=type(exc).__name__, tio=isinstance(exc, TioError),
                  queue_closed=isinstance(exc, QueueClosed), os_error=isinstance(exc, OSError),
                  errno=getattr(exc, "errno", None), message=str(exc),
                  records_written=getattr(exc, "records_written", None))

def write_one(n):
    if mode == "gso":
        queue.write_gso(*gso_pieces(n), FOUR_PAYLOADS, GSOProto.UDP)
    else:
        queue.write(packets[n % len(packets)])

try:
    for n in range(count):
        write_one(n)
        report["accepted"] += 1
except BaseException as exc:
    describe(exc, "write")
    try:
        write_one(0)
        report["refused_after"] = "accepted"
    except BaseException as again:
        report["refused_after"] = type(again).__name__
try:
    qs.close()
    report["close"] = "ok"
except BaseException as exc:
    report["close"] = type(exc).__name__
    if report["raised_by"] is None:
        describe(exc, "close")
stats = qs.output_stats() if hasattr(qs, "output_stats") else None
report["stats"] = stats and {"records_written": stats.records_written, "packets_lost": stats.packets_lost,
                   "lost_after_accept": stats.lost_after_accept,
                   "error": type(stats.error).__name__ if stats.error else None}
print(json.dumps(report))
"""


def gso_pieces(n: int) -> tuple[bytes, bytes]:
    """IPv4 and UDP headers for a write_gso of FOUR_PAYLOADS (the IP id tells superpackets apart)."""
    total = 20 + 8 + sum(map(len, FOUR_PAYLOADS))
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total, n & 0xFFFF, 0, 64, 17, 0, bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    )
    return ip, struct.pack("!HHHH", 4000, 53, 8 + sum(map(len, FOUR_PAYLOADS)), 0)


def record_sizes(fmt: str, packets: list[bytes]) -> list[int]:
    if fmt == "pcap":
        return [16 + len(p) for p in packets]
    return [32 + len(p) + (-len(p) % 4) for p in packets]


def header_size(fmt: str) -> int:
    return PCAP_HEADER if fmt == "pcap" else PCAPNG_HEADER


def run_script(
    out: Path, fmt: str, limit: int, count: int, mode: str = "write", wrapper: list[str] | None = None
) -> dict:
    command = [sys.executable, "-c", SCRIPT, str(out), fmt, str(limit), str(count), mode]
    done = subprocess.run((wrapper or []) + command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def expected_written(fmt: str, sent: list[bytes], capacity: int) -> int:
    """How many complete records of sent fit in a file of capacity bytes."""
    size, count = header_size(fmt), 0
    for record in record_sizes(fmt, sent):
        if size + record > capacity:
            break
        size += record
        count += 1
    return count


def check_capture(
    out: Path,
    fmt: str,
    sent: list[bytes],
    capacity: int,
    report: dict,
    error: int,
    words: str,
    named: Path | None = None,
) -> None:
    """The capture out holds exactly the records that fit, and the error (naming named, default
    out) says so."""
    kept = expected_written(fmt, sent, capacity)
    assert report["type"] == "CaptureWriteError" and report["tio"] and report["os_error"], report
    assert report["queue_closed"], "a failed output stops accepting writes (a QueueClosed ends a forward)"
    assert report["errno"] == error, report
    assert str(named or out) in report["message"] and words in report["message"], report["message"]
    assert f"{kept} complete records" in report["message"], report["message"]
    assert report["records_written"] == kept
    # "capture holds only complete records": the strict reader accepts it, and nothing that fitted is missing
    assert read_packets(out) == sent[:kept], "the capture must hold exactly the complete records that fit"
    assert out.stat().st_size == header_size(fmt) + sum(record_sizes(fmt, sent[:kept]))


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_file_size_limit_hit_by_a_write_keeps_every_complete_record(tmp_path, fmt):
    out = tmp_path / f"limited.{fmt}"
    limit = 300_001  # the first 256 KiB buffer fits, the second is cut by the limit mid-record
    count = 8000
    report = run_script(out, fmt, limit, count)
    packets = small_packets()
    sent = [packets[n % len(packets)] for n in range(count)]
    assert report["raised_by"] == "write", report
    check_capture(out, fmt, sent, limit, report, errno.EFBIG, "File too large")
    kept = report["records_written"]
    attempted = report["accepted"] + 1  # the write that raised
    assert report["refused_after"] == "CaptureWriteError", "a failed output refuses every later write"
    assert report["close"] == "ok", "close() after a failure already raised does not raise it again"
    assert report["stats"] == {
        "records_written": kept,
        "packets_lost": attempted + 1 - kept,
        "lost_after_accept": report["accepted"] - kept,
        "error": "CaptureWriteError",
    }
    assert report["stats"]["lost_after_accept"] > 0  # buffered records of writes that had returned


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_file_size_limit_hit_at_close_is_raised_by_close(tmp_path, fmt):
    out = tmp_path / f"limited.{fmt}"
    limit = 300_001
    count = 4400  # one buffer reaches the disk on its own, the rest only at close()
    report = run_script(out, fmt, limit, count)
    packets = small_packets()
    sent = [packets[n % len(packets)] for n in range(count)]
    assert report["raised_by"] == "close" and report["accepted"] == count, report
    check_capture(out, fmt, sent, limit, report, errno.EFBIG, "File too large")
    kept = report["records_written"]
    assert report["stats"] == {
        "records_written": kept,
        "packets_lost": count - kept,
        "lost_after_accept": count - kept,
        "error": "CaptureWriteError",
    }


def test_superpacket_records_count_their_wire_packets_as_lost(tmp_path):
    out = tmp_path / "gso.pcap"
    limit = 300_001
    count = 600  # superpackets of about 1 KB: the limit cuts the second buffer
    report = run_script(out, "pcap", limit, count, mode="gso")
    assert report["raised_by"] == "write", report
    kept = report["records_written"]
    packets = read_packets(out)
    assert len(packets) == kept and all(len(p) == 28 + 1000 for p in packets)
    assert PCAP_HEADER + kept * (16 + 1028) <= limit < PCAP_HEADER + (kept + 1) * (16 + 1028)
    wire = len(FOUR_PAYLOADS)
    assert report["stats"]["packets_lost"] == (report["accepted"] + 2 - kept) * wire
    assert report["stats"]["lost_after_accept"] == (report["accepted"] - kept) * wire


def test_a_full_device_at_open_is_a_write_error_not_a_config_error():
    with pytest.raises(CaptureWriteError) as caught:
        open_backend("pcap", output="/dev/full")
    error = caught.value
    assert not isinstance(error, ConfigError), "disk full is a runtime failure (exit 1), not a usage error"
    assert isinstance(error, TioError) and isinstance(error, OSError) and isinstance(error, QueueClosed)
    assert error.errno == errno.ENOSPC and error.records_written == 0
    assert "/dev/full" in str(error) and "No space left on device" in str(error) and "0 complete records" in str(error)


def test_a_full_device_is_a_write_error_for_the_writer_itself():
    from tio_pcap.writer import CaptureWriter

    with pytest.raises(CaptureWriteError, match="No space left on device"):
        CaptureWriter("/dev/full", "pcapng")


def _can_mount_tmpfs() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None and sys.platform == "linux"


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root and unshare for a private tmpfs")
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_disk_full_mid_recording_keeps_every_complete_record(tmp_path, fmt):
    small = tmp_path / "small"
    small.mkdir()
    capacity = 64 * 1024
    out = small / f"full.{fmt}"
    copy = tmp_path / f"copy.{fmt}"
    # The tmpfs exists only in the private mount namespace of this one command; the capture is
    # copied out before the namespace (and the mount) goes away.
    command = (
        f'mount -t tmpfs -o size={capacity} tio-pcap-test "{small}" && "$@"; status=$?; '
        f'cp "{out}" "{copy}"; exit $status'
    )
    count = 5000  # more than one 256 KiB buffer: a write() meets the full disk
    report = run_script(
        out, fmt, 0, count, wrapper=["unshare", "--mount", "--propagation", "private", "sh", "-c", command, "sh"]
    )
    packets = small_packets()
    sent = [packets[n % len(packets)] for n in range(count)]
    assert report["raised_by"] == "write", report
    check_capture(copy, fmt, sent, capacity, report, errno.ENOSPC, "No space left on device", named=out)
    assert not small.is_mount() and not any(small.iterdir()), "the tmpfs must not outlive the test's namespace"
