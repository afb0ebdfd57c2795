"""End to end: two namespaces joined by two TUNs and examples/tun_bridge.py.

The forwarder runs as its own process exactly as a user would start it
(tio_linux.netns.TunLink.start moves its devices into the namespaces); TCP and
UDP over IPv4 and IPv6 go through it and must arrive byte for byte, with no
checksum error counted in either namespace.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

BRIDGE = Path(__file__).resolve().parents[2] / "examples" / "tun_bridge.py"


@pytest.fixture(params=[("segment", "process"), ("passthrough", "process"), ("segment", "thread")], ids="-".join)
def bridge(request, tio_tun_link):
    """A TunLink joined by tun_bridge.py in the given mode; the bridge must stop cleanly afterwards."""
    mode, workers = request.param
    forwarder = tio_tun_link.start(
        [sys.executable, str(BRIDGE), "--mode", mode, "--workers", workers, "{a}", "{b}"], ready="READY"
    )
    yield tio_tun_link
    code = forwarder.stop()
    _, err = forwarder.output()
    assert code == 0, err
    assert "Traceback" not in err, err


def usos(version: int, rounds: int = 30) -> list[bytes]:
    """Per round one 7x1200+345-byte message (a USO superpacket at segment size 1200) and one small datagram."""
    messages = []
    for index in range(rounds):
        messages.append(hashlib.shake_256(bytes([version, index])).digest(1200 * 7 + 345))
        messages.append(messages[-1][:100] + index.to_bytes(4, "big"))
    return messages


@pytest.mark.slow
def test_tcp_v4_200mb_byte_exact(bridge):
    before = bridge.checksum_errors()
    result = bridge.tcp(200 * 1024 * 1024)
    assert result.intact, result
    assert bridge.checksum_errors() == before


def test_tcp_v6_byte_exact(bridge):
    before = bridge.checksum_errors()
    result = bridge.tcp(32 * 1024 * 1024, version=6)
    assert result.intact, result
    assert bridge.checksum_errors() == before


@pytest.mark.parametrize("version", [4, 6])
def test_udp_with_uso_byte_exact(bridge, version):
    before = bridge.checksum_errors()
    result = bridge.udp(usos(version), version=version, segment_size=1200)
    assert result.intact, result
    assert len(result.expected) == 30 * 9
    assert bridge.checksum_errors() == before
