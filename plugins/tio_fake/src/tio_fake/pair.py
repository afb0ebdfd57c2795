"""fake_pair: two fake sets wired back to back, as two ends of a link."""

from __future__ import annotations

from typing import Any

from tio_core.errors import ConfigError
from tio_fake.backend import FakeQueueSet, open_fake
from tio_fake.records import DELIVER_SEGMENTED, DELIVERY_MODES


def fake_pair(deliver: str = DELIVER_SEGMENTED, **options: Any) -> tuple[FakeQueueSet, FakeQueueSet]:
    """Two fake sets wired back to back: what queue i of one writes, queue i of the other reads.

    deliver="segmented": write_gso arrives as the kernel's wire packets;
    deliver="superpacket": it arrives as one Packet with GSOInfo, as a reader
    of a TSO/USO-enabled TUN would see it. Packets written after the peer
    closed are counted in ``peer_drops``. ``options`` go to open_fake() for
    both sets; ``owner`` (for ReadTimeout messages) is suffixed "left"/"right".
    """
    if deliver not in DELIVERY_MODES:
        modes = " or ".join(map(repr, DELIVERY_MODES))
        raise ConfigError(f"fake_pair: deliver must be {modes}, got {deliver!r}")
    owner = options.pop("owner", "")
    left = open_fake(**options, owner=f"{owner}, left set" if owner else "")
    right = open_fake(**options, owner=f"{owner}, right set" if owner else "")
    for a, b in zip(left.queues(), right.queues()):
        a._peer, b._peer = b, a
        a._deliver = b._deliver = deliver
    return left, right


__all__ = ["fake_pair"]
