"""The fake backend's own exceptions (everything else it raises comes from tio_core.errors)."""

from __future__ import annotations

from tio_core.errors import TioError


class ReadTimeout(TioError, TimeoutError):
    """read() waited its timeout and no packet arrived; the message says which queue and for what."""


class FakeFdError(TioError, ValueError):
    """add(fd) was given a descriptor the fake cannot use as a queue."""


__all__ = ["FakeFdError", "ReadTimeout"]
