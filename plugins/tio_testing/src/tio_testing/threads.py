"""A read() left waiting in the background, to see what wakes it (close, end of stream, a packet)."""

from __future__ import annotations

import threading

from tio_core.contract import Queue


class BackgroundRead(threading.Thread):
    """Calls ``queue.read()`` once in a daemon thread, started at once; ``outcome`` gets what it returned or raised."""

    def __init__(self, queue: Queue) -> None:
        super().__init__(name="tio-testing background read", daemon=True)
        self.queue = queue
        self.outcome: list[object] = []
        self.start()

    def run(self) -> None:
        try:
            self.outcome.append(self.queue.read())
        except BaseException as exc:  # the result under test
            self.outcome.append(exc)
