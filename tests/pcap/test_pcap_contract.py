"""The pcap backend passes the shared backend contract suite.

Inbound packets come from a RAW capture that scapy writes; what the queue
wrote is read back from its output capture with scapy's own reader.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from scapy.utils import RawPcapNgReader, RawPcapReader

from tests.contract.harness import ContractHarness
from tests.contract.suite import BackendContractTests
from tests.pcap.captures import RAW, write_pcap
from tio_core import open_backend
from tio_core.contract import QueueSet


class PcapHarness(ContractHarness):
    finite = True  # reading past the capture raises EndOfStream
    borrow_invalidates = True  # views are released by the next read()/close()
    max_batch = 16

    def __init__(self, directory, suffix: str = ".pcap", **options) -> None:
        self.directory = directory
        self.suffix = suffix  # the output format follows the file name
        self.options = options
        self.outputs: dict[int, str] = {}

    def open(self, inbound: Sequence[bytes]) -> QueueSet:
        index = len(self.outputs)
        capture = write_pcap(self.directory / f"in{index}.pcap", list(inbound), RAW)
        output = str(self.directory / f"out{index}{self.suffix}")
        qs = open_backend("pcap", path=str(capture), output=output, batch=self.max_batch, **self.options)
        self.outputs[id(qs)] = output
        return qs

    def outbound(self, qs: QueueSet, min_count: int = 0) -> list[bytes]:
        qs.flush()
        path = self.outputs[id(qs)]
        reader = RawPcapNgReader(path) if path.endswith(".pcapng") else RawPcapReader(path)
        try:
            packets = [data for data, _meta in reader]
            linktypes = (
                [iface[0] for iface in reader.interfaces] if hasattr(reader, "interfaces") else [reader.linktype]
            )
            assert linktypes == [RAW]
            return packets
        finally:
            reader.close()


class TestPcapContract(BackendContractTests):
    @pytest.fixture
    def harness(self, tmp_path):
        harness = PcapHarness(tmp_path)
        yield harness
        harness.close()


class TestPcapContractPacedWithoutOffloads(BackendContractTests):
    """Paced replay and a queue without TSO/USO obey the same contract."""

    @pytest.fixture
    def harness(self, tmp_path):
        harness = PcapHarness(tmp_path, pacing="rate", rate=100_000.0, tso=False, uso=False)
        yield harness
        harness.close()


class TestPcapContractPcapngOutput(BackendContractTests):
    @pytest.fixture
    def harness(self, tmp_path):
        harness = PcapHarness(tmp_path, suffix=".pcapng")
        yield harness
        harness.close()
