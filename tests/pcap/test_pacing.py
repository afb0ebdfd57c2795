"""Paced replay: real time scaled by speed, a fixed rate, and close() during a wait."""

from __future__ import annotations

import threading
import time

import pytest

from tests.pcap.captures import ip_packets, write_pcap
from tio_core import open_backend
from tio_core.errors import EndOfStream, QueueClosed


def timed_replay(path, **options) -> tuple[list[bytes], list[float], float]:
    """Packets, the time each one was returned, and the total duration."""
    got: list[bytes] = []
    seen_at: list[float] = []
    with open_backend("pcap", path=str(path), **options) as qs:
        queue = qs.queues()[0]
        start = time.monotonic()
        while True:
            try:
                batch = queue.read()
            except EndOfStream:
                break
            now = time.monotonic() - start
            got.extend(bytes(p.data) for p in batch)
            seen_at.extend([now] * len(batch))
        return got, seen_at, time.monotonic() - start


def test_realtime_at_speed_10_takes_a_tenth(tmp_path):
    packets = ip_packets(11)
    times = [1_700_000_000 + i * 0.1 for i in range(11)]  # the capture spans 1 s
    path = write_pcap(tmp_path / "rt.pcap", packets, times=times, nano=True)
    got, seen_at, duration = timed_replay(path, pacing="realtime", speed=10.0)
    assert got == packets  # timestamp order is file order here
    assert 0.08 <= duration < 0.6, duration
    # each packet is released no earlier than its scaled timestamp
    for index, at in enumerate(seen_at):
        assert at >= index * 0.01 - 0.002, (index, at)
    assert seen_at == sorted(seen_at)


def test_realtime_loops_continue_from_the_end_of_the_previous_pass(tmp_path):
    times = [1_700_000_000 + i * 0.1 for i in range(6)]  # 0.5 s per pass
    path = write_pcap(tmp_path / "rt.pcap", ip_packets(6), times=times)
    got, _, duration = timed_replay(path, pacing="realtime", speed=10.0, loop=2)
    assert len(got) == 12
    assert 0.08 <= duration < 0.6, duration


def test_fixed_rate(tmp_path):
    packets = ip_packets(101)
    path = write_pcap(tmp_path / "rate.pcap", packets)
    got, seen_at, duration = timed_replay(path, pacing="rate", rate=1000.0, batch=8)
    assert got == packets
    assert 0.08 <= duration < 0.6, duration
    assert seen_at[50] >= 0.048


def test_fast_is_not_paced(tmp_path):
    times = [1_700_000_000 + i * 100.0 for i in range(5)]  # hours apart
    path = write_pcap(tmp_path / "fast.pcap", ip_packets(5), times=times)
    _, _, duration = timed_replay(path)
    assert duration < 0.5


def test_close_wakes_a_paced_read(tmp_path):
    times = [1_700_000_000.0, 1_700_000_100.0]  # the second packet is due in 100 s
    path = write_pcap(tmp_path / "slow.pcap", ip_packets(2), times=times)
    qs = open_backend("pcap", path=str(path), pacing="realtime")
    queue = qs.queues()[0]
    assert len(queue.read()) == 1
    outcome: list[object] = []

    def reader():
        try:
            outcome.append(queue.read())
        except BaseException as exc:  # the result under test
            outcome.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()
    qs.close()
    thread.join(5)
    assert not thread.is_alive() and isinstance(outcome[0], QueueClosed)
    assert not isinstance(outcome[0], EndOfStream)


@pytest.mark.parametrize(
    "options,words",
    [
        ({"pacing": "rate"}, "needs rate"),
        ({"rate": 10.0}, "only used with pacing='rate'"),
        ({"pacing": "rate", "rate": 0.0}, "rate must be > 0"),
        ({"pacing": "realtime", "speed": -1.0}, "speed must be > 0"),
        ({"loop": -1}, "loop must be >= 0"),
        ({"limit": -5}, "limit must be >= 0"),
        ({"pacing": "warp"}, "must be one of"),
    ],
)
def test_bad_pacing_options(tmp_path, options, words):
    from tio_core.errors import ConfigError

    path = write_pcap(tmp_path / "o.pcap", ip_packets(1))
    with pytest.raises(ConfigError, match=words):
        open_backend("pcap", path=str(path), **options)
