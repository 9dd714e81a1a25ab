"""Claim "t_grok ≈ t_mem²": its step-size ladder, analysis and figure.

Kozyrev ("How to explain grokking", 2024): memorization is drift (distance ∝ t), grokking
diffusion on the zero-loss set (distance ∝ √t), so t_grok ≈ t_mem². Tested as the slope b of
log t_grok on log t_mem over a step-size ladder of SGD from ``task.init``; the competing law is
the first passage of weight-norm decay, t_grok − t_mem = c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ), which on
a step-size ladder gives b ≈ 1.
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
    within,
)
from bench.theory.figures import COLORS, arm_title, legend, new_figure, scatter_times
from bench.theory.fits import FitError, Times
from bench.theory.plan import Planned, job
from bench.theory.preset import Preset

NAME = "tgrok_tmem2"


@dataclass(frozen=True)
class Settings:
    """SGD from ``task.init`` over a ladder of step sizes, every other setting fixed."""

    steps: tuple[float, ...]  # the step sizes
    hparams: Mapping[str, Any]
    prior: float
    budget: int
    eval_every: int  # t_mem is a covariate here: a finer grid than the other claims'
    #: Kozyrev's own setting, in the minibatch arm beside the ladder at ``prior``: λ = 0, the
    #: only noise the minibatches', which grows with η, where slope 2 is the prediction
    kozyrev_prior: float = 0.0
    #: t_mem varied without rescaling every time (issue 19): the initialization's scale at one
    #: step size, one job per scale (the scale changes the task's init)
    init_scales: tuple[float, ...] = ()
    init_step: float = 30.0


#: Measured on add_mod31_quadratic: full-batch SGD from task.init at λ = 1e-4: step 20 → t_mem
#: 120, t_grok 1390; 30 → 80, 930; 40 → 60, 700 (t_mem ≈ 2400/η); step 10 had not grokked by
#: 2,500 (val 0.9); λ = 2e-4 never memorizes (collapses), λ = 1e-3 neither. Minibatch 64 (of
#: 480 pairs): step 20 → t_grok 1370, 1570; 40 → 690, 780. Initialization scales at step 30:
#: 0.7 → t_mem 840-950, t_grok 1220-1450; 1 → 90, 980; 1.4 never memorized by 2,400 on the
#: full batch; 2 diverged within 10 steps: the ladder stays within 0.7-1.2.
CPU = Settings(
    steps=(17.0, 24.0, 34.0, 48.0),
    hparams={},
    prior=1e-4,
    budget=2400,
    eval_every=10,
    init_scales=(0.7, 0.85, 1.0, 1.2),
)
PAPER = Settings(
    steps=(0.1, 0.14, 0.2, 0.28, 0.4),
    hparams={"momentum": 0.9},
    prior=1e-2,
    budget=40_000,
    eval_every=20,
)


def plan(
    preset: Preset, task: Any, points: Mapping[int, Any], arm: str, batch_size: int | None
) -> list[Planned]:
    """One job per arm: the whole ladder × seeds, one step size per chain; in the minibatch arm
    the same ladder at Kozyrev's λ = 0; one job per initialization scale."""
    del points  # every chain starts from task.init
    sweep: Settings = preset.settings(NAME)
    seeds = list(range(preset.seeds))
    steps = [s for s in sweep.steps for _ in seeds]

    def ladder(label: str, prior: float, setting: str) -> Planned:
        sgd = job(
            preset,
            label,
            "sgd",
            {**sweep.hparams, "step_size": steps},
            prior,
            [s for _ in sweep.steps for s in seeds],
            sweep.budget,
            batch_size,
            eval_every=sweep.eval_every,
        )
        return Planned(NAME, arm, task, sgd, {"step_size": steps, "setting": setting})

    out = [ladder(f"tmem/{arm}", sweep.prior, "ladder")]
    if arm != "full":
        out.append(ladder(f"tmem/{arm}/kozyrev", sweep.kozyrev_prior, "kozyrev"))
    for scale in sweep.init_scales:
        sub = preset.make_task(init_scale=scale)
        scaled = job(
            preset,
            f"tmem/{arm}/init{scale:g}",
            "sgd",
            {**sweep.hparams, "step_size": sweep.init_step},
            sweep.prior,
            seeds,
            sweep.budget,
            batch_size,
            eval_every=sweep.eval_every,
        )
        meta = {"step_size": [sweep.init_step] * len(seeds), "setting": "init_scale"}
        out.append(Planned(NAME, arm, sub, scaled, {**meta, "init_scale": scale}))
    return out


