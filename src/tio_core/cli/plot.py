"""`tio bench --plot`: the ratios as a bar chart (needs matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tio_core.errors import ConfigError


def check_target(path: str) -> None:
    """Before any benchmark runs: matplotlib is there and the file can be written."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'tio-core[plot]'") from None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ConfigError(f"--plot {path!r}: cannot write into {folder!r}")


def plot(figures: Sequence[Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [f for f in figures if f.ratio is not None]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(compared) + 1.5))
    bars = ax.barh([f.name for f in compared], [f.ratio for f in compared], color="tab:blue")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("ratio to the baseline measured in the same run")
    for bar, f in zip(bars, compared):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {f.value:.3g} {f.unit} vs {f.baseline_name}",
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
