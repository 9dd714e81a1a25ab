"""Claim "t_grok grows exponentially as the training fraction shrinks": sweep, analysis, figure.

Power et al. ("Grokking: generalization beyond overfitting on small algorithmic datasets",
2022): +40–50 % steps to generalize per −1 % of data near 25–30 %, i.e. exponential growth as
the fraction shrinks (log t linear in the fraction), against a power law (log t linear in
log fraction). SGD from ``task.init`` at each training fraction, one task per fraction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from bench.plots import STYLE
from bench.theory import fits
from bench.theory.claims import regime
from bench.theory.claims.base import (
    CONTRADICTED,
    SUPPORTED,
    UNTESTABLE,
    Chains,
    Claim,
    ClaimResult,
    Section,
    Table,
    page_status,
)
from bench.theory.claims.common import (
    aic_phrase,
    censoring_note,
    ci,
    comparison_table,
    fmt,
    hparams_text,
    joined_verdict,
    km_median,
)
from bench.theory.figures import COLORS, arm_title, legend, new_figure, scatter_times
from bench.theory.fits import FitError, Times
from bench.theory.plan import Planned, job
from bench.theory.preset import Preset

NAME = "fraction"
#: Power et al.'s increase of t_grok per −1 % of the training data.
POWER_PER_PERCENT = (0.40, 0.50)


@dataclass(frozen=True)
class Settings:
    """SGD from ``task.init`` at each training fraction (the task's split seed)."""

    fractions: tuple[float, ...]
    hparams: Mapping[str, Any]
    prior: float
    budget: int
    #: Power et al.'s own optimizer (AdamW, decoupled decay: no prior), stepping 1 % at a time
    #: across its threshold with a budget that keeps the steep part observed (issue 19)
    adamw: Mapping[str, Any] | None = None
    adamw_fractions: tuple[float, ...] = ()
    adamw_budget: int = 0


#: Measured on add_mod31_quadratic (full-batch SGD from init): 0.3 → none by 4,000 (val 0.15,
#: 0.03), 0.35 → 3200, >4000; 0.4 → 1770, 1960; 0.45 → 1170, 1290; 0.6 → 800, 840. AdamW
#: (lr 1e-2, weight decay 0.3; seeds 0, 1, full batch): 0.2-0.35 → none by 4,000; 0.4 → 1580,
#: 1500; 0.5 → 660 (tasks/registry.py): its threshold lies between 0.35 and 0.4.
CPU = Settings(
    fractions=(0.35, 0.4, 0.45, 0.5, 0.6),
    hparams={"step_size": 30.0},
    prior=1e-4,
    budget=3000,
    adamw={"step_size": 1e-2, "weight_decay": 0.3},
    adamw_fractions=(0.35, 0.36, 0.37, 0.38, 0.39, 0.4, 0.42, 0.45, 0.5),
    adamw_budget=6000,
)
PAPER = Settings(
    fractions=(0.25, 0.3, 0.35, 0.4, 0.5),
    hparams={"step_size": 0.2, "momentum": 0.9},
    prior=1e-2,
    budget=40_000,
)


def plan(
    preset: Preset, task: Any, points: Mapping[int, Any], arm: str, batch_size: int | None
) -> list[Planned]:
    """One job per fraction and arm (the fraction changes the task); a minibatch as large as
    the training set is the full batch."""
    del task, points  # each fraction makes its own task; every chain starts from its init
    sweep: Settings = preset.settings(NAME)
    seeds = list(range(preset.seeds))
    out = []
    for f in sweep.fractions:
        sub = preset.make_task(frac_train=f)  # same split seed and model
        bs = batch_size if batch_size is None or batch_size < len(sub.batch()[1]) else None
        sgd = job(
            preset, f"frac{f:g}/{arm}", "sgd", sweep.hparams, sweep.prior, seeds, sweep.budget, bs
        )
        out.append(Planned(NAME, arm, sub, sgd, {"fraction": f, "optimizer": "sgd"}))
    for f in sweep.adamw_fractions if sweep.adamw else ():
        sub = preset.make_task(frac_train=f)
        bs = batch_size if batch_size is None or batch_size < len(sub.batch()[1]) else None
        adamw = job(
            preset,
            f"frac{f:g}/{arm}/adamw",
            "adamw",
            sweep.adamw,
            0.0,
            seeds,
            sweep.adamw_budget,
            bs,
        )
        out.append(Planned(NAME, arm, sub, adamw, {"fraction": f, "optimizer": "adamw"}))
    return out


def analyse(runs: Sequence[Chains], preset: Preset) -> ClaimResult:
    """Per arm: the Kaplan–Meier median t_grok per fraction, the exponential and the power law
    fitted on all its chains, and Power et al.'s rate beside them."""
    sweep: Settings = preset.settings(NAME)
    sections, panels, summary = [], [], {}
    groups = dict.fromkeys((r.planned.arm, r.planned.meta.get("optimizer", "sgd")) for r in runs)
    for arm, optimizer in groups:
        datas = [
            r
            for r in runs
            if r.planned.arm == arm and r.planned.meta.get("optimizer", "sgd") == optimizer
        ]
        budget = sweep.adamw_budget if optimizer == "adamw" else sweep.budget
        frac, lower, upper, dropped, rows = [], [], [], 0, []
        cells, cell_times, medians = [], [], {}
        for data in datas:
            f = data.planned.meta["fraction"]
            times = data.grok_times().subset(data.live())
            dropped += int(np.sum(~data.live()))
            frac += [f] * len(times)
            lower += list(times.lower)
            upper += list(times.upper)
            med = km_median(times) if len(times) else (None, None, None)
            cells.append((f"f = {fmt(f)}", regime.numbers(data, from_mem=True).subset(data.live())))
            cell_times.append(times)
            medians[f] = (med[0], float(times.lower.max()) if len(times) else math.nan)
            rows.append(
                [
                    fmt(f),
                    str(len(data.planned.task.batch()[1])),
                    f"{times.events}/{len(times)}",
                    fmt(med[0])
                    if med[0] is not None
                    else f"> {fmt(float(times.lower.max()))}"
                    if len(times)
                    else "–",  # every chain of this fraction diverged
                    f"{fmt(med[1])} – {fmt(med[2])}" if med[0] is not None else "–",
                ]
            )
        batch = datas[0].result.batch_size
        sec = Section(
            ("full batch" if arm == "full" else f"minibatch ({batch})")
            + (", AdamW (Power et al.'s optimizer)" if optimizer == "adamw" else ", SGD")
        )
        sec.tables.append(
            (
                "Per training fraction: Kaplan–Meier median t_grok in steps with its 95 % "
                "interval.",
                Table(["fraction", "training pairs", "grokked", "t_grok", "95 % interval"], rows),
            )
        )
        times = Times(np.array(lower), np.array(upper))
        f = np.array(frac)
        panel = {"arm": arm, "f": f, "times": times, "optimizer": optimizer}
        tables, null_phrase, _ = regime.null_section(cells, cell_times, budget)
        sec.tables += tables
        bracket = _censored_bracket(medians)
        local = _local_rates(medians)
        fine = [r for r in local if r[2] <= 1.0 + 1e-9]  # neighbours 1 % apart
        if local:
            sec.tables.append(
                (
                    "Local growth between neighbouring fractions: the ratio of their Kaplan–Meier "
                    "medians per −1 % of data (point estimates; Power et al.: +40–50 % near the "
                    "threshold).",
                    Table(
                        ["from", "to", "points", "per −1 %"],
                        [[fmt(hi), fmt(lo), fmt(pts), _pct(r)] for hi, lo, pts, r in local],
                    ),
                )
            )
        near_fit = _near_threshold(times, f, fine)
        if near_fit is not None:
            (lo_f, hi_f), rate, rate_ci = near_fit
            span = f"{_pct(rate)} per −1 % ({_pct(rate_ci[0])} – {_pct(rate_ci[1])})"
            where = f"over the 1 % steps nearest the threshold ({fmt(lo_f)}–{fmt(hi_f)})"
            if rate_ci[1] is None or rate_ci[1] >= POWER_PER_PERCENT[0]:
                sec.status, sec.why = (
                    SUPPORTED,
                    (f"{where} t_grok grows by {span}, which reaches Power et al.'s +40–50 %"),
                )
            else:
                sec.status, sec.why = (
                    CONTRADICTED,
                    (f"{where} t_grok grows by {span}, below Power et al.'s +40–50 %"),
                )
        elif bracket:
            sec.status, sec.why = (
                UNTESTABLE,
                (
                    f"the steep part lies in the censored bracket ({bracket})"
                    + (
                        ", and the rows are SGD, not Power et al.'s AdamW"
                        if optimizer != "adamw"
                        else ""
                    )
                ),
            )
        try:
            expo = fits.censored_lognormal(
                times,
                np.column_stack([np.ones(len(f)), f]),
                ["a", "b"],
                profile=["b"],
                name="exponential",
                formula="a + b·f",
            )
            power = fits.censored_lognormal(
                times,
                np.column_stack([np.ones(len(f)), np.log(f)]),
                ["a", "k"],
                profile=["k"],
                name="power",
                formula="a + k·log f",
            )
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            sec.verdict = f"No fit ({err})."
            sec.status, sec.why = sec.status or UNTESTABLE, sec.why or f"no fit ({err})"
            sections.append(sec)
            panels.append(panel)
            summary[f"{arm}/{optimizer}"] = "no fit"
            continue
        b, b_ci = expo["b"], expo.interval("b")

        def per_percent(v):
            return None if v is None else math.exp(-v / 100) - 1

        pct = per_percent(b)
        pct_ci = (per_percent(b_ci[1]), per_percent(b_ci[0]))
        ref = tuple(-100 * math.log1p(p) for p in POWER_PER_PERCENT)
        sec.tables.append(
            (
                "Fits (censored log-normal regressions; 95 % profile-likelihood intervals).",
                Table(
                    ["law", "parameter", "estimate", "95 % interval", "per −1 % of data"],
                    [
                        [
                            "exponential",
                            "b",
                            fmt(b),
                            ci(b_ci),
                            f"{_pct(pct)} ({_pct(pct_ci[0])} – {_pct(pct_ci[1])})",
                        ],
                        ["power", "k", fmt(power["k"]), ci(power.interval("k")), "–"],
                        [
                            "Power et al. (reference)",
                            "b",
                            f"{fmt(ref[1])} – {fmt(ref[0])}",
                            "–",
                            "+40 % – +50 %",
                        ],
                    ],
                ),
            )
        )
        sec.tables.append(("Model comparison on the same chains.", comparison_table([expo, power])))
        sec.notes.append(censoring_note(times, dropped))
        overlap = _overlaps(b_ci, (ref[1], ref[0]))
        sec.verdict = (
            f"t_grok changes by {_pct(pct)} per −1 % of data (95 % CI {_pct(pct_ci[0])} to "
            f"{_pct(pct_ci[1])}), {'which overlaps' if overlap else 'which does not overlap'} "
            f"Power et al.'s +40–50 %; {aic_phrase(expo, power)}"
            + (
                ""
                if b_ci[1] is not None and b_ci[1] < 0
                else "; the data do not show t_grok growing as the fraction shrinks"
            )
            + f". Against the null from t_mem: {null_phrase}"
        )
        if near_fit is not None:
            sec.verdict += (
                f" Near the threshold: {sec.why}; the rate is not one number across the ladder "
                f"(from {_pct(local[0][3])} to {_pct(max(r for *_, r in local))} per point), so "
                "one exponential does not describe it."
            )
        elif sec.status:
            sec.verdict = f"Not testable here: {sec.why}. " + sec.verdict
        elif overlap and expo.aic < power.aic - 2:
            sec.status, sec.why = SUPPORTED, f"{_pct(pct)} per −1 % of data, exponential preferred"
        else:
            sec.status, sec.why = (
                CONTRADICTED,
                (
                    f"{_pct(pct)} per −1 % of data ({_pct(pct_ci[0])} – {_pct(pct_ci[1])}), "
                    "the steep part observed"
                ),
            )
        panel.update(expo=expo, power=power)
        panels.append(panel)
        sections.append(sec)
        summary[f"{arm}/{optimizer}"] = (
            f"{_pct(pct)} per −1 % ({_pct(pct_ci[0])} – {_pct(pct_ci[1])})"
        )
    status, why = page_status(sections)
    return ClaimResult(
        claim=NAME,
        status=status,
        why=why,
        title="Does t_grok grow exponentially as the training fraction shrinks?",
        prediction=(
            "Power et al. (2022): the steps to generalize grow steeply as the training fraction "
            "shrinks, about +40–50 % per −1 % of the data near 25–30 %, i.e. exponentially "
            "(log t linear in the fraction). Competing law: a power law (log t linear in log "
            "fraction)."
        ),
        setup=[
            f"SGD ({hparams_text(sweep.hparams)}, λ = {fmt(sweep.prior)}) from "
            f"`task.init` at training fractions {', '.join(fmt(f) for f in sweep.fractions)} "
            f"(the task's split seed; one task per fraction) × {preset.seeds} seeds; budget "
            f"{sweep.budget} steps; evaluated every {preset.eval_every} steps.",
        ]
        + (
            [
                f"AdamW ({hparams_text(sweep.adamw)}, no prior: its decay is decoupled), Power "
                f"et al.'s optimizer, from `task.init` at "
                f"{', '.join(fmt(f) for f in sweep.adamw_fractions)} (1 % steps across its "
                f"threshold) × {preset.seeds} seeds; budget {sweep.adamw_budget} steps."
            ]
            if sweep.adamw
            else []
        ),
        sections=sections,
        verdict=joined_verdict(sections),
        panels=panels,
        figure_caption="t_grok (log axis) against the training fraction; open triangles are "
        "censored chains; solid: exponential fit; dashed: power-law fit; grey band: Power et "
        "al.'s +40–50 % per −1 % through the exponential fit's middle.",
        summary=summary,
        runs=[r.planned.key for r in runs],
    )


def _pct(x: float | None) -> str:
    if x is None:
        return "∞"
    return f"{100 * x:+.0f} %"


def _overlaps(a, b) -> bool:
    lo = -math.inf if a[0] is None else a[0]
    hi = math.inf if a[1] is None else a[1]
    return lo <= b[1] and b[0] <= hi


def figure(panels: Sequence[Mapping[str, Any]]):
    """t_grok against the fraction per arm (log y), with both fits and Power et al.'s band."""
    if not panels:
        return None
    fig, axes = new_figure(len(panels))
    for ax, p in zip(axes, panels, strict=True):
        with plt.rc_context(STYLE):
            scatter_times(ax, p["f"], p["times"], COLORS[0], "chains")
            ax.set_yscale("log")
            if "expo" in p:
                fs = np.linspace(p["f"].min(), p["f"].max(), 50)
                e, w = p["expo"], p["power"]
                ax.plot(fs, np.exp(e["a"] + e["b"] * fs), color="k", lw=1.2, label="exponential")
                ax.plot(
                    fs,
                    np.exp(w["a"] + w["k"] * np.log(fs)),
                    color="k",
                    ls="--",
                    lw=1,
                    label="power law",
                )
                mid = float(np.mean(fs))
                y0 = math.exp(e["a"] + e["b"] * mid)
                lo = y0 * np.exp(-100 * math.log(1.40) * (fs - mid))
                hi = y0 * np.exp(-100 * math.log(1.50) * (fs - mid))
                ax.fill_between(
                    fs,
                    np.minimum(lo, hi),
                    np.maximum(lo, hi),
                    color="grey",
                    alpha=0.2,
                    label="Power et al. +40–50 %/−1 %",
                )
                ax.set_ylim(*_ylim(p["times"]))
            ax.set_xlabel("training fraction")
            ax.set_ylabel("t_grok (steps)")
            ax.set_title(f"{arm_title(p)}, {p.get('optimizer', 'sgd')}")
            legend(ax)
    fig.tight_layout()
    return fig


def _ylim(times) -> tuple[float, float]:
    y = times.point()
    return float(y.min()) / 2, float(y.max()) * 2


def _ylim(times) -> tuple[float, float]:
    y = times.point()
    return float(y.min()) / 2, float(y.max()) * 2


def _near_threshold(times: Times, f: np.ndarray, fine: Sequence[tuple]):
    """The exponential fitted to the chains of the three fractions nearest the threshold that
    lie 1 % apart (two 1 % steps with both medians observed): ``((lowest, highest fraction),
    growth per −1 %, its 95 % interval)``, or None without such steps or a fit."""
    if len(fine) < 2:
        return None
    (_, a, _, _), (b, c, _, _) = fine[-2], fine[-1]
    if not math.isclose(a, b):  # the two steps must be adjacent
        return None
    chosen = np.isclose(f[:, None], np.array([fine[-2][0], a, c])[None, :]).any(axis=1)
    try:
        fit = fits.censored_lognormal(
            times.subset(chosen),
            np.column_stack([np.ones(int(chosen.sum())), f[chosen]]),
            ["a", "b"],
            profile=["b"],
        )
    except FitError:
        return None
    lo, hi = fit.interval("b")

    def per_point(v):
        return None if v is None else math.exp(-v / 100) - 1

    return (c, fine[-2][0]), per_point(fit["b"]), (per_point(hi), per_point(lo))


def _local_rates(
    medians: Mapping[float, tuple[float | None, float]],
) -> list[tuple[float, float, float, float]]:
    """``(higher fraction, lower, points apart, growth per −1 %)`` for each pair of neighbouring
    fractions whose medians were both observed, from the largest fraction down."""
    fr = sorted(medians, reverse=True)
    out = []
    for hi, lo in zip(fr, fr[1:], strict=False):
        m_hi, m_lo = medians[hi][0], medians[lo][0]
        points = 100 * (hi - lo)
        if m_hi and m_lo and points > 0:
            out.append((hi, lo, points, (m_lo / m_hi) ** (1 / points) - 1))
    return out


def _censored_bracket(medians: Mapping[float, tuple[float | None, float]]) -> str:
    """Where the median t_grok goes from observed to censored between neighbouring fractions:
    ``"0.4 → 0.35: 1,780 → > 3,000 steps, at least +11 % per point"`` (empty when it never
    does: the steep part is observed)."""
    fr = sorted(medians, reverse=True)
    for hi, lo in zip(fr, fr[1:], strict=False):
        (m_hi, _), (m_lo, c_lo) = medians[hi], medians[lo]
        if m_hi is not None and m_lo is None and math.isfinite(c_lo):
            points = 100 * (hi - lo)
            rate = (c_lo / m_hi) ** (1 / points) - 1 if points > 0 else math.nan
            return (
                f"{fmt(hi)} → {fmt(lo)}: {fmt(m_hi)} → > {fmt(c_lo)} steps, at least "
                f"{_pct(rate)} per point"
            )
    return ""


CLAIM = Claim(NAME, {"cpu": CPU, "paper": PAPER}, plan, analyse, figure)
