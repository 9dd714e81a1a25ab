"""The claims' pages: each claim's markdown page, figure and digest, and the index of them.

``reports/theory/<task>/<claim>.md`` with its figure, its digest ``<claim>.json``, and the
index ``reports/theory/README.md`` built from the digests on disk.

Files are written whole or not at all (:mod:`bench.files`); the figures are saved by
:func:`bench.plots.save_figure` (fixed SVG ids and no dates, so the same numbers give the same
bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.files import atomic_write
from bench.keys import NUMERICS_VERSION, code_version, host_description
from bench.theory.claims.base import Chains, ClaimResult, Table
from bench.theory.figures import save
from bench.theory.preset import Preset


def render_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return lines


def render_page(
    result: ClaimResult, task: str, header: Mapping[str, str], figure: str | None
) -> str:
    lines = [f"# {task}: {result.title}", "", f"**Claim.** {result.prediction}", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in header.items()] + [""]
    lines += ["## Setup", ""] + [f"- {s}" for s in result.setup] + [""]
    lines += ["## Verdict", ""]
    if result.status:
        lines += [f"**{result.status[0].upper()}{result.status[1:]}** ({result.why}).", ""]
    lines += [result.verdict or "No verdict: no fit.", ""]
    if figure:
        lines += [f"![{result.figure_caption}]({figure})", "", f"*{result.figure_caption}*", ""]
    for sec in result.sections:
        lines += [f"## {sec.title[0].upper()}{sec.title[1:]}", ""]
        for caption, table in sec.tables:
            lines += [caption, ""] + render_table(table) + [""]
        for note in sec.notes:
            lines += [note, ""]
        if sec.verdict:
            lines += [f"**Verdict.** {sec.verdict}", ""]
    lines += [
        "## Method",
        "",
        "Times are in steps, known to the evaluation grid: an observed t_grok lies in "
        "(t − e, t], a chain that did not grok is right-censored; each fit maximizes the "
        "likelihood of these intervals (bench/theory/fits.py, statsmodels' "
        "GenericLikelihoodModel), so no censored time is fitted as observed. Intervals of a "
        "fitted parameter are profile-likelihood intervals; AIC compares laws on the same "
        "chains. Exponents of distances are least-squares slopes on log–log axes "
        "(scipy.optimize.curve_fit) with percentile-bootstrap intervals. Diverged chains are "
        "left out and counted.",
        "",
        "Store keys of the runs: " + ", ".join(f"`{k}`" for k in result.runs),
        "",
    ]
    return "\n".join(lines)


def render_index(pages: Mapping[str, Mapping[str, tuple[ClaimResult | None, str]]]) -> str:
    """``pages``: task -> claim -> (result, page path relative to the index)."""
    lines = [
        "# The thermodynamic predictions, measured",
        "",
        "`python -m bench theory [CLAIM ...] --task T` runs each claim's sweep through the "
        "store (reused on rerun, resumable) and writes one page per claim: the fitted law with "
        "its interval, the competing law, a model comparison and a verdict "
        "(bench/theory/).",
        "",
        "Each page first states its regime in numbers (decay per step and its relaxation time "
        "against the window, the noise's scale against ‖θ‖, noise against drift per step, "
        "chains a cell) and fits the same chains against a null process with no loss landscape "
        "(weight decay and the same noise: bench/theory/claims/regime.py). The status says "
        "whether the data support the claim, contradict it, or the sweep is not in the regime "
        "where it can show (and why).",
        "",
    ]
    for task, claims in sorted(pages.items()):
        lines += [f"## {task}", ""]
        known = [r for r, _ in claims.values() if r is not None and len(r.setup) == 2]
        presets = sorted({r.setup[0] for r in known if r.setup[0]})
        if known:
            minutes = sum(float(r.setup[1]) for r in known)
            lines += [
                f"Preset {', '.join(f'`{p}`' for p in presets) or '–'}; {minutes:.1f} min of "
                "worker time for the runs behind these pages (two run side by side on two "
                "cores).",
                "",
            ]
        lines += ["| claim | status | why | result |", "|---|---|---|---|"]
        for claim, (result, path) in claims.items():
            if result is None:
                lines.append(f"| [{claim}]({path}) | – | – | – |")
                continue
            summary = "; ".join(f"{k}: {v}" for k, v in result.summary.items()) or "–"
            status = f"**{result.status}**" if result.status else "–"
            why = result.why or _first_sentence(result.verdict)
            lines.append(f"| [{claim}]({path}) | {status} | {why} | {summary} |")
        lines.append("")
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    text = re.sub(r"\*\*[^*]+\*\*: ", "", text or "")
    return (text.split(". ")[0].rstrip(".") + ".") if text else "–"


def write_claim(
    result: ClaimResult,
    figure: Any,
    folder: Path,
    task: str,
    header: Mapping[str, str],
    worker_minutes: float,
    preset: Preset,
) -> Path:
    """Write the claim's figure (when it has one), its page and its digest into ``folder``;
    returns the page."""
    folder.mkdir(parents=True, exist_ok=True)
    name = None
    if figure is not None:
        png = folder / f"{result.claim}.png"
        save(figure, png)
        name = png.name
    page = folder / f"{result.claim}.md"
    atomic_write(page, render_page(result, task, header, name))
    digest = {
        "claim": result.claim,
        "preset": preset.name,
        "worker_minutes": round(worker_minutes, 2),
        "title": result.title,
        "summary": result.summary,
        "verdict": result.verdict,
        "status": result.status,
        "why": result.why,
        "runs": result.runs,
    }
    atomic_write(folder / f"{result.claim}.json", json.dumps(digest, indent=1) + "\n")
    return page


def worker_minutes(runs: Sequence[Chains]) -> float:
    """The worker time spent on ``runs``."""
    return sum(r.record.seconds_wall for r in runs) / 60


def header(runs: Sequence[Chains], preset: Preset, task: Any) -> dict[str, str]:
    """The table at the top of a page: task, preset, hardware, code, compute."""
    devices = sorted({r.result.device for r in runs})
    codes = sorted({_short(r.record.code_version) for r in runs})
    return {
        "task": f"`{task.name}`: {task.description}",
        "preset": f"`{preset.name}`: {preset.description}",
        "hardware": f"{', '.join(devices)} on {host_description()}",
        "code": f"{', '.join(f'`{c}`' for c in codes)} (numerics version {NUMERICS_VERSION}); "
        f"reported by `{_short(code_version())}` (+dirty: uncommitted changes in the tree)",
        "compute": f"{worker_minutes(runs):.1f} min of worker time for the {len(runs)} runs "
        "behind this page",
    }


def _short(version: str) -> str:
    commit, plus, rest = version.partition("+")
    return commit[:7] + plus + rest


def read_index(
    root: Path, order: Sequence[str]
) -> dict[str, dict[str, tuple[ClaimResult | None, str]]]:
    """task -> claim -> (its digest as a ClaimResult, its page), from the digests on disk, the
    claims in ``order`` (others skipped); the preset and worker minutes ride in ``setup``."""
    pages: dict[str, dict[str, tuple[ClaimResult | None, str]]] = {}
    for digest in sorted(root.glob("*/*.json")):
        try:
            data = json.loads(digest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("claim") not in order:
            continue
        result = ClaimResult(
            claim=data["claim"],
            title=data.get("title", ""),
            prediction="",
            setup=[str(data.get("preset", "")), str(data.get("worker_minutes", 0.0))],
            sections=[],
            verdict=data.get("verdict", ""),
            summary=data.get("summary", {}),
            status=data.get("status", ""),
            why=data.get("why", ""),
        )
        pages.setdefault(digest.parent.name, {})[data["claim"]] = (
            result,
            f"{digest.parent.name}/{data['claim']}.md",
        )
    for task, claims in pages.items():
        pages[task] = {c: claims[c] for c in order if c in claims}
    return pages
