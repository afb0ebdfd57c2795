"""Build throwaway plugin distributions on disk, discoverable by importlib.metadata.

A ``NAME-VERSION.dist-info`` folder with METADATA and entry_points.txt beside
the plugin module, on sys.path, is exactly what an installed wheel leaves, so
the registry's real entry-point discovery finds it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

BACKEND_PLUGIN = """
from tio_core import BackendDef, Option, hookimpl

@hookimpl
def tio_register_backends():
    return [BackendDef(
        name={backend!r},
        description="memory loop from {dist}",
        factory="{module}_impl:open_loop",
        options=(Option("depth", int, 4, "queue depth"),),
    )]
"""

LOOP_IMPL = """
from tio_core import Packet, Queue, QueueClosed, QueueSet

class LoopQueue(Queue):
    def __init__(self):
        self.pending = []
        self.closed = False

    def read(self):
        if self.closed:
            raise QueueClosed("loop closed")
        batch, self.pending = self.pending, []
        return [Packet(memoryview(b)) for b in batch]

    def write(self, data):
        if self.closed:
            raise QueueClosed("loop closed")
        self.pending.append(bytes(data))
        return len(data)

    def close(self):
        self.closed = True

class LoopSet(QueueSet):
    def __init__(self, depth):
        self.depth = depth
        self._queues = [LoopQueue()]

    def queues(self):
        return list(self._queues)

    def add(self, fd):
        raise ValueError("the loop backend takes no file descriptors")

def open_loop(depth):
    return LoopSet(depth)
"""


def make_dist(
    root: Path,
    dist: str,
    module: str,
    body: str,
    entry_name: str | None = None,
    impl: bool = True,
    entry_value: str | None = None,
) -> None:
    """Write module ``module`` and a dist-info for distribution ``dist`` under root.

    The entry point ``entry_name`` (default: the module name) names ``entry_value`` (default: the module).
    """
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    if impl:
        (root / f"{module}_impl.py").write_text(LOOP_IMPL)
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[tio.backends]\n{entry_name or module} = {entry_value or module}\n")


def backend_plugin(root: Path, dist: str, module: str, backend: str, entry_name: str | None = None) -> None:
    make_dist(root, dist, module, BACKEND_PLUGIN.format(backend=backend, dist=dist, module=module), entry_name)
