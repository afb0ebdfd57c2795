"""The kernels' fuzz target, run for a bounded time in every test run (issue 12, item 15).

fuzz_kernels.py gets FUZZ_SECONDS per kernel function (about ten seconds in
all). Where gcc and its sanitizer runtimes are installed it runs against an
AddressSanitizer + UBSan build of the C kernels (cached by source hash, so
only the first run after a C change compiles), so an out-of-bounds access
aborts with a report; elsewhere against the regular build.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from tio_core.kernels.native import built_extension

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "src" / "tio_core" / "csrc"
FUZZ_SECONDS = float(os.environ.get("TIO_FUZZ_SECONDS", "1.0"))
TARGETS = [
    "checksum",
    "pseudo_header_sum",
    "ipv4_header_checksum",
    "finish_checksum",
    "gso_info_from_vnet",
    "segmented_size",
    "segment",
    "segment_into",
    "coalesce_plan",
    "plan_gso_write",
]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]


def _gcc_runtime(name: str) -> str | None:
    found = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def sanitized_build() -> tuple[Path, dict[str, str]] | None:
    """(extension, environment) of an ASan + UBSan build, or None where gcc or its runtimes are missing."""
    if shutil.which("gcc") is None or sys.platform != "linux":
        return None
    asan, ubsan = _gcc_runtime("libasan.so"), _gcc_runtime("libubsan.so")
    if asan is None or ubsan is None:
        return None
    sources = sorted(CSRC.glob("*.[ch]"))
    digest = hashlib.sha256()
    for part in (*(p.read_bytes() for p in sources), " ".join(SANITIZE).encode(), sys.version.encode()):
        digest.update(part)
    ext = (
        Path(tempfile.gettempdir())
        / f"tio-asan-{digest.hexdigest()[:16]}"
        / ("_ckernels" + sysconfig.get_config_var("EXT_SUFFIX"))
    )
    if not ext.exists():
        ext.parent.mkdir(exist_ok=True)
        partial = ext.with_name(f"{ext.name}.{os.getpid()}")
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O1", "-g", "-std=c11", *SANITIZE, f"-I{sysconfig.get_paths()['include']}",
             *(str(p) for p in sources if p.suffix == ".c"), "-o", str(partial)],
            check=True, capture_output=True,
        )  # fmt: skip
        os.replace(partial, ext)  # atomic: parallel runs never load a half-written build
    env = {
        "PYTHONMALLOC": "malloc",
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "LD_PRELOAD": f"{asan}:{ubsan}",
    }
    return ext, env


@pytest.mark.skipif(built_extension() is None, reason="C kernels not built")
def test_fuzzed_kernels_agree_with_their_twins_and_keep_the_invariants():
    command = [sys.executable, "-m", "tests.kernels.fuzz_kernels", "--seconds", str(FUZZ_SECONDS)]
    env = {k: v for k, v in os.environ.items() if k != "TIO_PURE"}
    build = sanitized_build()
    if build is not None:
        ext, sanitizer_env = build
        command += ["--extension", str(ext), "--expect-asan"]
        env.update(sanitizer_env)
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60 + 20 * FUZZ_SECONDS)
    assert run.returncode == 0, f"fuzzing found a problem:\n{run.stdout[-2000:]}\n{run.stderr[-6000:]}"
    iterations = dict(line.split() for line in run.stdout.splitlines())
    assert sorted(iterations) == sorted(TARGETS), "every kernel function is fuzzed"
    assert all(int(count) > 0 for count in iterations.values())
