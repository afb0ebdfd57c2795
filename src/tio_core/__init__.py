"""tio: fast userspace TUN I/O with kernel offloads, pluggable backends."""

from importlib.metadata import PackageNotFoundError, version

from tio_core.contract import (
    NO_CAPABILITIES,
    NO_GSO,
    Capabilities,
    CapsProvider,
    GSOInfo,
    GSOProto,
    GSOWriter,
    Packet,
    Queue,
    QueueSet,
    queue_capabilities,
    supports_gso,
)
from tio_core.errors import (
    BackendConflict,
    BackendLoadError,
    BackendNotFound,
    ConfigError,
    EndOfStream,
    GSOGeometryError,
    MalformedPacket,
    OffloadError,
    QueueClosed,
    TioError,
    TioPermissionError,
)
from tio_core.plugin.api import BackendDef, BenchmarkDef, hookimpl
from tio_core.plugin.config import open_from_config
from tio_core.plugin.options import Option
from tio_core.plugin.registry import BackendSpec, available_backends, open_backend, register_plugin

try:
    __version__ = version("tio-core")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "BackendConflict",
    "BackendDef",
    "BackendLoadError",
    "BackendNotFound",
    "BackendSpec",
    "BenchmarkDef",
    "Capabilities",
    "CapsProvider",
    "ConfigError",
    "EndOfStream",
    "GSOGeometryError",
    "GSOInfo",
    "GSOProto",
    "GSOWriter",
    "MalformedPacket",
    "NO_CAPABILITIES",
    "NO_GSO",
    "OffloadError",
    "Option",
    "Packet",
    "Queue",
    "QueueClosed",
    "QueueSet",
    "TioError",
    "TioPermissionError",
    "available_backends",
    "hookimpl",
    "open_backend",
    "open_from_config",
    "queue_capabilities",
    "register_plugin",
    "supports_gso",
]
