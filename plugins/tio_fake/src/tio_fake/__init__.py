"""tio-fake: an in-memory tio backend and pytest fixtures for testing code that uses tio.

The names below load lazily so that backend discovery, which imports
``tio_fake.plugin``, stays cheap.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "FakeQueue": "tio_fake.backend",
    "FakeCapsQueue": "tio_fake.backend",
    "FakeQueueSet": "tio_fake.backend",
    "FdQueue": "tio_fake.backend",
    "FakeFdError": "tio_fake.backend",
    "ReadTimeout": "tio_fake.backend",
    "WriteRecord": "tio_fake.backend",
    "STALE_MARKER": "tio_fake.backend",
    "fake_pair": "tio_fake.backend",
    "open_fake": "tio_fake.backend",
    "DELIVER_SEGMENTED": "tio_fake.backend",
    "DELIVER_SUPERPACKET": "tio_fake.backend",
    "check_ip_packet": "tio_fake.backend",
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