def analyse(runs: Sequence[Chains], preset: Preset) -> ClaimResult:
    """Per arm: the slope of log t_grok on log t_mem beside the two decay laws, fitted on
    the same chains."""
    sweep: Settings = preset.settings(NAME)
    sections, panels, summary = [], [], {}
    scaled = [r for r in runs if r.planned.meta.get("setting") == "init_scale"]
    for arm in dict.fromkeys(r.planned.arm for r in scaled):
        sec, panel = _init_scale_section([r for r in scaled if r.planned.arm == arm], sweep)
        sections.append(sec)
        panels.append(panel)
        summary[f"{arm}, init scales"] = sec.why
    for data in (r for r in runs if r.planned.meta.get("setting") != "init_scale"):
        arm = data.planned.arm
        lam = float(data.result.spec.prior_precision)
        kozyrev = data.planned.meta.get("setting") == "kozyrev"
        sec = Section(
            (f"{arm} batch" if arm == "full" else f"minibatch ({data.result.batch_size})")
            + (", λ = 0 (Kozyrev's setting)" if kozyrev else "")
        )
        e = data.eval_every
        eta = np.array(data.planned.meta["step_size"], dtype=float)
        momentum = float(data.result.spec.hparams.get("momentum", 0.0) or 0.0)
        tmem = np.array([np.nan if c.t_mem is None else c.t_mem for c in data.chains], dtype=float)
        keep = data.live() & np.isfinite(tmem)
        times_all = data.grok_times()
        times = times_all.subset(keep)
        x = tmem[keep] - e / 2  # the middle of (t_mem − e, t_mem]
        rows = []
        every = regime.numbers(data, from_mem=True)  # ‖θ‖ at t_mem and at t_grok, per chain
        norm_mem = every.norm_start
        norm_star = regime.median(every.norm_grok[keep])  # ‖θ*‖: where the kept chains grokked
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
        panel = {"arm": arm, "x": x, "times": times, "eta": eta[keep], "e": e, "lam": lam}
        if kozyrev:
            _kozyrev(sec, panel, times, x, int(np.sum(~keep)))
            sections.append(sec)
            panels.append(panel)
            summary[f"{arm}, λ = 0"] = sec.why
            continue
        try:
            exog = np.column_stack([np.ones(len(x)), np.log(x)])
            power = _power(times, x)
            rate = eta[keep] * lam / (1.0 - momentum)
            drive = np.maximum(np.log(norm_mem[keep] / norm_star), 1e-3) / rate
            decay = _norm_decay(times, x, drive)

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
            sec.status, sec.why = UNTESTABLE, f"no fit ({err})"
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
            censoring_note(times, int(np.sum(~keep)))
            + f"; ‖θ*‖ = {fmt(norm_star)} (median ‖θ‖ at t_grok of the chains that grokked); "
            f"η_eff·λ = η·λ/(1 − momentum) with λ = {fmt(lam)}, momentum {fmt(momentum)}."
        )
        levels = sorted(set(eta[keep]))
        nums = every.subset(keep)
        tables, null_phrase, _ = regime.null_section(
            [(f"η = {fmt(v)}", nums.subset(eta[keep] == v)) for v in levels],
            [times.subset(eta[keep] == v) for v in levels],
            sweep.budget,
        )
        sec.tables += tables
        relax = 1 / float(np.median(rate))
        if arm == "full":
            sec.why = (
                "only the step size varies, with no noise: under gradient flow every event time "
                "scales as 1/η, so slope 1 is forced by construction and there is no diffusion "
                "to square"
            )
        else:
            sec.why = (
                f"λ = {fmt(lam)} > 0: weight decay, relaxing in 1/(η_eff·λ) ≈ {fmt(relax)} steps "
                f"within the {fmt(sweep.budget)}-step budget, sets the times; Kozyrev's slope 2 "
                "is predicted for λ = 0 with the minibatch noise growing with η (not run here)"
            )
        sec.status = UNTESTABLE
        sec.verdict = (
            f"Not testable here: {sec.why}. "
            f"The slope of log t_grok on log t_mem is {fmt(b)} (95 % CI {ci(b_ci)}): the interval "
            f"{within(b_ci, 2.0)} 2 (t_grok ∝ t_mem²) and {within(b_ci, 1.0)} 1 (t_grok ∝ "
            f"t_mem, what weight decay alone gives on a step-size ladder). The norm-decay law "
            f"needs c = {fmt(c)} ({ci(c_ci)}), "
            + ("consistent with 1" if fits.contains(c_ci, 1.0) else "not the 1 it predicts")
            + f": ‖θ‖ went from a median {fmt(regime.median(norm_mem[keep]))} at t_mem to "
            f"{fmt(norm_star)} at t_grok; the decay time scale alone, t_grok − t_mem = "
            f"c/(η_eff·λ), fits with c = {fmt(k)} ({ci(k_ci)}); {aic_phrase(power, decay)}, and "
            f"{aic_phrase(power, scale)}. Against the null from t_mem: {null_phrase}"
        )
        panel.update(power=power, decay=decay, drive=drive, scale=scale, rate=rate)
        panels.append(panel)
        sections.append(sec)
        summary[arm] = f"b = {fmt(b)} ({ci(b_ci)})"
    verdict = joined_verdict(sections)
    status, why = page_status(sections)
    return ClaimResult(
        claim=NAME,
        status=status,
        why=why,
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
            f"{{{', '.join(fmt(s) for s in sweep.steps)}}} "
            f"× {preset.seeds} seeds, everything else fixed ({hparams_text(sweep.hparams)}, "
            f"λ = {fmt(sweep.prior)}); budget {sweep.budget} steps; "
            f"evaluated every {sweep.eval_every} steps.",
        ],
        sections=sections,
        verdict=verdict,
        panels=panels,
        figure_caption="t_grok against t_mem (log–log); open triangles are censored chains (at "
        "their censoring time, the truth above); solid line: the fitted power law; dashed: "
        "slope 2 through the data's centre; crosses and pluses: the norm-decay and the "
        "decay-time laws' predictions per chain.",
        summary=summary,
        runs=[r.planned.key for r in runs],
    )


