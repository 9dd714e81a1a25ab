"""The recheck page: a board's rows beside their chosen settings rerun from other checkpoints for
longer (:mod:`bench.compare.recheck`), and what held.

A row *holds* when every rechecked chain grokked, held it to the end of the longer run and did
not diverge. The page says, row by row, where the recheck and the board disagree, and whether
the board's order of medians survives.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench import formats
from bench.board import Board, SamplerStats
from bench.compare.recheck import Rechecked
from bench.grokking import ChainResult
from bench.metrics import median_time


def chain_evals(chain: ChainResult, evals_per_step: int) -> tuple[float | None, float]:
    """Gradient evaluations to sustained grokking (``None``: censored) and where it was
    censored."""
    return chain.t_grok_grad_evals, float(chain.censored_at * evals_per_step)


def median_evals(item: Rechecked) -> float | None:
    """The KM median of the recheck's chains (``None``: not reached; a diverged chain never
    grokked and counts as censored where it stopped)."""
    per = item.result.grad_evals_per_step
    pairs = [chain_evals(c, per) for c in item.result.chains]
    return median_time([t for t, _ in pairs], [c for _, c in pairs])


def held(item: Rechecked) -> int:
    """Chains that grokked and held it to the end of the longer run (a diverged chain never)."""
    return sum(c.grokked and not c.diverged for c in item.result.chains)


def holds(item: Rechecked) -> bool:
    return held(item) == len(item.result.chains)


def _cell(chain: ChainResult, per: int) -> str:
    if chain.diverged:
        at = formats.integer(chain.diverged_step * per)
        return f"diverged ({chain.diverged_cause or '?'}) at {at}"
    t, censored = chain_evals(chain, per)
    return formats.integer(t) if t is not None else f"> {formats.integer(censored)}"


def _touch(chain: ChainResult) -> str:
    return (
        formats.integer(chain.t_touch_grad_evals) if chain.t_touch_grad_evals is not None else "–"
    )


def _final_val(chain: ChainResult) -> str:
    v = chain.final.get("val_acc")
    return "–" if v is None or chain.diverged else f"{v:.3f}"


def _end_state(chain: ChainResult) -> str:
    """``‖θ‖ / training loss`` at the end: a chain that neither grokked nor diverged but ends with
    a high training loss has settled where its prior outweighs the data (an over-regularized
    equilibrium), which a validation accuracy alone does not tell from a slow chain."""
    norm, loss = chain.final.get("weight_norm"), chain.final.get("train_loss")
    if chain.diverged or norm is None or loss is None:
        return "–"
    return f"{norm:.3g} / {loss:.2g}"


def _board_cell(row: SamplerStats | None) -> str:
    if row is None:
        return "–"
    return f"{row.grokked}/{row.n}, {formats.median(row.grok_evals)}"


def _order(names: Sequence[str], medians: dict[str, float | None]) -> list[str]:
    return sorted(names, key=lambda n: (medians[n] is None, medians[n] or 0.0, n))


def render(board: Board, checked: Sequence[Rechecked], page: str) -> str:
    """The recheck page of ``board`` (written as ``reports/<page>.md``'s companion)."""
    by_name = {row.entry.sampler: row for row in board.all_rows}
    place = {name: i for i, name in enumerate(by_name)}
    checked = sorted(checked, key=lambda item: place.get(item.row, len(place)))
    first = checked[0]
    per0 = first.result.grad_evals_per_step
    budget = first.spec.budget * per0
    board_budget = int(board.compare.protocol.get("budget") or 0)
    seeds = sorted(first.checkpoint_steps)
    lines = [
        f"# Recheck: {page}",
        "",
        f"Every row's chosen setting on [{page}.md]({page}.md), rerun unchanged from "
        f"{len(seeds)} memorized checkpoints the board never saw (seeds {seeds[0]}–{seeds[-1]}, "
        f"made by the same reference optimizer and criterion, memorized at steps "
        f"{', '.join(str(first.checkpoint_steps[s]) for s in seeds)}) for "
        f"{formats.integer(budget)} gradient evaluations, "
        + (
            f"{budget / board_budget:g}× the board's {formats.integer(board_budget)}. "
            if board_budget
            else ". "
        )
        + "Sustained grokking is judged to the end of the longer run; the warm-ups stay where "
        "the board's runs had them. `python -m bench recheck` wrote this page "
        "(bench/compare/recheck.py); its runs are in the store. *End ‖θ‖ / training loss*: "
        "a finite chain that never grokked and ends with a training loss far above the "
        "grokked rows' has settled where its prior outweighs the data, not run out of time.",
        "",
        "| row | board: grokked, median | recheck: held | evals to sustained grok, per "
        "checkpoint | first touch | final val acc | end ‖θ‖ / training loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in checked:
        chains = item.result.chains
        per = item.result.grad_evals_per_step
        lines.append(
            f"| `{item.row}` | {_board_cell(by_name.get(item.row))} | {held(item)}/{len(chains)} | "
            f"{', '.join(_cell(c, per) for c in chains)} | "
            f"{', '.join(_touch(c) for c in chains)} | "
            f"{', '.join(_final_val(c) for c in chains)} | "
            f"{', '.join(_end_state(c) for c in chains)} |"
        )
    lines += ["", "\n\n".join(_verdict(board, checked, by_name))]
    return "\n".join(lines) + "\n"


def _verdict(
    board: Board, checked: Sequence[Rechecked], by_name: dict[str, SamplerStats]
) -> list[str]:
    out = []
    broke = [
        item
        for item in checked
        if (row := by_name.get(item.row)) is not None and row.grokked and not holds(item)
    ]
    for item in broke:
        row = by_name[item.row]
        chains = item.result.chains
        diverged = sum(c.diverged for c in chains)
        fell = sum(c.t_touch is not None and not c.grokked and not c.diverged for c in chains)
        why = []
        if diverged:
            why.append(f"{diverged} diverged")
        if fell:
            why.append(f"{fell} touched the target and fell back or never held it")
        never = len(chains) - sum(c.grokked for c in chains) - diverged - fell
        if never:
            why.append(f"{never} never reached it")
        out.append(
            formats.sentence(
                f"`{item.row}` grokked on {row.grokked} of {row.n} of the board's checkpoints "
                f"and here held on {held(item)} of "
                f"{len(chains)} ({', '.join(why)})"
            )
        )
    if any(holds(i) for i in checked) and not broke:
        out.append(
            formats.sentence(
                "every row that grokked on the board held its setting on every rechecked "
                "checkpoint to the end of the longer run"
            )
        )
    names = [i.row for i in checked if by_name.get(i.row) is not None]
    board_medians = {n: by_name[n].grok_evals.median for n in names}
    recheck_medians = {i.row: median_evals(i) for i in checked if i.row in board_medians}
    before, after = _order(names, board_medians), _order(names, recheck_medians)
    out.append(
        "Order by median evaluations to sustained grokking: on the board "
        + _ranked(before, board_medians)
        + "; rechecked "
        + _ranked(after, recheck_medians)
        + "."
    )
    top_before = [n for n in before if board_medians[n] is not None][:3]
    top_after = [n for n in after if recheck_medians[n] is not None][:3]
    if top_before and top_before == top_after:
        out.append(
            formats.sentence(
                f"the board's {len(top_before)} fastest rows are the recheck's, in that order"
            )
        )
    elif top_before:
        out.append(
            formats.sentence(
                f"the board's fastest rows ({', '.join(top_before)}) are not the recheck's "
                f"({', '.join(top_after) or 'none reached'}): read the board's order with that"
            )
        )
    return out


def _ranked(names: Sequence[str], medians: dict[str, float | None]) -> str:
    return ", ".join(
        f"{n} {formats.integer(medians[n]) if medians[n] is not None else '(not reached)'}"
        for n in names
    )


__all__ = ["held", "holds", "median_evals", "render"]
