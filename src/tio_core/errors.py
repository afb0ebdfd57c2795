"""The exception hierarchy: every error tio raises on purpose is a TioError.

Subclasses also derive from the closest builtin (ValueError, LookupError,
PermissionError, ...) so callers that already catch those keep working.
"""


class TioError(Exception):
    """Base class of every error tio raises deliberately."""


class QueueClosed(TioError):
    """The queue (or its set) was closed; no further reads or writes."""


class EndOfStream(QueueClosed):
    """A finite source (a capture, a drained fake) has no more packets.

    It is a QueueClosed so that a forwarding loop that stops on close also
    stops at the end of a replay.
    """


class BackendNotFound(TioError, LookupError):
    """No backend is registered under the requested name."""


class BackendLoadError(TioError):
    """A backend plugin failed to import or registered something invalid."""


class BackendConflict(BackendLoadError):
    """Two distributions claim the same backend name."""


class ConfigError(TioError, ValueError):
    """A configuration or option value is unknown, missing or mistyped."""


class MalformedPacket(TioError, ValueError):
    """Packet bytes or their virtio_net_hdr metadata are not acceptable."""


class GSOGeometryError(TioError, ValueError):
    """A write_gso call whose pieces cannot form a valid superpacket."""


class OffloadError(TioError):
    """Kernel offload negotiation or an offloaded write failed."""


class CoalescerRefused(OffloadError, ValueError):
    """The writer cannot take write_gso for the protocol a coalescer lane was asked for."""


class PacketTypeError(TioError, TypeError):
    """An object handed to a coalescer is not a contiguous bytes-like packet."""


class LoopMismatch(TioError, RuntimeError):
    """An async queue was used from a different event loop than its first one."""


class TioPermissionError(TioError, PermissionError):
    """The process lacks a privilege the backend needs (e.g. CAP_NET_ADMIN)."""