def _exp_interval(interval):
    return tuple(None if v is None else math.exp(v) for v in interval)


def _init_scale_section(datas: Sequence[Chains], sweep: Settings) -> tuple[Section, dict]:
    """One arm's init-scale ladder: t_mem moves with the initialization's scale at one η and λ,
    so no slope is forced; the power law beside the norm-decay law, and the null."""
    arm, batch = datas[0].planned.arm, datas[0].result.batch_size
    sec = Section(
        ("full batch" if arm == "full" else f"minibatch ({batch})")
        + f", initialization scales at η = {fmt(sweep.init_step)}"
    )
    xs, lower, upper, norm_mem, norm_grok, scale, rows, cells, cell_times = ([] for _ in range(9))
    dropped = 0
    for data in datas:
        s = data.planned.meta["init_scale"]
        tmem = np.array([np.nan if c.t_mem is None else c.t_mem for c in data.chains], float)
        keep = data.live() & np.isfinite(tmem)
        dropped += int(np.sum(~keep))
        times = data.grok_times().subset(keep)
        nums = regime.numbers(data, from_mem=True).subset(keep)
        cells.append((f"scale {fmt(s)}", nums))
        cell_times.append(times)
        xs += list(tmem[keep] - data.eval_every / 2)
        lower += list(times.lower)
        upper += list(times.upper)
        norm_mem += list(nums.norm_start)
        norm_grok += list(nums.norm_grok)
        scale += [s] * len(times)
        med = km_median(times)[0] if len(times) else None
        rows.append(
            [
                fmt(s),
                f"{times.events}/{len(data.chains)}",
                fmt(float(np.median(tmem[keep]))) if keep.any() else "–",
                fmt(med) if med is not None else "not reached",
                fmt(regime.median(nums.norm_start)),
            ]
        )
    sec.tables.append(
        (
            "Per initialization scale: chains that grokked, median t_mem, Kaplan–Meier median "
            "t_grok (steps), median ‖θ‖ at t_mem.",
            Table(["init scale", "grokked", "t_mem", "t_grok (KM median)", "‖θ_mem‖"], rows),
        )
    )
    x = np.array(xs)
    times = Times(np.array(lower), np.array(upper))
    panel = {"arm": arm, "x": x, "times": times, "eta": np.array(scale), "by": "scale"}
    tables, null_phrase, _ = regime.null_section(cells, cell_times, sweep.budget)
    try:
        power = _power(times, x)
    except FitError as err:
        sec.tables += tables
        sec.status, sec.why = UNTESTABLE, f"no fit over the initialization scales ({err})"
        sec.verdict = f"Not testable here: {sec.why}."
        return sec, panel
    b, b_ci = power["b"], power.interval("b")
    rate = regime.eta_eff("sgd", {"step_size": sweep.init_step}) * sweep.prior
    star = regime.median(np.array(norm_grok))
    drive = np.maximum(np.log(np.array(norm_mem) / star), 1e-3) / rate
    models = [power]
    try:
        decay = _norm_decay(times, x, drive)
        models.append(decay)
    except FitError:
        decay = None
    sec.tables.append(
        (
            "Fits (censored log-normal regressions on the same chains; 95 % profile-likelihood "
            "intervals).",
            Table(
                ["law", "parameter", "estimate", "95 % interval"],
                [["power", "slope b", fmt(b), ci(b_ci)]]
                + (
                    [
                        [
                            "norm decay",
                            "c",
                            fmt(math.exp(decay["log_c"])),
                            ci(_exp_interval(decay.interval("log_c"))),
                        ]
                    ]
                    if decay is not None
                    else []
                ),
            ),
        )
    )
    sec.tables.append(("Model comparison on the same chains.", comparison_table(models)))
    sec.tables += tables
    sec.notes.append(censoring_note(times, dropped))
    sec.status = _slope_status(b_ci)
    sec.why = f"over initialization scales the slope is {fmt(b)} ({ci(b_ci)})" + (
        ", which cannot tell 1 from 2" if sec.status == UNTESTABLE else ""
    )
    sec.verdict = (
        f"With t_mem moved by the initialization's scale (η and λ fixed, so no slope is forced), "
        f"the slope of log t_grok on log t_mem is {fmt(b)} (95 % CI {ci(b_ci)}): the interval "
        f"{within(b_ci, 2.0)} 2 and {within(b_ci, 1.0)} 1"
        + (f"; {aic_phrase(power, decay)}" if decay is not None else "")
        + f". Against the null from t_mem: {null_phrase}"
    )
    panel["power"] = power
    return sec, panel


