"""Forwarding: the read -> segment -> coalesce -> write loop and the runner that drives it."""

from tio_core.forward.forwarder import CountingWriter, Forwarder, ForwardStats

__all__ = ["CountingWriter", "ForwardStats", "Forwarder"]
