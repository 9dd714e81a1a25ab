"""Leaderboard pages as markdown, from :mod:`bench.board`'s numbers.

One page per task (``reports/<task>.md``) holds its comparisons side by side, the exploration
protocol first (it is the one that answers the question): for each, the task in one sentence,
the hardware and code, the table ranked by the Kaplan–Meier median gradient evaluations to
sustained grokking on fresh seeds (rows not reaching it are shown, ranked last, never dropped),
how many chains end generalized and how many diverged, effect sizes against SGD, SGLD and AdamW,
the chosen hyperparameters, the tuning trials, the plots and the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench import factorial_page
from bench import formats as fmt
from bench.board import Board, SamplerStats
from bench.keys import NUMERICS_VERSION

#: Section titles per start, in the order the page shows them.
SECTIONS = {
    "memorized": "Exploration: every sampler from the same memorized checkpoints",
    "init": "From initialization",
}


def render_page(boards: Sequence[Board], plots: Mapping[str, Mapping[str, str]]) -> str:
    """The page of one task: its boards (one per start), exploration first. ``plots`` maps a
    board's slug to {caption: PNG path relative to the page}."""
    boards = sorted(boards, key=lambda b: list(SECTIONS).index(b.start))
    first = boards[0]
    p = first.compare.protocol
    model = first.compare.task_config.get("model", "?")
    lines = [
        f"# {first.task}: once memorized, which sampler groks first?",
        "",
        f"**Task.** {fmt.sentence(first.description)}",
    ]
    if p.get("model_override"):
        lines += [
            "",
            f"**Model.** This page ran the `{model}` model on the task's data and split "
            f"(preset `{first.compare.preset}`). Nanda et al.'s transformer, the paper setting, "
            f"runs with `python -m bench compare --task {p.get('asked_task')} --preset paper` "
            "(GPU-hours; it resumes from the store after any interruption).",
        ]
    lines += [
        "",
        f"**Grokking.** A chain *groks* (sustained, `t_grok`) at the first evaluation from which "
        f"validation accuracy stays ≥ {first.target:g} {_window(p)}, and it must end the run "
        "finite; every run goes to its budget, so a chain that touches the target and falls "
        "back, or diverges later, has not grokked. *First touch* is Power et al.'s first "
        f"evaluation with validation accuracy ≥ {first.target:g}, whatever comes after. *End "
        "generalized*: finite at the end of the run with validation accuracy ≥ the target.",
        "",
        "| | |",
        "|---|---|",
        f"| hardware | {', '.join(_union(b.devices for b in boards)) or 'unknown'} |",
        f"| code | {', '.join(f'`{c}`' for c in _union(b.code_versions for b in boards))} "
        f"(numerics version {NUMERICS_VERSION}) |",
        f"| compute | {fmt.hours(sum(b.hours for b in boards))} of wall-clock for every run behind "
        "this page, tuning included |",
    ]
    for start in SECTIONS:
        board = next((b for b in boards if b.start == start), None)
        lines += ["", f"## {SECTIONS[start]}", ""]
        if board is None:
            flag = "init" if start == "init" else "memorized"
            lines.append(
                f"Not run for this page: `python -m bench compare --task "
                f"{p.get('asked_task', first.task)} --start {flag}` adds it."
            )
            continue
        if "rows" in board.compare.protocol:  # the decisive board (rows in shared units)
            checkpoints = _checkpoints(board)[1:]
            lines += factorial_page.section(board, plots.get(board.slug, {}), row_file, checkpoints)
        else:
            lines += _section(board, plots.get(board.slug, {}))
    lines += ["", "## Rules", ""]
    lines += factorial_page.rules(first) if "rows" in p else _rules(first)
    return "\n".join(lines) + "\n"


def _checkpoints(board: Board) -> list[str]:
    """How the memorized checkpoints were made (empty for the other protocol)."""
    p = board.compare.protocol
    lines: list[str] = []
    steps = p.get("checkpoint_steps")
    if board.start == "memorized" and steps:
        crit = p.get("memorized", {})
        values = sorted(steps.values())
        lines += [
            "",
            f"Checkpoints: per seed, the task's reference optimizer from its initialization "
            f"until training accuracy ≥ {crit.get('train_acc')} with training loss below "
            f"{crit.get('train_loss_ratio', 0):.0%} of its value at initialization and "
            "validation accuracy still < "
            f"{crit.get('val_acc_below')}; reached at steps {values[0]}–{values[-1]} (median "
            f"{values[len(values) // 2]}), not charged to any sampler.",
        ]
    return lines


