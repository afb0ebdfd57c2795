"""`tio bench --json` and `--plot` through the command (the chart itself: tests/bench/test_chart.py)."""

from __future__ import annotations

import json

from tests.cli.helpers import tio


def test_bench_json_is_one_document_with_typed_figures():
    result = tio("bench", "--quick", "--only", "kernels", "--json", "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["meta"]["quick"] is True and document["meta"]["tio_version"]
    assert [area["area"] for area in document["areas"]] == ["kernels"]
    figures = document["areas"][0]["figures"]
    assert figures and all(isinstance(f["value"], float) for f in figures)
    assert all(f["ratio"] == f["value"] / f["baseline_value"] for f in figures if f["baseline_value"])
    assert document["notes"] == []


def test_bench_plot_target_is_checked_before_anything_runs(tmp_path):
    result = tio("bench", "--quick", "--plot", str(tmp_path / "chart.txt"))
    assert result.returncode == 2 and "PNG or SVG" in result.stderr
    assert "running" not in result.stderr, "no benchmark ran before the refusal"


def test_bench_plot_writes_the_chart(tmp_path):
    chart = tmp_path / "chart.svg"
    result = tio("bench", "--quick", "--only", "kernels", "--plot", str(chart), "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    assert chart.read_text().lstrip().startswith("<?xml") and f"chart written to {chart}" in result.stdout
