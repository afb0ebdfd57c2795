"""The C kernels under AddressSanitizer/UBSan: hostile input must never touch memory out of bounds."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "src" / "tio_core" / "csrc"


def _runtime(name):
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None or sys.platform != "linux", reason="needs gcc on Linux")
def test_c_kernels_are_clean_under_asan_and_ubsan(tmp_path):
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("gcc sanitizer runtimes not installed")
    ext = tmp_path / ("_ckernels" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O1",
            "-g",
            "-std=c11",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer",
            f"-I{sysconfig.get_paths()['include']}",
            *sorted(str(p) for p in CSRC.glob("*.c")),
            "-o",
            str(ext),
        ],
        check=True,
        capture_output=True,
    )
    env = dict(
        os.environ,
        PYTHONMALLOC="malloc",
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        LD_PRELOAD=f"{asan}:{ubsan}",
    )
    env.pop("TIO_PURE", None)
    run = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("fuzz_c_kernels.py")), str(ext), "3000"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "fuzzed 3000" in run.stdout
