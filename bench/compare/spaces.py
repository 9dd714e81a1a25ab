"""The grids of the samplers that have no row in shared units (peers, plugins): one grid per
sampler, searched as categorical axes by the tuner (:mod:`bench.compare.rows`), stored with every
comparison and rendered on its leaderboard.

A sampler's grid is the ``search_space`` its class declares (a plugin's, see
:mod:`samplers.registry`), else the one in :data:`SEARCH_SPACES` (this repository's samplers,
beside the pilot runs that placed them); a peer (``blackjax.sgld``) searches its algorithm's.
What a grid point means is the sampler's business: its ``hparams_from_search`` turns the point
into hyperparameters (HMC's η into a leapfrog step), so this module knows no sampler by name.
"""

from __future__ import annotations

from typing import Any

import samplers
from samplers.search import POSTERIOR, Axis, SearchSpace, round_grid


def _spaces() -> dict[str, SearchSpace]:
    """Every sampler's grid (see :data:`SEARCH_SPACES` for where the values come from)."""
    priors = (1e-4, 3e-4, 1e-3)
    temperatures = (1e-6, 1e-5)
    return {
        "adamw": SearchSpace(
            axes=(
                Axis("step_size", (1.0, 3.0, 10.0), ref_key="step_size"),
                Axis("weight_decay", (1.0, 3.0), ref_key="weight_decay"),
            ),
            fixed={"prior_precision": 0.0},
            note="betas as in the task's reference; decoupled weight decay, so λ = 0",
            from_reference=("betas",),
        ),
        "sgd": SearchSpace(
            axes=(
                Axis("step_size", (0.3, 1.0)),
                Axis("prior_precision", priors),
            ),
            fixed={"momentum": 0.9},
        ),
        "sgld": SearchSpace(
            axes=(
                Axis("step_size", (1.0, 3.0)),
                Axis("temperature", temperatures),
                Axis("prior_precision", priors),
            ),
        ),
        "sghmc": SearchSpace(
            axes=(
                Axis("step_size", (0.03, 0.1)),
                Axis("temperature", temperatures),
                Axis("prior_precision", priors),
            ),
            fixed={"friction": 0.1},
            note="SGD-momentum form: friction 0.1 is momentum 0.9 at the same step_size",
        ),
        "hmc": SearchSpace(
            axes=(
                Axis("eta", (0.1, 0.3)),
                Axis("temperature", (1e-5, POSTERIOR)),
                Axis("prior_precision", (1e-4, 1e-3)),
            ),
            note="leapfrog step ε = sqrt(η·τ) at the start, then adapted by dual averaging "
            "towards acceptance 0.65 during the first 20% of the steps (paid by the budget); "
            "τ = 1/N is the posterior; full-batch gradients, float64 Metropolis test",
            fixed={"num_leapfrog": 4, "target_accept": 0.65},
            warmup=("adapt_steps", 0.2),
        ),
        "riemannian_langevin": SearchSpace(
            axes=(
                Axis("step_size", (1.0, 3.0), ref_key="step_size"),
                Axis("temperature", temperatures),
                Axis("prior_precision", priors),
            ),
            note="RMSprop metric (alpha 0.99, eps 1e-4) adapted during the first 20% of the "
            "steps, then frozen (exact target)",
            warmup=("freeze_after", 0.2),
        ),
        "preconditioned_sghmc": SearchSpace(
            axes=(
                Axis("step_size", (0.1, 0.3), ref_key="step_size"),
                Axis("temperature", temperatures),
                Axis("prior_precision", priors),
            ),
            fixed={"friction": 0.1},
            note="riemannian_langevin's metric, adapted during the first 20% of the steps, then "
            "frozen; friction 0.1 (momentum 0.9), so a tenth of its step is the same rate",
            warmup=("freeze_after", 0.2),
        ),
    }


#: One grid per sampler, for the cross-entropy models from a memorized start. Pilot runs on
#: add_mod113's data with the embedding MLP, from the checkpoint of seed 0 (1,000 gradient
#: evaluations; the leaderboards report fresh seeds only) placed them: the prior's pull
#: ``λ·θ`` must stay below the training loss's gradient, or SGD, SGLD, SGHMC, HMC and
#: Riemannian Langevin all shrink the network to the origin (‖θ‖ 79 -> < 10, training loss at
#: chance, 4.7) within 200 steps at λ ≥ 1e-2, while Riemannian Langevin at λ = 1e-3 (step
#: 1e-2) grokked at 500; AdamW's decoupled decay groks at 250-400 evaluations with 3x the
#: reference step or decay, at 950 with the reference itself. Temperatures ≥ 1e-4 kept every
#: sampler away from a fit. A value a board chooses on a grid's edge is flagged there.
SEARCH_SPACES: dict[str, SearchSpace] = _spaces()


def search_space(sampler: str, task: Any = None) -> SearchSpace:
    """The space of ``sampler``; a peer (``blackjax.sgld``) uses the space of its algorithm.
    (``task`` is accepted for spaces that would depend on it; these do not.)"""
    del task
    return samplers.lookup(space_owner(sampler)).search_space or SEARCH_SPACES[space_owner(sampler)]


def space_owner(sampler: str) -> str:
    """The registered sampler whose search space ``sampler`` searches: itself when it declares
    one or has one in :data:`SEARCH_SPACES`, else (a peer) its algorithm after the library's
    prefix. A sampler with none is a ``ValueError`` that says where to add one."""
    for name in (sampler, sampler.rsplit(".", 1)[-1]):
        if name in samplers.names() and (
            samplers.lookup(name).search_space is not None or name in SEARCH_SPACES
        ):
            return name
    samplers.lookup(sampler)  # an unknown name: "did you mean"
    raise ValueError(
        f"no search space for sampler {sampler!r}; the comparison knows "
        f"{', '.join(s for s in samplers.names() if _has_space(s))} (declare `search_space` on "
        "the sampler's class, or add it to bench.compare.spaces.SEARCH_SPACES)"
    )


def _has_space(name: str) -> bool:
    return name in SEARCH_SPACES or samplers.lookup(name).search_space is not None


def own_samplers() -> list[str]:
    """This repository's samplers, the comparison's default: peers (``blackjax.sgld``) and
    plugins' samplers take part when ``--samplers`` names them, so that installing a plugin does
    not change what a default comparison measures. The frontier optimizers (``Sampler.frontier``:
    ⊥AdamW, Lion, Muon) are left out too, so that the committed boards keep being reproduced by
    the default command: they join the board as their own group in a later step."""
    return [
        n
        for n in samplers.names()
        if not getattr(samplers.lookup(n), "peer", None)
        and not getattr(samplers.lookup(n), "frontier", False)
        and getattr(samplers.lookup(n), "__module__", "").startswith("samplers.")
    ]


__all__ = [
    "POSTERIOR",
    "SEARCH_SPACES",
    "Axis",
    "SearchSpace",
    "own_samplers",
    "round_grid",
    "search_space",
    "space_owner",
]
