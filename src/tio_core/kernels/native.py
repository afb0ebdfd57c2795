"""The one place that decides whether tio uses its C extension.

``tio_core._ckernels`` holds every C loop (checksums, segmentation and the
coalescing planner). Everything that can run in C or in its pure-Python twin
(the kernels facade, the coalescer, the benchmarks, the test fixtures) asks
here instead of importing the extension itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

Kernel = TypeVar("Kernel", bound=Callable[..., object])

PURE_ENV = "TIO_PURE"  # set to anything but "" or "0" to force the pure-Python twins


def built_extension() -> ModuleType | None:
    """The C extension when it is built, whatever TIO_PURE says (tests compare both)."""
    try:
        import tio_core._ckernels as _ckernels
    except ImportError:  # not built: the twins are complete on their own
        return None
    return _ckernels


def pure_forced() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def selected_extension() -> ModuleType | None:
    """The C extension if it is built and TIO_PURE does not force the twins, else None."""
    return None if pure_forced() else built_extension()


def select(name: str, twin: Kernel) -> Kernel:
    """The C extension's kernel ``name`` if the extension is selected, else its pure twin (same signature)."""
    extension = selected_extension()
    if extension is None:
        return twin
    kernel: Kernel = getattr(extension, name)
    return kernel
