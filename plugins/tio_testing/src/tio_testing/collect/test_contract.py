"""What ``pytest --tio-contract SPEC`` collects: the contract suite, once per spec given on the command line."""

from __future__ import annotations

from tio_testing.suite import ContractSuite


class TestContract(ContractSuite):
    """Every rule of the backend contract (tio_testing.rules) on each ``--tio-contract`` spec."""
