"""Builds the C packet kernels; all other metadata lives in pyproject.toml."""

from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("src/tio_core/csrc")

setup(
    ext_modules=[
        Extension(
            "tio_core._ckernels",
            sources=sorted(str(p) for p in CSRC.glob("*.c")),
            depends=sorted(str(p) for p in CSRC.glob("*.h")),
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
