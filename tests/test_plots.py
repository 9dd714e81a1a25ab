"""The leaderboard's figures (bench/plots.py), drawn from a small store of made-up runs.

What they must get right: the x axis of every panel is gradient evaluations (the unit the
board ranks by, so an HMC panel with L + 1 evaluations a step compares with the others); every
sampler's survival curve is visible even when several sit at P = 1; and each PNG has vector
twins (SVG, PDF) with the same stem, reproducible byte for byte.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.colors import to_rgba

import bench.plots as plots
from bench.board import build_board
from bench.grokking import ChainResult
from bench.run import RunResult
from bench.spec import RunSpec
from bench.store import Entry, Store

BUDGET, EVERY = 3000, 100  # gradient evaluations
# sampler: (gradient evaluations per step, per chain (t_mem, t_grok) in evaluations; None: not
# reached). sgld and hmc never grok: both survival curves sit at P = 1 throughout.
OUTCOMES = {
    "adamw": (1, [(200, 1200), (300, 1500), (200, 1300), (300, None)]),
    "sgld": (1, [(500, None)] * 4),
    "hmc": (5, [(1200, None)] * 4),
}


def _chain(c, outcome, per_step):
    mem, grok = outcome
    steps = BUDGET // per_step

    def step(evals):
        return None if evals is None else evals // per_step

    return ChainResult(
        chain=c,
        seed=100 + c,
        hparams={},
        t_mem=step(mem),
        t_grok=step(grok),
        t_mem_grad_evals=mem,
        t_grok_grad_evals=grok,
        t_mem_seconds=None if mem is None else mem / 1000,
        t_grok_seconds=None if grok is None else grok / 1000,
        censored_at=steps,
        final={"val_acc": 1.0 if grok else 0.3},
    )


def _curves(chains, per_step):
    rows = []
    for c in chains:
        for step in range(0, BUDGET // per_step + 1, max(1, EVERY // per_step)):
            evals = step * per_step
            mem, grok = c.t_mem_grad_evals, c.t_grok_grad_evals
            rows.append(
                {
                    "chain": c.chain,
                    "step": step,
                    "grad_evals": evals,
                    "seconds": evals / 1000,
                    "train_acc": 1.0 if mem and evals >= mem else 0.1 + 0.8 * evals / BUDGET,
                    "val_acc": 1.0 if grok and evals >= grok else 0.05,
                }
            )
    return rows


def _result(name, chains, per_step):
    spec = RunSpec(
        name,
        seeds=[c.seed for c in chains],
        budget=BUDGET // per_step,
        eval_every=max(1, EVERY // per_step),
    )
    return RunResult(
        task="toy",
        spec=spec,
        batch_size=None,
        device="cpu",
        steps_run=BUDGET // per_step,
        grad_evals_per_step=per_step,
        seconds_train=BUDGET / 1000,
        seconds_eval=0.1,
        chains=chains,
        curves=_curves(chains, per_step),
        target=0.99,
    )


def small_board(tmp_path, outcomes=OUTCOMES):
    """A board built from a store, as ``bench report`` builds it."""
    with Store(tmp_path / "s.sqlite") as store:
        key = "cmp"
        protocol = {"budget": BUDGET, "eval_every": EVERY, "baseline": "adamw"}
        store.put_compare(key, "toy", {}, "cpu", protocol)
        for name, (per_step, outcome) in outcomes.items():
            chains = [_chain(c, o, per_step) for c, o in enumerate(outcome)]
            store.put_run(
                f"final-{name}",
                _result(name, chains, per_step),
                task_config={},
                seconds_wall=1.0,
                code="abc",
                host="test",
            )
            chosen = {"hparams": {}, "prior_precision": 0.0}
            store.put_entry(Entry(key, name, [], [], chosen, [f"final-{name}"]))
        return build_board(store, store.compares()[0])


@pytest.fixture
def board(tmp_path):
    return small_board(tmp_path)


def _panel(fig, sampler):
    """The one visible panel whose title names ``sampler``."""
    found = [
        ax
        for ax in fig.axes
        if ax.get_visible() and f" {sampler}:" in ax.get_title(loc="left").split("\n")[0]
    ]
    assert len(found) == 1, [ax.get_title(loc="left") for ax in fig.axes]
    return found[0]


def test_accuracy_panels_are_in_gradient_evaluations(board):
    """The HMC panel (5 evaluations a step) plots its curves at step × 5, its KM medians where
    the board puts them, and spans the same budget as every other panel."""
    fig = plots.accuracy_figure(board)
    try:
        hmc = next(r for r in board.all_rows if r.sampler == "hmc")
        evals = sorted({p["grad_evals"] for p in hmc.runs[0].result.curves if p["step"] > 0})
        ax = _panel(fig, "hmc")
        curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
        assert len(curves) == 2  # train and validation medians
        for line in curves:
            np.testing.assert_array_equal(line.get_xdata(), evals)
            assert max(line.get_xdata()) == BUDGET  # in steps it would end at BUDGET / 5
        verticals = [line.get_xdata()[0] for line in ax.get_lines() if len(line.get_xdata()) == 2]
        assert hmc.mem_evals.median in verticals  # 1200 evaluations, not 1200 / 5 steps
        assert "evals/step" in ax.get_title(loc="left")
        for row in board.all_rows:
            ax = _panel(fig, row.sampler)
            assert ax.get_xlim()[1] == pytest.approx(BUDGET)
            assert ax.get_xscale() == "log"
        bottom = [ax for ax in fig.axes if ax.get_visible() and ax.get_xlabel()]
        assert {ax.get_xlabel() for ax in bottom} == {"gradient evaluations"}
    finally:
        plots.plt.close(fig)


def test_steps_appear_only_on_a_secondary_axis_where_they_differ(board):
    fig = plots.accuracy_figure(board)
    try:
        for row in board.all_rows:
            ax = _panel(fig, row.sampler)
            tops = [c for c in ax.child_axes if c.get_xlabel() == "step"]
            assert len(tops) == (1 if row.evals_per_step > 1 else 0), row.sampler
    finally:
        plots.plt.close(fig)


def test_survival_curves_at_one_are_each_visible(board):
    """sgld and hmc never grok: both curves are flat at P = 1. Each sampler has its own panel
    with its curve in its colour on top, so neither hides the other."""
    fig = plots.survival_figure(board)
    try:
        colours = dict(zip([r.sampler for r in board.all_rows], plots.COLORS, strict=False))
        flat = []
        for row in board.all_rows:
            ax = _panel(fig, row.sampler)
            mine = [
                line
                for line in ax.get_lines()
                if to_rgba(line.get_color()) == to_rgba(colours[row.sampler])
                and line.get_drawstyle() == "steps-post"
            ]
            assert len(mine) == 1, row.sampler
            y = np.asarray(mine[0].get_ydata(), dtype=float)
            np.testing.assert_array_equal(y[1:-1], row.grok_evals.sf)
            others = [line for line in ax.get_lines() if line.get_color() == "0.75"]
            assert len(others) == len(board.all_rows) - 1  # the others, in grey, behind
            assert mine[0].get_zorder() > max(line.get_zorder() for line in others)
            if np.all(y == 1.0):
                flat.append(ax)
        assert len(flat) == 2 and flat[0] is not flat[1]  # sgld and hmc: two panels
    finally:
        plots.plt.close(fig)


def test_each_png_has_svg_and_pdf_twins_with_the_same_stem(board, tmp_path):
    out = tmp_path / "reports"
    written = plots.write_plots(board, out)
    assert len(written) == 2
    for path in written.values():
        assert path.suffix == ".png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg, pdf = path.with_suffix(".svg"), path.with_suffix(".pdf")
        assert plots.vector_paths(path) == [svg, pdf]
        assert ET.parse(svg).getroot().tag.endswith("svg")
        assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"toy_{kind}.{fmt}" for kind in ("accuracy", "survival") for fmt in ("png", "svg", "pdf")
    )  # and no temporary files left behind


def test_the_files_are_reproducible_byte_for_byte(board, tmp_path):
    """Reports are tracked: regenerating the same board must not change a byte."""
    first = plots.write_plots(board, tmp_path / "a")
    second = plots.write_plots(board, tmp_path / "b")
    for a, b in zip(first.values(), second.values(), strict=True):
        for x, y in zip([a, *plots.vector_paths(a)], [b, *plots.vector_paths(b)], strict=True):
            assert x.read_bytes() == y.read_bytes(), x.name


def test_an_empty_board_writes_nothing(board, tmp_path):
    empty = dataclasses.replace(board, rows=[], reference=None)
    assert plots.write_plots(empty, tmp_path / "none") == {}
    assert not (tmp_path / "none").exists()
