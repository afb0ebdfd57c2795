"""Errors specific to the Linux backend; all are TioErrors with a builtin base."""

from __future__ import annotations

from tio_core.errors import TioError


class TunUnavailableError(TioError, FileNotFoundError):
    """/dev/net/tun is missing (module not loaded, or not passed into a container)."""


class DeviceError(TioError, OSError):
    """The kernel refused to create, attach or configure the TUN device."""


class NotATunError(TioError, ValueError):
    """An fd handed to QueueSet.add() is not a usable TUN queue."""


class InterfaceDownError(TioError, OSError):
    """A write failed with EIO: the interface is down (bring it up, then write again)."""


class HandoffError(TioError, ConnectionError):
    """Handing queue fds over a Unix socket failed: the peer closed, timed out or sent something else."""