def _power(times: Times, x: np.ndarray) -> fits.Fit:
    """The power law log t_grok = a + b·log t_mem, with b's profile interval."""
    return fits.censored_lognormal(
        times,
        np.column_stack([np.ones(len(x)), np.log(x)]),
        ["a", "b"],
        profile=["b"],
        name="power",
        formula="a + b·log t_mem",
    )


def _norm_decay(times: Times, x: np.ndarray, drive: np.ndarray) -> fits.Fit:
    """The first passage of weight-norm decay, t_grok = t_mem + c·drive with drive =
    log(‖θ_mem‖/‖θ*‖)/(η_eff·λ), c ≈ 1 predicted."""

    def mean(beta, X, x=x, drive=drive):
        return np.log(x + math.exp(beta[0]) * drive)

    return fits.censored_lognormal(
        times,
        np.ones((len(x), 1)),
        ["log_c"],
        mean=mean,
        start=[0.0, 0.0],
        profile=["log_c"],
        name="norm decay",
        formula="log(t_mem + c·log(‖θ_mem‖/‖θ*‖)/(η_eff·λ))",
    )


def _slope_status(b_ci) -> str:
    """Where no slope is forced: slope 2 (Kozyrev) supported where its interval holds 2 and not
    1, contradicted where it excludes 2, else not testable (it cannot tell them apart)."""
    if fits.contains(b_ci, 2.0) and not fits.contains(b_ci, 1.0):
        return SUPPORTED
    return CONTRADICTED if not fits.contains(b_ci, 2.0) else UNTESTABLE


