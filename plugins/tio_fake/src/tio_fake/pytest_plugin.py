"""pytest fixtures for code that uses tio, loaded through the ``pytest11`` entry point.

Fixtures:
  fake_queue_set  a FakeQueueSet, closed after the test
  fake_queue      queue 0 of fake_queue_set
  fake_pair       two FakeQueueSets wired back to back (see tio_fake.backend.fake_pair)
  packet_factory  a session-wide tio_fake.packets.PacketFactory (scapy templates, cached)

Configure the fake per test with the marker
``@pytest.mark.tio_fake(capabilities="tso", max_batch=8, deliver="superpacket", ...)``:
its keywords go to open_fake() (``deliver`` to fake_pair()).

This module is imported by every pytest run in an environment where
tio-fake is installed, so it imports the backend and scapy only when a
fixture is used.
"""

from __future__ import annotations

from typing import Any

import pytest

MARKER = "tio_fake"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options for the fake_queue_set / fake_queue / fake_pair fixtures "
        "(queues, max_batch, capabilities, read_timeout, blocking, end_of_stream; deliver for fake_pair)",
    )


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Marker keywords, checked like backend options (ConfigError names a wrong one)."""
    from tio_core.plugin.options import Option, validate_options
    from tio_fake.backend import DELIVER_SEGMENTED, DELIVER_SUPERPACKET
    from tio_fake.plugin import FAKE_OPTIONS

    options: dict[str, Any] = {}
    # Closest marker wins; a class-level marker is overridden by a function-level one.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword options only, got {marker.args!r}")
        options.update(marker.kwargs)
    declared = {option.name: option for option in FAKE_OPTIONS}
    declared["deliver"] = Option(
        "deliver", str, DELIVER_SEGMENTED, "fake_pair delivery", choices=(DELIVER_SEGMENTED, DELIVER_SUPERPACKET)
    )
    return validate_options(f"fake (@pytest.mark.{MARKER})", declared, options)


@pytest.fixture
def fake_queue_set(request: pytest.FixtureRequest):
    """An open FakeQueueSet (backend ``fake``), closed after the test."""
    from tio_fake.backend import open_fake

    options = _marker_options(request)
    del options["deliver"]  # only for fake_pair
    queue_set = open_fake(**options)
    yield queue_set
    queue_set.close()


@pytest.fixture
def fake_queue(fake_queue_set):
    """Queue 0 of ``fake_queue_set``: inject() inbound, read(), inspect written_packets()."""
    return fake_queue_set.queues()[0]


@pytest.fixture
def fake_pair(request: pytest.FixtureRequest):
    """(left, right): what queue i of one set writes, queue i of the other reads."""
    from tio_fake.backend import fake_pair as make_pair

    left, right = make_pair(**_marker_options(request))
    yield left, right
    left.close()
    right.close()


@pytest.fixture(scope="session")
def packet_factory():
    """Builds TCP/UDP IPv4/IPv6 packets, flows, TSO/USO superpackets and malformed variants."""
    from tio_fake.packets import PacketFactory

    return PacketFactory()
