"""What the claims' figures share: a row of panels, censored markers, log ticks, the saver.

Panels in :mod:`bench.plots`' style, censored times as open triangles, plain log ticks, and
saving through :func:`bench.plots.save_figure`.

Censored chains are drawn as open upward triangles at their censoring time: the truth lies
above them. Files are written whole or not at all, with fixed SVG ids and no dates, so the same
numbers give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from bench.plots import STYLE, save_figure  # noqa: E402

COLORS = plt.get_cmap("tab10").colors
PANEL = (3.2, 2.5)  # inches per panel


def save(fig, png: Path) -> None:
    """Write ``png`` and its SVG twin (the pages link the PNG)."""
    save_figure(fig, png, vectors=("svg",))


def new_figure(n: int):
    """A figure with ``n`` panels side by side, and its axes."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1, max(n, 1), figsize=(PANEL[0] * max(n, 1), PANEL[1]), squeeze=False
        )
    return fig, axes[0]


def scatter_times(ax, x, times, color, label=None, marker="o") -> None:
    """Observed times as filled markers, censored ones as open triangles at their lower end."""
    obs = times.observed
    y = times.point()
    ax.scatter(x[obs], y[obs], s=14, color=color, marker=marker, label=label, zorder=3)
    if (~obs).any():
        ax.scatter(
            x[~obs], y[~obs], s=22, facecolors="none", edgecolors=color, marker="^", zorder=3
        )


def plain_ticks(ax) -> None:
    """Plain numbers (not powers of ten) on log axes, as bench/plots.py draws them."""
    for axis, scale, limits in (
        (ax.xaxis, ax.get_xscale(), ax.get_xlim()),
        (ax.yaxis, ax.get_yscale(), ax.get_ylim()),
    ):
        if scale == "log" and limits[0] > 1e-4 and limits[1] < 1e5:
            formatter = ScalarFormatter()
            formatter.set_scientific(False)
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(formatter)
            axis.set_minor_formatter(NullFormatter())


def legend(ax) -> None:
    """Plain ticks, and a legend where something is labelled."""
    plain_ticks(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=6)


def arm_title(panel: Mapping[str, Any]) -> str:
    return "full batch" if panel["arm"] == "full" else "minibatch"
