"""How the contract suite (tio-testing) drives the fake: inbound by inject(), outbound from the write record.

pytest --tio-contract fake
pytest --tio-contract fake:capabilities=tso+uso
pytest --tio-contract fake:end_of_stream=true      # a drained fake is a finite source
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tio_core import open_backend
from tio_core.contract import QueueSet
from tio_fake.backend import FakeQueueSet
from tio_testing import ContractHarness


class FakeHarness(ContractHarness):
    """Opens the fake through the registry, as users do; it releases borrowed views on the next read."""

    borrow_invalidates = True

    def __init__(self, backend: str, options: Mapping[str, Any], workdir: Path) -> None:
        super().__init__(backend, options, workdir)
        self.options.setdefault("max_batch", 16)
        self.max_batch = self.options["max_batch"]
        self.finite = bool(self.options.get("end_of_stream", False))

    def open(self, inbound: Sequence[bytes]) -> QueueSet:
        qs = open_backend(self.backend, **self.options)
        if not isinstance(qs, FakeQueueSet):
            raise TypeError(f"backend {self.backend!r} is not the fake: {type(qs).__name__}")
        qs.inject(*inbound)
        return qs

    def outbound(self, qs: QueueSet, min_count: int = 0) -> list[bytes]:
        assert isinstance(qs, FakeQueueSet)
        return list(qs[0].written_packets())


__all__ = ["FakeHarness"]
