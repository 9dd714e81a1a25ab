"""The registry of claims: every claim's room in order, the full presets, the plan of jobs.

One module per claim (Kozyrev, "How to explain grokking", 2024; Power et al., "Grokking:
generalization beyond overfitting on small algorithmic datasets", 2022; Millidge, "Grokking as
simple thermodynamics", 2022), each owning its settings per preset, its plan, its analysis and
its figure as one :class:`~bench.theory.claims.base.Claim`:

* :mod:`~bench.theory.claims.tgrok_tmem2`: t_grok ≈ t_mem², over a step-size ladder;
* :mod:`~bench.theory.claims.drift_diffusion`: replicas from one point, drift then diffusion;
* :mod:`~bench.theory.claims.fraction`: t_grok grows exponentially as the data shrink;
* :mod:`~bench.theory.claims.eyring`: escape rate ∝ exp(−ΔF/τ) over a temperature ladder;
* :mod:`~bench.theory.claims.weight_decay`: the prior's precision λ against τ, a factorial.

Fits are :mod:`bench.theory.fits`'s; times are intervals on the evaluation grid and censored
chains stay censored. A chain that diverged is left out of every fit and counted. Every claim
states its sweep's regime and fits its chains against the null process with no loss
(:mod:`~bench.theory.claims.regime`), and says whether its data support the claim, contradict
it, or cannot test it (:func:`~bench.theory.claims.base.page_status`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bench.theory.claims import drift_diffusion, eyring, fraction, tgrok_tmem2, weight_decay
from bench.theory.claims.base import Chains, Claim, ClaimResult, Section, Table, load
from bench.theory.plan import Planned
from bench.theory.preset import SHARED, Preset
from tasks.suggestions import did_you_mean

#: Every claim's room, in the order of the issue and of the reports.
REGISTRY: dict[str, Claim] = {
    m.CLAIM.name: m.CLAIM for m in (tgrok_tmem2, drift_diffusion, fraction, eyring, weight_decay)
}
#: The claims' names, in order.
CLAIMS = tuple(REGISTRY)

#: The presets by name: each one's shared numbers (:mod:`bench.theory.preset`) with every
#: claim's own.
PRESETS: dict[str, Preset] = {
    name: replace(shared, claims={c.name: c.presets[name] for c in REGISTRY.values()})
    for name, shared in SHARED.items()
}


class UnknownClaim(ValueError):
    """A claim name that is not one of :data:`CLAIMS` (the message suggests the nearest)."""


def check_claims(names: Sequence[str]) -> list[str]:
    """The claims asked for, in :data:`CLAIMS` order (all of them when none is named); an
    unknown name raises :class:`UnknownClaim` with a "did you mean"."""
    if not names:
        return list(CLAIMS)
    for name in names:
        if name not in CLAIMS:
            hint = did_you_mean(name, CLAIMS, n=2, cutoff=0.4) or (
                "the claims are " + ", ".join(CLAIMS)
            )
            raise UnknownClaim(f"unknown claim {name!r}; {hint}")
    return [c for c in CLAIMS if c in names]


def preset_for(name: str, task_name: str | None = None) -> Preset:
    """A preset by name, on another task when ``task_name`` is given."""
    if name not in PRESETS:
        raise UnknownClaim(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return replace(preset, task=task_name) if task_name else preset


def checkpoint_seeds(claims: Sequence[str], preset: Preset) -> list[int]:
    """The seeds whose memorized checkpoints ``claims`` start from."""
    return list(range(max((REGISTRY[c].checkpoints(preset) for c in claims), default=0)))


def plan(
    claims: Sequence[str],
    preset: Preset,
    task: Any,
    points: Mapping[int, Any],
    *,
    batch_size: int | None = None,
) -> list[Planned]:
    """Every job of ``claims``, arm by arm; ``points`` maps a checkpoint seed to its
    :class:`~bench.store.Checkpoint` (the seeds :func:`checkpoint_seeds` asks for)."""
    out: list[Planned] = []
    for arm, bs in preset.arms(batch_size).items():
        for claim in claims:
            out += REGISTRY[claim].plan(preset, task, points, arm, bs)
    return out


__all__ = [
    "CLAIMS",
    "PRESETS",
    "REGISTRY",
    "Chains",
    "Claim",
    "ClaimResult",
    "Section",
    "Table",
    "UnknownClaim",
    "check_claims",
    "checkpoint_seeds",
    "load",
    "plan",
    "preset_for",
]
