"""The `tio bench` chart and JSON document: every figure as a ratio to its same-run baseline.

Imported only by `tio bench`: it needs matplotlib (the ``tio-core[plot]``
extra) for the chart, nothing for the JSON.

The chart reads without the table beside it:

* one panel per area (the benchmark that measured the figures), in run order;
* one horizontal bar per figure that has a baseline, drawn from the baseline
  (1x) to the ratio on a log axis, so a 45x and a 0.003x figure are both
  readable and faster/slower than the baseline goes right/left;
* the ratio printed at the end of every bar, and beside it the measured value
  against the baseline value and the baseline's name (in the panel title when
  the whole panel shares one baseline);
* a benchmark's target ratio (``Figure.target``) as a black mark on its row,
  the bar coloured by whether it is met;
* figures without a baseline listed in a text panel at the bottom: a value
  without a comparison is not a ratio and is not drawn as one;
* a title with the tio version, date, machine (CPU, cores, kernel) and run
  mode; the figure is sized by its number of rows and saved with a tight
  bounding box, so no label is clipped.

``figures`` is a mapping from area name to that area's figures, in the order
to show them.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tio_core.bench import Figure, check_figures
from tio_core.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

FORMATS = (".png", ".svg")
INSTALL_HINT = "pip install 'tio-core[plot]'"
ROW_INCHES = 0.3  # one bar
PANEL_INCHES = 0.9  # a panel's title, x axis and tick labels
LIST_LINE_INCHES = 0.2  # one line of the no-baseline list
HEADER_INCHES = 0.8  # title and subtitle
LEGEND_INCHES = 0.25
WIDTH_INCHES = 13.0
NAME_CHARS = 70  # a longer figure name is shortened on its axis label (the JSON keeps it whole)
LABEL_ROOM_DECADES = 0.9  # first guess of the room in log space beyond the outermost bar for its printed ratio
ZERO_BAR_START = 1e-300  # a zero ratio's bar starts here: off the axis, which clips it at its low end
RATIO_LABEL, ZERO_LABEL = "ratio", "ratio-zero"  # gids of the printed ratios
ROW_AT_AXES = ("axes fraction", "data")  # x in fractions of the axes, y in rows: a label at an edge of the plot
MET, MISSED, NO_TARGET = "#2e8b57", "#d1495b", "#4a7fb5"  # bar colours: target met / missed / none stated


# -- before anything runs ------------------------------------------------------------


def check_plot_target(path: str | os.PathLike[str]) -> None:
    """Raise ConfigError now if the chart could not be written to ``path`` later.

    Checks, in this order: the extension (.png or .svg), that matplotlib
    imports, and that the directory exists and a file can be created in it
    (by creating and removing a temporary file there: the only check that
    also holds for root and read-only file systems).
    """
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ConfigError(f"plot file {str(target)!r}: the chart is written as PNG or SVG; name it *.png or *.svg")
    try:
        import matplotlib  # noqa: F401 - only whether it imports matters here
    except ImportError as exc:
        raise ConfigError(f"plot file {str(target)!r}: the chart needs matplotlib ({INSTALL_HINT}): {exc}") from None
    directory = target.parent
    if not directory.is_dir():
        raise ConfigError(f"plot file {str(target)!r}: directory {str(directory)!r} does not exist")
    if target.is_dir():
        raise ConfigError(f"plot file {str(target)!r} is a directory")
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(f"plot file {str(target)!r} exists and is not writable")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".tio-plot-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"plot file {str(target)!r}: cannot write in {str(directory)!r}: {exc.strerror}") from None


# -- what the chart and the JSON say about the run ------------------------------------


def run_meta(quick: bool = False) -> dict[str, Any]:
    """Date, tio version and machine of this run, for the chart's title and the JSON document."""
    try:
        version = importlib.metadata.version("tio-core")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    uname = platform.uname()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "tio_version": version,
        "cpu": _cpu_model() or uname.machine,
        "cores": os.cpu_count(),
        "kernel": f"{uname.system} {uname.release}",
        "python": platform.python_version(),
        "quick": quick,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return " ".join(value.split())
    except OSError:
        pass
    return ""


def title_lines(meta: Mapping[str, Any]) -> tuple[str, str]:
    """The chart's title and subtitle from ``run_meta()``-like fields (missing ones are left out)."""
    title = (
        f"tio {meta.get('tio_version', '')} benchmarks — each figure as a ratio to a baseline measured in the same run"
    )
    date = str(meta.get("date", ""))[:16].replace("T", " ")
    cores = meta.get("cores")
    parts = [
        date,
        str(meta.get("cpu", "")),
        f"{cores} cores" if cores else "",
        str(meta.get("kernel", "")),
        f"Python {meta['python']}" if meta.get("python") else "",
        "quick run (short timings)" if meta.get("quick") else "",
    ]
    return " ".join(title.split()), " · ".join(p for p in parts if p)


