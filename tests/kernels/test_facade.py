"""The tio_core.kernels facade: which implementation it picked, and TIO_PURE."""

import os
import subprocess
import sys

from tio_core import kernels
from tio_core.kernels import _pykernels
from tio_core.kernels.native import built_extension


def _implementation(env_value):
    env = {k: v for k, v in os.environ.items() if k != "TIO_PURE"}
    if env_value is not None:
        env["TIO_PURE"] = env_value
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tio_core import kernels; print(kernels.IMPLEMENTATION, kernels.segment.__module__)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_tio_pure_forces_the_twins():
    assert _implementation("1") == ["pure", "tio_core.kernels._pykernels"]


def test_default_prefers_c_when_built():
    expected = "pure" if built_extension() is None else "c"
    assert _implementation(None)[0] == expected
    assert _implementation("0")[0] == expected


def test_facade_exports_the_agreed_api():
    for name in kernels._FUNCTIONS:
        assert callable(getattr(kernels, name))
    impl = _pykernels if kernels.IMPLEMENTATION == "pure" else kernels._impl
    assert kernels.segment is impl.segment


def test_output_limit_is_the_same_in_both_implementations():
    from .conftest import IMPLEMENTATIONS

    if "c" in IMPLEMENTATIONS:
        assert IMPLEMENTATIONS["c"].MAX_SEGMENTED_SIZE == _pykernels.MAX_SEGMENTED_SIZE == kernels.MAX_SEGMENTED_SIZE
