"""Running plugin code so that nothing it raises reaches the host, except the host's own signals.

A plugin is someone else's code: its import, its hooks and its factories may
raise anything, ``SystemExit`` and ``KeyboardInterrupt`` included (a stray
``sys.exit()`` at import time, a ``raise KeyboardInterrupt`` in a hook). Such
an exception is the plugin's failure and must not end the host, so
``contained()`` turns every exception, BaseException included, into a
``PluginFailure`` with a one-line reason.

A real Ctrl-C (or any signal whose Python handler raises, such as a SIGTERM
handler the host installed) is the user's, not the plugin's: it must still
stop the host. Both arrive as the same exception type, so ``contained()``
tells them apart by where the exception came from. For the duration of the
call every signal with a Python handler gets a thin wrapper that calls the
original handler and remembers the exception it raised. Once a handler has
raised during the call, that exception is what leaves ``contained()``:
as is when it escapes the plugin, and also when the plugin swallowed it or
replaced it with another, so a plugin cannot eat the user's Ctrl-C. Every
handler is put back afterwards, also one the plugin replaced: a plugin does
not take over the host's signal handling. The original handlers are restored
when the call returns. Signals only run Python handlers in the main thread,
so in other threads no wrapping is needed and every exception is the
plugin's. A plugin that calls ``os._exit()`` or kills the process cannot be
contained by any in-process means.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

REASON_LIMIT = 300  # characters of a reason kept; a plugin's message may be arbitrarily long
# Every signal a Python handler can be set for (computing the set costs more than checking each handler).
_CATCHABLE = tuple(sorted(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}))


class PluginFailure(Exception):
    """Plugin code raised something or returned something invalid; ``reason`` is one printable line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidPluginValue(Exception):
    """Raised by validators run inside ``contained()``: its message is the reason, given without a type name."""


def one_line(text: str, limit: int = REASON_LIMIT) -> str:
    """``text`` as one printable line: whitespace runs become one space, control characters '?'."""
    flat = " ".join(text.split())
    flat = "".join(ch if ch.isprintable() else "?" for ch in flat)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception in one line, even when its ``__str__`` itself raises."""
    try:
        name = type(exc).__name__
        text = str(exc)
    except BaseException:  # a hostile __str__ must not escape either
        return one_line(f"{type(exc).__qualname__}: <message could not be printed>")
    if isinstance(exc, InvalidPluginValue):
        return one_line(text)
    return one_line(f"{name}: {text}" if text else name)


def contained(call: Callable[[], T], passthrough: tuple[type[BaseException], ...] = ()) -> T:
    """``call()``; whatever it raises becomes ``PluginFailure`` (chained), except the host's signals.

    Exceptions of the ``passthrough`` types propagate unchanged (e.g. a
    backend's own typed ``TioError``).
    """
    watch = _SignalWatch()
    watch.start()
    try:
        try:
            result = call()
        except BaseException as exc:
            if watch.raised is exc:
                raise
            if watch.raised is not None:
                raise watch.raised from None  # the plugin replaced the user's Ctrl-C with something else: undo that
            if passthrough and isinstance(exc, passthrough):
                raise
            raise PluginFailure(describe(exc)) from exc
    finally:
        watch.stop()
    if watch.raised is not None:  # the plugin swallowed what the host's signal handler raised
        raise watch.raised
    return result


class _SignalWatch:
    """Wraps the Python signal handlers of the main thread to remember the exceptions they raise."""

    def __init__(self) -> None:
        self.raised: BaseException | None = None
        self._saved: dict[int, Any] = {}  # every handler as it was, to restore what the plugin or we changed
        self._installed: dict[int, Any] = {}  # the handlers as they are while plugin code runs

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # handlers run only in the main thread: nothing raised here comes from a signal
        for signum in _CATCHABLE:
            handler = signal.getsignal(signum)
            if handler is None:
                continue  # set from C: Python can neither wrap nor restore it
            self._saved[signum] = self._installed[signum] = handler
            if callable(handler):
                self._installed[signum] = self._wrap(handler)
                signal.signal(signum, self._installed[signum])

    def stop(self) -> None:
        """Put back every handler; also those the plugin replaced (a plugin does not take over the host's signals)."""
        for signum, handler in self._saved.items():
            if signal.getsignal(signum) is not self._installed[signum]:
                self._installed[signum] = None  # changed by the plugin: restore below
            if self._installed[signum] is not handler:
                signal.signal(signum, handler)
        self._saved.clear()

    def _wrap(self, handler: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], Any]:
        def remembering(signum: int, frame: FrameType | None) -> Any:
            try:
                return handler(signum, frame)
            except BaseException as exc:
                if self.raised is None:
                    self.raised = exc
                raise

        return remembering