# -- JSON -------------------------------------------------------------------------------


def figures_to_json(figures: Mapping[str, Sequence[Figure]], meta: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON-ready document for ``tio bench --json``: numbers as numbers, a missing ratio or target as null."""
    areas = []
    for area, area_figures in figures.items():
        rows = []
        for fig in check_figures(area_figures):
            ratio = fig.ratio
            rows.append(
                {
                    "name": fig.name,
                    "value": fig.value,
                    "unit": fig.unit,
                    "baseline_name": fig.baseline_name or None,
                    "baseline_value": fig.baseline_value if fig.baseline_name else None,
                    "ratio": ratio,
                    "target": fig.target,
                    "target_met": None if fig.target is None or ratio is None else ratio >= fig.target,
                }
            )
        areas.append({"area": area, "figures": rows})
    return {"meta": dict(meta), "areas": areas}


# -- the chart ---------------------------------------------------------------------------


def render_chart(
    figures: Mapping[str, Sequence[Figure]], path: str | os.PathLike[str], *, title_meta: Mapping[str, Any]
) -> MplFigure:
    """Draw the chart to ``path`` (PNG or SVG by extension) and return the matplotlib figure.

    Call ``check_plot_target(path)`` before running the benchmarks; this
    raises ConfigError for the same reasons, but only after they ran.
    """
    check_plot_target(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    areas = [(area, check_figures(figs)) for area, figs in figures.items()]
    compared = [(area, [f for f in figs if f.ratio is not None]) for area, figs in areas]
    compared = [(area, figs) for area, figs in compared if figs]
    unbased = [(area, f) for area, figs in areas for f in figs if f.ratio is None]
    low, high = _ratio_range([f for _, figs in compared for f in figs])

    rows = sum(len(figs) for _, figs in compared)
    # Constrained layout gives each panel its decorations first, then shares the rest by these ratios,
    # so every bar gets the same height whatever the size of its panel.
    heights = [LEGEND_INCHES] + [len(figs) * ROW_INCHES for _, figs in compared]
    if unbased or not rows:
        heights.append((len(unbased) + 1) * LIST_LINE_INCHES)
    total = sum(heights) + PANEL_INCHES * len(compared) + HEADER_INCHES
    fig = MplFigure(figsize=(WIDTH_INCHES, total), layout="constrained")
    FigureCanvasAgg(fig)  # no pyplot and no global backend: this figure draws with Agg (SVG by the file's extension)
    title, subtitle = title_lines(title_meta)
    fig.suptitle(f"{title}\n{subtitle}", fontsize=11, x=0.01, ha="left")
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
    _legend(fig.add_subplot(grid[0]), any(f.target is not None for _, figs in compared for f in figs), bool(rows))

    panels = []
    for index, (area, figs) in enumerate(compared, start=1):
        ax = fig.add_subplot(grid[index])
        _draw_area(ax, area, figs, low, high)
        ax.xaxis.set_major_locator(LogLocator(base=10))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}×"))
        ax.xaxis.set_minor_locator(NullLocator())  # minor ticks cost most of the drawing time and say little here
        panels.append(ax)
    if panels:
        panels[-1].set_xlabel("ratio to the baseline (log scale; right of 1× the measurement beats its baseline)")
        _make_room_for_ratios(fig, panels, low, high)
    if unbased or not rows:
        _list_unbased(fig.add_subplot(grid[len(compared) + 1]), unbased)
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.2)
    return fig


def _make_room_for_ratios(fig: MplFigure, axes: Sequence[Axes], low: float, high: float) -> None:
    """Widen the shared log range until every printed ratio lies inside its panel (its width in decades
    depends on how many decades the panel spans, so a few rounds settle it)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # an Agg canvas has one
    for _ in range(4):
        fig.draw_without_rendering()  # runs the constrained layout, so extents are final
        over_left = over_right = 0.0
        width = 1.0
        for ax in axes:
            box = ax.get_window_extent(renderer)
            width = box.width
            for text in ax.texts:
                if text.get_gid() == RATIO_LABEL:
                    extent = text.get_window_extent(renderer)
                    over_left = max(over_left, box.x0 - extent.x0)
                    over_right = max(over_right, extent.x1 - box.x1)
        if over_left <= 0 and over_right <= 0:
            return
        decades_per_pixel = math.log10(high / low) / width
        low /= 10 ** ((over_left + 6) * decades_per_pixel) if over_left > 0 else 1.0
        high *= 10 ** ((over_right + 6) * decades_per_pixel) if over_right > 0 else 1.0
        for ax in axes:
            ax.set_xlim(low, high)


def _ratio_range(figs: Sequence[Figure]) -> tuple[float, float]:
    """The x range in ratio units: every bar, target and 1x, with room in log space for the printed ratio."""
    values = [1.0] + [f.ratio for f in figs if f.ratio] + [f.target for f in figs if f.target]
    low, high = min(values), max(values)
    low_exp = math.floor(math.log10(low) - LABEL_ROOM_DECADES)
    high_exp = math.ceil(math.log10(high) + LABEL_ROOM_DECADES)
    return 10.0**low_exp, 10.0**high_exp


def _draw_area(ax: Axes, area: str, figs: Sequence[Figure], low: float, high: float) -> None:
    baselines = {f.baseline_name for f in figs}
    shared = next(iter(baselines)) if len(baselines) == 1 else ""
    # A zero measurement has no place on a log axis: its bar runs off the axis' low end, its label sits inside it.
    ratios = [f.ratio or ZERO_BAR_START for f in figs]
    colours = [NO_TARGET if f.target is None else MET if (f.ratio or 0) >= f.target else MISSED for f in figs]
    rows = range(len(figs))
    ax.barh(
        rows,
        [abs(r - 1.0) for r in ratios],
        left=[min(r, 1.0) for r in ratios],
        height=0.62,
        color=colours,
        gid=f"ratio-bars:{area}",
    )
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(len(figs) - 0.5, -0.5)  # first figure on top
    ax.set_yticks(list(rows), [textwrap.shorten(f.name, NAME_CHARS, placeholder=" …") for f in figs], fontsize=8.5)
    ax.axvline(1.0, color="#333333", linewidth=1.0)
    ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    heading = f"{area}" + (
        f"  —  baseline: {shared}" if shared else "  —  each bar against the baseline named beside it"
    )
    ax.set_title(heading, loc="left", fontsize=10, fontweight="bold")
    for row, (fig, ratio) in enumerate(zip(figs, ratios, strict=True)):
        if not fig.ratio:
            _label(ax, "0×", (0.0, row), 4, xycoords=ROW_AT_AXES, fontweight="bold", color="white", gid=ZERO_LABEL)
        else:
            right = ratio >= 1.0
            # The printed ratio goes beyond the bar's end and its target mark, so neither hides it.
            outer = max(ratio, fig.target or ratio) if right else min(ratio, fig.target or ratio)
            shift, align = (4, "left") if right else (-4, "right")
            _label(ax, f"{ratio:.3g}×", (outer, row), shift, ha=align, fontweight="bold", gid=RATIO_LABEL)
        if shared:
            detail = f"{fig.value:.3g} vs {fig.baseline_value:.3g} {fig.unit}"
        else:
            detail = f"{fig.value:.3g} {fig.unit} vs {fig.baseline_name} {fig.baseline_value:.3g} {fig.unit}"
        if fig.target is not None:
            detail += f"  (target {fig.target:.3g}×)"
        _label(ax, detail, (1.0, row), 8, xycoords=ROW_AT_AXES, color="#444444")
        if fig.target is not None:
            ax.vlines(fig.target, row - 0.42, row + 0.42, colors="black", linewidth=2.5, zorder=3, gid="target")


def _label(ax: Axes, text: str, xy: tuple[float, float], shift: float, **style: Any) -> None:
    """8-point text centred on its row, ``shift`` points right (negative: left) of ``xy``."""
    ax.annotate(text, xy, xytext=(shift, 0), textcoords="offset points", va="center", fontsize=8, **style)


def _legend(ax: Axes, targets: bool, bars: bool) -> None:
    """The legend in its own row under the title, where it covers nothing."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.set_axis_off()
    if not bars:
        return

    handles: list[Any] = [Line2D([], [], color="#333333", linewidth=1.0, label="1× = the baseline")]
    if targets:
        handles += [
            Line2D([], [], color="black", linewidth=2.5, label="target ratio"),
            Patch(color=MET, label="target met"),
            Patch(color=MISSED, label="target missed"),
        ]
    handles.append(Patch(color=NO_TARGET, label="no target stated" if targets else "measurement"))
    ax.legend(handles=handles, loc="center left", ncols=len(handles), fontsize=8.5, frameon=False, borderaxespad=0)


def _list_unbased(ax: Axes, unbased: Sequence[tuple[str, Figure]]) -> None:
    ax.set_axis_off()
    if not unbased:
        ax.text(0, 1, "no figure with a baseline was measured", va="top", fontsize=9, transform=ax.transAxes)
        return
    lines = ["Measured without a baseline (a value, not a ratio, so not drawn as a bar):"]
    lines += [f"    {area}: {fig.name}  —  {fig.value:.3g} {fig.unit}" for area, fig in unbased]
    ax.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=8.5, transform=ax.transAxes, linespacing=1.5)
