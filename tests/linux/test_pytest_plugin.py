"""The pytest plugin of tio-linux, run the way a user runs it: pytest in a subprocess, from the entry point.

Covers the README's example as written there, the skip reasons without
privileges or without /dev/net/tun, and runs interrupted mid-test (Ctrl-C to
the process group, SIGTERM to pytest) that must leave no namespace, device
or process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[2] / "plugins" / "tio_linux" / "README.md"
EXAMPLE_MARK = "<!-- example: test_my_forwarder.py -->"
DROP_PRIVILEGES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]  # still uid 0, but no capabilities
HIDE_TUN = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs none /dev/net && exec "$@"', "-"]


def readme_example() -> str:
    text = README.read_text()
    found = re.search(re.escape(EXAMPLE_MARK) + r"\n```python\n(.*?)```", text, re.S)
    assert found, f"{README} has no python block after {EXAMPLE_MARK}"
    return found.group(1)


def pytest_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args]


def run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_the_readme_example_passes_as_root(pytester):
    pytester.makepyfile(test_my_forwarder=readme_example())
    result = run(pytest_argv("test_my_forwarder.py"), pytester.path)
    assert "1 passed" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        (DROP_PRIVILEGES, "tio_tun_link needs root: this process lacks CAP_SYS_ADMIN and CAP_NET_ADMIN"),
        (HIDE_TUN, "tio_tun_link needs /dev/net/tun (load the tun module"),
    ],
    ids=["without-privileges", "without-dev-net-tun"],
)
def test_the_readme_example_skips_with_the_reason_elsewhere(pytester, prefix, reason):
    pytester.makepyfile(test_my_forwarder=readme_example())
    result = run(prefix + pytest_argv("test_my_forwarder.py"), pytester.path)
    assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout + result.stderr
    assert reason in result.stdout, result.stdout


def test_tio_netns_fixture_and_its_skip_reason(pytester):
    pytester.makepyfile(
        """
        import os

        def test_namespaces(tio_netns):
            first, second = tio_netns(), tio_netns(ipv6=False)
            assert first.exists() and second.exists() and first.name != second.name
            assert first.run(lambda: os.stat("/proc/thread-self/ns/net").st_ino) != os.stat(
                "/proc/thread-self/ns/net").st_ino
        """
    )
    assert "1 passed" in run(pytest_argv(), pytester.path).stdout
    skipped = run(DROP_PRIVILEGES + pytest_argv(), pytester.path).stdout
    assert "1 skipped" in skipped and "tio_netns needs root" in skipped, skipped


# A test that records what it made, says so, and then waits to be interrupted.
HANGING_TEST = """
import json, os, sys, time

def test_interrupted(tio_tun_link, tio_netns):
    forwarder = tio_tun_link.start([sys.executable, "-m", "tio_linux.refforward", "vnet", "{a}", "{b}"], ready="READY")
    assert tio_tun_link.tcp(1024 * 1024).intact
    extra = tio_netns()
    sleeper = extra.popen(["sleep", "300"])
    made = {
        "namespaces": [tio_tun_link.a.ns.name, tio_tun_link.b.ns.name, extra.name],
        "devices": [tio_tun_link.a.ifname, tio_tun_link.b.ifname],
        "pids": forwarder.processes() + [sleeper.pid],
    }
    with open("made.json.tmp", "w") as out:
        json.dump(made, out)
    os.rename("made.json.tmp", "made.json")
    time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_run_leaves_no_namespace_device_or_process(pytester, how):
    pytester.makepyfile(test_hanging=HANGING_TEST)
    proc = subprocess.Popen(
        pytest_argv("test_hanging.py"),
        cwd=pytester.path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    made_file = pytester.path / "made.json"
    try:
        deadline = time.monotonic() + 120
        while not made_file.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the test never got going"
            time.sleep(0.05)
        made = json.loads(made_file.read_text())
        assert all(os.path.exists(f"/run/netns/{name}") for name in made["namespaces"])
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the whole foreground group
        else:
            proc.send_signal(signal.SIGTERM)  # what a CI timeout sends: pytest alone
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output, output
    assert [name for name in made["namespaces"] if os.path.exists(f"/run/netns/{name}")] == [], output
    assert set(made["devices"]) & set(os.listdir("/sys/class/net")) == set(), output
    assert [pid for pid in made["pids"] if alive(pid)] == [], output
