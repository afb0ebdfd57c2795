"""`tio bench --plot` / `--json`: a chart that communicates and a document with typed fields (issue 15.4)."""

from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET

import pytest

from tio_core.bench import Figure, check_figures
from tio_core.bench.chart import check_plot_target, figures_to_json, render_chart, run_meta
from tio_core.errors import ConfigError
from tio_core.plugin.registry import BackendRegistry

matplotlib = pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
META = {
    "date": "2026-11-30T12:00:00+00:00",
    "tio_version": "9.8.7",
    "cpu": "Test CPU",
    "cores": 2,
    "kernel": "Linux 6.18.0",
    "python": "3.11.7",
    "quick": True,
}


def quick_like_figures() -> dict[str, list[Figure]]:
    """Figures shaped like `tio bench --quick`: 0.003x to 46x, shared and mixed baselines, targets, no baseline."""
    return {
        "kernels": [
            Figure("segment TCPv4 64KiB MSS 1448 (C, reused buffer)", 2.6, "GB/s", "bytes copy", 8.9, target=0.25),
            Figure("segment TCPv4 64KiB MSS 1448 (pure)", 0.031, "GB/s", "bytes copy", 8.9),
            Figure("checksum 64KiB (C)", 15.4, "GB/s", "bytes copy", 10.0, target=2.0),
            Figure("checksum 64KiB (pure)", 0.114, "GB/s", "bytes copy", 10.0),
        ],
        "pcap": [
            Figure("pcap parse, small packets (tio_pcap reader)", 1.43, "Mpps", "scapy RawPcapReader", 0.573),
            Figure("pcapng parse, small packets (tio_pcap reader)", 0.584, "Mpps", "scapy RawPcapNgReader", 0.197),
        ],
        "fake": [
            Figure("packet_factory tcp_flow, 1000 B segments", 27700, "pkt/s", "scapy build per packet", 605),
            Figure("fake queue inject + read, 64-packet batches", 285000, "pkt/s"),
        ],
        "tun": [
            Figure("(b) naive per-packet forwarder", 1.06, "Gbit/s"),
            Figure("(e) tio segment+coalesce (VPN shape)", 2.31, "Gbit/s", "(b) naive per-packet forwarder", 1.06),
            Figure("(f) stalled path", 0.0, "Gbit/s", "(b) naive per-packet forwarder", 1.06),
        ],
    }


def ratio_axes(fig):
    return [ax for ax in fig.axes if ax.get_xscale() == "log"]


def bars_of(ax) -> int:
    return sum(len(container) for container in ax.containers)


def assert_valid_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, "the chart is a PNG file"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 400, image.shape


# -- check_plot_target: every reason to refuse, before anything runs ---------------------


