"""The pcap backend against the shipped contract suite (tio-testing): replay, paced replay, pcapng output."""

from __future__ import annotations

from tio_testing import ContractSuite


class TestPcapContract(ContractSuite):
    contract_specs = (
        "pcap",
        "pcap:pacing=rate,rate=100000,tso=false,uso=false",  # paced, and a queue without TSO/USO
        "pcap:output_format=pcapng",
    )
