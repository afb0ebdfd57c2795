"""The ``fake`` backend: FakeQueueSet, the set of in-memory queues that ``open_fake`` opens."""

from __future__ import annotations

import socket
import threading
from typing import Any

from tio_core.contract import Capabilities, QueueSet
from tio_core.errors import ConfigError, QueueClosed
from tio_fake.caps import FakeCapsQueue, parse_capabilities
from tio_fake.errors import FakeFdError
from tio_fake.fd_queue import FdCapsQueue, FdQueue
from tio_fake.queue import DEFAULT_MAX_BATCH, FakeQueue


class FakeQueueSet(QueueSet):
    """A set of FakeQueues; ``add(fd)`` wraps a datagram socket (see FdQueue).

    ``owner`` and ``timeout_advice`` go to every queue, for ReadTimeout's
    message (the pytest fixtures name themselves there).
    """

    def __init__(
        self,
        queues: int = 1,
        max_batch: int = DEFAULT_MAX_BATCH,
        capabilities: str | Capabilities | None = None,
        read_timeout: float | None = None,
        blocking: bool = True,
        end_of_stream: bool = False,
        *,
        owner: str = "",
        timeout_advice: str = "",
    ) -> None:
        if not isinstance(queues, int) or isinstance(queues, bool) or not 1 <= queues <= 256:
            raise ConfigError(f"fake: queues must be between 1 and 256, got {queues!r}")
        self.caps = parse_capabilities(capabilities)
        self._queue_options: dict[str, Any] = dict(
            max_batch=max_batch,
            read_timeout=read_timeout,
            blocking=blocking,
            end_of_stream=end_of_stream,
            owner=owner,
            timeout_advice=timeout_advice,
        )
        self._queues: list[FakeQueue] = []
        self._lock = threading.Lock()
        for _ in range(queues):
            self._queues.append(self._new_queue(FakeQueue))

    def _new_queue(self, kind: type[FakeQueue], **extra: Any) -> FakeQueue:
        name = f"fake{len(self._queues)}"
        if self.caps is not None:
            kind = FakeCapsQueue if kind is FakeQueue else FdCapsQueue
            extra["caps"] = self.caps
        return kind(name=name, **self._queue_options, **extra)

    def queues(self) -> list[FakeQueue]:  # type: ignore[override]
        with self._lock:
            return list(self._queues)

    def __getitem__(self, index: int) -> FakeQueue:
        return self.queues()[index]

    def add(self, fd: int) -> FakeQueue:
        """Adopt ``fd``, a datagram or seqpacket socket (e.g. one end of a socketpair), as a queue.

        The set owns the descriptor from then on. Anything else (a pipe, a
        stream socket, a closed fd) raises FakeFdError and the fd is left open.
        """
        if self.closed:
            raise QueueClosed("fake: add on a closed queue set")
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise FakeFdError(f"fake: add takes an integer file descriptor, got {type(fd).__name__}")
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise FakeFdError(
                f"fake: fd {fd} is not a socket ({exc.strerror or exc}); pass one end of a socketpair"
            ) from None
        if sock.type not in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
            sock.detach()
            raise FakeFdError(f"fake: fd {fd} is a {sock.type.name} socket; packets need SOCK_DGRAM or SOCK_SEQPACKET")
        queue = self._new_queue(FdQueue, sock=sock)
        with self._lock:
            self._queues.append(queue)
        return queue

    def inject(self, *packets: Any, queue: int = 0, **kwargs: Any) -> None:
        """Shortcut for ``self[queue].inject(...)``."""
        self[queue].inject(*packets, **kwargs)

    def written_packets(self, *, segmented: bool = True, scapy: bool = False) -> list[Any]:
        """Packets written through every queue, queue by queue."""
        out: list[Any] = []
        for queue in self.queues():
            out.extend(queue.written_packets(segmented=segmented, scapy=scapy))
        return out

    def clear(self) -> None:
        for queue in self.queues():
            queue.clear()


# The factory registered as backend "fake" (see plugin.py for the options).
open_fake = FakeQueueSet

__all__ = ["FakeQueueSet", "open_fake"]
