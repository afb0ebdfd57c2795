"""pytest fixtures for code that uses tio, loaded through the ``pytest11`` entry point.

Fixtures:
  fake_queue_set  a FakeQueueSet, closed after the test
  fake_queue      queue 0 of fake_queue_set
  fake_pair       two FakeQueueSets wired back to back (see tio_fake.pair.fake_pair)
  packet_factory  a session-wide tio_fake.packets.PacketFactory (scapy templates, cached)

Configure the fake per test with the marker
``@pytest.mark.tio_fake(capabilities="tso", max_batch=8, deliver="superpacket", ...)``:
its keywords go to open_fake() (``deliver`` to fake_pair()).

No read on these fixtures hangs a test run: unless the marker sets
``read_timeout``, a read waits at most the ini option ``tio_fake_read_timeout``
(DEFAULT_READ_TIMEOUT seconds; ``none`` waits forever) and then raises
ReadTimeout naming the fixture and what the read waited for.

This module is imported by every pytest run in an environment where
tio-fake is installed, so it imports the backend and scapy only when a
fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tio_fake.backend import FakeQueueSet
    from tio_fake.packets import PacketFactory
    from tio_fake.queue import FakeQueue

MARKER = "tio_fake"
TIMEOUT_INI = "tio_fake_read_timeout"
DEFAULT_READ_TIMEOUT = 5.0
TIMEOUT_ADVICE = (
    "inject the packets before reading, or let reads wait longer with "
    f"@pytest.mark.{MARKER}(read_timeout=SECONDS) or the ini option {TIMEOUT_INI} (none: forever)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        TIMEOUT_INI,
        f"seconds a read on a tio_fake fixture waits before failing the test ('none': forever; "
        f"default {DEFAULT_READ_TIMEOUT:g})",
        default=f"{DEFAULT_READ_TIMEOUT:g}",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options for the fake_queue_set / fake_queue / fake_pair fixtures "
        "(queues, max_batch, capabilities, read_timeout, blocking, end_of_stream; deliver for fake_pair)",
    )


def _ini_read_timeout(config: pytest.Config) -> float | None:
    text = str(config.getini(TIMEOUT_INI)).strip().lower()
    if text in ("none", "forever"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise pytest.UsageError(f"ini option {TIMEOUT_INI} must be seconds >= 0 or 'none', got {text!r}")
    return seconds


def _fixture_options(request: pytest.FixtureRequest, fixture: str) -> dict[str, Any]:
    """Marker keywords checked like backend options (ConfigError names a wrong one), plus the read timeout."""
    from tio_core.plugin.options import Option, validate_options
    from tio_fake.plugin import FAKE_OPTIONS
    from tio_fake.records import DELIVER_SEGMENTED, DELIVERY_MODES

    given: dict[str, Any] = {}
    # Closest marker wins; a class-level marker is overridden by a function-level one.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword options only, got {marker.args!r}")
        given.update(marker.kwargs)
    declared = {option.name: option for option in FAKE_OPTIONS}
    declared["deliver"] = Option("deliver", str, DELIVER_SEGMENTED, "fake_pair delivery", choices=DELIVERY_MODES)
    options = validate_options(f"fake (@pytest.mark.{MARKER})", declared, given)
    if "read_timeout" not in given:
        options["read_timeout"] = _ini_read_timeout(request.config)
    options["owner"] = f"fixture {fixture}"
    options["timeout_advice"] = TIMEOUT_ADVICE
    return options


@pytest.fixture
def fake_queue_set(request: pytest.FixtureRequest) -> Iterator[FakeQueueSet]:
    """An open FakeQueueSet (backend ``fake``), closed after the test."""
    from tio_fake.backend import open_fake

    options = _fixture_options(request, "fake_queue_set")
    del options["deliver"]  # only for fake_pair
    queue_set = open_fake(**options)
    yield queue_set
    queue_set.close()


@pytest.fixture
def fake_queue(fake_queue_set: FakeQueueSet) -> FakeQueue:
    """Queue 0 of ``fake_queue_set``: inject() inbound, read(), inspect written_packets()."""
    queue = fake_queue_set.queues()[0]
    queue.owner = "fixture fake_queue (queue 0 of fake_queue_set)"
    return queue


@pytest.fixture
def fake_pair(request: pytest.FixtureRequest) -> Iterator[tuple[FakeQueueSet, FakeQueueSet]]:
    """(left, right): what queue i of one set writes, queue i of the other reads."""
    from tio_fake.pair import fake_pair as make_pair

    left, right = make_pair(**_fixture_options(request, "fake_pair"))
    yield left, right
    left.close()
    right.close()


@pytest.fixture(scope="session")
def packet_factory() -> PacketFactory:
    """Builds TCP/UDP IPv4/IPv6 packets, flows, TSO/USO superpackets and malformed variants."""
    from tio_fake.packets import PacketFactory

    return PacketFactory()
