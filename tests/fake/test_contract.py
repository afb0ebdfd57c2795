"""The fake backend against the shared contract suite, in each of its variants."""

from __future__ import annotations

import pytest

from tests.contract.harness import ContractHarness
from tests.contract.suite import BackendContractTests
from tio_core import open_backend
from tio_fake.backend import FakeQueueSet


class FakeHarness(ContractHarness):
    """Opens the fake through the registry (as users do) and injects the inbound packets."""

    borrow_invalidates = True
    max_batch = 16

    def __init__(self, **options):
        self.options = options

    def open(self, inbound):
        qs = open_backend("fake", max_batch=self.max_batch, **self.options)
        assert isinstance(qs, FakeQueueSet)
        qs.inject(*inbound)
        return qs

    def outbound(self, qs, min_count=0):
        return qs.queues()[0].written_packets()


class DrainingFakeHarness(FakeHarness):
    """end_of_stream=True: a drained fake is a finite source."""

    finite = True


class TestFakeContract(BackendContractTests):
    @pytest.fixture
    def harness(self):
        harness = FakeHarness()
        yield harness
        harness.close()


class TestFakeWithCapabilitiesContract(BackendContractTests):
    @pytest.fixture(params=["tso,uso", "tso", "none"])
    def harness(self, request):
        harness = FakeHarness(capabilities=request.param)
        yield harness
        harness.close()


class TestDrainingFakeContract(BackendContractTests):
    @pytest.fixture
    def harness(self):
        harness = DrainingFakeHarness(end_of_stream=True)
        yield harness
        harness.close()
