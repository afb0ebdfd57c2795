"""Write-path coalescing: merge runs of same-flow packets into write_gso calls.

A VPN hands the kernel one wire-sized packet per decrypted datagram; one
syscall each caps throughput. When the queue negotiated TSO (USO), runs of
same-flow TCP (UDP) segments are merged into one superpacket: the first
packet's headers are patched and the payloads are passed to ``write_gso`` as
memoryview slices of the staged packets (no payload copy). The kernel
resegments the superpacket into exactly the original packets (see the DF
note below).

Public API
----------
``Coalescer.for_queue(queue, trust="verify")``
    The front: a coalescer with a TCP lane if the queue supports TSO
    (``supports_gso(queue, GSOProto.TCP)``), a UDP lane if it supports USO,
    passthrough for everything else; a plain ``Passthrough`` if neither.
    Never refuses.
``trust="verify"`` (default) or ``"own"``
    Whose checksums the staged packets carry. "verify": they came from
    outside and every IPv4 header and L4 checksum is checked before a packet
    may join a run (see Admission). "own": the caller computed them itself
    (``kernels.segment`` output) or authenticated the packets (a VPN after
    decryption), so the check is skipped. ``add``/``add_many`` take the same
    argument per call; a flush verifies unless *every* packet it holds was
    added as "own". ``verify_checksums=False`` is the older spelling of
    ``trust="own"``.
``TCPCoalescer(writer)``, ``UDPCoalescer(writer)``
    One lane each. The constructor raises ``CoalescerRefused`` when
    ``supports_gso(writer, proto)`` says no (use ``for_queue`` for a
    fallback instead of an exception).
``Passthrough(writer)``
    Writes every packet as is, in order, one ``write`` each (one
    ``write_many`` for all of them when the writer is a BatchWriter).
``add(packet, trust=None)`` / ``add_many(packets, trust=None)``
    Stage wire IP packets (any C-contiguous bytes-like object). They are
    *borrowed*: keep them alive and unmodified until ``flush()`` returns.
    A non-buffer raises ``PacketTypeError`` and nothing from that call is
    staged. ``trust`` None means the coalescer's own.
``flush()``
    Emits everything staged through ``writer.write`` / ``writer.write_gso``;
    a writer that is a ``contract.BatchWriter`` gets each run of verbatim
    packets between two merged ones in one ``write_many`` call.
    Every write is attempted even when one fails; then the first error is
    raised (a failed write_gso is not retried as single packets: a backend
    that must survive kernels refusing GSO does that itself). Staged packets
    are released either way, also when planning itself raised (e.g. a
    borrowed view was released before the flush): then none of them was
    written. Runs never span two flushes.
``pending``, ``tcp``, ``udp``, ``trust``, ``verify_checksums``, ``implementation``
    Read-only information about the staged count and the configuration.

Like the queues it writes to, a coalescer is not safe for concurrent use.

Ordering guarantees
-------------------
Writes happen in the order of each item's first packet: a verbatim packet at
its own position, a merged run at the position of its first segment. So a
segment that joins a run moves *earlier*, past packets of other flows that
arrived in between; it never moves later. Consequences:

* Within a flow (same addresses, protocol and ports) order is always kept:
  any verbatim packet of the flow seals the flow's open run, so nothing after
  it can jump ahead. The one documented exception is a pure TCP ACK (no
  payload, ACK/PSH/ECE only), which does not seal the run: data segments
  that arrive after it and join the earlier run are delivered before it. It
  carries no stream bytes, so the byte stream order is unaffected.
* Across flows and across lanes (TCP, UDP, passthrough) there is a single
  ordered output, so order is kept except that merged segments move up to
  their run's first packet as described.
* Packets whose flow cannot be determined (IPv4 options or fragments, IPv6
  extension headers, malformed or truncated headers, a bad IPv4 header
  checksum) seal every open run, so they are never overtaken by a packet
  that arrived after them.

Admission (details in ``tio_core.coalesce._pycoalesce``): IPv4 without options and
not fragmented, or IPv6 without extension headers; TCP with ACK and only
ACK/PSH/ECE; equal headers on every field the kernel copies when it
resegments; consecutive sequence numbers; at most 64 segments and 65535
bytes; a shorter payload or PSH ends a run. With ``verify_checksums`` (the
default, ``trust="verify"``) a packet with a wrong IPv4 header or L4 checksum is never merged -
the merged packet gets a fresh checksum, which would launder it - so it goes
out alone, verbatim, and the kernel drops it as it would have. UDPv4 with a
zero ("no") checksum also goes verbatim.

DF note: on IPv4 with DF set the ID carries no meaning (RFC 6864) and is not
compared; the kernel re-stamps the segments of a merged run with the first
ID + i (and recomputes the header checksum). Without DF the IDs must
already count up that way to be merged.

The per-packet work (parsing, checksum verification, run building, header
patching, payload slicing) happens in one C call per flush
(``_ckernels.coalesce_plan``); ``tio_core.coalesce._pycoalesce.plan`` is its pure
twin, used with ``TIO_PURE=1`` or ``implementation="pure"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tio_core.coalesce import _pycoalesce
from tio_core.contract import BatchWriter, GSOProto, supports_gso
from tio_core.errors import CoalescerRefused, PacketTypeError
from tio_core.kernels.native import built_extension, pure_forced

_C = built_extension()
_C_PLAN = _C.coalesce_plan if _C is not None else None
_C_CHECK = _C.coalesce_check_buffers if _C is not None else None

_PROTOS = (GSOProto.TCP, GSOProto.UDP)
_PLAIN_BUFFERS = (bytes, bytearray)
TRUST_VERIFY = "verify"  # checksums came from outside: verify before merging (the default)
TRUST_OWN = "own"  # the caller computed (or authenticated) them: merging needs no check
_TRUSTS = (TRUST_VERIFY, TRUST_OWN)


def _check_trust(trust: object) -> str:
    if trust not in _TRUSTS or not isinstance(trust, str):
        raise ValueError(f"trust must be 'verify' or 'own', got {trust!r}")
    return trust


def _trust_from(trust: str | None, verify_checksums: bool | None) -> str:
    """The trust named by either spelling (trust= or the older verify_checksums=)."""
    if verify_checksums is None:
        return _check_trust(TRUST_VERIFY if trust is None else trust)
    implied = TRUST_VERIFY if verify_checksums else TRUST_OWN
    if trust is not None and _check_trust(trust) != implied:
        raise ValueError(f"verify_checksums={verify_checksums} and trust={trust!r} contradict each other")
    return implied


def _no_write_gso(*_args: object) -> None:
    raise CoalescerRefused("this writer has no write_gso")


def default_implementation() -> str:
    """ "c" when the C planner is built and TIO_PURE is not set, else "pure"."""
    if pure_forced() or _C_PLAN is None:
        return "pure"
    return "c"


class Coalescer:
    """Stages packets and flushes them, merging runs on the enabled lanes.

    ``Coalescer(writer, tcp=..., udp=...)`` builds one with exactly the given
    lanes and raises CoalescerRefused if the writer does not support one of
    them; most callers want ``Coalescer.for_queue(queue)``.
    implementation: "c", "pure" or None for default_implementation().
    """

    def __init__(
        self,
        writer: object,
        *,
        tcp: bool = False,
        udp: bool = False,
        trust: str | None = None,
        verify_checksums: bool | None = None,
        implementation: str | None = None,
    ) -> None:
        write = getattr(writer, "write", None)
        if not callable(write):
            raise CoalescerRefused(f"{type(writer).__name__} has no write() method")
        for wanted, proto in ((tcp, GSOProto.TCP), (udp, GSOProto.UDP)):
            if wanted and not supports_gso(writer, proto)[1]:
                raise CoalescerRefused(
                    f"{type(writer).__name__} does not support write_gso for {proto.name} "
                    f"({'TSO' if proto == GSOProto.TCP else 'USO'} not negotiated or no write_gso)"
                )
        impl = implementation or default_implementation()
        if impl == "c" and _C_PLAN is not None and _C_CHECK is not None:
            self._plan, self._check = _C_PLAN, _C_CHECK
        elif impl == "pure":
            self._plan, self._check = _pycoalesce.plan, _pycoalesce.check_buffers
        else:
            raise ValueError(f"implementation must be 'c' (if built) or 'pure', got {implementation!r}")
        self.implementation = impl
        self.writer = writer
        self.tcp = bool(tcp)
        self.udp = bool(udp)
        self.trust = _trust_from(trust, verify_checksums)
        self._write = write
        # only lanes whose writer has write_gso are enabled, so a plan never asks a writer without one
        self._write_gso: Callable[..., None] = getattr(writer, "write_gso", _no_write_gso)
        # runs of verbatim packets go out in one call when the writer can take them so (contract.BatchWriter)
        self._write_many: Callable[..., Any] | None = writer.write_many if isinstance(writer, BatchWriter) else None
        self._staged: list[object] = []
        self._staged_untrusted = False  # some staged packet was added with trust "verify"

    @property
    def verify_checksums(self) -> bool:
        """True when the coalescer's own trust is "verify" (per-call trust aside)."""
        return self.trust == TRUST_VERIFY

    @classmethod
    def for_queue(cls, queue: object, *, trust: str | None = None, verify_checksums: bool | None = None) -> Coalescer:
        """The front for ``queue``: TCP lane if TSO, UDP lane if USO, else passthrough."""
        trust = _trust_from(trust, verify_checksums)
        tcp = supports_gso(queue, GSOProto.TCP)[1]
        udp = supports_gso(queue, GSOProto.UDP)[1]
        if not (tcp or udp):
            return Passthrough(queue)
        return Coalescer(queue, tcp=tcp, udp=udp, trust=trust)

    @property
    def pending(self) -> int:
        """Number of packets staged and not yet flushed."""
        return len(self._staged)

    def add(self, packet: object, *, trust: str | None = None) -> None:
        """Stage one wire IP packet, borrowed until flush()."""
        untrusted = self.trust != TRUST_OWN if trust is None else _check_trust(trust) != TRUST_OWN
        if type(packet) not in _PLAIN_BUFFERS:
            self._validate([packet])
        self._staged.append(packet)
        self._staged_untrusted |= untrusted

    def add_many(self, packets: Iterable[object], *, trust: str | None = None) -> None:
        """Stage several packets in order; all or none are staged."""
        # (the hot path of a forwarder: one call per superpacket's segments, so inline)
        if trust is None:
            untrusted = self.trust != TRUST_OWN
        elif trust is TRUST_OWN:
            untrusted = False
        else:
            untrusted = _check_trust(trust) != TRUST_OWN
        batch = packets if type(packets) is list else list(packets)
        try:
            self._check(batch)
        except TypeError as exc:
            raise PacketTypeError(str(exc)) from None
        self._staged.extend(batch)
        self._staged_untrusted |= untrusted

    def _validate(self, batch: list) -> None:
        try:
            self._check(batch)
        except TypeError as exc:
            raise PacketTypeError(str(exc)) from None

    def flush(self) -> None:
        """Emit everything staged; raise the first write error after trying all."""
        staged = self._staged
        if not staged:
            return
        verify = self._staged_untrusted
        # released before planning: a plan that raises must not leave them staged
        self._staged = []
        self._staged_untrusted = False
        plan = self._plan(staged, self.tcp, self.udp, verify, _PROTOS)
        first_error = self._flush_runs(plan)
        if first_error is not None:
            raise first_error

    def _flush_runs(self, plan: list[Any]) -> Exception | None:
        """Write a plan: each merged item with write_gso, each run of verbatim packets between
        them with _write_run; every write is attempted, the first error is returned.

        The merged items (tuples) are found by list.index over the items'
        types, so this loop runs per merged item, not per packet.
        """
        write_gso = self._write_gso
        first_error: Exception | None = None
        kinds = list(map(type, plan))
        end = len(plan)
        start = 0
        while start < end:
            try:
                merged = kinds.index(tuple, start)
            except ValueError:
                merged = end
            if merged > start:
                first_error = self._write_run(plan[start:merged] if start or merged < end else plan, first_error)
            if merged < end:
                try:
                    write_gso(*plan[merged])
                except Exception as exc:
                    if first_error is None:
                        first_error = exc
            start = merged + 1
        return first_error

    def _write_run(self, run: list[object], first_error: Exception | None) -> Exception | None:
        """Write verbatim packets in order: one write_many when the writer is a BatchWriter, else
        write() each; the first error so far (the run's first failure when there was none)."""
        if self._write_many is None:
            write = self._write
            for packet in run:
                try:
                    write(packet)
                except Exception as exc:  # keep writing the rest; report the first
                    if first_error is None:
                        first_error = exc
            return first_error
        try:
            batch = self._write_many(run)
        except Exception as exc:
            return first_error or exc
        if first_error is None:
            if batch.failed:
                return batch.failed[0][1]
            return batch.closed
        return first_error


class TCPCoalescer(Coalescer):
    """Merges TCP runs (needs TSO); everything else passes through in order."""

    def __init__(self, writer: object, **options: Any) -> None:  # options: those of Coalescer
        super().__init__(writer, tcp=True, **options)


class UDPCoalescer(Coalescer):
    """Merges UDP runs (needs USO); everything else passes through in order."""

    def __init__(self, writer: object, **options: Any) -> None:  # options: those of Coalescer
        super().__init__(writer, udp=True, **options)


class Passthrough(Coalescer):
    """Writes every staged packet as is, in order, one write() each."""

    def __init__(self, writer: object, *, implementation: str | None = None):
        super().__init__(writer, implementation=implementation)

    def flush(self) -> None:
        staged = self._staged
        if not staged:
            return
        self._staged = []
        self._staged_untrusted = False
        first_error = self._write_run(staged, None)
        if first_error is not None:
            raise first_error


__all__ = [
    "Coalescer",
    "CoalescerRefused",
    "PacketTypeError",
    "Passthrough",
    "TRUST_OWN",
    "TRUST_VERIFY",
    "TCPCoalescer",
    "UDPCoalescer",
    "default_implementation",
]
