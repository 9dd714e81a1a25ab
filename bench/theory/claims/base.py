"""What a claim is: its settings, plan, analysis and figure, the runs it reads, what it returns.

:class:`Claim` holds a claim's pieces; :class:`Chains` (from :func:`load`) its stored runs, read
once; :class:`ClaimResult` its page's content.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.store import RunRecord, Store
from bench.theory.fits import FitError, Times
from bench.theory.plan import Planned
from bench.theory.preset import Preset


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One arm's (or one sampler's) results on a claim's page."""

    title: str
    tables: list[tuple[str, Table]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict: str = ""
    status: str = ""  # one of STATUSES, where the section decides the claim
    why: str = ""  # the status in a clause


@dataclass
class ClaimResult:
    """A claim's analysis: the page's text and tables, its verdict, and the figure's panels."""

    claim: str
    title: str
    prediction: str
    setup: list[str]
    sections: list[Section]
    verdict: str
    panels: list[dict[str, Any]] = field(default_factory=list)  # drawn by the claim's figure
    figure_caption: str = ""
    summary: dict[str, str] = field(default_factory=dict)  # index columns
    runs: list[str] = field(default_factory=list)
    status: str = ""  # one of STATUSES: the index's line for the claim
    why: str = ""


#: What a page can say of its claim (issue 19): the data support it, contradict it, or the sweep
#: is not in the regime where it can show.
SUPPORTED, CONTRADICTED, UNTESTABLE = "supported", "contradicted", "not testable here"
STATUSES = (SUPPORTED, CONTRADICTED, UNTESTABLE)


def page_status(sections: Sequence[Section]) -> tuple[str, str]:
    """The claim's status from its sections': contradicted where any section contradicts it,
    supported where every section that can test it supports it, else not testable here; with
    the first such section's reason, after its title."""
    first = {}
    for sec in sections:
        first.setdefault(sec.status, sec)
    for status in (CONTRADICTED, SUPPORTED, UNTESTABLE):
        if status in first:
            why = f"{first[status].title}: {first[status].why}"
            if status == CONTRADICTED and SUPPORTED in first:  # a mixed page says both
                why += f"; but {first[SUPPORTED].title}: {first[SUPPORTED].why}"
            return status, why
    return UNTESTABLE, "no section could test it"


@dataclass
class Chains:
    """The chains of one planned job, as read back from the store (with their curves)."""

    planned: Planned
    record: RunRecord

    @property
    def result(self) -> Any:  # RunResult
        return self.record.result

    @property
    def chains(self):
        return self.result.chains

    @property
    def eval_every(self) -> int:
        return self.result.spec.eval_every

    def live(self) -> np.ndarray:
        return np.array([not c.diverged for c in self.chains])

    def grok_times(self) -> Times:
        """Every chain's sustained-grokking time as an interval. Not reached: right-censored
        at the end of the run, or, for a chain that ended above the target in a stretch the
        window had not yet confirmed, at the end less the window (its stretch began later)."""
        window = self.result.spec.confirm or 0
        lower, upper = [], []
        for c in self.chains:
            if c.t_grok is not None:
                lower.append(max(c.t_grok - self.eval_every, 0))
                upper.append(c.t_grok)
            else:
                end = c.censored_at
                lower.append(max(end - window, 0) if c.generalized else end)
                upper.append(math.inf)
        return Times(np.array(lower, dtype=float), np.array(upper))

    def curve(self, chain: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [r for r in self.result.curves if r["chain"] == chain]
        steps = np.array([r["step"] for r in rows], dtype=float)
        values = np.array([number(r.get(key)) for r in rows], dtype=float)
        return steps, values

    def value_at(self, chain: int, key: str, step: int) -> float:
        for r in self.result.curves:
            if r["chain"] == chain and r["step"] == step:
                return number(r.get(key))
        return math.nan


def number(v: Any) -> float:
    """A curve's value as a float (NaN where it was not recorded)."""
    return math.nan if v is None else float(v)


def load(store: Store, planned: Sequence[Planned]) -> list[Chains]:
    """The runs of ``planned``, each read once from ``store``."""
    out = []
    for p in planned:
        record = store.get_run(p.key)
        if record is None:
            raise FitError(f"run {p.key} ({p.job.label}) is not in {store.path}: train it first")
        out.append(Chains(p, record))
    return out


#: plan(preset, task, memorized checkpoints by seed, arm, its batch size) -> the arm's jobs
Plan = Callable[[Preset, Any, Mapping[int, Any], str, "int | None"], list[Planned]]


def no_checkpoints(preset: Preset) -> int:
    """A claim that starts every chain from ``task.init``."""
    del preset
    return 0


@dataclass(frozen=True)
class Claim:
    """One claim's room: its numbers per preset, the jobs it needs, its analysis of their runs
    and its figure. Each ``bench/theory/claims/<claim>.py`` defines one, as ``CLAIM``."""

    name: str
    presets: Mapping[str, Any]  # preset name -> this claim's Settings
    plan: Plan
    analyse: Callable[[Sequence[Chains], Preset], ClaimResult]
    figure: Callable[[Sequence[Mapping[str, Any]]], Any]  # panels -> a figure, or None
    checkpoints: Callable[[Preset], int] = no_checkpoints  # memorized checkpoints it starts from
