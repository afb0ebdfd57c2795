"""Every module of every distribution imports on its own in a fresh interpreter.

An import circle only shows when its modules are imported in a particular
order, so each module gets an interpreter of its own (as multidict's
test_circular_imports does). The list is built from the source tree, so a new
module is covered without touching this file.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [REPO / "src", *sorted((REPO / "plugins").glob("*/src"))]


def _module_names() -> list[str]:
    names = []
    for root in SOURCE_ROOTS:
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__main__":
                continue  # runs the CLI when imported
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


MODULES = _module_names()


def _import_alone(name: str) -> tuple[str, str]:
    result = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=60)
    return name, result.stderr.strip().splitlines()[-1] if result.returncode else ""


def test_the_source_tree_has_modules():
    assert {"tio_core", "tio_core.contract", "tio_fake", "tio_linux", "tio_pcap"} <= set(MODULES)


def test_every_module_imports_alone_in_a_fresh_interpreter():
    with ThreadPoolExecutor(2) as pool:
        failures = {name: error for name, error in pool.map(_import_alone, MODULES) if error}
    assert not failures, (
        f"modules that fail to import on their own (an import circle or a missing dependency): {failures}"
    )
