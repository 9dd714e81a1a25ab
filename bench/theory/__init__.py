"""``python -m bench theory``: from a preset to one page per thermodynamic claim on grokking.

Each claim's quantitative prediction is measured by a controlled sweep and fitted beside a
competing law.

The package reads top to bottom as

* :mod:`~bench.theory.preset`: the numbers every claim shares (task, seeds, grid, arms);
* :mod:`~bench.theory.claims`: one module per claim, owning its settings, its jobs, its
  analysis and its figure, and the registry that collects them;
* :mod:`~bench.theory.plan` (one planned job, and the one function that builds a job),
  :mod:`~bench.theory.probe` (the replicas' Gram matrix) and :mod:`~bench.theory.runner`
  (memorized checkpoints, then every job trained once through the store by
  :class:`bench.jobs.Runner`);
* :mod:`~bench.theory.fits`: censored log-normal regressions (statsmodels), power laws
  (scipy), profile and bootstrap intervals, AIC;
* :mod:`~bench.theory.figures` and :mod:`~bench.theory.pages`: the pages
  ``reports/theory/<task>/<claim>.md``, their figures and the index
  ``reports/theory/README.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.files import atomic_write
from bench.store import Store
from bench.theory import pages
from bench.theory.claims import (
    CLAIMS,
    PRESETS,
    REGISTRY,
    ClaimResult,
    UnknownClaim,
    check_claims,
    checkpoint_seeds,
    load,
    plan,
    preset_for,
)
from bench.theory.plan import Planned
from bench.theory.preset import ARMS, Preset
from bench.theory.runner import memorized_points, run_plan

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
    """Train what ``claims`` need (reusing the store), analyse each from its runs read once,
    and write its page under ``reports_root/<task>/`` and the index ``reports_root/README.md``."""
    claims = check_claims(claims)
    task = preset.make_task()
    tick = time.perf_counter()
    points = memorized_points(
        task, checkpoint_seeds(claims, preset), preset, store, device=device, log=log
    )
    thetas = {c.key: c.theta for c in points.values()}
    planned = plan(claims, preset, task, points, batch_size=batch_size)
    chains = sum(p.job.spec.chains for p in planned)
    log(
        f"theory {task.name}: preset {preset.name}, claims {', '.join(claims)}; "
        f"{len(planned)} jobs, {chains} chains; store {store.path}"
    )
    trained, reused = run_plan(planned, store, thetas, executor=executor, device=device, log=log)
    minutes = (time.perf_counter() - tick) / 60
    log(f"  {trained} runs trained, {reused} reused from the store, {minutes:.1f} min")
    results = {}
    folder = reports_root / task.name
    for name in claims:
        claim = REGISTRY[name]
        runs = load(store, [p for p in planned if p.claim == name])
        result = claim.analyse(runs, preset)
        results[name] = result
        if write:
            page = pages.write_claim(
                result,
                claim.figure(result.panels),
                folder,
                task.name,
                pages.header(runs, preset, task),
                pages.worker_minutes(runs),
                preset,
            )
            log(f"wrote {page}")
    if write:
        index = reports_root / "README.md"
        atomic_write(index, pages.render_index(pages.read_index(reports_root, CLAIMS)))
        log(f"wrote {index}")
    return results
