"""t_grok against the training fraction: exponential growth as the data shrink?"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bench.store import Store
from bench.theory import fits
from bench.theory.claims.common import (
    POWER_PER_PERCENT,
    ClaimResult,
    Section,
    Table,
    _aic_phrase,
    _censoring_note,
    _hp,
    ci,
    comparison_table,
    fmt,
    km_median,
    load,
)
from bench.theory.fits import FitError, Times
from bench.theory.sweeps import Planned, Preset


def fraction(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for arm in dict.fromkeys(p.arm for p in planned):
        datas = load(store, [p for p in planned if p.arm == arm])
        frac, lower, upper, dropped, rows = [], [], [], 0, []
        for data in datas:
            f = data.planned.meta["fraction"]
            times = data.grok_times().subset(data.live())
            dropped += int(np.sum(~data.live()))
            frac += [f] * len(times)
            lower += list(times.lower)
            upper += list(times.upper)
            med = km_median(times) if len(times) else (None, None, None)
            rows.append(
                [
                    fmt(f),
                    str(len(data.planned.task.batch()[1])),
                    f"{times.events}/{len(times)}",
                    fmt(med[0]) if med[0] is not None else f"> {fmt(float(times.lower.max()))}",
                    f"{fmt(med[1])} – {fmt(med[2])}" if med[0] is not None else "–",
                ]
            )
        batch = datas[0].result.batch_size
        sec = Section("full batch" if arm == "full" else f"minibatch ({batch})")
        sec.tables.append(
            (
                "Per training fraction: Kaplan–Meier median t_grok in steps with its 95 % "
                "interval.",
                Table(["fraction", "training pairs", "grokked", "t_grok", "95 % interval"], rows),
            )
        )
        times = Times(np.array(lower), np.array(upper))
        f = np.array(frac)
        panel = {"arm": arm, "f": f, "times": times}
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
            sections.append(sec)
            panels.append(panel)
            summary[arm] = "no fit"
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
        sec.notes.append(_censoring_note(times, dropped))
        overlap = _overlaps(b_ci, (ref[1], ref[0]))
        sec.verdict = (
            f"t_grok changes by {_pct(pct)} per −1 % of data (95 % CI {_pct(pct_ci[0])} to "
            f"{_pct(pct_ci[1])}), {'which overlaps' if overlap else 'which does not overlap'} "
            f"Power et al.'s +40–50 %; {_aic_phrase(expo, power)}"
            + (
                ""
                if b_ci[1] is not None and b_ci[1] < 0
                else "; the data do not show t_grok growing as the fraction shrinks"
            )
            + "."
        )
        panel.update(expo=expo, power=power)
        panels.append(panel)
        sections.append(sec)
        summary[arm] = f"{_pct(pct)} per −1 % ({_pct(pct_ci[0])} – {_pct(pct_ci[1])})"
    return ClaimResult(
        claim="fraction",
        title="Does t_grok grow exponentially as the training fraction shrinks?",
        prediction=(
            "Power et al. (2022): the steps to generalize grow steeply as the training fraction "
            "shrinks, about +40–50 % per −1 % of the data near 25–30 %, i.e. exponentially "
            "(log t linear in the fraction). Competing law: a power law (log t linear in log "
            "fraction)."
        ),
        setup=[
            f"SGD ({_hp(preset.fraction_hparams)}, λ = {fmt(preset.fraction_prior)}) from "
            f"`task.init` at training fractions {', '.join(fmt(f) for f in preset.fractions)} "
            f"(the task's split seed; one task per fraction) × {preset.seeds} seeds; budget "
            f"{preset.fraction_budget} steps; evaluated every {preset.eval_every} steps.",
        ],
        sections=sections,
        verdict=" ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict),
        panels=panels,
        figure_caption="t_grok (log axis) against the training fraction; open triangles are "
        "censored chains; solid: exponential fit; dashed: power-law fit; grey band: Power et "
        "al.'s +40–50 % per −1 % through the exponential fit's middle.",
        summary=summary,
        runs=[p.key for p in planned],
    )


def _pct(x: float | None) -> str:
    if x is None:
        return "∞"
    return f"{100 * x:+.0f} %"


def _overlaps(a, b) -> bool:
    lo = -math.inf if a[0] is None else a[0]
    hi = math.inf if a[1] is None else a[1]
    return lo <= b[1] and b[0] <= hi
