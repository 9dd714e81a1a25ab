"""t_grok against t_mem: is grokking time the square of memorization time?"""

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


def tgrok_tmem2(store: Store, planned: Sequence[Planned], preset: Preset) -> ClaimResult:
    sections, panels, summary = [], [], {}
    for data in load(store, planned):
        arm = data.planned.arm
        sec = Section(f"{arm} batch" if arm == "full" else f"minibatch ({data.result.batch_size})")
        e = data.eval_every
        eta = np.array(data.planned.meta["step_size"], dtype=float)
        momentum = float(data.result.hparams.get("momentum", 0.0) or 0.0)
        lam = float(data.result.prior_precision)
        tmem = np.array([np.nan if c.t_mem is None else c.t_mem for c in data.chains], dtype=float)
        keep = data.live() & np.isfinite(tmem)
        times_all = data.grok_times()
        times = times_all.subset(keep)
        x = tmem[keep] - e / 2  # the middle of (t_mem − e, t_mem]
        rows = []
        norm_mem = np.array(
            [
                data.value_at(i, "weight_norm", int(t)) if k else np.nan
                for i, (t, k) in enumerate(zip(tmem, keep, strict=True))
            ]
        )
        grokked = [i for i, c in enumerate(data.chains) if c.t_grok is not None and keep[i]]
        norm_star = (
            float(
                np.median([data.value_at(i, "weight_norm", data.chains[i].t_grok) for i in grokked])
            )
            if grokked
            else math.nan
        )
        for step in sorted(set(eta)):
            idx = np.where((eta == step) & keep)[0]
            sub = times_all.subset((eta == step) & keep)
            med = km_median(sub) if len(sub) else (None, None, None)
            rows.append(
                [
                    fmt(step),
                    f"{sub.events}/{int(np.sum(eta == step))}",
                    fmt(float(np.median(tmem[idx]))) if len(idx) else "–",
                    fmt(med[0])
                    if med[0] is not None
                    else f"> {fmt(float(np.max(sub.lower)))}"
                    if len(sub)
                    else "–",
                    fmt(float(np.median(norm_mem[idx]))) if len(idx) else "–",
                ]
            )
        sec.tables.append(
            (
                "Per step size: chains that grokked, median t_mem, Kaplan–Meier median t_grok "
                "(steps), median ‖θ‖ at t_mem.",
                Table(["η", "grokked", "t_mem", "t_grok (KM median)", "‖θ_mem‖"], rows),
            )
        )
        panel = {"arm": arm, "x": x, "times": times, "eta": eta[keep], "e": e}
        try:
            exog = np.column_stack([np.ones(len(x)), np.log(x)])
            power = fits.censored_lognormal(
                times, exog, ["a", "b"], profile=["b"], name="power", formula="a + b·log t_mem"
            )
            rate = eta[keep] * lam / (1.0 - momentum)
            lever = np.maximum(np.log(norm_mem[keep] / norm_star), 1e-3)
            drive = lever / rate

            def decay_mean(beta, X, x=x, drive=drive):
                return np.log(x + math.exp(beta[0]) * drive)

            decay = fits.censored_lognormal(
                times,
                exog,
                ["log_c"],
                mean=decay_mean,
                start=[0.0, 0.0],
                profile=["log_c"],
                name="norm decay",
                formula="log(t_mem + c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ))",
            )

            def scale_mean(beta, X, x=x, rate=rate):
                return np.log(x + math.exp(beta[0]) / rate)

            scale = fits.censored_lognormal(
                times,
                exog,
                ["log_c"],
                mean=scale_mean,
                start=[0.0, 0.0],
                profile=["log_c"],
                name="decay time",
                formula="log(t_mem + c/(η_eff·λ))",
            )
        except FitError as err:
            sec.notes.append(f"No fit: {err}.")
            sec.verdict = f"No fit ({err})."
            sections.append(sec)
            panels.append(panel)
            summary[arm] = "no fit"
            continue
        b, b_ci = power["b"], power.interval("b")
        c_ci = _exp_interval(decay.interval("log_c"))
        k_ci = _exp_interval(scale.interval("log_c"))
        c, k = math.exp(decay["log_c"]), math.exp(scale["log_c"])
        sec.tables.append(
            (
                "Fits (censored log-normal regressions on the same chains; 95 % profile-"
                "likelihood intervals).",
                Table(
                    ["law", "parameter", "estimate", "95 % interval", "σ (log scale)"],
                    [
                        ["power", "slope b", fmt(b), ci(b_ci), fmt(power.sigma)],
                        ["norm decay", "c", fmt(c), ci(c_ci), fmt(decay.sigma)],
                        ["decay time", "c", fmt(k), ci(k_ci), fmt(scale.sigma)],
                    ],
                ),
            )
        )
        sec.tables.append(
            ("Model comparison on the same chains.", comparison_table([power, decay, scale]))
        )
        sec.notes.append(
            _censoring_note(times, int(np.sum(~keep)))
            + f"; ‖θ*‖ = {fmt(norm_star)} (median ‖θ‖ at t_grok of the chains that grokked); "
            f"η_eff·λ = η·λ/(1 − momentum) with λ = {fmt(lam)}, momentum {fmt(momentum)}."
        )
        sec.verdict = (
            f"The slope of log t_grok on log t_mem is {fmt(b)} (95 % CI {ci(b_ci)}): the interval "
            f"{_within(b_ci, 2.0)} 2 (t_grok ∝ t_mem²) and {_within(b_ci, 1.0)} 1 (t_grok ∝ "
            f"t_mem, what weight decay alone gives on a step-size ladder). The norm-decay law "
            f"needs c = {fmt(c)} ({ci(c_ci)}), "
            + ("consistent with 1" if fits.contains(c_ci, 1.0) else "not the 1 it predicts")
            + f": ‖θ‖ went from a median {fmt(float(np.nanmedian(norm_mem[keep])))} at t_mem to "
            f"{fmt(norm_star)} at t_grok; the decay time scale alone, t_grok − t_mem = "
            f"c/(η_eff·λ), fits with c = {fmt(k)} ({ci(k_ci)}); {_aic_phrase(power, decay)}, and "
            f"{_aic_phrase(power, scale)}."
        )
        panel.update(power=power, decay=decay, drive=drive, scale=scale, rate=rate)
        panels.append(panel)
        sections.append(sec)
        summary[arm] = f"b = {fmt(b)} ({ci(b_ci)})"
    verdict = " ".join(f"**{s.title}**: {s.verdict}" for s in sections if s.verdict)
    return ClaimResult(
        claim="tgrok_tmem2",
        title="t_grok ≈ t_mem²?",
        prediction=(
            "Kozyrev: memorization is drift (distance ∝ t) and grokking is diffusion on the "
            "zero-loss set (distance ∝ √t), so the time to grok grows as the square of the time "
            "to memorize: slope 2 of log t_grok on log t_mem. Competing law: after memorization "
            "weight decay shrinks ‖θ‖ geometrically until it reaches the generalizing norm ‖θ*‖: "
            "t_grok − t_mem = c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ) with c ≈ 1, which on a step-size "
            "ladder (t_mem ∝ 1/η) gives slope 1; beside it, the decay time scale alone, t_grok − "
            "t_mem = c/(η_eff·λ)."
        ),
        setup=[
            "SGD from `task.init` over step sizes η ∈ "
            f"{{{', '.join(fmt(s) for s in preset.tmem_steps)}}} "
            f"× {preset.seeds} seeds, everything else fixed ({_hp(preset.tmem_hparams)}, "
            f"λ = {fmt(preset.tmem_prior)}); budget {preset.tmem_budget} steps; "
            f"evaluated every {preset.tmem_eval_every} steps.",
        ],
        sections=sections,
        verdict=verdict,
        panels=panels,
        figure_caption="t_grok against t_mem (log–log); open triangles are censored chains (at "
        "their censoring time, the truth above); solid line: the fitted power law; dashed: "
        "slope 2 through the data's centre; crosses and pluses: the norm-decay and the "
        "decay-time laws' predictions per chain.",
        summary=summary,
        runs=[p.key for p in planned],
    )


def _exp_interval(interval):
    return tuple(None if v is None else math.exp(v) for v in interval)
