"""Eyring's law: the grokking rate against 1/temperature."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.store import Store
from bench.theory import fits
from bench.theory.claims.common import (
    ClaimResult,
    Section,
    Table,
    _aic_phrase,
    _censoring_note,
    _hp,
    _median_text,
    ci,
    comparison_table,
    fmt,
    km_median,
    load,
)
from bench.theory.fits import FitError
from bench.theory.sweeps import Planned, Preset


def eyring(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for data in load(store, planned):
        arm, sampler = data.planned.arm, data.planned.meta["sampler"]
        tau = np.array(data.planned.meta["temperature"], dtype=float)
        keep = data.live()
        times = data.grok_times().subset(keep)
        t = tau[keep]
        label = "full batch" if arm == "full" else f"minibatch ({data.result.batch_size})"
        sec = Section(f"{sampler}, {label}")
        rows, frozen, medians = [], [], {}
        for level in sorted(set(tau)):
            sub = times.subset(t == level)
            med = km_median(sub) if len(sub) else (None, None, None)
            medians[level] = med[0]
            if sub.events == 0:
                frozen.append(level)
            rows.append(
                [
                    fmt(level),
                    f"{sub.events}/{int(np.sum(tau == level))}",
                    fmt(med[0])
                    if med[0] is not None
                    else f"> {fmt(float(sub.lower.max()))}"
                    if len(sub)
                    else "–",
                    f"{fmt(med[1])} – {fmt(med[2])}" if med[0] is not None else "–",
                    fmt(1 / med[0]) if med[0] else "–",
                ]
            )
        sec.tables.append(
            (
                "Per temperature: Kaplan–Meier median t_grok (steps from the checkpoint) and the "
                "rate 1/median.",
                Table(["τ", "grokked", "t_grok", "95 % interval", "rate"], rows),
            )
        )
        panel = {"arm": arm, "sampler": sampler, "tau": t, "times": times, "rows": rows}
        scale = float(np.max(1 / t))
        try:
            arr = fits.censored_lognormal(
                times,
                np.column_stack([np.ones(len(t)), (1 / t) / scale]),
                ["a", "dF"],
                profile=["dF"],
                name="Eyring",
                formula="a + ΔF/τ",
            )
            flat = fits.censored_lognormal(
                times,
                np.ones((len(t), 1)),
                ["a"],
                name="τ-independent",
                formula="a",
            )
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            if frozen:
                sec.notes.append(
                    f"No chain escaped at τ ∈ {{{', '.join(fmt(v) for v in frozen)}}}."
                )
            sec.verdict = f"No fit ({err})."
            sections.append(sec)
            panels.append(panel)
            summary[f"{sampler}/{arm}"] = "no fit"
            continue
        dF = arr["dF"] / scale
        dF_ci = tuple(None if v is None else v / scale for v in arr.interval("dF"))
        p = fits.likelihood_ratio(flat, arr)
        sec.tables.append(
            (
                "Fits (censored log-normal regressions; 95 % profile-likelihood interval; the "
                "likelihood-ratio test of ΔF = 0).",
                Table(
                    ["law", "ΔF (units of U)", "95 % interval", "LR p (ΔF = 0)"],
                    [["Eyring", fmt(dF), ci(dF_ci), fmt(p)], ["τ-independent", "0", "–", "–"]],
                ),
            )
        )
        sec.tables.append(("Model comparison on the same chains.", comparison_table([arr, flat])))
        sec.notes.append(_censoring_note(times, int(np.sum(~keep))))
        if frozen:
            sec.notes.append(
                f"At τ ∈ {{{', '.join(fmt(v) for v in frozen)}}} no chain escaped within the "
                "budget: there τ is too small for any escape we can see (kept in the fit as "
                "censored)."
            )
        sign = (
            "positive (slower when colder, as Eyring has it)"
            if dF_ci[0] is not None and dF_ci[0] > 0
            else "negative (faster when colder: against Eyring)"
            if dF_ci[1] is not None and dF_ci[1] < 0
            else "not distinguishable from 0"
        )
        cold, hot = min(medians), max(medians)
        sec.verdict = (
            f"The median t_grok is {_median_text(medians[cold], times.subset(t == cold))} at "
            f"τ = {fmt(cold)} and {_median_text(medians[hot], times.subset(t == hot))} at "
            f"τ = {fmt(hot)}; ΔF = {fmt(dF)} (95 % CI {ci(dF_ci)}), {sign}; "
            f"{_aic_phrase(arr, flat)}"
            + (
                " (with ΔF < 0: a faster escape when colder, not an activated one)"
                if dF < 0 and arr.aic < flat.aic - 2
                else ""
            )
            + (f"; no escape at τ ≤ {fmt(max(frozen))}" if frozen else "")
            + "."
        )
        panel.update(fit=arr, flat=flat, dF=dF, scale=scale)
        panels.append(panel)
        sections.append(sec)
        summary[f"{sampler}/{arm}"] = f"ΔF = {fmt(dF)} ({ci(dF_ci)})"
    return ClaimResult(
        claim="eyring",
        title="Eyring: rate ∝ exp(−ΔF/τ)?",
        prediction=(
            "Millidge; Kozyrev: escaping the memorizing region is thermally activated over a "
            "free-energy barrier ΔF, so the rate 1/t_grok ∝ exp(−ΔF/τ): log t_grok linear in "
            "1/τ with slope ΔF > 0. Competing law: the escape is driven by weight decay and the "
            "rate does not depend on τ."
        ),
        setup=[
            f"{' and '.join(f'{s} ({_hp(h)})' for s, h in preset.eyring_samplers.items())} "
            f"from {preset.seeds} shared memorized checkpoints (bench/checkpoints.py) over "
            f"τ ∈ {{{', '.join(fmt(t) for t in preset.eyring_temperatures)}}}, λ = "
            f"{fmt(preset.eyring_prior)}; budget {preset.eyring_budget} steps; evaluated every "
            f"{preset.eval_every} steps. A temperature ladder is one job per sampler and arm.",
        ],
        sections=sections,
        verdict=" ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict),
        panels=panels,
        figure_caption="log rate (1 / Kaplan–Meier median t_grok) against 1/τ on a log axis "
        "(the Eyring line, linear in 1/τ, curves on it); open markers: "
        "no median within the budget (rate below 1/budget); lines: the Eyring fit (the rate at "
        "the fitted median) and the τ-independent fit.",
        summary=summary,
        runs=[p.key for p in planned],
    )
