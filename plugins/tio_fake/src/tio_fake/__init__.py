"""tio-fake: an in-memory tio backend and pytest fixtures for testing code that uses tio.

The names below load lazily so that backend discovery, which imports
``tio_fake.plugin``, stays cheap. Modules, one job each: ``queue`` (FakeQueue),
``caps`` (a queue that negotiated offloads), ``fd_queue`` (a queue on a
socket), ``backend`` (the set, registered as backend ``fake``), ``pair``
(two sets back to back), ``records`` (what a write looked like),
``validation`` (what a TUN accepts), ``packets`` (PacketFactory),
``pytest_plugin`` (fixtures) and ``contract_harness`` (for the contract suite).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "FakeQueue": "tio_fake.queue",
    "STALE_MARKER": "tio_fake.queue",
    "FakeCapsQueue": "tio_fake.caps",
    "FdQueue": "tio_fake.fd_queue",
    "FdCapsQueue": "tio_fake.fd_queue",
    "FakeQueueSet": "tio_fake.backend",
    "open_fake": "tio_fake.backend",
    "fake_pair": "tio_fake.pair",
    "FakeFdError": "tio_fake.errors",
    "ReadTimeout": "tio_fake.errors",
    "WriteRecord": "tio_fake.records",
    "DELIVER_SEGMENTED": "tio_fake.records",
    "DELIVER_SUPERPACKET": "tio_fake.records",
    "check_ip_packet": "tio_fake.validation",
    "PacketFactory": "tio_fake.packets",
    "MALFORMED_KINDS": "tio_fake.packets",
    "payload_pattern": "tio_fake.packets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tio_fake' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
