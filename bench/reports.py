"""Leaderboards written from the store: ``reports/<task>.md``, its plots, ``reports/README.md``.

Everything on a leaderboard is computed from stored runs by :mod:`bench.board` (``python -m
bench report`` rebuilds it without training): the task in one sentence, the hardware and code
version the runs were made with, the rules (protocol, search spaces, statistics), the table
ranked by the Kaplan–Meier median gradient evaluations to grok on fresh seeds — rows whose median
is not reached are shown, ranked last, never dropped — the chosen hyperparameters, the tuning
trials, and links to each row's raw run records (``reports/runs/<task>/<sampler>.json``) and
store keys. Files are written whole or not at all (:mod:`bench.files`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import plots
from bench.board import Board, SamplerStats, build_board
from bench.files import atomic_write
from bench.metrics import Survival
from bench.store import NUMERICS_VERSION, Compare, Store


class ReportError(ValueError):
    """The reports folder cannot be written."""


# -- from the store to numbers ----------------------------------------------------------------


# -- numbers to markdown ----------------------------------------------------------------------
def render(board: Board, plots: Mapping[str, str] | None = None) -> str:
    """The leaderboard as markdown. ``plots`` maps a caption to a PNG path relative to it."""
    p = board.compare.protocol
    lines = [
        f"# {board.task}: which sampler groks first?",
        "",
        f"**Task.** {_sentence(board.description)} A chain *groks* at the first evaluation with "
        f"validation accuracy ≥ {board.target:g} (`t_grok`) and *memorises* at the first with "
        f"training accuracy ≥ {board.target:g} (`t_mem`).",
        "",
        "| | |",
        "|---|---|",
        f"| hardware | {', '.join(board.devices) or 'unknown'} |",
        f"| code | {', '.join(f'`{c}`' for c in board.code_versions) or 'unknown'} "
        f"(numerics version {NUMERICS_VERSION}) |",
        f"| preset | `{board.compare.preset}`: {p.get('trials')} trials × {p.get('tune_seeds')} "
        f"seed(s) per sampler, then {p.get('seeds')} fresh seeds; budget "
        f"{_int(p.get('budget'))} gradient evaluations per chain, evaluated every "
        f"{_int(p.get('eval_every'))} |",
        f"| compute | {_hours(board.hours)} of wall-clock for every run behind this board, "
        "tuning included |",
        f"| comparison | store key `{board.compare.key}` |",
        "",
        "## Leaderboard",
        "",
        "Ranked by the Kaplan–Meier median of gradient evaluations to grok on the fresh seeds, "
        "with its 95% interval. *Not reached*: more than half the chains did not grok within "
        "the budget; those rows rank last (by grok rate) and are never dropped. Times are in "
        "gradient evaluations unless the column says otherwise; `> x` means censored at x.",
        "",
        "| # | sampler | grokked | evals to grok (95% CI) | steps to grok | seconds to grok "
        "| evals to memorise | t_grok / t_mem | speed-up vs "
        f"{board.baseline or 'baseline'} (95% CI) | log-rank p | acceptance | raw |",
        "|---:|---|---:|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for row in board.all_rows:
        grok = f"{row.grokked}/{row.n}"
        if row.diverged:
            grok += f" ({row.diverged} diverged)"
        lines.append(
            "| "
            + " | ".join(
                [
                    "ref" if row.is_reference else str(row.rank),
                    f"`{row.sampler}` (reference, untuned)"
                    if row.is_reference
                    else f"`{row.sampler}`" + peer_mark(row),
                    grok,
                    _median_ci(row.grok_evals),
                    _median(row.grok_steps),
                    _median(row.grok_seconds, seconds=True),
                    _median(row.mem_evals),
                    _median(row.ratio, ratio=True) if row.ratio is not None else "–",
                    _speedup(row, board.baseline),
                    _p(row.logrank_p),
                    "–" if row.accept is None else f"{row.accept:.2f}",
                    f"[json](runs/{board.slug}/{_file(row)}.json)",
                ]
            )
            + " |"
        )
    if board.reference is not None:
        lines += [
            "",
            f"*Reference*: the task's own optimizer setting (`{board.reference.sampler}` at the "
            "published or registered hyperparameters below), untuned, on the same fresh seeds: "
            "the classic grokking curve, for scale. It is not ranked.",
        ]
    lines += [
        "",
        "Seconds are training wall-clock of the vectorized run (all fresh seeds of a sampler "
        "at once, evaluation excluded) up to the evaluation that saw the target.",
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
            f"| `{row.label}` | {_hparams(chosen['hparams'], symbols=False)} | "
            f"{_num(chosen['prior_precision'])} | {row.evals_per_step} | {edges} | "
            f"{', '.join(f'`{k}`' for k in row.entry.final_runs)} |"
        )
    if plots:
        lines += ["", "## Plots", ""]
        for caption, path in plots.items():
            lines += [f"![{caption}]({path})", ""]
        lines.pop()
    lines += ["", "## Tuning trials", ""]
    lines += _tuning_table(board)
    lines += ["", "## Rules", ""]
    lines += _rules(board)
    return "\n".join(lines) + "\n"


def _edges(chosen: Mapping[str, Any], space: Mapping[str, Any]) -> str:
    """The chosen trial's searched values that sit at an end of their grid."""
    out = []
    for name, values in space.get("axes", {}).items():
        value = chosen.get("search", {}).get(name)
        if value is None or len(values) < 2:
            continue
        if value == min(values):
            out.append(f"{_axis_name(name)} (lowest)")
        elif value == max(values):
            out.append(f"{_axis_name(name)} (highest)")
    return ", ".join(out) or "none"


