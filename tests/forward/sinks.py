"""A sink queue that fails on cue, for the forwarder's drop paths.

ScriptedSink passes every call to a real fake-backend queue (which records
what was delivered and validates it as a TUN would) except the calls named in
``faults``: call number -> the exception to raise instead (write and
write_gso are numbered together, from 0). A QueueClosed fault closes the
inner queue, so every later call fails the way a closed queue does.
"""

from __future__ import annotations

from collections.abc import Sequence

from tio_core.contract import Buffer, Capabilities, GSOProto, Packet, Queue, WriteBatch
from tio_core.errors import QueueClosed, TioError
from tio_fake.backend import FakeCapsQueue

TSO_USO = Capabilities(tso=True, uso=True)


class ScriptedSink(Queue):
    def __init__(self, faults: dict[int, BaseException] | None = None, caps: Capabilities = TSO_USO):
        self.inner = FakeCapsQueue(caps, name="sink")
        self.faults = dict(faults or {})
        self.calls = 0

    def _call(self) -> None:
        number = self.calls
        self.calls += 1
        fault = self.faults.get(number)
        if fault is None:
            return
        if isinstance(fault, QueueClosed):
            self.inner.close()
        raise fault

    def read(self) -> list[Packet]:
        return self.inner.read()

    def write(self, data: Buffer) -> int:
        self._call()
        return self.inner.write(data)

    def write_gso(self, ip_hdr: Buffer, transport_hdr: Buffer, payloads: Sequence[Buffer], proto: GSOProto) -> None:
        self._call()
        self.inner.write_gso(ip_hdr, transport_hdr, payloads, proto)

    def capabilities(self) -> Capabilities:
        return self.inner.capabilities()

    def close(self) -> None:
        self.inner.close()

    def delivered(self) -> list[bytes]:
        """The wire packets that really went out, as the kernel would deliver them."""
        return self.inner.written_packets()


class PlainSink(Queue):
    """A sink with write() only (no write_gso, no capabilities)."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def read(self) -> list[Packet]:
        raise QueueClosed("write-only")

    def write(self, data: Buffer) -> int:
        self.packets.append(bytes(data))
        return len(data)

    def close(self) -> None:
        pass


class BatchSink(ScriptedSink):
    """A ScriptedSink that is a contract.BatchWriter, as the linux queues are.

    write_many writes each packet through write() (so the same faults fire
    at the same call numbers) and reports instead of raising, as the
    contract says: refused packets in ``failed``, a closed sink in ``closed``.
    ``batches`` records the length of each write_many call.
    """

    def __init__(self, faults: dict[int, BaseException] | None = None, caps: Capabilities = TSO_USO):
        super().__init__(faults, caps)
        self.batches: list[int] = []

    def write_many(self, packets: Sequence[Buffer]) -> WriteBatch:
        self.batches.append(len(packets))
        written = total = 0
        failed: list[tuple[int, Exception]] = []
        for index, data in enumerate(packets):
            try:
                self.write(data)
            except QueueClosed as exc:
                return WriteBatch(written, total, tuple(failed), exc)
            except (OSError, TioError, ValueError) as exc:
                failed.append((index, exc))
                continue
            written += 1
            total += len(data)
        return WriteBatch(written, total, tuple(failed))
