"""The summary of forward, replay and record: its fields, their arithmetic, its text (issue 15 item 1)."""

from __future__ import annotations

import json
import resource
import signal

import pytest

from tests.cli.helpers import DEMO, DEMO_PACKETS, read_capture, tio, tio_json

SUPERPACKETS_IN_DEMO = 96  # TCP/UDP packets above 1500 bytes in the demo capture


def assert_adds_up(part: dict) -> None:
    sp = part["superpackets"]
    assert part["wire_packets_in"] == part["packets_written"] + part["dropped"], (
        "every packet read is written or dropped"
    )
    assert part["dropped"] == sum(part["drops"].values()), "drops by reason add up to dropped"
    assert sp["read"] == sp["segmented"] + sp["passed_through"] + sp["malformed"], "superpackets are all accounted for"
    assert part["wire_packets_in"] == part["packets_read"] - sp["read"] + sp["wire_packets"]
    assert 0 < part["active_s"] <= part["elapsed_s"], "rates are over the active time, within the elapsed time"
    assert part["packets_per_s"] == pytest.approx(part["packets_written"] / part["active_s"], rel=1e-3)
    assert part["gbit_per_s"] == pytest.approx(part["bytes_written"] * 8 / part["active_s"] / 1e9, rel=1e-3)
    if part["gso_writes"]:
        segments = part["packets_written"] - part["verbatim_writes"]
        assert part["segments_per_gso_write"] == pytest.approx(segments / part["gso_writes"], abs=0.01)