def _tuning_table(board: Board) -> list[str]:
    lines = [
        "Each trial's score on the tuning seeds: the KM median gradient evaluations to grok "
        "(`–` = not reached), then the grok rate and the median final validation accuracy that "
        "break ties. The chosen trial is in bold.",
        "",
        "| sampler | trial | searched values | evals to grok | grok rate | final val acc |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for row in board.rows:
        for i, trial in enumerate(row.entry.trials, start=1):
            chosen = trial["hparams"] == row.entry.chosen["hparams"] and trial.get(
                "prior_precision"
            ) == row.entry.chosen.get("prior_precision")
            score = trial.get("score") or [None, None, None, None, None]
            median, rate, val = score[0], score[1], score[3]
            cells = [
                f"`{row.sampler}`",
                str(i),
                _hparams(trial["search"]),
                "–" if median is None else _int(median),
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
        f"- **Equal budgets in gradient evaluations.** Every chain gets "
        f"{_int(p.get('budget'))} gradient evaluations. A step of HMC costs `num_leapfrog + 1` "
        "of them, so HMC runs `budget / (L + 1)` steps; evaluations come every "
        f"{_int(p.get('eval_every'))} gradient evaluations for every sampler.",
        f"- **Equal tuning.** Every sampler gets {p.get('trials')} trials from its search space "
        f"below, each on {p.get('tune_seeds')} seed(s) (seeds 0, 1, …); from a grid larger than "
        "that they are drawn at random without replacement, balanced so that every value of "
        "every axis is tried about equally often (seeded). Trials run as one "
        "vectorized job per sampler (one chain per trial and seed).",
        "- **Selection.** The trial with the smallest KM median gradient evaluations to grok "
        "wins (not reached = ∞, never the budget); ties and samplers where no trial groks are "
        "decided by grok rate, divergence, median final validation accuracy, then time to "
        "memorise.",
        f"- **Fresh seeds.** The chosen configuration runs on {p.get('seeds')} seeds from "
        f"{p.get('fresh_seed', 1000)} on, never seen in tuning; this table reports those runs "
        "only.",
        "- **Potential and temperature.** `U(θ) = mean training loss + ½·λ·‖θ‖²`; samplers "
        "target `exp(−U/τ)` (τ = 1/N_train is the Bayesian posterior). SGD, SGLD, SGHMC, HMC "
        "and Riemannian Langevin take their weight decay from the prior λ; AdamW uses its own "
        "decoupled `weight_decay` with λ = 0 (decay 1.0 at learning rate 1e-3 shrinks θ by 1e-3 "
        "per step, like SGD with learning rate h at λ = 1e-3/h). Optimizers have no "
        "temperature. HMC is searched over `η = ε²/τ`, the gradient step one leapfrog step "
        "makes, so its leapfrog step `ε = sqrt(η·τ)` shrinks like sqrt(τ); it gets the full "
        "training set (its Metropolis test is exact only there).",
        "- **Statistics.** Censored chains (no grok within the budget) enter the Kaplan–Meier "
        "estimate as censored, never as the budget. Median: where the KM curve crosses ½ (R's "
        "midpoint rule on a flat at ½). 95% interval of the median: where the log-log "
        "pointwise band crosses ½ (Brookmeyer–Crowley); `∞` = the band never falls below ½. "
        "Speed-up: ratio of KM medians (baseline / sampler) in gradient evaluations, with a "
        "95% percentile bootstrap over seeds (2000 resamples; a resample whose median is not "
        "reached counts as ∞). Two-sample test: log-rank against the baseline, two-sided. "
        "`t_grok / t_mem`: KM median of the per-chain ratio over chains that memorised. "
        "Acceptance: mean Metropolis acceptance probability (HMC).",
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
            f"{_axis_name(k)} ∈ {{{', '.join(_num(v) for v in vals)}}}"
            for k, vals in space.get("axes", {}).items()
        )
        fixed = ", ".join(f"{_axis_name(k)} = {_num(v)}" for k, v in space.get("fixed", {}).items())
        lines.append(f"| `{row.sampler}` | {axes} | {fixed or '–'} | {space.get('note', '')} |")
    family = p.get("search_family")
    if family:
        lines += [
            "",
            f"Grids of the `{family}` family (`bench.compare.SEARCH_SPACES`: step sizes, "
            "temperatures and priors are scaled to the model's gradients).",
        ]
    lines += [
        "",
        "Reproduce: `python -m bench compare --task "
        f"{p.get('asked_task', board.task)} --preset {board.compare.preset}`; regenerate "
        "this page from the store without training: `python -m bench report`.",
    ]
    return lines


_AXIS_NAMES = {"prior_precision": "λ", "temperature": "τ", "eta": "η", "num_leapfrog": "L"}


def _axis_name(key: str) -> str:
    return _AXIS_NAMES.get(key, key)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _int(value: Any) -> str:
    if value is None:
        return "?"
    return f"{float(value):,.0f}"


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_num(v) for v in value) + ")"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        return f"{value:.3g}"
    return str(value)


