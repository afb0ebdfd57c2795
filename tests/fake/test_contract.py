"""The fake backend against the shipped contract suite (tio-testing), in each of its variants."""

from __future__ import annotations

from tio_testing import ContractSuite


class TestFakeContract(ContractSuite):
    contract_specs = (
        "fake",
        "fake:capabilities=tso+uso",
        "fake:capabilities=tso",
        "fake:capabilities=none",
        "fake:end_of_stream=true",
    )
