"""The presets: the numbers every claim's sweep shares (task, seeds, grid, window, arms).

A :class:`Preset` holds what the claims share and, under ``claims``, each claim's ``Settings``
(defined, with its values for ``cpu`` and ``paper``, in ``bench/theory/claims/<claim>.py``):
change one claim's sweep in its own module, the task or the grid here.
:data:`bench.theory.claims.PRESETS` joins the two.

Every claim runs in two **arms**: ``full`` (full-batch gradients: the only noise is the
sampler's own) and ``minibatch`` (the preset's batch size, or ``--batch-size``: SGD gets
gradient noise). All chains of a job share one minibatch stream (:mod:`bench.run`), so in the
minibatch arm the data noise is common to a job's chains and the sampler's noise is theirs
alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tasks
from bench.checkpoints import Criterion

#: The two arms: full-batch gradients, and minibatches (gradient noise).
ARMS = ("full", "minibatch")


@dataclass(frozen=True)
class Preset:
    """The numbers of every claim's sweep. Steps count from each chain's start (``task.init``
    or the memorized checkpoint); ``confirm`` is the window of sustained grokking, after which a
    job whose chains have all confirmed stops."""

    name: str
    task: str
    description: str
    seeds: int  # seeds per sweep point (from init), or memorized checkpoints (from one)
    eval_every: int
    confirm: int
    batch_size: int  # the minibatch arm
    claims: Mapping[str, Any] = field(default_factory=dict)  # claim -> its Settings
    memorized: Criterion = field(default_factory=Criterion)
    task_overrides: Mapping[str, Any] = field(default_factory=dict)  # tasks.make(task, **these)

    def make_task(self, **more: Any) -> Any:
        """The preset's task (with ``more`` settings, e.g. another training fraction)."""
        return tasks.make(self.task, **{**self.task_overrides, **more})

    def arms(self, batch_size: int | None = None) -> dict[str, int | None]:
        """arm -> its batch size (``None``: the full batch)."""
        return {"full": None, "minibatch": batch_size or self.batch_size}

    def settings(self, claim: str) -> Any:
        """``claim``'s own numbers in this preset."""
        if claim not in self.claims:
            raise KeyError(f"preset {self.name!r} has no settings for the claim {claim!r}")
        return self.claims[claim]


#: The CPU preset's shared numbers, measured on add_mod31_quadratic (Gromov's quadratic MLP,
#: D = 46,500) with one torch thread per job on a shared two-core VM (each claim's module gives
#: the measurements behind its own ladder). A step costs 4-6 ms per chain on the full batch on
#: an idle core; with other users loading the two cores (load 7.6) a 24-chain SGLD job on
#: minibatches of 64 ran 2,500 steps in 228 s (3.8 ms per chain-step): the ladders are sized
#: for such a machine. The whole preset (22 jobs, 170 chains, checkpoints and pages included)
#: took 17.7 min of wall-clock on two workers under that load (32 min of worker time). The
#: cross-entropy MLP (add_mod31_mlp) was measured first and set aside: SGD (steps 0.1-2,
#: momentum 0 or 0.9, λ 1e-3-1e-2) had not grokked after 3-4k steps, and λ >= 2e-2 collapses it.
CPU_SHARED = Preset(
    name="cpu",
    task="add_mod31_quadratic",
    description=(
        "Gromov's quadratic MLP on (x + y) mod 31, SGD / SGLD / SGHMC at λ = 1e-4 around step "
        "30 (where gradient descent groks in ~1k steps); every claim in under 30 minutes on two "
        "CPU cores"
    ),
    seeds=3,
    eval_every=20,
    confirm=150,
    batch_size=64,
    # The first evaluation at training accuracy 1 (step 20 of AdamW, ‖θ‖ 23, loss 0.017 = 47 %
    # of its initial 0.036): from compare's default (1 % of it: step 60, ‖θ‖ 34) gradient descent
    # at step 30 diverges within 20 steps.
    memorized=Criterion(train_loss_ratio=0.5),
)

#: The paper preset's shared numbers: Nanda et al.'s add_mod113 (one-layer transformer, 30 % of
#: the pairs) for a GPU. Its ladders are scaled from the CPU preset's shape and have NOT been
#: measured on this task (no GPU was available when it was written): a first run should check
#: that gradient descent groks within the budgets at these step sizes and priors, and widen
#: them if not.
PAPER_SHARED = Preset(
    name="paper",
    task="add_mod113",
    description=(
        "Nanda et al.'s one-layer transformer on (x + y) mod 113 (30 % of the pairs), for a GPU; "
        "ladders scaled from the CPU preset, not yet measured on this task"
    ),
    seeds=4,
    eval_every=50,
    confirm=1000,
    batch_size=512,
)

#: Each preset's shared numbers, by name (without the claims' own: see
#: :data:`bench.theory.claims.PRESETS`).
SHARED: dict[str, Preset] = {p.name: p for p in (CPU_SHARED, PAPER_SHARED)}