def _section(board: Board, plots: Mapping[str, str]) -> list[str]:
    p = board.compare.protocol
    E = board.eval_every
    lines = [
        f"`{board.compare.preset}` preset: {p.get('trials')} trials × {p.get('tune_seeds')} "
        f"tuning seed(s) per sampler, then {p.get('seeds')} fresh seeds; budget "
        f"{fmt.integer(p.get('budget'))} gradient evaluations per chain"
        + (" from the checkpoint" if board.start == "memorized" else "")
        + f", evaluated every {fmt.integer(E)}. Store key `{board.compare.key}`.",
    ]
    lines += _checkpoints(board)
    against = ", ".join(board.against) or "none"
    lines += [
        "",
        "Ranked by the Kaplan–Meier median gradient evaluations to sustained grokking on the "
        "fresh seeds, with its 95% interval, widened by one evaluation interval "
        f"({fmt.integer(E)}) "
        "on the low side because each time is the right end of the interval in which the "
        "crossing happened. *Not reached*: more than half the chains did not grok within the "
        "budget; such rows rank last and are never dropped. `> x`: censored at x. Effect sizes "
        f"(against {against}): the ratio of KM medians, theirs / this row's (> 1: this row "
        "is faster), with a 95% bootstrap interval over seeds.",
        "",
        "| # | sampler | grokked | end generalized | diverged | evals to grok (95% CI) | "
        "first touch (evals) | steps to grok | "
        + "".join(f"vs {name} | " for name in board.against)
        + "acceptance | raw |",
        "|---:|---|---:|---:|---:|---|---:|---:|" + "---|" * len(board.against) + "---:|---|",
    ]
    for row in board.all_rows:
        cells = [
            "ref" if row.is_reference else str(row.rank),
            f"`{row.sampler}` (reference, untuned)" if row.is_reference else _name(row),
            f"{row.grokked}/{row.n}",
            f"{row.generalized}/{row.n}",
            f"{row.diverged}/{row.n}",
            fmt.median_ci(row.grok_evals, E),
            fmt.median(row.touch_evals),
            fmt.median(row.grok_steps),
            *(_effect(row, name) for name in board.against),
            "–" if row.accept is None else f"{row.accept:.2f}",
            f"[json](runs/{board.slug}/{row_file(row)}.json)",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if board.reference is not None:
        lines += [
            "",
            f"*Reference*: the task's own optimizer setting (`{board.reference.sampler}` at the "
            "published or registered hyperparameters below), untuned, on the same fresh seeds"
            + (", continuing from the checkpoints" if board.start == "memorized" else "")
            + ": the classic grokking curve, for scale. It is not ranked.",
        ]
    lines += [
        "",
        "### Chosen hyperparameters",
        "",
        "*On the grid's edge*: searched values of the chosen trial that are the smallest or "
        "largest of their grid, where a wider grid might do better.",
        "",
        "| sampler | hyperparameters | prior precision λ | gradient evals per step | "
        "on the grid's edge | store keys of the fresh-seed runs |",
        "|---|---|---:|---:|---|---|",
    ]
    spaces = p.get("search_spaces", {})
    for row in board.all_rows:
        chosen = row.entry.chosen
        edges = "–" if row.is_reference else _edges(chosen, spaces.get(row.sampler, {}))
        lines.append(
            f"| `{row.label}` | {fmt.hparams(chosen['hparams'], symbols=False)} | "
            f"{fmt.number(chosen['prior_precision'])} | {row.evals_per_step} | {edges} | "
            f"{', '.join(f'`{k}`' for k in row.entry.final_runs)} |"
        )
    if plots:
        lines += ["", "### Plots", ""]
        for caption, path in plots.items():
            lines += [f"![{caption}]({path})", ""]
        lines.pop()
    lines += ["", "### Tuning trials", ""]
    lines += _tuning_table(board)
    return lines


def _tuning_table(board: Board) -> list[str]:
    lines = [
        "Each trial's score on the tuning seeds: the KM median gradient evaluations to sustained "
        "grokking (`–` = not reached), whether a chain diverged or collapsed (reached the target "
        "and did not end generalized), the grok rate and the median final validation accuracy. "
        "The chosen trial is in bold.",
        "",
        "| sampler | trial | searched values | evals to grok | diverged or collapsed | "
        "grok rate | final val acc |",
        "|---|---:|---|---:|---|---:|---:|",
    ]
    for row in board.rows:
        for i, trial in enumerate(row.entry.trials, start=1):
            chosen = trial["hparams"] == row.entry.chosen["hparams"] and trial.get(
                "prior_precision"
            ) == row.entry.chosen.get("prior_precision")
            score = trial.get("score") or [None] * 7
            median, bad, rate, val = score[2], score[1], score[3], score[5]
            cells = [
                f"`{row.sampler}`",
                str(i),
                fmt.hparams(trial["search"]),
                "–" if median is None else fmt.integer(median),
                "yes" if bad else "no",
                "–" if rate is None else f"{abs(rate):.0%}",
                "–" if val is None else f"{-val:.3f}",
            ]
            if chosen:
                cells[1:] = [f"**{c}**" for c in cells[1:]]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _rules(board: Board) -> list[str]:
    p = board.compare.protocol
    lines = [
        "- **Two protocols.** *Exploration* (`--start memorized`): per seed, one memorized "
        "checkpoint made once by the task's reference optimizer and shared by every sampler; "
        "budgets and times count from it. *From initialization* (`--start init`): every chain "
        "from the task's initialization, AlgoPerf-style time to target.",
        "- **Equal budgets in gradient evaluations.** Every chain gets "
        f"{fmt.integer(p.get('budget'))} gradient evaluations. A sampler states what a step "
        "costs: HMC's `num_leapfrog` (its "
        "start gradient is carried over, plus one at its very first step; its float64 "
        "Metropolis test adds one forward pass a step, not a gradient, which its seconds "
        "include), 1 for the others; "
        "warm-ups (HMC's step-size adaptation, Riemannian Langevin's metric) are paid by the "
        f"budget. Evaluations come every {fmt.integer(p.get('eval_every'))} gradient "
        "evaluations for every sampler.",
        f"- **Equal tuning.** Every sampler gets {p.get('trials')} trials from its search space "
        f"below, each on {p.get('tune_seeds')} seed(s) (seeds 0, 1, …); from a larger grid they "
        "are drawn at random without replacement, balanced so that every value of every axis is "
        "tried about equally often (seeded).",
        "- **Selection.** A trial whose KM median gradient evaluations to sustained grokking is "
        "reached beats every trial whose median is not; among those, a trial with a diverged or "
        "collapsed chain never beats one without; then the smaller median wins (not reached = "
        "∞, never the budget); grok rate, median final validation accuracy and time to "
        "memorise break ties.",
        f"- **Fresh seeds.** The chosen configuration runs on {p.get('seeds')} seeds from "
        f"{p.get('fresh_seed', 1000)} on, never seen in tuning; the tables report those runs "
        "only.",
        "- **Potential and temperature.** `U(θ) = mean training loss + ½·λ·‖θ‖²`; samplers "
        "target `exp(−U/τ)` (τ = 1/N_train is the Bayesian posterior). SGD, SGLD, SGHMC, HMC "
        "and Riemannian Langevin take their weight decay from the prior λ; AdamW uses its own "
        "decoupled `weight_decay` with λ = 0. Optimizers have no temperature. HMC starts its "
        "leapfrog step at `ε = sqrt(η·τ)`, adapts it by dual averaging during its warm-up, "
        "gets the full training set and makes its Metropolis test in float64.",
        "- **Statistics.** Censored chains (no sustained grok within the budget) enter the "
        "Kaplan–Meier estimate as censored, never as the budget. Median: where the KM curve "
        "crosses ½ (R's midpoint rule on a flat at ½). 95% interval of the median: where the "
        "log-log pointwise band crosses ½ (Brookmeyer–Crowley), widened on the low side by the "
        "evaluation interval; `∞` = the band never falls below ½. Effect sizes: ratio of KM "
        "medians with a 95% percentile bootstrap over seeds (2000 resamples; a resample whose "
        "median is not reached counts as ∞). No p-values: with a handful of seeds per row a "
        "test's power is low, and an interval says more.",
        "",
        "### Search spaces",
        "",
        "| sampler | searched (grid) | fixed | note |",
        "|---|---|---|---|",
    ]
    spaces = p.get("search_spaces", {})
    for row in board.rows:
        space = spaces.get(row.sampler, {})
        axes = "; ".join(
            f"{fmt.axis_name(k)} ∈ {{{', '.join(fmt.number(v) for v in vals)}}}"
            for k, vals in space.get("axes", {}).items()
        )
        fixed = ", ".join(
            f"{fmt.axis_name(k)} = {fmt.number(v)}" for k, v in space.get("fixed", {}).items()
        )
        lines.append(f"| `{row.sampler}` | {axes} | {fixed or '–'} | {space.get('note', '')} |")
    lines += [
        "",
        f"Reproduce: `python -m bench compare --task {p.get('asked_task', board.task)} --preset "
        f"{board.compare.preset}`; regenerate this page from the store without training: "
        "`python -m bench report`.",
    ]
    return lines


def render_index(pages: Mapping[str, Sequence[Board]]) -> str:
    """``reports/README.md``: one line per task page."""
    lines = [
        "# Leaderboards",
        "",
        "Generated from the results store by `python -m bench compare` / `python -m bench "
        "report`; one page per task, the exploration protocol first. Each ranks the samplers "
        "by the median gradient evaluations to sustained grokking on fresh seeds after an "
        "equal tuning budget.",
        "",
        "| task | protocols | preset | first to grok (median evals) | hardware | page |",
        "|---|---|---|---|---|---|",
    ]
    for task, boards in sorted(pages.items()):
        boards = sorted(boards, key=lambda b: list(SECTIONS).index(b.start))
        board = boards[0]
        winner = board.rows[0] if board.rows else None
        if winner is None or winner.grok_evals.median is None:
            first = "none reached the median"
        else:
            first = f"`{winner.sampler}` ({fmt.value(winner.grok_evals.median)}, {board.start})"
        starts = ", ".join(b.start for b in boards)
        lines.append(
            f"| `{task}` | {starts} | `{board.compare.preset}` | {first} | "
            f"{', '.join(board.devices)} | [{task}.md]({task}.md) |"
        )
    return "\n".join(lines) + "\n"


def peer_mark(row: SamplerStats) -> str:
    """Rows run by another library's implementation (``blackjax.sgld``) say so."""
    return f" (peer: {row.peer})" if row.peer else ""


def _name(row: SamplerStats) -> str:
    return f"`{row.sampler}`" + peer_mark(row)


def _window(protocol: Mapping[str, Any]) -> str:
    window = protocol.get("confirm")
    if window is None:
        return "for the rest of its run"
    return f"for at least {fmt.integer(window)} gradient evaluations"


def _union(groups) -> list[str]:
    out: list[str] = []
    for group in groups:
        out += [g for g in group if g not in out]
    return out


def _effect(row: SamplerStats, against: str) -> str:
    if row.sampler == against and not row.is_reference:
        return "1"
    return fmt.ratio(row.effects.get(against))


def _edges(chosen: Mapping[str, Any], space: Mapping[str, Any]) -> str:
    """The chosen trial's searched values that sit at an end of their grid."""
    out = []
    for name, values in space.get("axes", {}).items():
        value = chosen.get("search", {}).get(name)
        if value is None or len(values) < 2:
            continue
        if value == min(values):
            out.append(f"{fmt.axis_name(name)} (lowest)")
        elif value == max(values):
            out.append(f"{fmt.axis_name(name)} (highest)")
    return ", ".join(out) or "none"


def row_file(row: SamplerStats) -> str:
    """The stem of a row's raw record, ``reports/runs/<board>/<stem>.json``."""
    if row.is_reference:  # named after its sampler, whatever the entry is called
        return f"{row.runs[0].result.spec.sampler.replace('/', '_')}.reference"
    return row.sampler.replace("/", "_")
