"""The layers of docs/architecture.md, enforced: each part of tio_core imports only what lies below it.

Imports are read from the source (every ``import``/``from`` statement, also
those inside functions), so a lazy import cannot slip past. A new module must
belong to a layer listed here: the test fails for one it does not know.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "tio_core"

# Each part of tio_core and the other parts it may import (besides itself).
FOUNDATION = {"tio_core.errors", "tio_core.contract", "tio_core.wire", "tio_core._ckernels"}
MAY_IMPORT: dict[str, set[str]] = {
    "tio_core.errors": set(),
    "tio_core.contract": {"tio_core.errors"},
    "tio_core.wire": {"tio_core.errors", "tio_core.contract"},
    "tio_core.kernels": FOUNDATION,
    "tio_core.coalesce": FOUNDATION | {"tio_core.kernels"},
    "tio_core.aio": FOUNDATION,
    "tio_core.forward": FOUNDATION | {"tio_core.kernels", "tio_core.coalesce"},
    "tio_core.plugin": FOUNDATION | {"tio_core.bench"},  # bench only for typing BenchmarkDef's runner
    "tio_core.bench": FOUNDATION | {"tio_core.kernels", "tio_core.coalesce"},
    "tio_core.cli": FOUNDATION | {"tio_core", "tio_core.plugin", "tio_core.forward", "tio_core.bench"},
    "tio_core": FOUNDATION | {"tio_core.plugin"},  # the package root re-exports the public API
}


PLUGIN_PACKAGES = ("tio_fake", "tio_linux", "tio_pcap")  # the core never imports a plugin


def _part_of(module: str) -> str:
    """The layer a dotted module name belongs to: the longest listed prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MAY_IMPORT or candidate in FOUNDATION:
            return candidate
    return module


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target != "tio_core":  # "from tio_core import kernels" is judged by what it names
                names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in ("tio_core", *PLUGIN_PACKAGES)}


def test_every_module_belongs_to_a_known_layer():
    unknown = sorted(_module_name(p) for p in SRC.rglob("*.py") if _part_of(_module_name(p)) not in MAY_IMPORT)
    assert not unknown, f"modules outside every layer of docs/architecture.md (add them to MAY_IMPORT): {unknown}"


def test_each_layer_imports_only_what_lies_below_it():
    breaches = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        part = _part_of(module)
        allowed = MAY_IMPORT.get(part, set()) | {part}
        for name in sorted(_imported(ast.parse(path.read_text()), module, path.name == "__init__.py")):
            target = _part_of(name)
            if target != part and target not in allowed and name not in allowed:
                breaches.append(f"{module} imports {name} ({part} may import only {sorted(allowed)})")
    assert not breaches, "layering broken:\n" + "\n".join(breaches)
