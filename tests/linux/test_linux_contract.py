"""The linux backend against the shipped contract suite (tio-testing) on a real TUN.

The harness (tio_linux.contract_harness) makes its own network namespace and
TUNs and removes them; it skips with a reason without root or /dev/net/tun.
"""

from __future__ import annotations

from tio_testing import ContractSuite


class TestLinuxContract(ContractSuite):
    contract_specs = ("linux",)