def _hparams(hparams: Mapping[str, Any], symbols: bool = True) -> str:
    name = _axis_name if symbols else str
    return ", ".join(f"{name(k)}={_num(v)}" for k, v in hparams.items())


def _value(x: float, *, seconds: bool = False, ratio: bool = False) -> str:
    if seconds:
        return f"{x:.3g}" if x < 100 else f"{x:,.0f}"
    if ratio:
        return f"{x:.2f}" if x < 100 else f"{x:,.0f}"
    return f"{x:,.0f}"


def _median(s: Survival | None, *, seconds: bool = False, ratio: bool = False) -> str:
    if s is None:
        return "–"
    if s.median is None:
        return f"> {_value(s.last, seconds=seconds, ratio=ratio)}"
    return _value(s.median, seconds=seconds, ratio=ratio)


def _median_ci(s: Survival) -> str:
    if s.median is None:
        return f"not reached (> {_value(s.last)})"
    low = "?" if s.median_low is None else _value(s.median_low)
    high = "∞" if s.median_high is None else _value(s.median_high)
    return f"**{_value(s.median)}** ({low} – {high})"


def _speedup(row: SamplerStats, baseline: str | None) -> str:
    if baseline is None:
        return "–"
    if row.sampler == baseline and not row.is_reference:
        return "1 (baseline)"
    r = row.speedup
    if r is None or r.value is None:
        return "– (neither median reached)"

    def f(x: float | None) -> str:
        if x is None:
            return "?"
        if math.isinf(x):
            return "∞"
        if x == 0:
            return "0"
        return f"{x:.2f}"

    return f"{f(r.value)}× ({f(r.low)} – {f(r.high)})"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else "< 1e-4"


def _hours(hours: float) -> str:
    minutes = hours * 60
    return f"{minutes:.1f} min" if minutes < 90 else f"{hours:.1f} h"


def _file(row: SamplerStats) -> str:
    name = row.sampler.replace("/", "_")
    return f"{name}.reference" if row.is_reference else name


