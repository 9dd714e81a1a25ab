"""The frontier's published grokking results, reproduced on their own settings.

``python -m bench frontier`` runs each reproduction's arms (a sampler of the registry at the
published hyperparameters, on the published task, from the task's initialization) through the
store, like every other job (reused on rerun, resumable), and writes one short page per
reproduction under ``reports/frontier/``: what the paper reports, what ran here, how close it
came, and why not where it did not.

A reproduction's score is the time to the paper's own threshold, sustained: the first
evaluation from which validation accuracy stays at or above it to the end of a run that always
goes to its budget (the task's ``target`` is set to the threshold, so it is each chain's
``t_grok``), with Kaplan–Meier medians over seeds. An arm *agrees* with the paper when its
median lies within the published horizon (``reaches_within``), or, for an arm published as not
reaching the threshold, when more than half of its chains do not reach it within the budget.

Reproductions (facts from the papers and their code; the code here is this project's):

- ``prieto``: L. Prieto, M. Barsbey, P. Mediano, T. Birdal, "Grokking at the edge of numerical
  stability" (ICLR 2025), figures 1 and 6: (x + y) mod 113 on 40 % of the pairs, their MLP
  (one-hot inputs, two ReLU layers of 200, no biases: ``tasks.models.OneHotMLP``), full batch,
  cross-entropy in float32; ⊥AdamW (``ortho_adamw``) at lr 1e-2 (figure 1) and 5e-3 (figure 6),
  beta2 0.99, eps 1e-25, no weight decay, reaches high test accuracy within ~300 and ~500 steps,
  with train and test accuracy rising together; AdamW at the same settings does not generalize
  (softmax collapse).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tasks
from bench import formats as fmt
from bench import metrics, plots
from bench.files import atomic_write
from bench.jobs import Job, Runner
from bench.keys import code_version, host_description
from bench.run import RunResult
from bench.spec import RunSpec
from bench.store import Store
from tasks.suggestions import did_you_mean


@dataclass(frozen=True)
class Arm:
    """One published optimizer setting: its row label, the registry's sampler and
    hyperparameters, and what the paper reports for it."""

    label: str
    sampler: str
    hparams: Mapping[str, Any]
    published: str  # the paper's result for this setting, in words
    reaches_within: int | None  # the published horizon in steps; None: published as not reaching
    prior_precision: float = 0.0  # λ: an L2 term in the loss (torch Adam's coupled weight_decay)


@dataclass(frozen=True)
class Reproduction:
    name: str
    title: str
    paper: str
    setting: str  # the published setting, in words
    deviations: str  # what differs here, and why
    task: str
    task_overrides: Mapping[str, Any]
    arms: tuple[Arm, ...]
    seeds: int
    budget: int
    eval_every: int
    threshold: float  # validation accuracy the paper's headline counts
    batch_size: int | None = None  # None: full batch

    def make_task(self) -> Any:
        return tasks.make(self.task, **self.task_overrides, target=self.threshold)

    def jobs(self, seeds: int | None = None) -> list[Job]:
        n = self.seeds if seeds is None else seeds
        return [
            Job(
                RunSpec(
                    arm.sampler,
                    dict(arm.hparams),
                    prior_precision=arm.prior_precision,
                    seeds=tuple(range(n)),
                    budget=self.budget,
                    eval_every=self.eval_every,
                    batch_size=self.batch_size,
                ),
                arm.label,
            )
            for arm in self.arms
        ]


_PRIETO_ADAM = dict(weight_decay=0.0, betas=(0.9, 0.99), eps=1e-25)

REPRODUCTIONS: dict[str, Reproduction] = {
    r.name: r
    for r in (
        Reproduction(
            name="prieto",
            title="⊥AdamW groks without weight decay (Prieto et al. 2025)",
            paper=(
                'L. Prieto, M. Barsbey, P. Mediano, T. Birdal, "Grokking at the edge of numerical '
                'stability", ICLR 2025 (arXiv:2501.04697), figures 1 and 6'
            ),
            setting=(
                "(x + y) mod 113 on 40 % of the pairs; an MLP on one-hot inputs with two ReLU "
                "layers of 200 and no biases; full-batch training with cross-entropy in float32; "
                "⊥AdamW and AdamW with beta2 0.99, eps 1e-25 and no weight decay, lr 1e-2 "
                "(figure 1) and 5e-3 (figure 6)"
            ),
            deviations=(
                "the split is this project's (split seed 0), not torch's random_split under "
                "seed 42; the init is normal with the variance of torch's default uniform "
                "nn.Linear init; ⊥ projects the gradient of all of θ per chain, where the "
                "authors' OrthoGrad projects each tensor and rescales it to the gradient's norm "
                "(samplers/ortho_adamw.py)"
            ),
            task="add_mod113_onehot",
            task_overrides={"frac_train": 0.4},
            arms=(
                Arm(
                    "⊥AdamW lr 1e-2",
                    "ortho_adamw",
                    dict(step_size=1e-2, **_PRIETO_ADAM),
                    "test accuracy near 100 % within its 300-step run, rising with train accuracy",
                    300,
                ),
                Arm(
                    "AdamW lr 1e-2",
                    "adamw",
                    dict(step_size=1e-2, **_PRIETO_ADAM),
                    "memorizes, then softmax collapse: no generalization in float32 (figure 1 "
                    "generalizes only with a float64 softmax or StableMax, over 80,000 steps)",
                    None,
                ),
                Arm(
                    "⊥AdamW lr 5e-3",
                    "ortho_adamw",
                    dict(step_size=5e-3, **_PRIETO_ADAM),
                    "generalizes within its 500-step run",
                    500,
                ),
                Arm(
                    "AdamW lr 5e-3",
                    "adamw",
                    dict(step_size=5e-3, **_PRIETO_ADAM),
                    "no generalization within its 500-step run",
                    None,
                ),
            ),
            seeds=5,
            budget=600,
            eval_every=10,
            threshold=0.95,
        ),
        Reproduction(
            name="grokfast",
            title="Grokfast-EMA groks x·y mod 97 in under a thousand steps (Lee et al. 2024)",
            paper=(
                'J. Lee, B. G. Kang, K. Kim, K. M. Lee, "Grokfast: Accelerated Grokking by '
                'Amplifying Slow Gradients" (arXiv:2405.20233), the algorithmic-data experiment '
                "and the command of their README"
            ),
            setting=(
                "x·y mod 97 (y ≠ 0) on 50 % of the 9,312 pairs; their causal decoder (2 blocks, "
                "width 128, 4 heads) on [x, ∘, y, =]; minibatches of 512; Adam lr 1e-3, betas "
                "(0.9, 0.98), L2 weight decay 0.005, gradients filtered by an EMA (α 0.98) and "
                "amplified (λ 2): 910 steps to 95 % validation accuracy, against 39,890 for Adam "
                "alone (not run here)"
            ),
            deviations=(
                "the read-out has p = 97 outputs, not p + 2; no 10-step warm-up of the rate; "
                "the split is this project's (split seed 0); minibatches are drawn by this "
                "project's epoch shuffler; torch Adam's weight_decay 0.005 adds 0.005·θ to the "
                "gradient, which is the prior precision λ here (½λ‖θ‖² in the loss), and the "
                "filter sees that gradient as theirs does"
            ),
            task="mul_mod97_decoder",
            task_overrides={},
            arms=(
                Arm(
                    "Grokfast-EMA",
                    "adamw",
                    dict(
                        step_size=1e-3,
                        weight_decay=0.0,
                        betas=(0.9, 0.98),
                        grokfast_alpha=0.98,
                        grokfast_lamb=2.0,
                    ),
                    "95 % validation accuracy at 910 steps (one run); agreement here: within "
                    "twice that",
                    1820,
                    prior_precision=0.005,
                ),
            ),
            seeds=3,
            budget=2000,
            eval_every=50,
            threshold=0.95,
            batch_size=512,
        ),
        Reproduction(
            name="cliptogrok",
            title="Lion with weight-norm clipping groks x·y mod 97 in about 550 steps",
            paper=(
                'NiftyliuS, "Clip to Grok: Weight Norm Clipping for Accelerated Generalization" '
                "(github.com/NiftyliuS/cliptogrok), its Lion + clipping run on mul-p97 over 200 "
                "seeds"
            ),
            setting=(
                "Grokfast's task, split and decoder; every weight row projected to norm 2 at "
                "init; Lion lr 1e-3, betas (0.9, 0.97), no weight decay; after every step each "
                "row of every decoder weight clipped to norm ≤ 2 (the token embeddings and the "
                "read-out are left alone): median 550 steps to 95 % validation accuracy "
                "(AdamW with weight decay 0.01: 35,040; Adam + clipping 1,200)"
            ),
            deviations=(
                "Lion's clipping here (samplers/lion.py) clips every unit of every weight matrix, "
                "the read-out included, and every token's and position's embedding row, and "
                "leaves the LayerNorm gains and the biases alone, where theirs clips those two "
                "(each as one vector) and leaves the token embeddings and the read-out alone; "
                "the init projection is theirs (every row, gains and biases as whole vectors); "
                "the read-out has p = 97 outputs, not p + 2; no 10-step warm-up; the split is "
                "this project's"
            ),
            task="mul_mod97_decoder",
            task_overrides={"init_row_norm": 2.0},
            arms=(
                Arm(
                    "Lion + clip 2",
                    "lion",
                    dict(step_size=1e-3, weight_decay=0.0, betas=(0.9, 0.97), max_row_norm=2.0),
                    "median 550 steps to 95 % validation accuracy over 200 seeds; agreement "
                    "here: a median within twice that",
                    1100,
                ),
            ),
            seeds=10,
            budget=1500,
            eval_every=50,
            threshold=0.95,
            batch_size=512,
        ),
    )
}


def check_names(names: Sequence[str]) -> list[Reproduction]:
    """The reproductions named (all when none); an unknown name is a ValueError that names the
    known ones."""
    for name in names:
        if name not in REPRODUCTIONS:
            hint = did_you_mean(name, REPRODUCTIONS, n=2, cutoff=0.4)
            raise ValueError(
                f"unknown reproduction {name!r}; "
                + (hint or f"the reproductions are {', '.join(REPRODUCTIONS)}")
            )
    return [REPRODUCTIONS[n] for n in names] if names else list(REPRODUCTIONS.values())


@dataclass
class ArmOutcome:
    """One arm's chains, summarized: the KM estimate of the time to the threshold (sustained),
    first touches, times to memorize, final validation accuracies, and the verdict."""

    arm: Arm
    result: RunResult
    survival: metrics.Survival = field(init=False)

    def __post_init__(self) -> None:
        chains = self.result.chains
        self.survival = metrics.kaplan_meier(
            [c.t_grok for c in chains], [c.censored_at for c in chains]
        )

    @property
    def agrees(self) -> bool:
        reached = self.survival.median
        if self.arm.reaches_within is None:
            return reached is None
        return reached is not None and reached <= self.arm.reaches_within

    def verdict(self) -> str:
        s, arm, n = self.survival, self.arm, self.survival.n
        got = f"{s.events}/{n} chains reach it, median {fmt.median_ci(s).replace('**', '')}"
        if arm.reaches_within is None:
            if self.agrees:
                return f"agrees: as published, it does not generalize ({got})"
            return f"disagrees: it generalizes here ({got}), where the paper's run did not"
        if self.agrees:
            return f"agrees: within the published {arm.reaches_within} steps ({got})"
        return f"falls short: not within the published {arm.reaches_within} steps ({got})"


def run_reproduction(
    rep: Reproduction,
    store: Store,
    *,
    seeds: int | None = None,
    executor: Any = None,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> list[ArmOutcome]:
    """Train every arm the store lacks; each arm's outcome, in the reproduction's order."""
    task = rep.make_task()
    runner = Runner(task, store, executor=executor, device=device, log=log)
    done = runner.run_all(rep.jobs(seeds))
    return [ArmOutcome(arm, result) for arm, (_, result) in zip(rep.arms, done, strict=True)]


def render_page(rep: Reproduction, outcomes: Sequence[ArmOutcome], figure: str) -> str:
    """The reproduction's page: the published claim, what ran, the arms, the verdicts."""
    task = rep.make_task()
    first = outcomes[0].result
    minutes = sum(o.result.seconds_train + o.result.seconds_eval for o in outcomes) / 60
    lines = [
        f"# {rep.title}",
        "",
        f"**Paper.** {rep.paper}.",
        "",
        f"**Published setting.** {rep.setting}.",
        "",
        f"**Here.** `{task.name}` ({task.description}), {task.num_params:,} parameters, "
        f"{len(first.spec.seeds)} seeds an arm from the task's initialization, "
        f"{fmt.integer(rep.budget)} " + _steps(rep) + f" evaluated every {rep.eval_every}. "
        f"Deviations: {rep.deviations}.",
        "",
        f"**Score.** Steps to validation accuracy ≥ {rep.threshold:g}, sustained to the end of "
        "the run (Kaplan–Meier median over seeds, 95 % interval); *first touch*: the first "
        "evaluation at or above it; *memorized*: the first evaluation with training accuracy "
        "at or above it.",
        "",
        "| | |",
        "|---|---|",
        f"| hardware | {first.device} on {host_description()} |",
        f"| code | `{code_version()}` |",
        f"| compute | {minutes:.1f} min of training and evaluation |",
        "",
        "| arm | sampler | hyperparameters | published | reached | steps to "
        f"{rep.threshold:g} (95% CI) | first touch | memorized (median) | final val acc "
        "(median) | diverged |",
        "|---|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        chains = o.result.chains
        touches = [c.t_touch for c in chains if c.t_touch is not None]
        mems = [c.t_mem for c in chains if c.t_mem is not None]
        finals = [c.final.get("val_acc", math.nan) for c in chains]
        lines.append(
            f"| {o.arm.label} | `{o.arm.sampler}` | {fmt.hparams(o.arm.hparams, symbols=False)}"
            + (f", λ {fmt.number(o.arm.prior_precision)} " if o.arm.prior_precision else " ")
            + f"| {o.arm.published} | {o.survival.events}/{o.survival.n} | "
            f"{fmt.median_ci(o.survival)} | "
            f"{_median_or_dash(touches, len(chains))} | {_median_or_dash(mems, len(chains))} | "
            f"{statistics.median(finals):.3f} | {sum(c.diverged for c in chains)}/{len(chains)} |"
        )
    lines += ["", "## How close it came", ""]
    lines += [f"- **{o.arm.label}** {o.verdict()}." for o in outcomes]
    lines += [
        "",
        f"![validation and training accuracy per arm (median over seeds, and every chain)]"
        f"({figure})",
        "",
        f"Reproduce: `python -m bench frontier {rep.name}` (the runs are reused from the store).",
        "",
    ]
    return "\n".join(lines)


def _steps(rep: Reproduction) -> str:
    if rep.batch_size is None:
        return "full-batch steps"
    return f"steps on minibatches of {rep.batch_size}"


def _median_or_dash(values: Sequence[float], n: int) -> str:
    """The median when more than half of the ``n`` chains have a value, else ``–``."""
    return fmt.integer(statistics.median(values)) if len(values) > n / 2 else "–"


def accuracy_figure(rep: Reproduction, outcomes: Sequence[ArmOutcome]):
    """One panel per arm: each chain's validation accuracy (thin), the median of train and
    validation accuracy (thick), the threshold and the published horizon."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(outcomes), figsize=(3.2 * len(outcomes), 2.8), sharey=True, squeeze=False
    )
    for ax, o in zip(axes[0], outcomes, strict=True):
        rows = o.result.curves
        steps = sorted({r["step"] for r in rows})
        for key, style in (("val_acc", "-"), ("train_acc", "--")):
            grid = np.full((len(o.result.chains), len(steps)), np.nan)
            index = {s: i for i, s in enumerate(steps)}
            for r in rows:
                grid[r["chain"], index[r["step"]]] = r[key]
            if key == "val_acc":
                for line in grid:
                    ax.plot(steps, line, color="C0", alpha=0.25, lw=0.6)
            ax.plot(
                steps,
                np.nanmedian(grid, axis=0),
                style,
                color="C0" if key == "val_acc" else "C1",
                lw=1.6,
                label="validation" if key == "val_acc" else "training",
            )
        ax.axhline(rep.threshold, color="grey", lw=0.6, ls=":")
        if o.arm.reaches_within is not None:
            ax.axvline(o.arm.reaches_within, color="grey", lw=0.6, ls="--")
        ax.set_title(o.arm.label, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7, loc="center right")
    fig.tight_layout()
    return fig


def write_page(rep: Reproduction, outcomes: Sequence[ArmOutcome], folder: Path) -> Path:
    """Write ``folder/<name>.md`` and its figure (atomically); the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{rep.name}.png"
    plots.save_figure(accuracy_figure(rep, outcomes), png)
    page = folder / f"{rep.name}.md"
    atomic_write(page, render_page(rep, outcomes, png.name))
    return page


__all__ = [
    "REPRODUCTIONS",
    "Arm",
    "ArmOutcome",
    "Reproduction",
    "check_names",
    "render_page",
    "run_reproduction",
    "write_page",
]
