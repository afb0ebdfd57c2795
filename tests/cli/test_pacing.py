"""Pacing as tcpreplay users expect it: --mbps, --pps, --speed, --duration, --loop with a delay (issue 15 item 2)."""

from __future__ import annotations

import pytest

from tests.cli.helpers import DEMO, DEMO_PACKETS, tio, tio_json


def test_mbps_paces_the_replay_at_that_bit_rate():
    summary = tio_json("replay", DEMO, "--to", "fake", "--mbps", "100", "--loop", "0", "--duration", "3")
    rate = summary["bytes_read"] * 8 / summary["active_s"] / 1e6
    assert rate == pytest.approx(100, rel=0.05), f"--mbps 100 replays at 100 Mbit/s (+-5%), got {rate:.1f}"


def test_duration_stops_the_run_after_that_many_seconds():
    summary = tio_json("replay", DEMO, "--to", "fake", "--pps", "1000", "--loop", "0", "--duration", "2")
    assert summary["elapsed_s"] == pytest.approx(2, abs=0.2), "--duration 2 stops after 2 s +- 0.2"
    assert summary["stopped_by"] == "duration" and summary["interrupted"] is False
    assert summary["packets_read"] > 1000


def test_pps_paces_packets_per_second():
    summary = tio_json("replay", DEMO, "--to", "fake", "--pps", "400", "--limit", "400")
    assert summary["packets_read"] / summary["active_s"] == pytest.approx(400, rel=0.1)


def test_loop_replays_the_capture_n_times_with_a_delay_between_passes():
    summary = tio_json("replay", DEMO, "--to", "fake", "--loop", "3", "--loop-delay", "0.4")
    assert summary["packets_read"] == 3 * DEMO_PACKETS, "--loop 3 reads the capture three times"
    assert summary["active_s"] >= 0.8, "two delays of 0.4 s lie between three passes"
    paced = tio_json("replay", DEMO, "--to", "fake", "--loop", "2", "--loop-delay", "0.5", "--pps", "2000")
    assert paced["packets_read"] == 2 * DEMO_PACKETS
    assert paced["active_s"] >= 2 * DEMO_PACKETS / 2000 + 0.5 - 0.05, "the delay adds to paced time"


def test_loop_delay_needs_loop():
    result = tio("replay", DEMO, "--to", "fake", "--loop-delay", "1")
    assert result.returncode == 2 and "--loop-delay needs --loop" in result.stderr


def test_help_states_the_default_pacing_and_the_modes():
    text = " ".join(tio("replay", "--help").stdout.split())
    assert "default as fast as possible" in text
    for flag in ("--speed", "--pps", "--mbps", "--loop", "--loop-delay", "--duration", "--limit"):
        assert flag in text