@pytest.mark.parametrize(
    "name,match",
    [
        ("chart.pdf", "PNG or SVG"),
        ("chart", "PNG or SVG"),
        ("missing-dir/chart.png", "does not exist"),
        ("a-file/chart.png", "does not exist"),
        ("a-dir.png", "is a directory"),
    ],
)
def test_check_plot_target_refuses_unusable_paths(tmp_path, name, match):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir.png").mkdir()
    with pytest.raises(ConfigError, match=match):
        check_plot_target(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir.png", "a-file"], "the check leaves nothing behind"


def test_check_plot_target_refuses_a_directory_it_cannot_write_in():
    # /proc refuses new files for every user, root included (a chmod would not stop root).
    with pytest.raises(ConfigError, match=r"cannot write in '/proc'"):
        check_plot_target("/proc/tio-chart.png")


def test_check_plot_target_refuses_when_matplotlib_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what Python does for a module that is not installed
    with pytest.raises(ConfigError, match=r"needs matplotlib \(pip install 'tio-core\[plot\]'\)"):
        check_plot_target(tmp_path / "chart.png")


@pytest.mark.parametrize("name", ["chart.png", "chart.SVG"])
def test_check_plot_target_accepts_png_and_svg_and_leaves_no_file(tmp_path, name):
    check_plot_target(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


# -- the chart --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    """The chart of quick_like_figures(), drawn once (a draw takes about a second) and inspected by several tests."""
    path = tmp_path_factory.mktemp("chart") / "x.png"
    return render_chart(quick_like_figures(), path, title_meta=META), path


def test_chart_has_one_log_scale_bar_per_figure_with_a_baseline(chart):
    fig, path = chart
    figures = quick_like_figures()
    assert_valid_png(path)
    axes = ratio_axes(fig)
    assert [ax.get_title(loc="left").split()[0] for ax in axes] == ["kernels", "pcap", "fake", "tun"], "grouped by area"
    for ax, (area, figs) in zip(axes, figures.items(), strict=True):
        compared = [f for f in figs if f.ratio is not None]
        assert bars_of(ax) == len(compared), f"one bar per figure with a baseline in {area}"
        assert [t.get_text() for t in ax.get_yticklabels()] == [f.name for f in compared]
        assert ax.get_xscale() == "log", "the ratio axis is logarithmic"
        ratios = [t.get_text() for t in ax.texts if t.get_text().endswith("×")]
        assert ratios == [f"{f.ratio:.3g}×" for f in compared], "the ratio is printed on each bar"
    assert sum(bars_of(ax) for ax in fig.axes) == 9


def test_chart_names_baselines_marks_targets_and_lists_figures_without_baseline(chart):
    fig, _ = chart
    kernels, pcap, fake, tun = ratio_axes(fig)
    assert kernels.get_title(loc="left") == "kernels  —  baseline: bytes copy", "a shared baseline is named once"
    pcap_details = [t.get_text() for t in pcap.texts if " vs " in t.get_text()]
    assert pcap_details == [
        "1.43 Mpps vs scapy RawPcapReader 0.573 Mpps",
        "0.584 Mpps vs scapy RawPcapNgReader 0.197 Mpps",
    ], "mixed baselines are named on each bar"
    targets = [c for c in kernels.collections if c.get_gid() == "target"]
    assert len(targets) == 2, "each stated target is drawn as a mark"
    assert [round(seg[0][0], 6) for c in targets for seg in c.get_segments()] == [0.25, 2.0]
    bar_colours = [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in kernels.containers[0]]
    assert bar_colours[0] != bar_colours[2], "a met and a missed target look different"
    listed = "\n".join(t.get_text() for ax in fig.axes if not ax.axison for t in ax.texts)
    assert "fake: fake queue inject + read, 64-packet batches  —  2.85e+05 pkt/s" in listed
    assert "tun: (b) naive per-packet forwarder  —  1.06 Gbit/s" in listed
    title = fig.get_suptitle()
    for fact in ("tio 9.8.7", "2026-11-30 12:00", "2 cores", "Linux 6.18.0", "Test CPU"):
        assert fact in title, f"the title states {fact!r}: {title!r}"


def wide_range_figures() -> dict[str, list[Figure]]:
    """Twelve decades on one axis, a long name squeezing the panel: the first guess of room is not enough."""
    return {
        "extreme": [
            Figure("a very long measurement name " * 3, 3e-6, "GB/s", "copy", 1.0),
            Figure("huge", 4.4e6, "GB/s", "copy", 1.0, target=2e6),
            Figure("even", 1.0, "GB/s", "copy", 1.0),
        ]
    }


def test_printed_ratios_fit_inside_their_panel(chart, tmp_path):
    fig, _ = chart
    assert_ratios_inside_panels(fig)
    assert_ratios_inside_panels(render_chart(wide_range_figures(), tmp_path / "wide.png", title_meta=META))


def assert_ratios_inside_panels(fig) -> None:
    renderer = fig.canvas.get_renderer()
    for ax in ratio_axes(fig):
        box = ax.get_window_extent(renderer)
        for text in ax.texts:
            if text.get_text().endswith("×"):
                extent = text.get_window_extent(renderer)
                assert box.x0 <= extent.x0 and extent.x1 <= box.x1, (
                    f"nothing clipped: {text.get_text()!r} lies inside its panel, clear of the names"
                )


def test_chart_height_follows_the_number_of_figures(tmp_path):
    few = {"kernels": [Figure(f"f{i}", 1.0 + i, "GB/s", "copy", 1.0) for i in range(4)]}
    many = {"kernels": [Figure(f"f{i}", 1.0 + i, "GB/s", "copy", 1.0) for i in range(40)]}
    small = render_chart(few, tmp_path / "few.png", title_meta=META).get_size_inches()[1]
    large = render_chart(many, tmp_path / "many.png", title_meta=META).get_size_inches()[1]
    assert large - small == pytest.approx(36 * 0.3, rel=0.05), "each bar gets the same room"


def test_svg_chart_is_valid_svg(tmp_path):
    path = tmp_path / "x.svg"
    render_chart(quick_like_figures(), path, title_meta=META)
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")


def test_chart_of_only_unbased_figures_lists_them(tmp_path):
    fig = render_chart({"tun": [Figure("(b) naive", 1.0, "Gbit/s")]}, tmp_path / "x.png", title_meta=META)
    assert ratio_axes(fig) == []
    assert any("(b) naive" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_chart_of_real_quick_core_benchmarks(tmp_path):
    registry = BackendRegistry(autoload=False)  # the core's own benchmarks: kernels and coalesce
    figures = {bench.name: bench.run(quick=True) for bench, _ in registry.benchmarks()}
    assert set(figures) == {"kernels", "coalesce"}
    path = tmp_path / "x.png"
    meta = run_meta(quick=True)
    fig = render_chart(figures, path, title_meta=meta)
    assert_valid_png(path)
    compared = sum(1 for figs in figures.values() for f in figs if f.ratio is not None)
    assert compared > 10 and sum(bars_of(ax) for ax in fig.axes) == compared, "one bar per figure with a baseline"
    assert all(ax.get_xscale() == "log" for ax in ratio_axes(fig))
    assert f"{os.cpu_count()} cores" in fig.get_suptitle() and os.uname().release in fig.get_suptitle()


# -- JSON ---------------------------------------------------------------------------------


def test_figures_to_json_has_typed_fields(tmp_path):
    document = json.loads(json.dumps(figures_to_json(quick_like_figures(), META)))
    assert document["meta"] == META
    assert [area["area"] for area in document["areas"]] == ["kernels", "pcap", "fake", "tun"]
    first = document["areas"][0]["figures"][0]
    assert first == {
        "name": "segment TCPv4 64KiB MSS 1448 (C, reused buffer)",
        "value": 2.6,
        "unit": "GB/s",
        "baseline_name": "bytes copy",
        "baseline_value": 8.9,
        "ratio": pytest.approx(2.6 / 8.9),
        "target": 0.25,
        "target_met": True,
    }
    unbased = document["areas"][2]["figures"][1]
    assert (unbased["baseline_name"], unbased["baseline_value"], unbased["ratio"], unbased["target_met"]) == (
        None,
        None,
        None,
        None,
    )
    assert document["areas"][0]["figures"][2]["target_met"] is False


def test_run_meta_describes_this_machine():
    meta = run_meta(quick=False)
    assert meta["cores"] == os.cpu_count() and meta["kernel"].endswith(os.uname().release)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", meta["date"])
    assert meta["quick"] is False and isinstance(meta["tio_version"], str)


# -- Figure.target and the check every figure passes -------------------------------------


def test_figure_target_defaults_to_none():
    assert Figure("x", 1.0, "GB/s").target is None


@pytest.mark.parametrize(
    "figure,match",
    [
        (Figure("x", float("inf"), "GB/s"), "value must be a finite number"),
        (Figure("x", 1.0, "GB/s", "copy", -1.0), "baseline_value must be a finite number >= 0"),
        (Figure("x", 1.0, "GB/s", "copy", 1.0, target=0.0), "target must be None or a finite ratio > 0"),
        (Figure("x", 1.0, None), "must be strings"),
        (Figure("x", 10**400, "GB/s"), "value must be a finite number"),
    ],
)
def test_check_figures_refuses_malformed_figures(figure, match):
    with pytest.raises(ValueError, match=match):
        check_figures([figure])
