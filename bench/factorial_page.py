"""The decisive board as markdown: the factorial's rows, the factors paired by checkpoint, the
chosen settings in shared units, the tuner's trials and the protocol's rules.

:mod:`bench.markdown` renders a comparison through here when it was made with rows in shared
units (``protocol["rows"]``, :mod:`bench.compare.rows`); comparisons made before keep their own
sections there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench import formats as fmt
from bench.board import Board, FactorEffect, FrontierGap, SamplerStats, explores
from bench.compare import tuner

#: The unit names as the page prints them.
UNIT_NAMES = {"kappa": "κ", "h_rel": "h_rel", "tau_n": "τ·N", "lr": "lr", "num_leapfrog": "L"}


def section(board: Board, plots: Mapping[str, str], row_file, checkpoints: list[str]) -> list[str]:
    """The exploration section of a decisive board (``row_file(row)``: a row's raw-record stem;
    ``checkpoints``: the sentence on how the checkpoints were made)."""
    p = board.compare.protocol
    E = board.eval_every
    spent = [r.entry.chosen.get("tuning") or {} for r in board.rows]
    spent = sorted({int(s.get("grad_evals", 0)) for s in spent if s})
    lines = [
        f"`{board.compare.preset}` preset: every row tuned by Optuna's TPE, {p.get('batches')} "
        f"batch(es) of {p.get('trials')} trials × {p.get('tune_seeds')} tuning seed(s) with "
        f"successive halving ({_spent(spent)} gradient evaluations of tuning per row), then "
        f"{p.get('seeds')} fresh seeds; budget {fmt.integer(p.get('budget'))} gradient "
        "evaluations per chain"
        + (" from the checkpoint" if board.start == "memorized" else "")
        + f", evaluated every {fmt.integer(E)}; a chain "
        f"whose ‖θ‖ grows past {fmt.number(p.get('max_norm_growth'))}× its start has diverged. "
        f"Store key `{board.compare.key}`.",
    ]
    if checkpoints:
        lines += ["", *checkpoints]
    scales = p.get("scales")
    if scales:
        lines += ["", *_scales(scales)]
    lines += ["", *_table(board, row_file)]
    lines += ["", *answer(board)]
    lines += ["", "### The factors, paired by checkpoint", "", *_factors(board)]
    lines += ["", "### Chosen settings, in shared units", "", *_chosen(board)]
    if plots:
        lines += ["", "### Plots", ""]
        for caption, path in plots.items():
            lines += [f"![{caption}]({path})", ""]
        lines.pop()
    lines += ["", "### Tuning trials", "", *_trials(board)]
    return lines


def _spent(values: Sequence[int]) -> str:
    if not values:
        return "?"
    if len(values) == 1:
        return fmt.integer(values[0])
    return f"{fmt.integer(values[0])}–{fmt.integer(values[-1])}"


def _scales(s: Mapping[str, Any]) -> list[str]:
    gd = 2.0 / s["sharpness"]
    return [
        "**The checkpoint, measured** (median over the tuning checkpoints): "
        f"‖θ_mem‖ {s['norm']:.3g}, ‖∇L‖ {s['grad_norm']:.3g}, cos(∇L, θ) {s['cosine']:.2f}, so "
        f"descent grows ‖θ‖ unless the decay λ exceeds λ_c = −⟨∇L, θ⟩/‖θ‖² = "
        f"{s['lambda_c']:.3g}; top Hessian eigenvalue λ_max {s['sharpness']:.3g} (power "
        f"iteration), so a gradient step is stable below h = 2/λ_max = {gd:.3g} and a heavy-ball "
        f"step with μ 0.9 below {gd * 1.9:.3g}; the RMSprop metric the gradient implies, "
        f"P̂ = 1/(eps + |∇L|), has mean {s['precond_mean']:.3g} and λ_max(P̂^½HP̂^½) "
        f"{s['precond_sharpness']:.3g}. The search spaces below are written in these units: "
        "κ (decay per gradient evaluation, η_eff·λ), h_rel (the step over its stability "
        "limit), τ·N (the temperature over the posterior's); the noise's scale at the prior's "
        "equilibrium is √(D·τ/λ).",
    ]


def _table(board: Board, row_file) -> list[str]:
    E = board.eval_every
    budget = fmt.integer(board.compare.protocol.get("budget"))
    against = ", ".join(board.against) or "none"
    lines = [
        "Ranked by the Kaplan–Meier median gradient evaluations to sustained grokking (validation "
        f"accuracy ≥ {board.target:g} to the end of the run) on the fresh seeds, with its 95% "
        f"interval, widened by one evaluation interval ({fmt.integer(E)}) on the low side. "
        "*Not reached*: more than half the chains did not grok within the budget; such rows "
        "rank last and are never dropped. *To 0.95*: the same for validation accuracy ≥ 0.95. "
        f"*RMST*: the restricted mean time to grok up to the budget ({budget}; a chain that "
        "did not grok counts as the budget, which makes it a lower bound on its mean), ± its "
        "standard error. *Diverged*: non-finite, or ‖θ‖ grown past the stated factor, or "
        "flagged by the sampler; never counted as grokked. Effect sizes (against "
        f"{against}): the ratio of KM medians, theirs / this row's (> 1: this row is faster).",
        "",
    ]
    header = [
        "| # | row | geometry | dynamics | noise | grokked | end generalized | diverged | "
        "evals to grok (95% CI) | to 0.95 | RMST | first touch | "
        + "".join(f"vs {name} | " for name in board.against)
        + "acceptance | raw |",
        "|---:|---|---|---|---|---:|---:|---|---|---:|---:|---:|"
        + "---|" * len(board.against)
        + "---:|---|",
    ]
    lines += header
    frontier = [r for r in board.rows if r.group == "frontier"]
    for row in [r for r in board.all_rows if r.group != "frontier"]:
        lines.append(_table_line(board, row, row_file))
    if board.reference is not None:
        lines += [
            "",
            "*Reference*: the task's own optimizer setting (registered with the task), untuned, "
            "on the same fresh seeds, continuing from the checkpoints, for scale; not ranked.",
        ]
    if frontier:
        lines += [
            "",
            "**The optimizers at the frontier** (Grokfast-EMA, ⊥AdamW, Lion, Muon: "
            "`bench/compare/rows.py`), tuned by the same tuner on the same budget in the same "
            "units and ranked among the rows above (their # is their place in one ranking):",
            "",
            *header,
            *(_table_line(board, row, row_file) for row in frontier),
        ]
    return lines


def _table_line(board: Board, row: SamplerStats, row_file) -> str:
    E = board.eval_every
    cell = row.cell
    cells = [
        "ref" if row.is_reference else str(row.rank),
        f"`{row.runs[0].result.spec.sampler}` (reference, untuned)"
        if row.is_reference
        else f"`{row.sampler}`",
        cell.get("geometry", "adaptive" if row.is_reference else "–"),
        cell.get("dynamics", "optimizer" if row.is_reference else "–"),
        cell.get("noise", "no" if row.is_reference else "–"),
        f"{row.grokked}/{row.n}",
        f"{row.generalized}/{row.n}",
        _diverged(row),
        fmt.median_ci(row.grok_evals, E),
        fmt.median(row.t95_evals),
        _rmst(row),
        fmt.median(row.touch_evals),
        *(_effect(row, name) for name in board.against),
        "–" if row.accept is None else f"{row.accept:.2f}",
        f"[json](runs/{board.slug}/{row_file(row)}.json)",
    ]
    return "| " + " | ".join(cells) + " |"


def _diverged(row: SamplerStats) -> str:
    if not row.diverged:
        return f"0/{row.n}"
    causes = ", ".join(f"{k} {v}" for k, v in sorted(row.causes.items()))
    return f"{row.diverged}/{row.n} ({causes})"


def _rmst(row: SamplerStats) -> str:
    r = row.rmst_evals
    if r is None:
        return "–"
    return f"{fmt.integer(r.value)} ± {fmt.integer(r.se)}"


def _effect(row: SamplerStats, against: str) -> str:
    if row.sampler == against and not row.is_reference:
        return "1"
    return fmt.ratio(row.effects.get(against))


def answer(board: Board) -> list[str]:
    """The page's answer to the question in a few sentences: the fastest row, and the fastest
    better-exploring sampler against each baseline, by the intervals of the effect sizes."""
    rows = [r for r in board.rows if not r.is_reference]
    if not rows:
        return []
    top = rows[0]
    text = (
        f"**The answer on this page.** The fastest row is `{top.sampler}` "
        f"({_median(top)} gradient evaluations from "
        + ("the checkpoint" if board.start == "memorized" else "initialization")
        + f" to sustained grokking, {top.grokked}/{top.n} chains grokked)."
    )
    better = [r for r in rows if explores(r)]
    if better:
        best = better[0]
        text += (
            f" The fastest sampler that explores better than a random walk is `{best.sampler}` "
            f"(rank {best.rank}, {_median(best)}, {best.grokked}/{best.n} chains grokked)"
        )
        judged = []
        for name in board.against:
            if name == best.sampler:
                continue
            r = best.effects.get(name)
            alone = _direction(r)[1] or r is None or r.value is None
            judged.append(f"{name}: {_against(r)}" + ("" if alone else f" ({fmt.ratio(r)})"))
        text += ("; against " + "; ".join(judged)) if judged else ""
        text += "."
    if board.frontier is not None:
        text += " " + _gap(board.frontier)
    return [text]


def _gap(gap: FrontierGap) -> str:
    """Whether the best sampler is closer to the random-walk baseline or to the frontier, by the
    paired ratios of medians on a log scale (a ratio of 2 is as far as one of 1/2)."""
    front, base = gap.to_frontier, gap.over_baseline
    text = (
        "Between the random walk and the frontier, paired by checkpoint (ratios of medians, > 1: "
        f"the first is faster): the fastest frontier row `{gap.frontier}` against "
        f"`{gap.sampler}` {fmt.ratio(front)}, {_against(front)}; `{gap.sampler}` against "
        f"`{gap.baseline}` {fmt.ratio(base)}, {_against(base)}."
    )
    values = [r.value for r in (front, base)]
    if any(v is None or v <= 0 or math.isinf(v) for v in values):
        return text + " One median is not reached, so the page does not place it between them."
    if front.high is not None and front.high < 1:
        return text + (
            f" Here the frontier is not ahead: from these checkpoints its fastest row is slower "
            f"than `{gap.sampler}`, so there is no gap between them to place it in."
        )
    far_front, far_base = (abs(math.log(v)) for v in values)
    closer = "the frontier" if far_front < far_base else "the random-walk baseline"
    return text + (
        f" On a log scale it lies closer to {closer} ({max(values[0], 1 / values[0]):.2f}× from "
        f"the frontier, {max(values[1], 1 / values[1]):.2f}× from `{gap.baseline}`)."
    )


def _median(row: SamplerStats) -> str:
    s = row.grok_evals
    if s.median is None:
        return f"median not reached within {fmt.integer(s.last)}"
    return f"median {fmt.integer(s.median)}"


def _against(r: Any) -> str:
    kind, alone = _direction(r)
    if kind == "blind":
        return "neither reached its median"
    if alone:
        return f"{kind} (only {'it' if kind == 'faster' else 'the baseline'} reached its median)"
    return "no detectable difference" if kind == "unclear" else kind


def _direction(r: Any) -> tuple[str, bool]:
    """``faster``, ``slower``, ``unclear`` (the 95% interval includes 1) or ``blind`` (neither
    median reached) for a ratio of medians (> 1: faster); True where only one side reached."""
    if r is None or r.value is None:
        return "blind", False
    if r.value == 0 or math.isinf(r.value):
        return ("slower" if r.value == 0 else "faster"), True
    if r.low is not None and r.low > 1:
        return "faster", False
    if r.high is not None and not math.isinf(r.high) and r.high < 1:
        return "slower", False
    return "unclear", False


def _factors(board: Board) -> list[str]:
    if not board.factors:
        return [
            "No pair of rows differs in one factor alone here (the factorial's rows were "
            "not all run)."
        ]
    lines = [
        "Each line compares two rows that differ in one factor alone, run from the same "
        "checkpoints (the fresh seeds): the ratio is the median gradient evaluations to grok "
        "*without* the factor over the median *with* it (> 1: the factor speeds grokking), "
        "with a 95% bootstrap interval that resamples checkpoints, the same ones for both rows. "
        "*Not reached*: only the row without the factor reached its median; *∞*: only the row "
        "with it did.",
        "",
        "| factor | with | without | at fixed | ratio (95% CI) | checkpoints |",
        "|---|---|---|---|---|---:|",
    ]
    for f in board.factors:
        lines.append(
            f"| {f.factor} | `{f.with_row}` | `{f.without_row}` | {f.fixed} | "
            f"{fmt.ratio(f.ratio)} | {f.pairs} |"
        )
    lines += ["", "What the data support, factor by factor:", ""]
    for name in dict.fromkeys(f.factor for f in board.factors):
        lines.append(f"- **{name}**: " + verdict([f for f in board.factors if f.factor == name]))
    return lines


def verdict(effects: Sequence[FactorEffect]) -> str:
    """One sentence on one factor from its paired comparisons: where an interval excludes 1,
    and which way; where neither row reached its median, no evidence either way."""
    groups: dict[str, list[str]] = {"faster": [], "slower": [], "unclear": [], "blind": []}
    for f in effects:
        kind, alone = _direction(f.ratio)
        pair = f"`{f.with_row}` vs `{f.without_row}`"
        if alone:
            side = "with" if kind == "faster" else "without"
            pair += f" (only the row {side} it reached its median)"
        elif kind in ("faster", "slower"):
            pair += f" {fmt.ratio(f.ratio)}"
        groups[kind].append(pair)
    faster, slower, unclear, blind = (groups[k] for k in ("faster", "slower", "unclear", "blind"))
    parts = []
    if faster:
        parts.append("it speeds grokking in " + "; ".join(faster))
    if slower:
        parts.append("it slows grokking in " + "; ".join(slower))
    if unclear:
        parts.append("the interval includes 1 (no detectable effect) in " + ", ".join(unclear))
    if blind:
        parts.append("neither row reached its median in " + ", ".join(blind) + " (no evidence)")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _chosen(board: Board) -> list[str]:
    p = board.compare.protocol
    norm = (p.get("scales") or {}).get("norm")
    lines = [
        "Each row's choice, in the shared units and as the sampler's hyperparameters; a twin "
        "(`@0`) runs its noisy row's choice at τ = 0. The noise scale √(D·τ/λ) is the spread "
        "of θ at the prior's equilibrium, to compare with "
        + (f"‖θ_mem‖ = {norm:.3g}." if norm else "‖θ_mem‖.")
        + " *Tuning*: the gradient evaluations spent tuning the row, and what the tuner widened.",
        "",
        "| row | κ | h_rel | τ·N | noise scale | hyperparameters | λ | evals per step | tuning |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for row in board.all_rows:
        chosen = row.entry.chosen
        units = chosen.get("units") or {}
        tuning = chosen.get("tuning") or {}
        widened = "; ".join(
            (tuning.get("widened") or []) + _left_on_edge(chosen.get("search") or {}, tuning)
        )
        widened = widened or "nothing widened"
        spent = (
            "–"
            if row.is_reference or not tuning
            else f"{fmt.integer(tuning.get('grad_evals'))} evals; {widened}"
        )
        if row.entry.role == "twin":
            spent = f"its row's (`{chosen.get('twin_of')}`)"
        lines.append(
            f"| `{row.label}` | {_unit(units.get('kappa'))} | {_unit(units.get('h_rel'))} | "
            f"{_unit(units.get('tau_n'))} | {_unit(units.get('noise_scale'))} | "
            f"{fmt.hparams(chosen['hparams'], symbols=False)} | "
            f"{fmt.number(chosen['prior_precision'])} | {row.evals_per_step} | {spent} |"
        )
    return lines


def _left_on_edge(search: Mapping[str, Any], tuning: Mapping[str, Any]) -> list[str]:
    """The axes on whose edge the choice sits after the last batch: the tuner widens an edge
    once, before the last batch, so a choice the last batch found on an edge stays there, and
    the page says so (a faster setting may lie beyond it)."""
    said = " ".join(tuning.get("widened") or [])
    return [
        f"{UNIT_NAMES.get(name, name)} chosen on its {side} edge by the last batch, not widened "
        "again (a faster setting may lie beyond it)"
        for name, side in tuner.edges(search, tuning.get("bounds") or {})
        if name not in said
    ]


def _unit(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return fmt.number(float(x))


def _trials(board: Board) -> list[str]:
    lines = [
        "Every trial the tuner asked, in its batch: the rung it reached (gradient evaluations; "
        "pruned trials stopped there), its score on the tuning seeds at that rung (the KM median "
        "gradient evaluations to sustained grokking, `–` = not reached; whether a chain diverged "
        "or collapsed; the median final validation accuracy). The chosen trial is in bold.",
        "",
        "| row | trial | batch | searched values | state | rung | evals to grok | "
        "diverged or collapsed | final val acc |",
        "|---|---:|---:|---|---|---:|---:|---|---:|",
    ]
    for row in board.rows:
        for trial in row.entry.trials:
            chosen = trial["hparams"] == row.entry.chosen["hparams"] and trial.get(
                "prior_precision"
            ) == row.entry.chosen.get("prior_precision")
            score = trial.get("score") or [None] * 7
            median, bad, val = score[2], score[1], score[5]
            search = ", ".join(
                f"{UNIT_NAMES.get(k, fmt.axis_name(k))}={fmt.number(v)}"
                for k, v in trial["search"].items()
            )
            cells = [
                f"`{row.sampler}`",
                str(int(trial.get("number", 0)) + 1),
                str(int(trial.get("batch", 0)) + 1),
                search,
                str(trial.get("state", "?")).lower(),
                fmt.integer(trial.get("rung")),
                "–" if median is None else fmt.integer(median),
                "yes" if bad else "no",
                "–" if val is None else f"{-val:.3f}",
            ]
            if chosen and trial.get("state") == "COMPLETE":
                cells[1:] = [f"**{c}**" for c in cells[1:]]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def rules(board: Board) -> list[str]:
    """The decisive board's rules and its search spaces."""
    p = board.compare.protocol
    lines = [
        "- **Exploration protocol.** Per seed, one memorized checkpoint made once by the task's "
        "reference optimizer and shared by every row; budgets and times count from it.",
        f"- **Equal budgets in gradient evaluations.** Every chain gets "
        f"{fmt.integer(p.get('budget'))} gradient evaluations (HMC: `num_leapfrog` a "
        "transition, its Metropolis test in float64 on the full training set); warm-ups "
        "(HMC's step size and mass matrix, the RMSprop metric of the preconditioned rows) are "
        "paid by the budget.",
        "- **The factorial.** Geometry (identity, or a diagonal RMSprop metric frozen after a "
        "warm-up at a checked step), dynamics (first order, momentum, Hamiltonian) and noise "
        "(each noisy row and its τ = 0 twin, every other setting the same) vary one at a time "
        "from the same checkpoints. SGD with momentum and AdamW are baselines tuned on their "
        "own, outside the factorial; HMC has no τ = 0 twin (its target exp(−U/τ) has none).",
        f"- **Equal tuning.** Every row gets {p.get('batches')} batch(es) of {p.get('trials')} "
        f"trials from Optuna's TPE (seeded per row and batch; the first batch is its random "
        f"start), each trial on {p.get('tune_seeds')} seed(s) (0, 1, …), judged by successive "
        "halving at a ninth, a third and all of the budget (the best third goes on, restarted "
        "from the checkpoint with the longer budget): the same gradient evaluations of tuning "
        "for every row. Before the last batch an axis whose best value sits in the outer 5% of "
        "its range is widened ten-fold once, unless that end is a physical limit.",
        "- **Selection.** A trial whose KM median gradient evaluations to sustained grokking is "
        "reached beats every trial whose median is not; among those, one with a diverged or "
        "collapsed chain never beats one without; then the smaller median; grok rate, median "
        "final validation accuracy and time to memorise break ties.",
        f"- **Fresh seeds.** The choice runs on {p.get('seeds')} seeds from "
        f"{p.get('fresh_seed', 1000)} on, never seen in tuning; the tables report those only.",
        "- **Potential and temperature.** `U(θ) = mean training loss + ½·λ·‖θ‖²`; the samplers "
        "target `exp(−U/τ)` (τ = 1/N_train is the Bayesian posterior). The rows take their "
        "decay from λ, AdamW from its decoupled `weight_decay` (κ = lr·wd).",
        "- **Statistics.** Censored chains enter the Kaplan–Meier estimates as censored, never "
        "as the budget. Intervals of a median: Brookmeyer–Crowley. Effect sizes and factors: "
        "ratios of KM medians with 95% percentile bootstraps (2000 resamples; a median not "
        "reached counts as ∞).",
        "",
        "### Search spaces (shared units)",
        "",
        "| row | geometry | dynamics | noise | searched | fixed | warm-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in (p.get("rows") or {}).items():
        axes = "; ".join(
            f"{UNIT_NAMES.get(k, fmt.axis_name(k))} ∈ "
            + (
                "{" + ", ".join(fmt.number(v) for v in b["choices"]) + "}"
                if isinstance(b, Mapping)
                else f"[{fmt.number(b[0])}, {fmt.number(b[1])}] (log)"
            )
            for k, b in row.get("axes", {}).items()
        )
        fixed = ", ".join(f"{k} = {fmt.number(v)}" for k, v in row.get("fixed", {}).items())
        cell = row.get("cell", {})
        warmup = row.get("warmup")
        warm = f"{warmup[0]}: {warmup[1]:.0%} of the steps" if warmup else "–"
        twin = " (+ its τ = 0 twin)" if row.get("twin") else ""
        lines.append(
            f"| `{name}`{twin} | {cell.get('geometry', '?')} | {cell.get('dynamics', '?')} | "
            f"{cell.get('noise', '?')} | {axes} | {fixed or '–'} | {warm} |"
        )
    lines += [
        "",
        f"Reproduce: `python -m bench compare --task {p.get('asked_task', board.task)} --preset "
        f"{board.compare.preset}`; regenerate this page from the store without training: "
        "`python -m bench report`.",
    ]
    return lines
