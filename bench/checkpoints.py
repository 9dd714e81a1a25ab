"""Memorized starting points, the start of the exploration protocol.

The claim under test is about what happens *after* memorization: once the training loss is
~0, does a sampler that explores better than a random walk reach the generalizing region in
fewer gradient evaluations? So every sampler starts from the same memorized point. Per seed,
the task's reference optimizer (``task.reference``, e.g. Nanda et al.'s full-batch AdamW) runs
from ``task.init(seed, 1)`` and is stopped at the first evaluation where the
:class:`Criterion` holds: training accuracy at least ``train_acc``, mean training loss below
``train_loss_ratio`` times its value at initialization (1%: cross-entropy at chance on 113
classes is 4.7, so 0.047; the same rule serves a mean-squared-error model, whose loss starts two
orders of magnitude lower), and validation accuracy still below ``val_acc_below`` (a point that
already generalizes is no start for a race to generalization; a seed whose reference optimizer
generalizes first is refused with the numbers). The checkpoint is made once, kept in the store
under a key of the task, the seed, the reference optimizer and the criterion, and reused by
every sampler and every later comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from bench.keys import NUMERICS_VERSION, code_version, digest
from bench.run import run
from bench.spec import RunSpec
from bench.store import Checkpoint, Store


class CheckpointError(ValueError):
    """No memorized checkpoint meeting the criterion could be made."""


@dataclass(frozen=True)
class Criterion:
    """When the reference optimizer's run counts as memorized (a protocol setting)."""

    train_acc: float = 1.0
    train_loss_ratio: float = 0.01  # of the training loss at initialization
    val_acc_below: float = 0.9
    eval_every: int = 10  # steps between the checks
    max_steps: int = 5_000  # give up (CheckpointError) past this

    def holds(self, metrics: dict[str, Tensor], initial_loss: Tensor) -> Tensor:
        """``(C,)`` bool: memorized by the training criteria (validation is checked apart)."""
        return (metrics["train_acc"] >= self.train_acc) & (
            metrics["train_loss"] < self.train_loss_ratio * initial_loss
        )


def checkpoint_key(task: Any, seed: int, criterion: Criterion) -> str:
    return digest(
        {
            "task": task.name,
            "task_config": task.config,
            "reference": task.reference,
            "seed": seed,
            "criterion": asdict(criterion),
            "numerics": NUMERICS_VERSION,
        }
    )


def memorized(
    task: Any,
    seeds: Sequence[int],
    criterion: Criterion,
    store: Store,
    *,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> list[Checkpoint]:
    """The checkpoints of ``seeds`` (in order), made where the store lacks them: one vectorized
    run of the reference optimizer over the missing seeds."""
    keys = {s: checkpoint_key(task, s, criterion) for s in seeds}
    found = {s: store.get_checkpoint(k) for s, k in keys.items()}
    missing = [s for s in seeds if found[s] is None]
    if missing:
        for made in _make(task, missing, criterion, keys, device):
            store.put_checkpoint(made)
            found[made.seed] = made
        steps = sorted(found[s].step for s in missing)
        log(f"  memorized checkpoints for seeds {missing}: reached at steps {steps}")
    return [found[s] for s in seeds]


def _make(task, seeds, criterion: Criterion, keys, device) -> list[Checkpoint]:
    hparams = dict(task.reference)
    sampler = hparams.pop("sampler")
    prior = hparams.pop("prior_precision", 0.0)
    caught: dict[int, tuple[int, Tensor, dict[str, float]]] = {}
    initial: list[Tensor] = []

    def catch(step: int, metrics: dict[str, Tensor], theta: Tensor) -> bool:
        if not initial:  # the first evaluation is at step 0: the loss at initialization
            initial.append(metrics["train_loss"].clone())
        ok = criterion.holds(metrics, initial[0]).tolist()
        for c, seed in enumerate(seeds):
            if ok[c] and seed not in caught:
                point = {k: float(v[c]) for k, v in metrics.items()}
                caught[seed] = (step, theta[c].detach().to("cpu").clone(), point)
        return len(caught) == len(seeds)

    spec = RunSpec(
        sampler,
        hparams,
        prior_precision=prior,
        seeds=seeds,
        budget=criterion.max_steps,
        eval_every=criterion.eval_every,
        confirm=0,
    )
    result = run(task, spec, device=device, progress=False, on_eval=catch)
    out = []
    for c, seed in enumerate(seeds):
        if seed not in caught:
            final = result.chains[c].final
            raise CheckpointError(
                f"{task.name}, seed {seed}: the reference optimizer ({sampler}) did not meet the "
                f"memorization criterion {asdict(criterion)} within {criterion.max_steps} steps "
                f"(train acc {final.get('train_acc', float('nan')):.3f}, train loss "
                f"{final.get('train_loss', float('nan')):.3g} at the end)"
            )
        step, theta, metrics = caught[seed]
        if metrics["val_acc"] >= criterion.val_acc_below:
            raise CheckpointError(
                f"{task.name}, seed {seed}: when the reference optimizer memorized (step {step}, "
                f"train loss {metrics['train_loss']:.3g}) validation accuracy was already "
                f"{metrics['val_acc']:.3f} >= {criterion.val_acc_below}: that is no start for a "
                "race to generalization; raise train_loss_ratio or choose another task"
            )
        out.append(
            Checkpoint(
                key=keys[seed],
                task=task.name,
                seed=seed,
                criterion=asdict(criterion),
                step=step,
                metrics=metrics,
                theta=theta,
                code_version=code_version(),
            )
        )
    return out


def stack(checkpoints: Sequence[Checkpoint]) -> Tensor:
    """``(C, D)`` starting positions, one row per checkpoint."""
    return torch.stack([c.theta.to(torch.float32) for c in checkpoints])
