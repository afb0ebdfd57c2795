"""The backend contract as one pytest class, run against any installed backend.

``pytest --tio-contract NAME[:key=value,...]`` collects ``TestContract``
(tio_testing.collect.test_contract, a ContractSuite) for each spec given. A project that wants the suite among its own
tests subclasses ContractSuite and lists its specs; the specs resolve the same
way (backend registry, then the backend's registered harness):

    from tio_testing import ContractSuite

    class TestMyBackendContract(ContractSuite):
        contract_specs = ("mybackend", "mybackend:queues=2")

Tests that feed or observe packets need the backend's ContractHarness and skip
without one; the others open the backend with the spec's options. Every check
names the rule it enforces (tio_testing.rules).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tio_core import contract
from tio_core.contract import GSOProto, GSOWriter, Packet, Queue, QueueSet, supports_gso
from tio_core.errors import EndOfStream, GSOGeometryError, QueueClosed, TioError
from tio_testing import rules
from tio_testing.harness import BackendUnderTest, ContractHarness
from tio_testing.packets import expected_segments, first_difference, gso_pieces, inbound_packets
from tio_testing.rules import expect, expect_raises, violated
from tio_testing.threads import BackgroundRead


class SetOpener:
    """Opens fresh queue sets without inbound traffic (through the harness when there is one); closes them all."""

    def __init__(self, backend: BackendUnderTest, harness: ContractHarness | None) -> None:
        self.backend = backend
        self.harness = harness
        self._opened: list[QueueSet] = []

    def __call__(self) -> QueueSet:
        qs = self.harness.open([]) if self.harness is not None else self.backend.open_plain()
        self._opened.append(qs)
        return qs

    def close_all(self) -> None:
        for qs in self._opened:
            try:
                qs.close()
            except Exception:  # the test under way reports close errors itself
                pass


def read_exactly(
    harness: ContractHarness, qs: QueueSet, count: int, on_batch: Callable[[list[Packet]], None] | None = None
) -> list[bytes]:
    """Read queue 0 until ``count`` packets arrived; returns copies of their bytes.

    A watchdog closes the set after harness.read_timeout so that a lost
    packet fails the test (the blocked read raises QueueClosed) instead of
    hanging it.
    """
    queue = qs.queues()[0]
    got: list[bytes] = []
    watchdog = threading.Timer(harness.read_timeout, qs.close)
    watchdog.daemon = True
    watchdog.start()
    try:
        while len(got) < count:
            try:
                batch = queue.read()
            except QueueClosed as exc:
                violated(
                    rules.READ_IN_ORDER,
                    f"read() raised {exc!r} after {len(got)} of {count} inbound packets "
                    f"(the suite closes the set after the harness's read_timeout of {harness.read_timeout:g} s)",
                )
            expect(
                isinstance(batch, list) and batch,
                rules.READ_BLOCKS,
                f"read() returned {batch!r} after {len(got)} of {count} inbound packets",
            )
            expect(
                len(batch) <= harness.max_batch,
                rules.READ_BATCH_LIMIT,
                f"read() returned {len(batch)} packets; the harness says max_batch is {harness.max_batch}",
            )
            for packet in batch:
                expect(isinstance(packet, Packet), rules.READ_PACKET_TYPE, f"read() returned a {type(packet)!r}")
                expect(
                    isinstance(packet.data, memoryview),
                    rules.READ_PACKET_TYPE,
                    f"Packet.data is a {type(packet.data).__name__}",
                )
                got.append(bytes(packet.data))
            if on_batch is not None:
                on_batch(batch)
    finally:
        watchdog.cancel()
    return got


def expect_packets(got: list[bytes], want: list[bytes], rule: rules.Rule, what: str) -> None:
    __tracebackhide__ = True
    expect(got == want, rule, lambda: f"{what}: {first_difference(got, want)}")


def returned(call: Callable[..., object], *args: Any) -> object:
    """What ``call(*args)`` returned, for methods the contract says return None (checked, not assumed)."""
    return call(*args)


def gso_writer_or_skip(queue: Queue, proto: GSOProto) -> GSOWriter:
    writer, ok = supports_gso(queue, proto)
    if writer is None or not ok:
        pytest.skip(f"the queue does not offer write_gso for {proto.name}")
    return writer


# Each case: (what is wrong, arguments builder from the good pieces).
GEOMETRY_CASES: dict[str, Callable[[bytes, bytes, list[bytes]], tuple[Any, ...]]] = {
    "proto GSOProto.NONE": lambda ip, l4, good: (ip, l4, good, GSOProto.NONE),
    "a 12-byte TCP header": lambda ip, l4, good: (ip, l4[:12], good, GSOProto.TCP),
    "a 12-byte IPv4 header": lambda ip, l4, good: (ip[:12], l4, good, GSOProto.TCP),
    "IP version 7": lambda ip, l4, good: (b"\x75" + ip[1:], l4, good, GSOProto.TCP),
    "an empty last fragment": lambda ip, l4, good: (ip, l4, [b"x" * 100, b""], GSOProto.TCP),
    "a last fragment larger than the first": lambda ip, l4, good: (ip, l4, [b"x" * 100, b"y" * 120], GSOProto.TCP),
    "a short fragment before the last": lambda ip, l4, good: (
        ip,
        l4,
        [b"x" * 100, b"y" * 50, b"z" * 100],
        GSOProto.TCP,
    ),
    "251 fragments": lambda ip, l4, good: (ip, l4, [b"x"] * 251, GSOProto.TCP),
    "a 90,000-byte superpacket": lambda ip, l4, good: (ip, l4, [b"x" * 30000] * 3, GSOProto.TCP),
    # pieces the kernel refuses, or takes silently and then drops or mangles
    "129 UDP fragments": lambda ip, l4, good: (*gso_pieces(4, GSOProto.UDP, good), [b"x"] * 129, GSOProto.UDP),
    "a UDP IP header with proto TCP": lambda ip, l4, good: (
        gso_pieces(4, GSOProto.UDP, good)[0],
        l4,
        good,
        GSOProto.TCP,
    ),
    "an IHL that disagrees with the IP header": lambda ip, l4, good: (b"\x46" + ip[1:], l4, good, GSOProto.TCP),
    "a TCP data offset that disagrees": lambda ip, l4, good: (ip, l4[:12] + b"\x60" + l4[13:], good, GSOProto.TCP),
    "a 12-byte UDP header": lambda ip, l4, good: (
        gso_pieces(4, GSOProto.UDP, good)[0],
        gso_pieces(4, GSOProto.UDP, good)[1] + bytes(4),
        good,
        GSOProto.UDP,
    ),
}


def closed_write_gso_calls() -> dict[str, tuple[Any, ...]]:
    """write_gso arguments of every shape: valid, a no-op, and forbidden ones (a closed queue refuses all)."""
    payloads = [b"p" * 100, b"q" * 100]
    ip, l4 = gso_pieces(4, GSOProto.UDP, payloads)
    return {
        "valid pieces": (ip, l4, payloads, GSOProto.UDP),
        "no payloads": (ip, l4, [], GSOProto.UDP),
        "proto GSOProto.NONE": (ip, l4, payloads, GSOProto.NONE),
        "empty headers": (b"", b"", payloads, GSOProto.TCP),
        "pieces that disagree": (ip, l4, payloads, GSOProto.TCP),
        "unequal fragments": (ip, l4, [b"p" * 100, b"q" * 120], GSOProto.UDP),
        "300 fragments": (ip, l4, [b"p"] * 300, GSOProto.UDP),
    }


def expect_closed(queue: Queue, packet: bytes, rule: rules.Rule, label: str) -> None:
    """read(), write() and write_gso() of every shape on the closed ``queue`` raise QueueClosed.

    ``label`` names each call in a violation: its ``{call}`` becomes e.g. "write()".
    """
    __tracebackhide__ = True
    expect_raises(QueueClosed, rule, label.format(call="read()"), queue.read)
    expect_raises(QueueClosed, rule, label.format(call="write()"), queue.write, packet)
    if isinstance(queue, GSOWriter):
        for shape, args in closed_write_gso_calls().items():
            expect_raises(QueueClosed, rule, label.format(call=f"write_gso() with {shape}"), queue.write_gso, *args)


class ContractSuite:
    """The contract every backend keeps. Subclass with ``contract_specs``, or run ``pytest --tio-contract``."""

    contract_specs: ClassVar[tuple[str, ...]] = ()  # empty: the specs given with --tio-contract

    # -- fixtures -------------------------------------------------------------
    @pytest.fixture
    def backend(self, request: pytest.FixtureRequest, tio_contract_spec: str) -> BackendUnderTest:
        """The spec this test runs on (parametrized by tio_testing.pytest_plugin), resolved once per run."""
        from tio_testing.pytest_plugin import backend_for

        return backend_for(request.config, tio_contract_spec)

    @pytest.fixture
    def harness(self, backend: BackendUnderTest, tmp_path: Path) -> Iterator[ContractHarness]:
        if backend.harness_class is None:
            pytest.skip(
                f"backend {backend.name!r} registers no contract harness, and this rule needs one to feed "
                "inbound packets or see what was written (see tio_testing.ContractHarness)"
            )
        reason = backend.harness_class.unavailable()
        if reason:
            pytest.skip(f"{backend.harness_class.__name__}: {reason}")
        harness = backend.make_harness(tmp_path)
        assert harness is not None
        try:
            yield harness
        finally:
            harness.close()

    @pytest.fixture
    def open_set(self, backend: BackendUnderTest, tmp_path: Path) -> Iterator[SetOpener]:
        harness = None
        if backend.harness_class is not None:
            reason = backend.harness_class.unavailable()
            if reason:
                pytest.skip(f"{backend.harness_class.__name__}: {reason}")
            harness = backend.make_harness(tmp_path)
        opener = SetOpener(backend, harness)
        try:
            yield opener
        finally:
            opener.close_all()
            if harness is not None:
                harness.close()

    # -- queues ---------------------------------------------------------------
    def test_queue_set_lists_its_queues(self, open_set: SetOpener) -> None:
        qs = open_set()
        queues = qs.queues()
        expect(isinstance(queues, list) and queues, rules.QUEUES_LISTED, f"queues() returned {queues!r}")
        expect(all(isinstance(q, Queue) for q in queues), rules.QUEUES_LISTED, f"queues() holds {queues!r}")
        again = qs.queues()
        expect(again == queues, rules.QUEUES_LISTED, f"a second queues() call returned {again!r}, first {queues!r}")

    # -- read -----------------------------------------------------------------
    def test_read_returns_inbound_in_order_as_memoryviews(self, harness: ContractHarness) -> None:
        packets = inbound_packets(harness.max_batch * 2 + 5)
        gsos: list[list[Any]] = []
        with harness.open(packets) as qs:
            got = read_exactly(harness, qs, len(packets), lambda batch: gsos.append([p.gso for p in batch]))
        expect_packets(got, packets, rules.READ_IN_ORDER, f"{len(packets)} inbound packets read back")
        plain = [gso for batch in gsos for gso in batch if gso != contract.NO_GSO]
        expect(not plain, rules.PLAIN_PACKET_NO_GSO, f"plain packets were read with gso {plain[:3]}")
        expect(
            len(gsos) >= 3,
            rules.READ_BATCH_LIMIT,
            f"{len(packets)} packets came in {len(gsos)} reads; max_batch {harness.max_batch} needs 3 or more",
        )

    def test_clone_survives_next_read(self, harness: ContractHarness) -> None:
        packets = inbound_packets(harness.max_batch + 3)
        clones: list[Packet] = []
        firsts: list[Packet] = []

        def keep_first(batch: list[Packet]) -> None:
            if not clones:
                firsts.extend(batch)
                clones.extend(p.clone() for p in batch)

        with harness.open(packets) as qs:
            read_exactly(harness, qs, len(packets), keep_first)
            kept = [bytes(c.data) for c in clones]
            expect_packets(kept, packets[: len(clones)], rules.CLONE_OWNS_BYTES, "clones of the first batch, read on")
            expect(
                [c.gso for c in clones] == [p.gso for p in firsts],
                rules.CLONE_OWNS_BYTES,
                "a clone's gso differs from the original's",
            )
            expect(all(isinstance(c.data, memoryview) for c in clones), rules.CLONE_OWNS_BYTES, "clone().data type")

    def test_borrowed_views_end_at_next_read(self, harness: ContractHarness) -> None:
        packets = inbound_packets(harness.max_batch + 3)
        batches: list[list[Packet]] = []
        with harness.open(packets) as qs:
            read_exactly(harness, qs, len(packets), batches.append)
            first, later = batches[0], batches[1:]
            if harness.borrow_invalidates:
                for index, packet in enumerate(first):
                    expect_raises(
                        ValueError,
                        rules.BORROW_ENDS_AT_NEXT_READ,
                        f"bytes() of packet {index} of the first batch after the next read (harness: views released)",
                        bytes,
                        packet.data,
                    )
            else:
                owner = first[0].data.obj
                expect(owner is not None, rules.BORROW_ENDS_AT_NEXT_READ, "the first batch's views have no owner")
                strays = [p for batch in later for p in batch if p.data.obj is not owner]
                expect(
                    not strays,
                    rules.BORROW_ENDS_AT_NEXT_READ,
                    f"{len(strays)} later views are not from the first batch's buffer (harness: one reused buffer)",
                )

    def test_close_ends_the_borrow(self, harness: ContractHarness) -> None:
        qs = harness.open(inbound_packets(2))
        batch: list[Packet] = []
        try:
            read_exactly(harness, qs, 2, batch.extend)
        finally:
            qs.close()
        if not harness.borrow_invalidates:
            pytest.skip("the harness says views point into a reused buffer: close() need not release them")
        for index, packet in enumerate(batch):
            expect_raises(
                ValueError,
                rules.CLOSE_ENDS_BORROW,
                f"bytes() of packet {index} of the last batch after QueueSet.close()",
                bytes,
                packet.data,
            )

    def test_read_past_the_inbound(self, harness: ContractHarness) -> None:
        qs = harness.open(inbound_packets(3))
        try:
            read_exactly(harness, qs, 3)
            queue = qs.queues()[0]
            if harness.finite:
                for attempt in ("first", "second"):
                    expect_raises(
                        EndOfStream, rules.END_OF_STREAM, f"the {attempt} read() past the last packet", queue.read
                    )
                return
            reader = BackgroundRead(queue)
            reader.join(0.2)
            expect(
                reader.is_alive() and not reader.outcome,
                rules.LIVE_READ_WAITS,
                f"read() past the inbound ended at once with {reader.outcome!r} (the harness says the backend is live)",
            )
            qs.close()
            reader.join(5)
            expect(not reader.is_alive(), rules.CLOSE_WAKES_READER, "the blocked read() still waits 5 s after close()")
            expect(
                len(reader.outcome) == 1 and isinstance(reader.outcome[0], QueueClosed),
                rules.CLOSE_WAKES_READER,
                f"the woken read() ended with {reader.outcome!r}",
            )
        finally:
            qs.close()

    # -- write ----------------------------------------------------------------
    def test_write_appears_in_outbound(self, harness: ContractHarness) -> None:
        sent = inbound_packets(6, start=500)
        with harness.open([]) as qs:
            queue = qs.queues()[0]
            writes: list[contract.Buffer] = [*sent, bytearray(sent[0]), memoryview(sent[1])]
            for data in writes:
                result = queue.write(data)
                expect(
                    result == len(data),
                    rules.WRITE_EMITS_PACKET,
                    f"write() of a {len(data)}-byte {type(data).__name__} returned {result!r}",
                )
            got = harness.outbound(qs, len(sent) + 2)
        expect_packets(got, sent + sent[:2], rules.WRITE_EMITS_PACKET, "8 writes seen on the wire")

    @pytest.mark.parametrize("version", [4, 6])
    @pytest.mark.parametrize("proto", [GSOProto.TCP, GSOProto.UDP], ids=["tcp", "udp"])
    def test_write_gso_appears_segmented(self, harness: ContractHarness, version: int, proto: GSOProto) -> None:
        payloads = [bytes([i]) * 1200 for i in range(1, 5)] + [b"\xee" * 333]
        with harness.open([]) as qs:
            writer = gso_writer_or_skip(qs.queues()[0], proto)
            result = returned(writer.write_gso, *gso_pieces(version, proto, payloads), payloads, proto)
            expect(result is None, rules.WRITE_GSO_SEGMENTS, f"write_gso returned {result!r}")
            got = harness.outbound(qs, len(payloads))
        want = expected_segments(version, proto, payloads)
        expect_packets(got, want, rules.WRITE_GSO_SEGMENTS, f"an IPv{version} {proto.name} write_gso of 5 fragments")

    def test_write_gso_single_fragment_is_one_checksummed_packet(self, harness: ContractHarness) -> None:
        payloads = [b"single" * 50]
        with harness.open([]) as qs:
            writer = gso_writer_or_skip(qs.queues()[0], GSOProto.TCP)
            writer.write_gso(*gso_pieces(4, GSOProto.TCP, payloads), payloads, GSOProto.TCP)
            got = harness.outbound(qs, 1)
        want = expected_segments(4, GSOProto.TCP, payloads)
        expect_packets(got, want, rules.WRITE_GSO_SEGMENTS, "a write_gso of one fragment")

    @pytest.mark.parametrize("flags", ["FPA", "CA"], ids=["fin-psh", "cwr"])
    def test_write_gso_tcp_flags(self, harness: ContractHarness, flags: str) -> None:
        payloads = [b"a" * 1000, b"b" * 1000, b"c" * 10]
        with harness.open([]) as qs:
            writer = gso_writer_or_skip(qs.queues()[0], GSOProto.TCP)
            writer.write_gso(*gso_pieces(6, GSOProto.TCP, payloads, flags), payloads, GSOProto.TCP)
            got = harness.outbound(qs, 3)
        want = expected_segments(6, GSOProto.TCP, payloads, flags)
        expect_packets(got, want, rules.WRITE_GSO_TCP_FLAGS, f"a TCP write_gso with flags {flags}")

    def test_write_gso_takes_any_buffer_type(self, harness: ContractHarness) -> None:
        payloads = [b"m" * 800, b"n" * 800, b"o" * 800]
        with harness.open([]) as qs:
            writer = gso_writer_or_skip(qs.queues()[0], GSOProto.UDP)
            ip, l4 = gso_pieces(4, GSOProto.UDP, payloads)
            source = bytearray(b"".join(payloads))
            views = [memoryview(source)[i * 800 : (i + 1) * 800] for i in range(3)]
            pieces: list[contract.Buffer] = [views[0], bytearray(payloads[1]), views[2]]
            try:
                writer.write_gso(bytearray(ip), memoryview(l4), pieces, GSOProto.UDP)
            except (TypeError, TioError) as exc:
                violated(rules.WRITE_GSO_BUFFERS, f"write_gso(bytearray, memoryview, mixed) raised {exc!r}")
            got = harness.outbound(qs, 3)
        want = expected_segments(4, GSOProto.UDP, payloads)
        expect_packets(got, want, rules.WRITE_GSO_BUFFERS, "a write_gso given bytearray and memoryview pieces")

    def test_write_gso_refuses_forbidden_geometry(self, open_set: SetOpener) -> None:
        good = [b"x" * 100, b"y" * 100]
        ip, l4 = gso_pieces(4, GSOProto.TCP, good)
        qs = open_set()
        queue = qs.queues()[0]
        if not isinstance(queue, GSOWriter):
            pytest.skip("the queue has no write_gso")
        for case, build in GEOMETRY_CASES.items():
            error = expect_raises(
                GSOGeometryError,
                rules.WRITE_GSO_GEOMETRY,
                f"write_gso with {case}",
                queue.write_gso,
                *build(ip, l4, good),
            )
            expect(
                isinstance(error, ValueError) and isinstance(error, TioError),
                rules.WRITE_GSO_GEOMETRY,
                f"write_gso with {case} raised {type(error).__name__}, which is not a TioError and ValueError",
            )
        result = returned(queue.write_gso, ip, l4, [], GSOProto.TCP)
        expect(result is None, rules.WRITE_GSO_EMPTY, f"write_gso with no payloads returned {result!r}")
        if open_set.harness is not None:
            marker = inbound_packets(1, start=900)[0]
            queue.write(marker)
            got = open_set.harness.outbound(qs, 1)
            expect_packets(
                got, [marker], rules.WRITE_GSO_GEOMETRY, "the wire after the refused calls and one marker write()"
            )

    # -- capabilities -----------------------------------------------------------
    def test_capabilities_decide_supports_gso(self, open_set: SetOpener) -> None:
        qs = open_set()
        for index, queue in enumerate(qs.queues()):
            caps = contract.queue_capabilities(queue)
            tcp_writer, tcp_ok = supports_gso(queue, GSOProto.TCP)
            udp_writer, udp_ok = supports_gso(queue, GSOProto.UDP)
            _, none_ok = supports_gso(queue, GSOProto.NONE)
            what = f"queue {index} ({type(queue).__name__})"
            if not isinstance(queue, GSOWriter):
                expect(
                    (tcp_ok, udp_ok) == (False, False),
                    rules.CAPABILITIES,
                    f"{what} has no write_gso but supports_gso says TCP={tcp_ok} UDP={udp_ok}",
                )
                expect(
                    not isinstance(queue, contract.CapsProvider) or caps == contract.NO_CAPABILITIES,
                    rules.CAPABILITIES,
                    f"{what} has no write_gso but advertises {caps}",
                )
            elif isinstance(queue, contract.CapsProvider):
                again = queue.capabilities()
                expect(
                    (tcp_ok, udp_ok) == (caps.tso, caps.uso) and not none_ok and tcp_writer is queue,
                    rules.CAPABILITIES,
                    f"{what} advertises {caps} but supports_gso says TCP={tcp_ok} UDP={udp_ok} NONE={none_ok}",
                )
                expect(again == caps, rules.CAPABILITIES, f"{what}: capabilities() changed from {caps} to {again}")
            else:
                expect(
                    tcp_ok and udp_ok and tcp_writer is queue and udp_writer is queue,
                    rules.CAPABILITIES,
                    f"{what} is a GSOWriter without capabilities() but supports_gso says TCP={tcp_ok} UDP={udp_ok}",
                )

    # -- close --------------------------------------------------------------------
    def test_close_is_idempotent_and_ends_io(self, open_set: SetOpener) -> None:
        packet = inbound_packets(1)[0]
        qs = open_set()
        queue = qs.queues()[0]
        queue.close()
        try:
            queue.close()
        except Exception as exc:
            violated(rules.CLOSE_IDEMPOTENT, f"a second Queue.close() raised {exc!r}")
        expect_closed(queue, packet, rules.CLOSED_QUEUE_REFUSES, "{call} on a closed queue")
        qs.close()
        try:
            qs.close()
        except Exception as exc:
            violated(rules.CLOSE_IDEMPOTENT, f"a second QueueSet.close() raised {exc!r}")
        expect(qs.closed, rules.SET_CLOSE_CLOSES_QUEUES, "QueueSet.closed is false after close()")

    def test_set_close_closes_every_queue(self, open_set: SetOpener) -> None:
        packet = inbound_packets(1)[0]
        qs = open_set()
        queues = qs.queues()
        qs.close()
        expect(qs.closed, rules.SET_CLOSE_CLOSES_QUEUES, "QueueSet.closed is false after close()")
        for index, queue in enumerate(queues):
            label = f"queue {index} after QueueSet.close(): {{call}}"
            expect_closed(queue, packet, rules.SET_CLOSE_CLOSES_QUEUES, label)

    def test_context_manager_closes_queues(self, open_set: SetOpener) -> None:
        packet = inbound_packets(1)[0]
        with open_set() as qs:
            queue = qs.queues()[0]
            expect(not qs.closed, rules.CONTEXT_MANAGER, "the set says closed inside its `with` block")
        expect(qs.closed, rules.CONTEXT_MANAGER, "QueueSet.closed is false after the `with` block")
        expect_raises(QueueClosed, rules.CONTEXT_MANAGER, "write() after the `with` block", queue.write, packet)
        expect_raises(QueueClosed, rules.CONTEXT_MANAGER, "read() after the `with` block", queue.read)


__all__ = ["ContractSuite", "SetOpener", "read_exactly"]