def typed(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def test_forward_json_is_one_object_with_typed_fields():
    summary = tio_json("forward")
    assert summary["type"] == "summary" and summary["command"] == "forward"
    for key in ("packets_read", "bytes_read", "packets_written", "bytes_written", "gso_writes", "dropped"):
        assert typed(summary[key], int), f"{key} is a number, not {summary[key]!r}"
    for key in ("active_s", "elapsed_s", "packets_per_s", "gbit_per_s", "segments_per_gso_write"):
        assert typed(summary[key], float), f"{key} is a number, not {summary[key]!r}"
    assert summary["route"]["source"] == {"backend": "pcap", "options": {"path": DEMO, "gso_mtu": 1500}}
    assert summary["route"]["sink"] == {"backend": "fake", "options": {}}
    assert summary["route"]["segment"] is True and summary["route"]["coalesce"] is True
    assert summary["superpackets"] == {
        "read": SUPERPACKETS_IN_DEMO,
        "segmented": SUPERPACKETS_IN_DEMO,
        "passed_through": 0,
        "malformed": 0,
        "inferred": SUPERPACKETS_IN_DEMO,
        "wire_packets": summary["superpackets"]["wire_packets"],
    }
    assert summary["stopped_by"] == "end of input" and summary["packets_read"] == DEMO_PACKETS
    assert_adds_up(summary)


def test_forward_text_names_the_route_and_rates():
    result = tio("forward")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["route"].split()[1:4] == [f"pcap:path={DEMO},gso_mtu=1500", "->", "fake"]
    assert f"{SUPERPACKETS_IN_DEMO} read, inferred from the capture (gso_mtu=1500)" in lines["superpackets"]
    assert f"{SUPERPACKETS_IN_DEMO} segmented" in lines["superpackets"]
    assert "packets/s" in lines["rate"] and "Gbit/s" in lines["rate"] and "active" in lines["rate"]
    assert "GSO writes" in lines["out"] and "segments/write" in lines["out"]
    assert lines["stopped"].endswith("at the end of the input")


def test_replay_without_gso_mtu_says_no_superpackets_were_inferred_and_how_to_get_them():
    summary = tio_json("replay", DEMO, "--to", "fake")
    assert summary["superpackets"]["read"] == 0 and summary["superpackets"]["inferred"] == 0
    assert summary["wire_packets_in"] == summary["packets_read"] == DEMO_PACKETS
    assert_adds_up(summary)
    text = tio("replay", DEMO, "--to", "fake").stdout
    assert "--gso-mtu" in next(line for line in text.splitlines() if line.startswith("superpackets"))


def test_replay_with_inferred_superpackets_segments_them():
    summary = tio_json("replay", DEMO, "--gso-mtu", "1500", "--to", "fake")
    assert summary["superpackets"]["inferred"] == summary["superpackets"]["segmented"] == SUPERPACKETS_IN_DEMO
    assert summary["route"]["source"]["options"] == {"path": DEMO, "gso_mtu": 1500}
    assert_adds_up(summary)


def test_replay_no_segment_passes_superpackets_through_and_says_so():
    summary = tio_json("replay", DEMO, "--gso-mtu", "1500", "--no-segment", "--to", "fake")
    sp = summary["superpackets"]
    assert (sp["passed_through"], sp["segmented"]) == (SUPERPACKETS_IN_DEMO, 0), "--no-segment segments nothing"
    assert summary["route"]["segment"] is False
    assert_adds_up(summary)
    text = tio("replay", DEMO, "--gso-mtu", "1500", "--no-segment", "--to", "fake").stdout
    line = next(line for line in text.splitlines() if line.startswith("superpackets"))
    assert f"{SUPERPACKETS_IN_DEMO} passed through as GSO" in line and "0 segmented" in line


@pytest.mark.parametrize("superpackets", [False, True])
def test_record_names_the_file_and_the_records_written(tmp_path, superpackets):
    out = tmp_path / "rec.pcap"
    flags = ["--superpackets"] if superpackets else []
    summary = tio_json("record", "--from", f"pcap:path={DEMO},gso_mtu=1500", str(out), *flags)
    records = read_capture(out)
    record = summary["record"]
    assert record["path"] == str(out) and record["format"] == "pcap"
    assert record["mode"] == ("superpacket" if superpackets else "segmented")
    assert record["records_written"] == len(records), "the summary counts the records in the file"
    assert_adds_up(summary)
    text = tio("record", "--from", f"pcap:path={DEMO},gso_mtu=1500", str(tmp_path / "again.pcap"), *flags).stdout
    assert f"{len(records)} records to {tmp_path / 'again.pcap'}" in text


def test_limit_and_the_stop_reason():
    summary = tio_json("forward", "--limit", "10")
    assert summary["packets_read"] == 10 and summary["stopped_by"] == "limit"
    replay = tio_json("replay", DEMO, "--to", "fake", "--limit", "7")
    assert replay["packets_read"] == 7 and replay["stopped_by"] == "limit"


def test_stats_prints_a_line_per_interval_and_json_lines_with_json():
    # 432 packets at 200/s: a little over 2 s
    result = tio("replay", DEMO, "--to", "fake", "--pps", "200", "--stats", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    intervals, final = lines[:-1], lines[-1]
    assert final["type"] == "summary" and {line["type"] for line in intervals} == {"interval"}
    assert len(intervals) >= 4, f"--stats 0.5 over a 2 s run prints at least 4 lines, got {len(intervals)}"
    assert sum(line["packets_read"] for line in intervals) == final["packets_read"], "intervals add up to the total"
    assert sum(line["packets_written"] for line in intervals) == final["packets_written"]
    for earlier, later in zip(intervals, intervals[1:]):
        assert earlier["end_s"] == later["start_s"], "intervals follow each other without a gap"
    text = tio("replay", DEMO, "--to", "fake", "--pps", "400", "--stats", "0.5")
    interval_lines = [line for line in text.stdout.splitlines() if line.startswith("[")]
    assert len(interval_lines) >= 2 and all("packets/s" in line for line in interval_lines)
    assert "route" in text.stdout


def test_both_ways_reports_the_reverse_direction_on_its_own():
    source = f"pcap:path={DEMO},loop=0,pacing=rate,rate=2000.0"
    args = ("forward", "--from", source, "--to", "fake", "--both-ways", "--duration", "1")
    summary = tio_json(*args)
    assert summary["route"]["both_ways"] is True and summary["stopped_by"] == "duration"
    reverse = summary["reverse"]
    assert reverse["packets_read"] == reverse["packets_written"] == 0 and reverse["dropped"] == 0
    assert summary["packets_read"] > 1000
    text = tio(*args).stdout
    routes = [line for line in text.splitlines() if line.startswith(("route", "reverse"))]
    assert routes[0].split()[1:4] == [source, "->", "fake"] and routes[1].split()[1:4] == ["fake", "->", source]


def test_stats_1_prints_at_least_n_lines_for_an_n_second_run():
    result = tio("replay", DEMO, "--to", "fake", "--pps", "500", "--loop", "0", "--duration", "3", "--stats", "1")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) >= 3, f"--stats 1 over 3 s prints at least 3 interval lines, got {lines}"


def test_record_into_a_file_that_hits_its_size_limit_counts_what_reached_it_and_what_was_lost(tmp_path):
    out = tmp_path / "cut.pcap"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_001, resource.RLIM_INFINITY))

    result = tio("record", "--from", f"pcap:path={DEMO},loop=5", str(out), "--json", preexec_fn=limit)
    assert result.returncode == 1, result.stderr
    record = json.loads(result.stdout)["record"]
    assert record["records_written"] == len(read_capture(out)), "the summary counts the complete records in the file"
    assert record["packets_lost"] > 0, "and the packets the failing file lost"
