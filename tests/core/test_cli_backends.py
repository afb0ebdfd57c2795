"""`tio --version` and `tio backends` through the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tio_core
from tests.support.plugin_dists import backend_plugin, make_dist

TIO = str(Path(sys.executable).with_name("tio"))


def run_tio(*args, env=None):
    return subprocess.run([TIO, *args], capture_output=True, text=True, env=env, timeout=60)


def test_version():
    result = run_tio("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tio {tio_core.__version__}"


def test_no_command_is_a_usage_error():
    assert run_tio().returncode == 2


def test_backends_lists_installed_and_broken_plugins(tmp_path):
    make_dist(tmp_path, "tio-broken", "tio_broken_cli", "raise RuntimeError('no driver')\n", impl=False)
    backend_plugin(tmp_path, "tio-loop", "tio_loop_cli", "loop")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("TIO_PLUGINS", None)
    result = run_tio("backends", "-v", env=env)
    assert result.returncode == 1, "tio backends exits 1 when a plugin failed to load (README, --help)"
    assert result.stdout.splitlines()[0].split() == ["NAME", "DESCRIPTION", "DISTRIBUTION", "VERSION"]
    assert any(
        line.split()[0] == "loop" and line.split()[-2:] == ["tio-loop", "1.2.3"]
        for line in result.stdout.splitlines()[1:]
        if line.strip()
    )
    assert "depth (integer, default 4): queue depth" in result.stdout
    assert "tio-broken:tio_broken_cli (tio-broken): import failed: RuntimeError: no driver" in result.stdout


def test_a_benchmark_runner_that_exits_does_not_end_tio_bench(tmp_path):
    body = (
        "import sys\nfrom tio_core import BenchmarkDef, hookimpl\n\n"
        "def run(quick=False):\n    sys.exit(6)\n\n"
        "@hookimpl\ndef tio_register_benchmarks():\n    return [BenchmarkDef('quits', 'calls sys.exit', run)]\n"
    )
    make_dist(tmp_path, "tio-quits", "tio_quits_cli", body, impl=False)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("TIO_PLUGINS", None)
    result = run_tio("bench", "--only", "quits", "--quiet", env=env)
    assert result.returncode == 1, f"a failing benchmark is a runtime error of tio bench, not its exit: {result}"
    assert "benchmark 'quits' failed: SystemExit: 6" in result.stderr + result.stdout, result
