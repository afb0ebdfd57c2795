"""The CLI never prints a traceback (issue 12 item 13): bad input is one `tio:` line and exit 2 (usage) or 1.

The table runs main() in this process (fast); the cases that need a real
process (a closed pipe, a full device) run the console script.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.cli.helpers import DEMO, TIO
from tio_core.cli import main

RULE = "bad input gives one 'tio:' line and exit 2 (usage) or 1 (runtime), never a traceback"
R = ["replay", DEMO, "--to", "fake"]


def usage_errors(argv: list[str], flag: str, *values: str) -> list[tuple[list[str], int]]:
    """One case per bad ``value`` of ``flag`` after ``argv``: each a usage error."""
    return [([*argv, flag, value], 2) for value in values]


BAD_SOURCE_SPECS = ("", ":x=1", "nosuch", "fake:queues", "fake:queues=abc", 'fake:queues="1', "fake:queues=1\\")
BAD_ARGV = [
    ([], 2),
    (["nosuch"], 2),
    (["forward", "--bogus"], 2),
    *usage_errors(["forward"], "--limit", "0", "-5", "x", "1e3", "9" * 40),
    *usage_errors(["forward"], "--workers", "0", "-1", "100000", "9" * 40),
    *usage_errors(["forward"], "--duration", "0", "-1", "nan", "inf", "1e400"),
    *usage_errors(["forward"], "--stats", "0", "nan"),
    (["forward", "--from", "fake"], 2),
    (["forward", "--to", "fake"], 2),
    *[(["forward", "--from", spec, "--to", "fake"], 2) for spec in BAD_SOURCE_SPECS],
    (["forward", "--from", "fake:nope=1", "--to", "fake"], 2),
    (["forward", "--from", f"pcap:path={DEMO},loop=often", "--to", "fake"], 2),
    (["forward", "--from", f"pcap:path={DEMO},speed=0", "--to", "fake"], 2),
    (["forward", "--config", "/nonexistent/tio.toml"], 2),
    *usage_errors(R, "--speed", "1e-320", "0", "-1", "nan", "1e309"),
    *usage_errors(R, "--pps", "1e-310", "0", "inf"),
    *usage_errors(R, "--mbps", "0", "nan", "1e-320"),
    *usage_errors(R, "--loop", "-1", "1.5"),
    *usage_errors([*R, "--loop", "2"], "--loop-delay", "-1", "nan"),
    *usage_errors(R, "--gso-mtu", "10", "99999999"),
    ([*R, "--speed", "2", "--pps", "5"], 2),
    ([*R, "--mbps", "2", "--pps", "5"], 2),
    (["replay", DEMO], 2),
    (["replay", "/nonexistent.pcap", "--to", "fake"], 1),  # a capture that cannot be read: a runtime error
    (["replay", "/", "--to", "fake"], 1),
    (["replay", "/etc/hostname", "--to", "fake"], 1),
    (["record", "--from", "fake", "/nonexistent/dir/out.pcap"], 2),
    (["record", "--from", f"pcap:path={DEMO}"], 2),
    (["info"], 2),
    (["info", ""], 2),
    (["info", "nosuch"], 2),
    (["info", "fake", "queues"], 2),
    (["info", "fake", "=1"], 2),
    (["info", "fake", "queues=0"], 2),
    (["info", "pcap"], 2),
    (["backends", "--bogus"], 2),
    (["bench", "--only", "nosuch"], 2),
    (["bench", "--quick", "--plot", "/nonexistent/dir/chart.png"], 2),  # refused before any benchmark runs
]


def run_main(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_tio_line(code, err, expected) -> None:
    assert code == expected, f"{RULE}: expected exit {expected}, got {code}: {err}"
    assert "Traceback" not in err and "unexpected" not in err, f"{RULE}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tio: "), f"{RULE}: {err!r}"


@pytest.mark.parametrize("argv,expected", BAD_ARGV, ids=[" ".join(a)[:60] or "(none)" for a, _ in BAD_ARGV])
def test_bad_argv(argv, expected, capsys):
    code, _out, err = run_main(argv, capsys)
    assert_one_tio_line(code, err, expected)


FAKE_TO_FAKE = b"[forward.from]\nbackend='fake'\n[forward.to]\nbackend='fake'\n"
CONFIGS = {
    "deeply nested": b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "not UTF-8": b'[forward.from]\nbackend = "\xff\xfe"\n',
    "not TOML": b"[forward\n",
    "binary": bytes(range(256)),
    "forward not a table": b"forward = 5\n",
    "from not a table": b"[forward]\nfrom = 5\n",
    "backend not a string": b"[forward.from]\nbackend = 5\n[forward.to]\nbackend = 'fake'\n",
    "options not a table": b"[forward.from]\nbackend = 'fake'\noptions = 5\n[forward.to]\nbackend = 'fake'\n",
    "workers not an integer": b"[forward]\nworkers = 'x'\n" + FAKE_TO_FAKE,
    "workers absurd": b"[forward]\nworkers = 10000000\n" + FAKE_TO_FAKE,
    "unknown key": b"[forward]\nspeed = 3\n",
    "empty": b"",
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bad_config_file_is_a_config_error(name, tmp_path, capsys):
    config = tmp_path / "tio.toml"
    config.write_bytes(CONFIGS[name])
    code, _out, err = run_main(["forward", "--config", str(config)], capsys)
    assert_one_tio_line(code, err, 2)


def test_config_that_is_a_directory(tmp_path, capsys):
    code, _out, err = run_main(["forward", "--config", str(tmp_path)], capsys)
    assert_one_tio_line(code, err, 2)


@pytest.mark.parametrize(
    "argv",
    [["info", "fake"], ["backends", "-v"], ["forward"], ["replay", "--help"], ["--version"]],
    ids=lambda argv: " ".join(argv),
)
def test_a_reader_that_went_away_ends_quietly(argv):
    # like `tio info fake | head -1`: stdout is a pipe whose reader is gone before tio writes
    proc = subprocess.Popen([TIO, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err == b"", f"a closed pipe ends tio quietly, got {err!r}"


def test_a_reader_that_goes_away_mid_run_stops_the_run_quietly():
    proc = subprocess.Popen(
        [TIO, "replay", DEMO, "--to", "fake", "--pps", "100", "--loop", "0", "--stats", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith(b"[")
    proc.stdout.close()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and b"Traceback" not in err, err


@pytest.mark.parametrize("argv", [["info", "fake"], ["backends"], ["forward", "--json"], ["forward"]])
def test_a_full_device_is_one_line_and_exit_1(argv):
    with open("/dev/full", "w") as full:
        result = subprocess.run([TIO, *argv], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr == "tio: cannot write to standard output: No space left on device\n"


def test_recording_to_a_full_device_is_reported_in_tio_lines():
    result = subprocess.run(
        [TIO, "record", "--from", f"pcap:path={DEMO}", "/dev/full"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode in (1, 2), result.stderr  # the pcap backend decides whether creating it failed
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    assert all(line.startswith("tio: ") for line in result.stderr.splitlines()), result.stderr
