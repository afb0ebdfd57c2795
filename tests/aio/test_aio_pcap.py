"""tio_core.aio with the pcap backend: an async replay -> record forwarder over a finite source."""

from __future__ import annotations

import asyncio

import pytest
from scapy.utils import wrpcap

import tio_core
from tio_core.aio import AsyncQueueSet

tio_pcap_reader = pytest.importorskip("tio_pcap.reader")


def test_async_forward_from_a_replay_to_a_recording(tmp_path, packet_factory):
    packets = packet_factory.udp_flow(30, 300, src="198.18.0.1", dst="198.18.1.1") + packet_factory.tcp_flow(
        30, 500, src="fd00::1", dst="fd00::2"
    )
    source, output = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(source), packets, linktype=101)  # LINKTYPE_RAW: IPv4 and IPv6 records

    async def main():
        async with (
            AsyncQueueSet(tio_core.open_backend("pcap", path=str(source), batch=8)) as replay,
            AsyncQueueSet(tio_core.open_backend("pcap", output=str(output))) as record,
        ):
            assert replay[0].mode == "thread"  # a capture file has no pollable fd
            forwarded = 0
            async for batch in replay[0]:  # ends at EndOfStream
                for packet in batch:
                    await record[0].write(packet.data)
                    forwarded += 1
            return forwarded

    assert asyncio.run(asyncio.wait_for(main(), 20)) == len(packets)
    assert tio_pcap_reader.read_packets(str(output)) == packets
