"""Leaderboards written to disk from the store: ``reports/<task>.md``, the task as named on the
command line (rendered by :mod:`bench.markdown` from :mod:`bench.board`'s numbers), its plots
(:mod:`bench.plots`), each
row's raw record (``reports/runs/<board>/<sampler>.json``: the chosen configuration, every trial
with its score and tuning-run key, the fresh-seed runs in full) and the index
``reports/README.md``. ``python -m bench report`` rebuilds them all without training. Files are
written whole or not at all (:mod:`bench.files`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench import plots
from bench.board import Board, SamplerStats, build_board
from bench.files import atomic_write
from bench.markdown import render_index, render_page, row_file
from bench.store import Compare, Store


class ReportError(ValueError):
    """The reports folder cannot be written, or holds nothing to report."""


def check_writable(reports: Path) -> None:
    """Refuse, before any training, a reports folder that cannot be written."""
    probe = reports
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ReportError(f"cannot write reports to {reports}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ReportError(f"cannot write reports to {reports}: {probe} is not writable")


def page_of(compare: Compare) -> str:
    """The page a comparison goes on: the task named on the command line (``add_mod113`` when
    the CPU preset ran its data with the MLP, ``add_mod113_mlp``), so that ``--task add_mod113``
    always writes ``reports/add_mod113.md``."""
    return str(compare.protocol.get("asked_task") or compare.task)


def latest_pages(store: Store) -> dict[str, dict[str, Compare]]:
    """The most recent comparison of every (page, start) in the store: page -> start -> it."""
    pages: dict[str, dict[str, Compare]] = {}
    for compare in store.compares():  # most recent first
        start = compare.protocol.get("start", "init")
        pages.setdefault(page_of(compare), {}).setdefault(start, compare)
    return pages


def write_reports(
    store: Store,
    reports: Path,
    *,
    compare_keys: Iterable[str] | None = None,
    tasks: Iterable[str] | None = None,
) -> list[Path]:
    """Write the pages of the given comparisons (with the latest comparison of the task's other
    start under the same preset), else of ``tasks``, else of every task in the store; their
    plots and raw records; and the index of every task."""
    pages = latest_pages(store)
    if compare_keys is not None:
        wanted = set(compare_keys)
        for compare in store.compares():
            if compare.key in wanted:
                starts = pages.setdefault(page_of(compare), {})
                starts[compare.protocol.get("start", "init")] = compare
                for start, other in list(starts.items()):
                    if other.preset != compare.preset:  # one preset to a page
                        del starts[start]
        names = sorted({page_of(c) for c in store.compares() if c.key in wanted})
    elif tasks is not None:
        names = list(tasks)
        missing = [t for t in names if t not in pages]
        if missing:
            known = ", ".join(sorted(pages)) or "none"
            raise ReportError(
                f"no comparison of {', '.join(missing)} in {store.path} (tasks with one: {known})"
            )
    else:
        names = sorted(pages)
    reports.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    boards: dict[str, list[Board]] = {}
    for task in names:
        boards[task] = [build_board(store, c) for c in pages[task].values()]
        figures: dict[str, dict[str, str]] = {}
        for board in boards[task]:
            drawn = plots.write_plots(board, reports)
            for png in drawn.values():
                written += [png, *plots.vector_paths(png)]
            figures[board.slug] = {caption: path.name for caption, path in drawn.items()}
            runs_dir = reports / "runs" / board.slug
            runs_dir.mkdir(parents=True, exist_ok=True)
            for row in board.all_rows:
                path = runs_dir / f"{row_file(row)}.json"
                atomic_write(path, raw_record(board, row))
                written.append(path)
        path = reports / f"{task}.md"
        atomic_write(path, render_page(boards[task], figures))
        written.append(path)
    for task, starts in pages.items():
        if task not in boards:
            boards[task] = [build_board(store, c) for c in starts.values()]
    index = reports / "README.md"
    atomic_write(index, render_index({t: b for t, b in boards.items() if any(x.rows for x in b)}))
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
        "sampler": row.runs[0].result.spec.sampler,
        "row": row.sampler,
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
