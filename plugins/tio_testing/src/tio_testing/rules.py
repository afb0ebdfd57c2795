"""The backend contract as rules in plain words, and the failure that names the rule a backend broke.

Every check of the contract suite goes through ``expect`` or ``expect_raises``:
a failing check raises ContractViolation, whose message starts with the rule
(its short name and what the contract requires) and then says what the backend
did instead. The rules restate tio_core.contract for plugin authors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn


class Rule(NamedTuple):
    name: str  # short, stable: what a report or a search refers to
    text: str  # what the contract requires, in the words of someone writing a backend


QUEUES_LISTED = Rule(
    "queues-listed",
    "QueueSet.queues() returns a non-empty list of the set's queues, the same queues in the same order on every call",
)
READ_BLOCKS = Rule(
    "read-blocks",
    "Queue.read() waits until at least one packet is available and returns a non-empty list; "
    "it never returns an empty batch on a blocking queue",
)
READ_BATCH_LIMIT = Rule(
    "read-batch-limit",
    "read() returns at most the batch limit the backend documents (the harness's max_batch) per call",
)
READ_PACKET_TYPE = Rule(
    "read-packet-type",
    "read() returns tio_core.Packet objects whose data is a memoryview of the packet's bytes",
)
READ_IN_ORDER = Rule(
    "read-in-order",
    "read() hands out every inbound packet exactly once, byte for byte and in arrival order, across batches",
)
PLAIN_PACKET_NO_GSO = Rule(
    "plain-packet-no-gso",
    "a packet that is not a superpacket is read with gso == tio_core.NO_GSO",
)
CLONE_OWNS_BYTES = Rule(
    "clone-owns-bytes",
    "Packet.clone() returns a packet with its own copy of the bytes (a memoryview) and the same GSO metadata, "
    "still valid after the next read()",
)
BORROW_ENDS_AT_NEXT_READ = Rule(
    "borrow-ends-at-next-read",
    "the memoryviews of one read() are borrowed until the next read() or close(): a backend that releases them "
    "makes touching them raise ValueError; one that reuses a per-queue buffer lends every batch from that buffer",
)
CLOSE_ENDS_BORROW = Rule(
    "close-ends-borrow",
    "close() ends the borrow of the last read's memoryviews: a backend that releases views on the next read "
    "releases them on close() too (touching them raises ValueError)",
)
END_OF_STREAM = Rule(
    "end-of-stream",
    "a finite source (a replayed capture) raises tio_core.EndOfStream on every read() past its last packet",
)
LIVE_READ_WAITS = Rule(
    "live-read-waits",
    "a live queue's read() past the inbound packets waits for more instead of returning or raising",
)
CLOSE_WAKES_READER = Rule(
    "close-wakes-reader",
    "close() from another thread wakes a read() blocked on the queue, which raises tio_core.QueueClosed",
)
WRITE_EMITS_PACKET = Rule(
    "write-emits-packet",
    "Queue.write(data) emits exactly that one IP packet, byte for byte and in call order, takes bytes, "
    "bytearray and memoryview, and returns len(data)",
)
WRITE_GSO_SEGMENTS = Rule(
    "write-gso-segments",
    "write_gso emits what the kernel delivers for the superpacket: one fully checksummed packet per payload "
    "fragment, IPv4 ID incremented and TCP sequence advanced per segment, lengths and checksums fixed, "
    "and returns None",
)
WRITE_GSO_TCP_FLAGS = Rule(
    "write-gso-tcp-flags",
    "in a segmented TCP superpacket FIN and PSH appear on the last segment only and CWR on the first only",
)
WRITE_GSO_BUFFERS = Rule(
    "write-gso-buffers",
    "write_gso accepts any bytes-like pieces: bytes, bytearray and memoryview slices of one buffer",
)
WRITE_GSO_GEOMETRY = Rule(
    "write-gso-geometry",
    "write_gso refuses geometry the contract forbids with tio_core.GSOGeometryError (a TioError and a "
    "ValueError) before emitting anything: proto not TCP/UDP, short IP or L4 header, IP version not 4/6, "
    "an empty fragment, a fragment larger than the first or a short one before the last, more than 250 "
    "fragments (128 for UDP, the kernel's limit), a superpacket over 65535 bytes, and pieces that disagree: "
    "an IP protocol other than proto, an IHL other than the IP header's length, a TCP data offset other "
    "than the TCP header's length, a UDP header other than 8 bytes",
)
WRITE_GSO_EMPTY = Rule(
    "write-gso-empty",
    "write_gso with an empty payload list is a no-op: it returns None and emits nothing",
)
CAPABILITIES = Rule(
    "capabilities",
    "a queue that implements capabilities() (CapsProvider) is a GSOWriter whose tso/uso flags decide "
    "supports_gso for TCP/UDP; a GSOWriter without capabilities() accepts both; a queue without write_gso "
    "supports neither",
)
CLOSE_IDEMPOTENT = Rule(
    "close-idempotent",
    "Queue.close() and QueueSet.close() may be called again without error",
)
CLOSED_QUEUE_REFUSES = Rule(
    "closed-queue-refuses",
    "after close(), read(), write() and write_gso() raise tio_core.QueueClosed, write_gso whatever its arguments",
)
SET_CLOSE_CLOSES_QUEUES = Rule(
    "set-close-closes-queues",
    "QueueSet.close() closes every queue of the set and makes QueueSet.closed true",
)
CONTEXT_MANAGER = Rule(
    "context-manager",
    "leaving `with queue_set:` closes the set and its queues",
)

RULES = (
    QUEUES_LISTED,
    READ_BLOCKS,
    READ_BATCH_LIMIT,
    READ_PACKET_TYPE,
    READ_IN_ORDER,
    PLAIN_PACKET_NO_GSO,
    CLONE_OWNS_BYTES,
    BORROW_ENDS_AT_NEXT_READ,
    CLOSE_ENDS_BORROW,
    END_OF_STREAM,
    LIVE_READ_WAITS,
    CLOSE_WAKES_READER,
    WRITE_EMITS_PACKET,
    WRITE_GSO_SEGMENTS,
    WRITE_GSO_TCP_FLAGS,
    WRITE_GSO_BUFFERS,
    WRITE_GSO_GEOMETRY,
    WRITE_GSO_EMPTY,
    CAPABILITIES,
    CLOSE_IDEMPOTENT,
    CLOSED_QUEUE_REFUSES,
    SET_CLOSE_CLOSES_QUEUES,
    CONTEXT_MANAGER,
)


class ContractViolation(AssertionError):
    """A backend broke a rule of the contract; the message names the rule, then what happened."""

    def __init__(self, rule: Rule, detail: str) -> None:
        super().__init__(f"contract rule '{rule.name}' broken: {rule.text}.\n  What happened: {detail}")
        self.rule = rule
        self.detail = detail


def violated(rule: Rule, detail: str) -> NoReturn:
    """Raise ContractViolation(rule, detail)."""
    __tracebackhide__ = True
    raise ContractViolation(rule, detail)


def expect(ok: object, rule: Rule, detail: str | Callable[[], str]) -> None:
    """Raise ContractViolation(rule, detail) unless ``ok``; a callable detail is built only on failure."""
    __tracebackhide__ = True
    if not ok:
        raise ContractViolation(rule, detail() if callable(detail) else detail)


def expect_raises(
    error: type[BaseException], rule: Rule, what: str, call: Callable[..., Any], *args: Any
) -> BaseException:
    """Call ``call(*args)``; it must raise ``error``. Returns the exception; ContractViolation otherwise."""
    __tracebackhide__ = True
    try:
        result = call(*args)
    except error as exc:
        return exc
    except Exception as exc:
        raise ContractViolation(rule, f"{what} raised {type(exc).__name__}: {exc} (expected {error.__name__})") from exc
    shown = repr(result)
    shown = shown if len(shown) <= 60 else shown[:56] + "...'"
    raise ContractViolation(rule, f"{what} returned {shown} instead of raising {error.__name__}")


__all__ = [
    "BORROW_ENDS_AT_NEXT_READ",
    "CAPABILITIES",
    "CLONE_OWNS_BYTES",
    "CLOSED_QUEUE_REFUSES",
    "CLOSE_ENDS_BORROW",
    "CLOSE_IDEMPOTENT",
    "CLOSE_WAKES_READER",
    "CONTEXT_MANAGER",
    "ContractViolation",
    "END_OF_STREAM",
    "LIVE_READ_WAITS",
    "PLAIN_PACKET_NO_GSO",
    "QUEUES_LISTED",
    "READ_BATCH_LIMIT",
    "READ_BLOCKS",
    "READ_IN_ORDER",
    "READ_PACKET_TYPE",
    "RULES",
    "Rule",
    "SET_CLOSE_CLOSES_QUEUES",
    "WRITE_EMITS_PACKET",
    "WRITE_GSO_BUFFERS",
    "WRITE_GSO_EMPTY",
    "WRITE_GSO_GEOMETRY",
    "WRITE_GSO_SEGMENTS",
    "WRITE_GSO_TCP_FLAGS",
    "expect",
    "expect_raises",
    "violated",
]
