"""Claim "Eyring: rate ∝ exp(−ΔF/τ)": its temperature ladder, analysis and figure.

Millidge ("Grokking as simple thermodynamics", 2022); Kozyrev (2024): escaping the memorizing
region is thermally activated, so the rate 1/t_grok ∝ exp(−ΔF/τ): the slope ΔF of log t_grok on
1/τ over a temperature ladder of SGLD and SGHMC from shared memorized checkpoints, against a
rate independent of τ.
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
    median_text,
)
from bench.theory.figures import COLORS, arm_title, legend, new_figure
from bench.theory.fits import FitError
from bench.theory.plan import Planned, job
from bench.theory.preset import Preset

NAME = "eyring"


@dataclass(frozen=True)
class Settings:
    """Samplers from the shared memorized checkpoints over a temperature ladder."""

    temperatures: tuple[float, ...]
    samplers: Mapping[str, Mapping[str, Any]]  # sampler -> its hyperparameters
    prior: float
    budget: int


#: The regime a barrier needs (issue 19): a λ at which gradient descent alone does not grok
#: within the budget, so noise is the only way out. On add_mod31_quadratic at λ = 1e-4 it does
#: (SGLD at step 30 from a memorized checkpoint: t_grok 690 at τ ≤ 1e-8, 1670 at 1e-6; SGHMC at
#: step 3, friction 0.1: 740 and 1810), the decay-limited t·η·λ ≈ 1.9 (weight_decay's page):
#: at λ = 1.5e-5 that is ~4,200 steps, past the 3,000-step budget. The ladder then runs from
#: τ = 0 (the barrier check: every chain should be censored) up to the noise scale
#: sqrt(D·τ/λ) ≈ ‖θ_mem‖ ≈ 23 (τ ≈ 1.7e-7) and once past it.
CPU = Settings(
    temperatures=(0.0, 1e-8, 3e-8, 1e-7, 3e-7),
    samplers={"sgld": {"step_size": 30.0}, "sghmc": {"step_size": 3.0, "friction": 0.1}},
    prior=1.5e-5,
    budget=3000,
)
PAPER = Settings(
    temperatures=(0.0, 1e-8, 1e-7, 1e-6, 3e-6, 1e-5),
    samplers={"sgld": {"step_size": 0.2}, "sghmc": {"step_size": 0.02, "friction": 0.1}},
    prior=1e-2,
    budget=30_000,
)


def checkpoints(preset: Preset) -> int:
    return preset.seeds


def plan(
    preset: Preset, task: Any, points: Mapping[int, Any], arm: str, batch_size: int | None
) -> list[Planned]:
    """One job per sampler and arm: the ladder × the checkpoints, one temperature per chain."""
    sweep: Settings = preset.settings(NAME)
    seeds = list(range(preset.seeds))
    ladder = [t for t in sweep.temperatures for _ in seeds]
    out = []
    for sampler, hparams in sweep.samplers.items():
        ladder_job = job(
            preset,
            f"eyring/{sampler}/{arm}",
            sampler,
            {**hparams, "temperature": ladder},
            sweep.prior,
            [0] * len(ladder),
            sweep.budget,
            batch_size,
            start=[points[s].key for _ in sweep.temperatures for s in seeds],
        )
        out.append(
            Planned(NAME, arm, task, ladder_job, {"sampler": sampler, "temperature": ladder})
        )
    return out


def analyse(runs: Sequence[Chains], preset: Preset) -> ClaimResult:
    """Per sampler and arm: the Kaplan–Meier median t_grok per temperature, the Eyring fit of
    log t_grok on 1/τ and the τ-independent law."""
    sweep: Settings = preset.settings(NAME)
    sections, panels, summary = [], [], {}
    for data in runs:
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
            if sub.events == 0 and level > 0:  # τ = 0 is the barrier check, not a level
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
        x = regime.numbers(data).subset(keep)
        levels = sorted(set(t))
        tables, null_phrase, _ = regime.null_section(
            [(f"τ = {fmt(v)}", x.subset(t == v)) for v in levels],
            [times.subset(t == v) for v in levels],
            sweep.budget,
        )
        sec.tables += tables
        sec.notes.append(f"Against the null: {null_phrase}")
        cold = times.subset(t == 0)
        if len(cold) and cold.events:
            sec.status, sec.why = (
                UNTESTABLE,
                f"gradient descent alone groks at this λ ({cold.events}/{len(cold)} chains at "
                f"τ = 0, median {median_text(km_median(cold)[0], cold)}): there is no barrier for "
                "noise to cross",
            )
        hot = t > 0
        times, t = times.subset(hot), t[hot]
        panel.update(tau=t, times=times)
        if times.events == 0 and len(t):
            hot_x = x.subset(tau[keep] == max(t))
            noise = math.sqrt(
                regime.stationary_sq(
                    regime.median(hot_x.eta), regime.median(hot_x.prior), max(t), x.dim
                )
            )
            tried = (
                f"no chain grokked within {fmt(sweep.budget)} steps at any τ up to "
                f"{fmt(max(t))} (noise scale sqrt(D·τ/λ) {fmt(noise)} against ‖θ_mem‖ "
                f"{fmt(regime.median(x.norm_start))}), as none did at τ = 0: noise is not the "
                "way out here, and there was no escape to time"
            )
            sec.status, sec.why = sec.status or UNTESTABLE, sec.why or tried
        scale = float(np.max(1 / t)) if len(t) else 1.0
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
            sec.verdict = f"No fit ({err})." + (
                f" Not testable here: {sec.why}." if sec.why else ""
            )
            sec.status = sec.status or UNTESTABLE
            sec.why = sec.why or f"no fit ({err})"
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
        sec.notes.append(censoring_note(times, int(np.sum(~keep))))
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
        coldest, hottest = min(t), max(t)
        sec.verdict = (
            f"The median t_grok is {median_text(medians[coldest], times.subset(t == coldest))} "
            f"at τ = {fmt(coldest)} and "
            f"{median_text(medians[hottest], times.subset(t == hottest))} at "
            f"τ = {fmt(hottest)}; ΔF = {fmt(dF)} (95 % CI {ci(dF_ci)}), {sign}; "
            f"{aic_phrase(arr, flat)}"
            + (
                " (with ΔF < 0: a faster escape when colder, not an activated one)"
                if dF < 0 and arr.aic < flat.aic - 2
                else ""
            )
            + (f"; no escape at τ ∈ {{{', '.join(fmt(v) for v in frozen)}}}" if frozen else "")
            + f". Against the null: {null_phrase}"
        )
        if not sec.status:
            if dF_ci[0] is not None and dF_ci[0] > 0 and arr.aic < flat.aic - 2:
                sec.status, sec.why = SUPPORTED, f"ΔF = {fmt(dF)} > 0 ({ci(dF_ci)})"
            elif dF_ci[1] is not None and dF_ci[1] < 0:
                sec.status, sec.why = CONTRADICTED, f"faster when colder (ΔF {ci(dF_ci)})"
            else:
                sec.status, sec.why = (
                    UNTESTABLE,
                    f"ΔF cannot be told from 0 over this ladder ({ci(dF_ci)})",
                )
        else:
            sec.verdict = f"Not testable here: {sec.why}. " + sec.verdict
        panel.update(fit=arr, flat=flat, dF=dF, scale=scale)
        panels.append(panel)
        sections.append(sec)
        summary[f"{sampler}/{arm}"] = f"ΔF = {fmt(dF)} ({ci(dF_ci)})"
    status, why = page_status(sections)
    return ClaimResult(
        claim=NAME,
        status=status,
        why=why,
        title="Eyring: rate ∝ exp(−ΔF/τ)?",
        prediction=(
            "Millidge; Kozyrev: escaping the memorizing region is thermally activated over a "
            "free-energy barrier ΔF, so the rate 1/t_grok ∝ exp(−ΔF/τ): log t_grok linear in "
            "1/τ with slope ΔF > 0. Competing law: the escape is driven by weight decay and the "
            "rate does not depend on τ."
        ),
        setup=[
            f"{' and '.join(f'{s} ({hparams_text(h)})' for s, h in sweep.samplers.items())} "
            f"from {preset.seeds} shared memorized checkpoints (bench/checkpoints.py) over "
            f"τ ∈ {{{', '.join(fmt(t) for t in sweep.temperatures)}}}, λ = "
            f"{fmt(sweep.prior)}; budget {sweep.budget} steps; evaluated every "
            f"{preset.eval_every} steps. A temperature ladder is one job per sampler and arm. "
            "τ = 0 is the barrier check: gradient descent alone should not grok within the "
            "budget, or there is no barrier for noise to cross; the fits use τ > 0.",
        ],
        sections=sections,
        verdict=joined_verdict(sections),
        panels=panels,
        figure_caption="log rate (1 / Kaplan–Meier median t_grok) against 1/τ on a log axis "
        "(the Eyring line, linear in 1/τ, curves on it); open markers: "
        "no median within the budget (rate below 1/budget); lines: the Eyring fit (the rate at "
        "the fitted median) and the τ-independent fit.",
        summary=summary,
        runs=[r.planned.key for r in runs],
    )


def figure(panels: Sequence[Mapping[str, Any]]):
    """The rate 1/median t_grok against 1/τ per arm, one colour per sampler, with the fits."""
    if not panels:
        return None
    arms = list(dict.fromkeys(p["arm"] for p in panels))
    fig, axes = new_figure(len(arms))
    samplers = list(dict.fromkeys(p["sampler"] for p in panels))
    for ax, arm in zip(axes, arms, strict=True):
        with plt.rc_context(STYLE):
            for p in (q for q in panels if q["arm"] == arm):
                color = COLORS[samplers.index(p["sampler"]) % 10]
                levels = sorted(set(p["tau"]))
                for lv in levels:
                    sub = p["times"].subset(p["tau"] == lv)
                    med = km_median(sub)[0]
                    if med is not None:
                        ax.scatter(1 / lv, 1 / med, color=color, s=16, zorder=3)
                    else:
                        ax.scatter(
                            1 / lv,
                            1 / float(sub.lower.max()),
                            facecolors="none",
                            edgecolors=color,
                            marker="v",
                            s=22,
                            zorder=3,
                        )
                if "fit" in p:
                    xs = np.geomspace(min(1 / t for t in levels), max(1 / t for t in levels), 50)
                    f = p["fit"]
                    ax.plot(
                        xs,
                        np.exp(-(f["a"] + p["dF"] * xs)),
                        color=color,
                        lw=1,
                        label=f"{p['sampler']}: ΔF = {p['dF']:.2g}",
                    )
                    ax.axhline(math.exp(-p["flat"]["a"]), color=color, lw=0.7, ls=":")
            ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_xlabel("1/τ")
            ax.set_ylabel("rate = 1 / median t_grok (per step)")
            ax.set_title(arm_title({"arm": arm}))
            legend(ax)
    fig.tight_layout()
    return fig


CLAIM = Claim(NAME, {"cpu": CPU, "paper": PAPER}, plan, analyse, figure, checkpoints)
