"""The two figures of a leaderboard, drawn from stored runs with matplotlib (Agg, no display).

* ``<task>_accuracy.png``: for each sampler, train and validation accuracy against the step on a
  log axis, the median over the fresh seeds with the band between the 25% and 75% quantiles;
  dotted vertical lines at the KM medians of ``t_mem`` and ``t_grok``.
* ``<task>_survival.png``: Kaplan–Meier curves of P(not yet grokked) against gradient
  evaluations (log axis) for every sampler, with the 95% pointwise band and a tick per censored
  chain: a curve that stays at 1 is a sampler that did not grok within the budget.
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
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from bench.files import publish  # noqa: E402

if TYPE_CHECKING:
    from bench.board import Board, SamplerStats

COLORS = plt.get_cmap("tab10").colors


def write_plots(board: Board, folder: Path) -> dict[str, Path]:
    """Write both figures of ``board`` into ``folder``; returns {caption: path}."""
    if not board.rows:
        return {}
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    path = folder / f"{board.slug}_accuracy.png"
    _save(accuracy_figure(board), path)
    out["train and validation accuracy against steps (median and interquartile band)"] = path
    path = folder / f"{board.slug}_survival.png"
    _save(survival_figure(board), path)
    out["survival curves of time to grok (Kaplan–Meier, 95% band)"] = path
    return out


def _median_curves(row: SamplerStats):
    """step -> (quantiles of train_acc, quantiles of val_acc) over the fresh-seed chains."""
    by_step: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in row.runs:
        for point in record.result.curves:
            if point["step"] <= 0:
                continue  # no zero on a log axis
            for key in ("train_acc", "val_acc"):
                value = point.get(key)
                if value is not None and math.isfinite(value):
                    by_step[int(point["step"])][key].append(value)
    steps = np.array(sorted(by_step))
    curves = {}
    for key in ("train_acc", "val_acc"):
        q = [np.quantile(by_step[s][key], [0.25, 0.5, 0.75]) for s in steps]
        curves[key] = np.array(q).reshape(-1, 3)
    return steps, curves


def accuracy_figure(board: Board):
    rows = board.all_rows
    n = len(rows)
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False, sharey=True
    )
    for ax, row, color in zip(axes.flat, rows, _colors(n), strict=False):
        steps, curves = _median_curves(row)
        for key, style, label in (("train_acc", "--", "train"), ("val_acc", "-", "validation")):
            q = curves[key]
            if len(steps):
                ax.plot(steps, q[:, 1], style, color=color, label=label)
                ax.fill_between(steps, q[:, 0], q[:, 2], color=color, alpha=0.2, lw=0)
        for s, style in ((row.mem_evals, ":"), (row.grok_evals, "-.")):
            if s.median is not None:
                ax.axvline(s.median / row.evals_per_step, color="grey", ls=style, lw=0.8)
        budget = row.budget_evals / row.evals_per_step  # the x axis always spans the budget
        first = steps[0] if len(steps) else 1
        ax.set_xscale("log")
        ax.set_xlim(first, max(budget, first * 2))
        _plain_log_ticks(ax.xaxis)
        ax.set_ylim(-0.02, 1.02)
        per = f", {row.evals_per_step} evals/step" if row.evals_per_step > 1 else ""
        rank = "ref." if row.is_reference else f"{row.rank}."
        ax.set_title(f"{rank} {row.label} ({row.grokked}/{row.n} grokked{per})", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3, which="both", lw=0.4)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="center left", fontsize=8)
    fig.suptitle(
        f"{board.task}: median over {rows[0].n} fresh seeds, band = 25–75% "
        "(dotted: median t_mem, dash-dot: median t_grok; x axis = the whole budget)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def survival_figure(board: Board):
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    start = max(1.0, float(board.compare.protocol.get("eval_every") or 1))
    end = float(board.compare.protocol.get("budget") or 0)
    rows = board.all_rows
    for row, color in zip(rows, _colors(len(rows)), strict=True):
        s = row.grok_evals
        x = np.concatenate([[start], s.times, [max(s.last, start)]])
        y = np.concatenate([[1.0], s.sf, [s.sf[-1] if len(s.sf) else 1.0]])
        lo = np.concatenate([[1.0], s.low, [s.low[-1] if len(s.low) else 1.0]])
        hi = np.concatenate([[1.0], s.high, [s.high[-1] if len(s.high) else 1.0]])
        label = f"{row.label} ({row.grokked}/{row.n})"
        style = "--" if row.is_reference else "-"
        ax.step(x, y, style, where="post", color=color, label=label)
        ax.fill_between(x, lo, hi, step="post", color=color, alpha=0.12, lw=0)
        censored = [
            c.censored_at * row.evals_per_step for c in row.chains if c.t_grok_grad_evals is None
        ]
        if censored:
            level = [float(_at(s, t)) for t in censored]
            ax.plot(censored, level, "|", color=color, ms=10, mew=1.5)
    ax.set_xscale("log")
    if end > start:
        ax.set_xlim(start, end * 1.1)
    _plain_log_ticks(ax.xaxis)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("gradient evaluations")
    ax.set_ylabel("P(not yet grokked)")
    ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax.set_title(f"{board.task}: time to grok (Kaplan–Meier, 95% band; | = censored)", fontsize=10)
    ax.grid(alpha=0.3, which="both", lw=0.4)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


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


def _save(fig, path: Path) -> None:
    """Render to a temporary file and rename it into place (never half a PNG)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, metadata={"Software": None})
        publish(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
