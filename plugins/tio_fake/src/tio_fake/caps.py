"""FakeCapsQueue: a fake queue that negotiated offloads (a CapsProvider), and the option that picks them."""

from __future__ import annotations

from typing import Any

from tio_core.contract import Capabilities, GSOProto
from tio_core.errors import ConfigError, OffloadError
from tio_core.wire import VirtioNetHdr
from tio_fake.queue import FakeQueue


def parse_capabilities(text: str | Capabilities | None) -> Capabilities | None:
    """``None`` -> permissive (no CapsProvider); "tso", "uso", "tso,uso", "none" -> Capabilities."""
    if text is None or isinstance(text, Capabilities):
        return text
    if not isinstance(text, str):
        raise ConfigError(f"fake: capabilities must be a string like 'tso,uso' or 'none', got {text!r}")
    words = {w.strip().lower() for w in text.replace("+", ",").split(",") if w.strip()}
    if words in ({"none"}, set()):
        return Capabilities()
    unknown = words - {"tso", "uso"}
    if unknown:
        raise ConfigError(f"fake: unknown capability {sorted(unknown)[0]!r}; use tso, uso, tso,uso or none")
    return Capabilities(tso="tso" in words, uso="uso" in words)


class FakeCapsQueue(FakeQueue):
    """A FakeQueue that negotiated ``caps`` (it is a CapsProvider).

    Multi-segment write_gso for a protocol that was not negotiated raises
    OffloadError, as code that ignores capabilities deserves.
    """

    def __init__(self, caps: Capabilities, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._caps = caps

    def capabilities(self) -> Capabilities:
        return self._caps

    def _check_negotiated(self, proto: GSOProto, hdr: VirtioNetHdr | None) -> None:
        if hdr is None or hdr.gso_size == 0:
            return  # nothing to segment: plain checksum offload only
        granted = self._caps.tso if proto == GSOProto.TCP else self._caps.uso
        if not granted:
            flag = "TSO" if proto == GSOProto.TCP else "USO"
            raise OffloadError(f"{self.name}: write_gso with {proto.name} but the queue did not negotiate {flag}")


__all__ = ["FakeCapsQueue", "parse_capabilities"]
