"""Weight decay as the prior precision: t_grok against λ, and λ against τ."""

from __future__ import annotations

import math
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
    _factor,
    _hp,
    _within,
    ci,
    comparison_table,
    fmt,
    km_median,
    load,
)
from bench.theory.fits import FitError
from bench.theory.sweeps import Planned, Preset


def weight_decay(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for data in load(store, planned):
        arm = data.planned.arm
        lam = np.array(data.planned.meta["prior_precision"], dtype=float)
        tau = np.array(data.planned.meta["temperature"], dtype=float)
        keep = data.live()
        times = data.grok_times().subset(keep)
        lam_k, tau_k = lam[keep], tau[keep]
        label = "full batch" if arm == "full" else f"minibatch ({data.result.batch_size})"
        sec = Section(label)
        levels = sorted(set(tau))
        rows = []
        for lv in sorted(set(lam)):
            row = [fmt(lv)]
            for tv in levels:
                sub = times.subset((lam_k == lv) & (tau_k == tv))
                med = km_median(sub)[0] if len(sub) else None
                row.append(
                    f"{fmt(med)} ({sub.events}/{len(sub)})"
                    if med is not None
                    else f"> {fmt(float(sub.lower.max()))} ({sub.events}/{len(sub)})"
                    if len(sub)
                    else "–"
                )
            rows.append(row)
        sec.tables.append(
            (
                "Kaplan–Meier median t_grok (steps from the checkpoint; grokked/chains) per "
                "prior precision λ (rows) and temperature τ (columns).",
                Table(["λ \\ τ", *(fmt(t) for t in levels)], rows),
            )
        )
        panel = {"arm": arm, "lam": lam_k, "tau": tau_k, "times": times, "levels": levels}
        dummies = (
            np.column_stack([(tau_k == lv).astype(float) for lv in levels[1:]])
            if len(levels) > 1
            else np.zeros((len(tau_k), 0))
        )
        one = np.ones((len(lam_k), 1))
        loglam = np.log(lam_k)[:, None]
        tnames = [f"τ={fmt(lv)}" for lv in levels[1:]]
        try:
            both = fits.censored_lognormal(
                times,
                np.hstack([one, loglam, dummies]),
                ["a", "b", *tnames],
                profile=["b", *tnames],
                name="λ and τ",
                formula="a + b·log λ + γ_τ",
            )
            only_lam = fits.censored_lognormal(
                times,
                np.hstack([one, loglam]),
                ["a", "b"],
                name="λ only",
                formula="a + b·log λ",
            )
            only_tau = fits.censored_lognormal(
                times,
                np.hstack([one, dummies]),
                ["a", *tnames],
                name="τ only",
                formula="a + γ_τ",
            )
            null = fits.censored_lognormal(times, one, ["a"], name="neither", formula="a")
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            sec.verdict = f"No fit ({err})."
            sections.append(sec)
            panels.append(panel)
            summary[arm] = "no fit"
            continue
        b, b_ci = both["b"], both.interval("b")
        p_tau = fits.likelihood_ratio(only_lam, both)
        p_lam = fits.likelihood_ratio(only_tau, both)
        span = math.log(max(lam) / min(lam))
        lam_factor, lam_ci = _factor(b, b_ci, span)
        gammas = {n: (both[n], both.interval(n)) for n in tnames}
        strongest = max(gammas, key=lambda n: abs(gammas[n][0])) if gammas else None
        tau_factor, tau_ci = _factor(*gammas[strongest], 1.0) if strongest else (1.0, (1.0, 1.0))
        per_level, slopes = [], {}
        for lv in levels:
            m = tau_k == lv
            sub = times.subset(m)
            try:
                fit = fits.censored_lognormal(
                    sub,
                    np.column_stack([np.ones(int(m.sum())), np.log(lam_k[m])]),
                    ["a", "b"],
                    profile=["b"],
                )
                slopes[lv] = (fit["b"], fit.interval("b"))
                per_level.append(
                    [fmt(lv), f"{sub.events}/{len(sub)}", fmt(fit["b"]), ci(fit.interval("b"))]
                )
            except FitError as err:
                per_level.append([fmt(lv), f"{sub.events}/{len(sub)}", "–", f"no fit: {err}"])
        inter = None
        if tnames:
            try:
                inter = fits.censored_lognormal(
                    times,
                    np.hstack([one, loglam, dummies, dummies * loglam]),
                    ["a", "b", *tnames, *(f"δ{n}" for n in tnames)],
                    name="λ × τ",
                    formula="a + b_τ·log λ + γ_τ",
                )
            except FitError:
                inter = None
        sec.tables.append(
            (
                "At fixed temperature: the slope b_τ of log t_grok on log λ (t_grok ∝ λ^b_τ; the "
                "norm-decay first passage predicts −1), censored log-normal fits with 95 % "
                "profile intervals.",
                Table(["τ", "grokked", "b_τ", "95 % interval"], per_level),
            )
        )
        sec.tables.append(
            (
                "The additive fit a + b·log λ + γ_τ (censored log-normal; 95 % profile "
                "intervals) and the likelihood-ratio test of each factor given the other.",
                Table(
                    ["quantity", "estimate", "95 % interval / p"],
                    [
                        ["b (common slope on log λ)", fmt(b), ci(b_ci)],
                        *[
                            [f"γ at {n} (log t_grok vs τ = {fmt(levels[0])})", fmt(g), ci(g_ci)]
                            for n, (g, g_ci) in gammas.items()
                        ],
                        ["LR test: does τ matter, given λ?", "–", f"p = {fmt(p_tau)}"],
                        ["LR test: does λ matter, given τ?", "–", f"p = {fmt(p_lam)}"],
                        [
                            f"factor on t_grok across the λ grid (×{fmt(max(lam) / min(lam))})",
                            fmt(lam_factor),
                            ci(lam_ci),
                        ],
                        ["factor on t_grok across the τ grid", fmt(tau_factor), ci(tau_ci)],
                    ],
                ),
            )
        )
        models = [both, only_lam, only_tau, null] + ([inter] if inter is not None else [])
        sec.tables.append(("Model comparison on the same chains.", comparison_table(models)))
        sec.notes.append(_censoring_note(times, int(np.sum(~keep))))
        if tau_ci[1] is not None and lam_ci[0] > tau_ci[1]:
            lever = "λ is the stronger lever over these grids"
        elif lam_ci[1] is not None and tau_ci[0] > lam_ci[1]:
            lever = "τ is the stronger lever over these grids"
        else:
            lever = "over these grids the two levers are comparable (their intervals overlap)"
        at_zero = slopes.get(levels[0])
        sec.verdict = (
            (
                f"At τ = {fmt(levels[0])}, t_grok ∝ λ^{fmt(at_zero[0])} (95 % CI "
                f"{ci(at_zero[1])}, which {_within(at_zero[1], -1.0)} −1); "
                if at_zero
                else ""
            )
            + f"across the grids λ changes t_grok by a factor {fmt(lam_factor)} "
            f"({ci(lam_ci)}) and τ by {fmt(tau_factor)} ({ci(tau_ci)}): {lever}; both matter "
            f"(LR p for λ {fmt(p_lam)}, for τ {fmt(p_tau)})"
            + (f"; {_aic_phrase(inter, both)}" if inter is not None else "")
            + "."
        )
        panel.update(fit=both)
        panels.append(panel)
        sections.append(sec)
        summary[arm] = f"b = {fmt(b)} ({ci(b_ci)})"
    return ClaimResult(
        claim="weight_decay",
        title="Is weight decay (the prior's precision) the strongest lever?",
        prediction=(
            "Power et al. (2022) found weight decay the most effective intervention; Millidge "
            "reads it as the precision λ of a Gaussian prior. If grokking is the first passage "
            "of weight-norm decay, t_grok ∝ 1/λ (exponent −1) at fixed temperature; noise and "
            "decay are confounded in any single tuned setting, so they are crossed here."
        ),
        setup=[
            f"SGLD ({_hp(preset.decay_hparams)}) from {preset.decay_seeds} shared memorized "
            "checkpoints "
            f"over λ ∈ {{{', '.join(fmt(v) for v in preset.decay_priors)}}} × τ ∈ "
            f"{{{', '.join(fmt(v) for v in preset.decay_temperatures)}}} (τ = 0 is gradient "
            f"descent); budget {preset.decay_budget} steps; evaluated every {preset.eval_every} "
            "steps. The whole factorial is one job per arm.",
        ],
        sections=sections,
        verdict=" ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict),
        panels=panels,
        figure_caption="t_grok against λ (log–log), one colour per temperature; open triangles "
        "are censored chains; lines: the additive fit per temperature.",
        summary=summary,
        runs=[p.key for p in planned],
    )