def _kozyrev(sec: Section, panel: dict, times, x: np.ndarray, dropped: int) -> None:
    """The λ = 0 minibatch ladder: only the power law (no decay to compete), and the one
    section of this page that can test slope 2."""
    try:
        power = _power(times, x)
    except FitError as err:
        sec.notes.append(censoring_note(times, dropped))
        sec.status, sec.why = UNTESTABLE, f"without weight decay too few chains grokked ({err})"
        sec.verdict = f"Not testable here: {sec.why}."
        return
    b, b_ci = power["b"], power.interval("b")
    sec.tables.append(
        (
            "The power law (censored log-normal regression; 95 % profile-likelihood interval).",
            Table(
                ["law", "parameter", "estimate", "95 % interval", "σ (log scale)"],
                [["power", "slope b", fmt(b), ci(b_ci), fmt(power.sigma)]],
            ),
        )
    )
    sec.notes.append(censoring_note(times, dropped))
    sec.status = _slope_status(b_ci)
    sec.why = f"at λ = 0 the slope is {fmt(b)} ({ci(b_ci)})" + (
        ", which cannot tell 1 from 2" if sec.status == UNTESTABLE else ""
    )
    sec.verdict = (
        f"With no weight decay and the minibatches' noise growing with η, the slope of log "
        f"t_grok on log t_mem is {fmt(b)} (95 % CI {ci(b_ci)}): the interval "
        f"{within(b_ci, 2.0)} 2 (Kozyrev) and {within(b_ci, 1.0)} 1."
    )
    panel["power"] = power


def figure(panels: Sequence[Mapping[str, Any]]):
    """t_grok against t_mem per arm (log–log), with the fitted laws."""
    if not panels:
        return None
    fig, axes = new_figure(len(panels))
    for ax, p in zip(axes, panels, strict=True):
        with plt.rc_context(STYLE):
            etas = sorted(set(p["eta"]))
            for i, eta in enumerate(etas):
                m = p["eta"] == eta
                label = f"{p.get('by', 'η')} = {eta:g}"
                scatter_times(ax, p["x"][m], p["times"].subset(m), COLORS[i % 10], label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            if "power" in p:
                xs = np.geomspace(p["x"].min(), p["x"].max(), 50)
                fit = p["power"]
                ax.plot(
                    xs,
                    np.exp(fit["a"] + fit["b"] * np.log(xs)),
                    color="k",
                    lw=1.2,
                    label=f"fit: slope {fit['b']:.2f}",
                )
                cx, cy = (
                    np.exp(np.mean(np.log(p["x"]))),
                    np.exp(fit["a"] + fit["b"] * np.mean(np.log(p["x"]))),
                )
                ax.plot(xs, cy * (xs / cx) ** 2, color="grey", ls="--", lw=1, label="slope 2")
            if "decay" in p:
                pred = p["x"] + math.exp(p["decay"]["log_c"]) * p["drive"]
                ax.scatter(
                    p["x"], pred, marker="x", s=14, color="grey", label="norm-decay law", zorder=2
                )
                pred = p["x"] + math.exp(p["scale"]["log_c"]) / p["rate"]
                ax.scatter(
                    p["x"], pred, marker="+", s=18, color="k", label="decay-time law", zorder=2
                )
            ax.set_xlabel("t_mem (steps)")
            ax.set_ylabel("t_grok (steps)")
            ax.set_title(arm_title(p) + (", λ = 0" if p.get("lam") == 0 else ""))
            legend(ax)
    fig.tight_layout()
    return fig


CLAIM = Claim(NAME, {"cpu": CPU, "paper": PAPER}, plan, analyse, figure)
