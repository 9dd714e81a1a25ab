"""``python -m bench theory``: the quantitative predictions of the thermodynamic explanations of
grokking, each measured by a controlled sweep and fitted beside a competing law.

The package reads top to bottom as

* :mod:`~bench.theory.sweeps`: the presets, each claim's jobs (vectorized over chains where the
  sweep allows), trained once through the store by :class:`bench.jobs.Runner`;
* :mod:`~bench.theory.fits`: censored log-normal regressions (statsmodels), power laws
  (scipy), profile and bootstrap intervals, AIC;
* :mod:`~bench.theory.claims`: each claim's analysis and verdict from the stored runs;
* :mod:`~bench.theory.report`: the pages ``reports/theory/<task>/<claim>.md``, their figures and
  the index ``reports/theory/README.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.files import atomic_write
from bench.keys import NUMERICS_VERSION, code_version, host_description
from bench.store import Store
from bench.theory import report
from bench.theory.claims import ANALYSES, ClaimResult
from bench.theory.sweeps import (
    ARMS,
    CLAIMS,
    PRESETS,
    Planned,
    Preset,
    UnknownClaim,
    check_claims,
    checkpoint_seeds,
    memorized_points,
    plan,
    preset_for,
    run_plan,
)

__all__ = [
    "ARMS",
    "CLAIMS",
    "PRESETS",
    "Planned",
    "Preset",
    "UnknownClaim",
    "check_claims",
    "plan",
    "preset_for",
    "run_theory",
]


def run_theory(
    claims: Sequence[str],
    preset: Preset,
    store: Store,
    reports_root: Path,
    *,
    batch_size: int | None = None,
    executor: Any = None,
    device: str | None = None,
    log: Callable[[str], None] = print,
    write: bool = True,
) -> dict[str, ClaimResult]:
    """Train what ``claims`` need (reusing the store), analyse each, and write its page under
    ``reports_root/<task>/`` and the index ``reports_root/README.md``."""
    claims = check_claims(claims)
    task = preset.make_task()
    tick = time.perf_counter()
    points = memorized_points(
        task, checkpoint_seeds(claims, preset), preset, store, device=device, log=log
    )
    thetas = {c.key: c.theta for c in points.values()}
    planned = plan(claims, preset, task, points, batch_size=batch_size)
    chains = sum(len(p.job.seeds) for p in planned)
    log(
        f"theory {task.name}: preset {preset.name}, claims {', '.join(claims)}; "
        f"{len(planned)} jobs, {chains} chains; store {store.path}"
    )
    trained, reused = run_plan(planned, store, thetas, executor=executor, device=device, log=log)
    minutes = (time.perf_counter() - tick) / 60
    log(f"  {trained} runs trained, {reused} reused from the store, {minutes:.1f} min")
    results = {}
    folder = reports_root / task.name
    for claim in claims:
        mine = [p for p in planned if p.claim == claim]
        result = ANALYSES[claim](store, mine, preset)
        results[claim] = result
        if write:
            header = _header(store, mine, preset, task)
            page = report.write_claim(result, folder, task.name, header)
            digest = _digest(result, preset, _worker_minutes(store, mine))
            atomic_write(folder / f"{claim}.json", json.dumps(digest, indent=1) + "\n")
            log(f"wrote {page}")
    if write:
        index = reports_root / "README.md"
        atomic_write(index, report.render_index(_index(reports_root)))
        log(f"wrote {index}")
    return results


def _short(version: str) -> str:
    commit, plus, rest = version.partition("+")
    return commit[:7] + plus + rest


def _worker_minutes(store: Store, planned: Sequence[Planned]) -> float:
    records = [store.get_run(p.key, curves=False) for p in planned]
    return sum(r.seconds_wall for r in records if r is not None) / 60


def _header(store: Store, planned: Sequence[Planned], preset: Preset, task: Any) -> dict[str, str]:
    records = [store.get_run(p.key, curves=False) for p in planned]
    worker = _worker_minutes(store, planned)
    devices = sorted({r.result.device for r in records if r is not None})
    codes = sorted({_short(r.code_version) for r in records if r is not None})
    return {
        "task": f"`{task.name}`: {task.description}",
        "preset": f"`{preset.name}`: {preset.description}",
        "hardware": f"{', '.join(devices)} on {host_description()}",
        "code": f"{', '.join(f'`{c}`' for c in codes)} (numerics version {NUMERICS_VERSION}); "
        f"reported by `{_short(code_version())}` (+dirty: uncommitted changes in the tree)",
        "compute": f"{worker:.1f} min of worker time for the {len(planned)} runs behind this page",
    }


def _digest(result: ClaimResult, preset: Preset, worker_minutes: float) -> dict[str, Any]:
    return {
        "claim": result.claim,
        "preset": preset.name,
        "worker_minutes": round(worker_minutes, 2),
        "title": result.title,
        "summary": result.summary,
        "verdict": result.verdict,
        "runs": result.runs,
    }


def _index(root: Path) -> dict[str, dict[str, tuple[ClaimResult | None, str]]]:
    """task -> claim -> (its digest as a ClaimResult, its page), from the digests on disk;
    the preset and worker minutes ride in ``setup``."""
    pages: dict[str, dict[str, tuple[ClaimResult | None, str]]] = {}
    for digest in sorted(root.glob("*/*.json")):
        try:
            data = json.loads(digest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("claim") not in CLAIMS:
            continue
        result = ClaimResult(
            claim=data["claim"],
            title=data.get("title", ""),
            prediction="",
            setup=[str(data.get("preset", "")), str(data.get("worker_minutes", 0.0))],
            sections=[],
            verdict=data.get("verdict", ""),
            summary=data.get("summary", {}),
        )
        pages.setdefault(digest.parent.name, {})[data["claim"]] = (
            result,
            f"{digest.parent.name}/{data['claim']}.md",
        )
    for task, claims in pages.items():
        pages[task] = {c: claims[c] for c in CLAIMS if c in claims}
    return pages
