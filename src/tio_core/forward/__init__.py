"""Forwarding: the read -> segment -> coalesce -> write loop and the runner that drives it."""

from tio_core.forward.forwarder import CountingWriter, Forwarder, PacketBudget, StopFlag
from tio_core.forward.stats import ForwardStats, QueueCounts

__all__ = ["CountingWriter", "ForwardStats", "Forwarder", "PacketBudget", "QueueCounts", "StopFlag"]
