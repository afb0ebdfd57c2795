"""How the contract suite (tio-testing) drives the pcap backend.

Inbound packets come from a RAW capture that scapy writes; what the queue
wrote is read back from its output capture with scapy's own reader, so the
suite checks the backend against an independent implementation.

    pytest --tio-contract pcap
    pytest --tio-contract pcap:output_format=pcapng
    pytest --tio-contract pcap:pacing=rate,rate=100000,tso=false,uso=false
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tio_core import open_backend
from tio_core.contract import QueueSet
from tio_testing import ContractHarness

LINKTYPE_RAW = 101  # IPv4 and IPv6 packets without a link-layer header


class PcapHarness(ContractHarness):
    finite = True  # reading past the capture raises EndOfStream
    borrow_invalidates = True  # views are released by the next read()/close()
    max_batch = 16
    owned_options = ("path", "output", "batch")

    def __init__(self, backend: str, options: Mapping[str, Any], workdir: Path) -> None:
        super().__init__(backend, options, workdir)
        self.suffix = ".pcapng" if self.options.get("output_format") == "pcapng" else ".pcap"
        self.outputs: dict[int, Path] = {}

    def open(self, inbound: Sequence[bytes]) -> QueueSet:
        from scapy.utils import PcapWriter

        index = len(self.outputs)
        capture = self.workdir / f"in{index}.pcap"
        writer = PcapWriter(str(capture), linktype=LINKTYPE_RAW)
        writer._write_header(None)  # write_packet() alone writes no file header (and none for no packets)
        for number, data in enumerate(inbound):
            writer.write_packet(data, sec=1_700_000_000, usec=number)
        writer.close()
        output = self.workdir / f"out{index}{self.suffix}"
        qs = open_backend(self.backend, path=str(capture), output=str(output), batch=self.max_batch, **self.options)
        self.outputs[id(qs)] = output
        return qs

    def outbound(self, qs: QueueSet, min_count: int = 0) -> list[bytes]:
        from scapy.utils import RawPcapNgReader, RawPcapReader

        qs.flush()  # type: ignore[attr-defined]  # PcapQueueSet: records reach the file
        path = self.outputs[id(qs)]
        reader = RawPcapNgReader(str(path)) if path.suffix == ".pcapng" else RawPcapReader(str(path))
        try:
            packets = [data for data, _meta in reader]
            interfaces = getattr(reader, "interfaces", None)
            linktypes = [iface[0] for iface in interfaces] if interfaces is not None else [reader.linktype]
        finally:
            reader.close()
        if linktypes != [LINKTYPE_RAW]:
            raise AssertionError(f"the output capture has link types {linktypes}, expected only RAW (101)")
        return packets


__all__ = ["PcapHarness"]
