"""The two figures of a leaderboard, drawn from stored runs with matplotlib (Agg, no display).

Both put **gradient evaluations** on the x axis, the unit the leaderboard ranks by
(:mod:`bench.board`): an HMC step costs ``num_leapfrog`` of them, so a panel in steps would
make HMC look L times faster than it is.

* ``<task>_accuracy``: one panel per sampler, train and validation accuracy against gradient
  evaluations on a log axis, the median over the fresh seeds with the band between the 25% and
  75% quantiles; dotted and dash-dot vertical lines at the Kaplan–Meier medians of ``t_mem``
  and ``t_grok``. Every panel spans the same range (up to the largest budget), so the panels
  compare by eye; a sampler that spends more than one evaluation per step gets its steps on a
  secondary axis at the top.
* ``<task>_survival``: Kaplan–Meier curves of P(not yet grokked) against gradient evaluations
  (log axis), one panel per sampler (small multiples), with its 95% pointwise band and a tick
  per censored chain, and every other sampler's curve in grey behind it for comparison. A
  curve that stays at 1 is a sampler that did not grok within the budget; in one shared panel
  those curves would lie on top of each other at P = 1 and hide all but one sampler.

Each figure is written as a PNG (linked from the markdown page) and, beside it with the same
stem, as SVG and PDF (vector, for a paper). The files are byte-for-byte reproducible: no dates
or version strings in their metadata, fixed SVG ids, TrueType fonts in the PDF.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from bench.files import publish  # noqa: E402

if TYPE_CHECKING:
    from bench.board import Board, SamplerStats

COLORS = plt.get_cmap("tab10").colors
#: The vector formats written beside every PNG (same stem).
VECTOR_FORMATS = ("svg", "pdf")
#: Everything the figures need from matplotlib's settings, applied per figure (the global
#: rcParams are left alone).
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "svg.hashsalt": "grokbench",  # fixed ids: the same figure gives the same SVG bytes
    "svg.fonttype": "path",  # text as outlines: renders the same without our fonts
    "pdf.fonttype": 42,  # TrueType, not Type 3 (what journals ask for)
}
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "Creator": None, "Producer": None},
}
PANEL_WIDTH, PANEL_HEIGHT = 2.6, 1.9  # inches: three panels fit a two-column page's width


def write_plots(board: Board, folder: Path) -> dict[str, Path]:
    """Write both figures of ``board`` into ``folder``, each as PNG, SVG and PDF; returns
    {caption: PNG path} (the markdown page links the PNGs; the vector files share their stem)."""
    if not board.rows:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    path = folder / f"{board.slug}_accuracy.png"
    save_figure(accuracy_figure(board), path)
    out[
        "train and validation accuracy against gradient evaluations (median and interquartile band)"
    ] = path
    path = folder / f"{board.slug}_survival.png"
    save_figure(survival_figure(board), path)
    out["survival curves of time to grok in gradient evaluations (Kaplan–Meier, 95% band)"] = path
    return out


def vector_paths(png: Path) -> list[Path]:
    """The vector files written beside ``png``."""
    return [png.with_suffix(f".{fmt}") for fmt in VECTOR_FORMATS]


def _median_curves(row: SamplerStats):
    """grad_evals -> (quantiles of train_acc, quantiles of val_acc) over the fresh-seed chains.

    A curve row's ``grad_evals`` column is the x coordinate (``step × evals_per_step`` for a
    row stored without one)."""
    by_x: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in row.runs:
        for point in record.result.curves:
            x = point.get("grad_evals")
            if x is None:
                x = point["step"] * row.evals_per_step
            if x <= 0:
                continue  # no zero on a log axis
            for key in ("train_acc", "val_acc"):
                value = point.get(key)
                if value is not None and math.isfinite(value):
                    by_x[int(x)][key].append(value)
    xs = np.array(sorted(by_x))
    curves = {}
    for key in ("train_acc", "val_acc"):
        q = [
            np.quantile(by_x[x][key], [0.25, 0.5, 0.75]) if by_x[x][key] else [np.nan] * 3
            for x in xs
        ]
        curves[key] = np.array(q, dtype=float).reshape(-1, 3)
    return xs, curves


def _grid(n: int):
    cols = min(3, n)
    return cols, math.ceil(n / cols)


def accuracy_figure(board: Board):
    rows = board.all_rows
    n = len(rows)
    cols, nrows = _grid(n)
    medians = [_median_curves(row) for row in rows]
    first = min((xs[0] for xs, _ in medians if len(xs)), default=1)
    last = max(max(row.budget_evals for row in rows), first * 2)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows,
            cols,
            figsize=(PANEL_WIDTH * cols, PANEL_HEIGHT * nrows + 0.5),
            squeeze=False,
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        for ax, row, color, (xs, curves) in zip(axes.flat, rows, _colors(n), medians, strict=False):
            for key, style in (("train_acc", "--"), ("val_acc", "-")):
                q = curves[key]
                if len(xs):
                    ax.plot(xs, q[:, 1], style, color=color)
                    ax.fill_between(xs, q[:, 0], q[:, 2], color=color, alpha=0.2, lw=0)
            for s, style in ((row.mem_evals, ":"), (row.grok_evals, "-.")):
                if s.median is not None:
                    ax.axvline(s.median, color="0.35", ls=style, lw=0.8)
            ax.set_xscale("log")
            ax.set_xlim(first, last)
            _plain_log_ticks(ax.xaxis)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(_panel_title(row), loc="left")
            ax.grid(which="major")
            if row.evals_per_step > 1:
                _steps_axis(ax, row.evals_per_step)
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy")
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.set_visible(False)
            elif i + cols >= n:  # the lowest panel of its column: label its x axis
                ax.set_xlabel("gradient evaluations")
                ax.xaxis.set_tick_params(labelbottom=True)
        handles = [
            Line2D([], [], color="0.2", ls="--", label="train (median, 25–75% band)"),
            Line2D([], [], color="0.2", ls="-", label="validation"),
            Line2D([], [], color="0.35", ls=":", lw=0.8, label="KM median t_mem"),
            Line2D([], [], color="0.35", ls="-.", lw=0.8, label="KM median t_grok"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
        fig.align_titles()
        fig.suptitle(f"{board.task}: accuracy on {rows[0].n} fresh seeds per sampler", fontsize=9)
    return fig


def survival_figure(board: Board):
    rows = board.all_rows
    n = len(rows)
    cols, nrows = _grid(n)
    start = max(1.0, float(board.compare.protocol.get("eval_every") or 1))
    end = float(board.compare.protocol.get("budget") or 0) or max(r.budget_evals for r in rows)
    curves = [_km_curve(row, start) for row in rows]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows,
            cols,
            figsize=(PANEL_WIDTH * cols, PANEL_HEIGHT * nrows + 0.3),
            squeeze=False,
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        colors = _colors(n)
        for i, (ax, row) in enumerate(zip(axes.flat, rows, strict=False)):
            for j, (x, y, _, _) in enumerate(curves):  # the others, for comparison
                if j != i:
                    ax.step(x, y, where="post", color="0.75", lw=0.8, zorder=1)
            x, y, lo, hi = curves[i]
            color = colors[i]
            style = "--" if row.is_reference else "-"
            ax.fill_between(x, lo, hi, step="post", color=color, alpha=0.18, lw=0, zorder=2)
            ax.step(x, y, style, where="post", color=color, lw=1.5, zorder=3, label=row.label)
            censored = [
                c.censored_at * row.evals_per_step
                for c in row.chains
                if c.t_grok_grad_evals is None
            ]
            if censored:
                level = [_at(row.grok_evals, t) for t in censored]
                ax.plot(censored, level, "|", color=color, ms=7, mew=1.2, zorder=4)
            ax.axhline(0.5, color="0.5", lw=0.6, ls=":", zorder=0)
            ax.set_xscale("log")
            if end > start:
                ax.set_xlim(start, end * 1.1)
            _plain_log_ticks(ax.xaxis)
            ax.set_ylim(-0.03, 1.06)
            ax.set_title(_panel_title(row, median=True), loc="left")
            ax.grid(which="major")
        for ax in axes[:, 0]:
            ax.set_ylabel("P(not yet grokked)")
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.set_visible(False)
            elif i + cols >= n:
                ax.set_xlabel("gradient evaluations")
                ax.xaxis.set_tick_params(labelbottom=True)
        fig.suptitle(
            f"{board.task}: time to grok (Kaplan–Meier, 95% band; | censored; grey: the "
            "other samplers)",
            fontsize=9,
        )
        fig.align_titles()
    return fig


def _km_curve(row: SamplerStats, start: float):
    """The step function of a Kaplan–Meier estimate from ``start`` to its last time."""
    s = row.grok_evals
    x = np.concatenate([[start], s.times, [max(s.last, start)]]).astype(float)
    y = np.concatenate([[1.0], s.sf, [s.sf[-1] if len(s.sf) else 1.0]])
    lo = np.concatenate([[1.0], s.low, [s.low[-1] if len(s.low) else 1.0]])
    hi = np.concatenate([[1.0], s.high, [s.high[-1] if len(s.high) else 1.0]])
    return x, y, lo, hi


def _panel_title(row: SamplerStats, median: bool = False) -> str:
    rank = "ref." if row.is_reference else f"{row.rank}."
    per = f", {row.evals_per_step} evals/step" if row.evals_per_step > 1 else ""
    title = f"{rank} {row.label}: {row.grokked}/{row.n} grokked{per}"
    if median:
        m = row.grok_evals.median
        title += f"\nmedian {m:,.0f} evals" if m is not None else "\nmedian not reached"
    return title


def _steps_axis(ax, per_step: int) -> None:
    """Steps on a secondary x axis at the top, for a sampler with ``per_step`` evaluations a
    step."""
    top = ax.secondary_xaxis(
        "top", functions=(lambda e: np.asarray(e) / per_step, lambda s: np.asarray(s) * per_step)
    )
    top.set_xscale("log")
    _plain_log_ticks(top.xaxis)
    top.tick_params(labelsize=6, pad=1, length=2.5, colors="0.3")
    top.set_xlabel("step", fontsize=6, labelpad=1, loc="right", color="0.3")


def _plain_log_ticks(axis) -> None:
    """Ticks at 1, 2, 5 x 10^k written as plain numbers (no overlapping 3x10^1 labels)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(NullFormatter())


def _at(s, t: float) -> float:
    idx = np.searchsorted(s.times, t, side="right") - 1
    return 1.0 if idx < 0 else float(s.sf[idx])


def _colors(n: int):
    return [COLORS[i % len(COLORS)] for i in range(n)]


def save_figure(fig, path: Path, vectors: tuple[str, ...] = VECTOR_FORMATS) -> None:
    """Render ``path`` (a PNG) and its twins in ``vectors`` (same stem), each to a temporary
    file renamed into place (never half a file), with :data:`STYLE` and no dates in the
    metadata (the same figure gives the same bytes); closes ``fig``."""
    try:
        for target in (path, *(path.with_suffix(f".{fmt}") for fmt in vectors)):
            fmt = target.suffix.lstrip(".")
            fd, tmp = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=f".{fmt}"
            )
            os.close(fd)
            try:
                with plt.rc_context(STYLE):
                    fig.savefig(tmp, format=fmt, dpi=150, metadata=_METADATA[fmt])
                publish(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    finally:
        plt.close(fig)
