"""What a backend provides so the shared contract suite can drive it.

Each backend's test folder subclasses ``tests.contract.suite.BackendContractTests``
and defines a ``harness`` fixture that yields a ContractHarness (and calls
``close()`` on it afterwards, also when the test failed):

    class TestFakeContract(BackendContractTests):
        @pytest.fixture
        def harness(self):
            h = FakeHarness()
            yield h
            h.close()

The suite feeds plain, fully checksummed IPv4/IPv6 TCP/UDP packets of at most
1400 bytes, addressed inside 198.18.0.0/15 and fd00::/8, and never more than
``2 * max_batch + 10`` of them per open().
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from tio_core.contract import QueueSet


class ContractHarness(ABC):
    """Opens a backend with known inbound traffic and shows what it emitted.

    Class attributes a subclass sets to describe documented behaviour:

    finite: True when reading past the inbound packets raises EndOfStream
        (a replayed capture). False when such a read blocks until more data or
        close (a live device); the suite then checks that close() from another
        thread wakes the blocked reader with QueueClosed.
    borrow_invalidates: True when the memoryviews of one read are released by
        the next read/close (touching them raises ValueError). False when they
        point into one reused per-queue buffer (every read's views share the
        same underlying ``memoryview.obj``) that later reads overwrite.
    max_batch: the most packets one read() may return as opened by this
        harness. It must be below the inbound counts the suite uses (it sends
        ``max_batch + 1`` packets or more to force several reads).
    read_timeout: seconds the suite waits for inbound packets before it closes
        the set to stop a read that would otherwise block forever.
    """

    finite: bool = False
    borrow_invalidates: bool = True
    max_batch: int = 64
    read_timeout: float = 10.0

    @abstractmethod
    def open(self, inbound: Sequence[bytes]) -> QueueSet:
        """Open a fresh queue set whose queue 0 reads exactly ``inbound``, in order.

        The packets may arrive after open() returns (injected into a live
        device); reads then block until they do. Each call opens a new set;
        the suite closes every set it opens. A live device must stay quiet
        otherwise: nothing of the kernel's own (IPv6 router solicitations,
        MLD reports: set disable_ipv6 on the device before bringing it up)
        may reach the reader.
        """

    @abstractmethod
    def outbound(self, qs: QueueSet, min_count: int = 0) -> list[bytes]:
        """Wire IP packets emitted so far through ``qs`` by write and write_gso, in order.

        A write_gso must appear as the kernel delivers it: one fully
        checksummed packet per payload fragment. Backends whose capture is
        asynchronous wait (up to a few seconds) until at least ``min_count``
        packets were seen; the suite always passes the count it expects, so
        a lost or extra packet shows up as a wrong list, not as a hang.
        """

    def close(self) -> None:
        """Release harness-wide resources (namespaces, temporary files); idempotent."""