# -- the index --------------------------------------------------------------------------------
def render_index(boards: Sequence[Board]) -> str:
    lines = [
        "# Leaderboards",
        "",
        "Generated from the results store by `python -m bench compare` / `python -m bench "
        "report`; one page per task. Each ranks the samplers by the median gradient "
        "evaluations to grok on fresh seeds after an equal tuning budget.",
        "",
        "| task | preset | samplers | first to grok (median evals) | hardware | page |",
        "|---|---|---:|---|---|---|",
    ]
    for board in sorted(boards, key=lambda b: b.task):
        winner = board.rows[0] if board.rows else None
        if winner is None or winner.grok_evals.median is None:
            first = "none reached the median"
        else:
            first = f"`{winner.sampler}` ({_value(winner.grok_evals.median)})"
        lines.append(
            f"| `{board.task}` | `{board.compare.preset}` | {len(board.rows)} | {first} | "
            f"{', '.join(board.devices)} | [{board.task}.md]({board.task}.md) |"
        )
    return "\n".join(lines) + "\n"


# -- files ------------------------------------------------------------------------------------
def check_writable(reports: Path) -> None:
    """Refuse, before any training, a reports folder that cannot be written."""
    probe = reports
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ReportError(f"cannot write reports to {reports}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ReportError(f"cannot write reports to {reports}: {probe} is not writable")


def write_reports(
    store: Store,
    reports: Path,
    *,
    compare_keys: Iterable[str] | None = None,
    tasks: Iterable[str] | None = None,
) -> list[Path]:
    """Write the leaderboards (the given comparisons, else the latest comparison of every task
    in the store, or of ``tasks``), their plots and raw records, and the index."""
    latest: dict[str, Compare] = {}
    for compare in store.compares():  # most recent first
        latest.setdefault(compare.task, compare)
    chosen: dict[str, Compare] = {}
    if compare_keys is not None:
        wanted = set(compare_keys)
        for compare in store.compares():
            if compare.key in wanted:
                chosen[compare.task] = compare
                latest[compare.task] = compare
    else:
        chosen = dict(latest)
        if tasks is not None:
            names = list(tasks)
            missing = [t for t in names if t not in latest]
            if missing:
                known = ", ".join(sorted(latest)) or "none"
                raise ReportError(
                    f"no comparison of {', '.join(missing)} in {store.path} (tasks with one: "
                    f"{known})"
                )
            chosen = {t: latest[t] for t in names}
    reports.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    boards: dict[str, Board] = {}
    for task, compare in sorted(chosen.items()):
        board = boards[task] = build_board(store, compare)
        figures = plots.write_plots(board, reports)
        written += figures.values()
        runs_dir = reports / "runs" / board.slug
        runs_dir.mkdir(parents=True, exist_ok=True)
        for row in board.all_rows:
            path = runs_dir / f"{_file(row)}.json"
            atomic_write(path, raw_record(board, row))
            written.append(path)
        captions = {caption: path.name for caption, path in figures.items()}
        path = reports / f"{task}.md"
        atomic_write(path, render(board, captions))
        written.append(path)
    for task, compare in latest.items():
        if task not in boards:
            boards[task] = build_board(store, compare)
    index = reports / "README.md"
    atomic_write(index, render_index([b for b in boards.values() if b.rows]))
    written.append(index)
    return written


def raw_record(board: Board, row: SamplerStats) -> str:
    """A sampler's raw record: the chosen configuration, every trial with its score and
    tuning-run key, and the fresh-seed runs in full (per-chain outcomes and curves, the curves
    as columns)."""
    runs = []
    for record in row.runs:
        result = record.result.to_dict()
        curves = result.pop("curves")
        result.pop("theta", None)
        columns: dict[str, list] = {}
        for point in curves:
            for key, value in point.items():
                columns.setdefault(key, []).append(value)
        runs.append(
            {
                "key": record.key,
                "code_version": record.code_version,
                "seconds_wall": record.seconds_wall,
                "result": result,
                "curves": columns,
            }
        )
    payload = {
        "task": board.task,
        "compare": board.compare.key,
        "preset": board.compare.preset,
        "sampler": row.sampler,
        "role": row.entry.role,
        "chosen": row.entry.chosen,
        "trials": row.entry.trials,
        "tuning_runs": row.entry.tuning_runs,
        "final_runs": runs,
    }
    return _json(payload)


def _json(payload: Any) -> str:
    """Pretty JSON whose lists of numbers stay on one line (curves are long); NaN as null."""
    return _pretty(_clean(payload), 0) + "\n"


def _pretty(value: Any, depth: int) -> str:
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, Mapping) and value:
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        items = [f"{inner}{_pretty(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(f"{value:.6g}")
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def peer_mark(row: SamplerStats) -> str:
    """Rows run by another library's implementation (``blackjax.sgld``) say so."""
    return f" (peer: {row.peer})" if row.peer else ""
