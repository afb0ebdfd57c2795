"""Paced replay: real time scaled by speed, a fixed rate, and close() during a wait."""

from __future__ import annotations

import time

import pytest

from tests.pcap.captures import far_future_pcap, far_future_pcapng, ip_packets, write_pcap
from tio_core import open_backend
from tio_core.errors import EndOfStream, QueueClosed
from tio_testing.threads import BackgroundRead


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
    reader = BackgroundRead(queue)
    reader.join(0.2)
    assert reader.is_alive()
    qs.close()
    reader.join(5)
    assert not reader.is_alive() and isinstance(reader.outcome[0], QueueClosed)
    assert not isinstance(reader.outcome[0], EndOfStream)


@pytest.mark.parametrize(
    "options,words",
    [
        ({"pacing": "rate"}, "needs rate"),
        ({"rate": 10.0}, "only used with pacing='rate'"),
        ({"pacing": "rate", "rate": 0.0}, "rate must be a finite number of packets per second, at least"),
        ({"pacing": "realtime", "speed": -1.0}, "speed must be a finite number, at least"),
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


# -- hostile pacing values (issue 12, item 13): a typed error, never a bare OverflowError/ValueError ------


@pytest.mark.parametrize("speed", [1e-320, 1e-310, 5e-324, 1e-300, 1e-12, float("inf"), float("-inf"), float("nan")])
def test_a_speed_pacing_cannot_follow_is_a_config_error(tmp_path, speed):
    from tio_core.errors import ConfigError

    path = write_pcap(tmp_path / "s.pcap", ip_packets(3), times=[1_700_000_000, 1_700_000_001, 1_700_000_002])
    with pytest.raises(ConfigError, match="speed must be"):
        timed_replay(path, pacing="realtime", speed=speed)


@pytest.mark.parametrize("rate", [1e-310, 1e-320, 1e-300, 1e-12, float("inf"), float("nan")])
def test_a_rate_pacing_cannot_follow_is_a_config_error(tmp_path, rate):
    from tio_core.errors import ConfigError

    path = write_pcap(tmp_path / "r.pcap", ip_packets(3))
    with pytest.raises(ConfigError, match="rate must be"):
        timed_replay(path, pacing="rate", rate=rate)


@pytest.mark.parametrize(
    "options",
    [
        {"pacing": "realtime", "speed": 1e-9},
        {"pacing": "rate", "rate": 1e-9},
        {"pacing": "realtime", "speed": 1e300},
        {"pacing": "rate", "rate": 1e300},
    ],
)
def test_the_extreme_pacing_values_accepted_work(tmp_path, options):
    """The smallest speed and rate accepted start at once; the largest replay as fast as possible."""
    path = write_pcap(tmp_path / "e.pcap", ip_packets(3), times=[1_700_000_000, 1_700_000_000, 1_700_000_000])
    with open_backend("pcap", path=str(path), **options) as qs:
        start = time.monotonic()
        assert bytes(qs.queues()[0].read()[0].data) == ip_packets(1)[0]
        assert time.monotonic() - start < 1
        if options.get("speed") == 1e300 or options.get("rate") == 1e300:
            assert len(timed_replay(path, **options)[0]) == 3


@pytest.mark.parametrize("capture,speed", [(far_future_pcapng, 1.0), (far_future_pcap, 1e-9)])
def test_a_far_future_timestamp_is_a_format_error_at_its_offset(tmp_path, capture, speed):
    from tio_pcap.errors import CaptureFormatError

    path, offset = capture(tmp_path)
    with open_backend("pcap", path=str(path), pacing="realtime", speed=speed) as qs:
        queue = qs.queues()[0]
        got = []
        with pytest.raises(CaptureFormatError) as caught:
            while True:
                got += [bytes(p.data) for p in queue.read()]
        assert got == ip_packets(2), "the packets before the unpaceable one are delivered first"
        assert caught.value.offset == offset, "the error names the offset of the record with the timestamp"
        assert "timestamp" in caught.value.problem and str(path) in str(caught.value)
        with pytest.raises(CaptureFormatError):
            queue.read()  # and again: the queue never skips ahead
