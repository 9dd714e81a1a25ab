"""The runner: per-chain outcomes, censoring, divergence, and chains that do not interfere."""

from __future__ import annotations

import math

import pytest
import torch

import tasks
from bench.run import run

ADAMW = dict(step_size=1e-2, weight_decay=1.0, betas=(0.9, 0.98))


@pytest.fixture(scope="module")
def small():
    """A task small enough to train for a few hundred steps in a second: (x + y) mod 11 with an
    embedding MLP, and a lowered target so memorisation and generalisation both happen fast."""
    return tasks.make("add_mod11", model="mlp", frac_train=0.6, target=0.6)


def outcome(chain):
    return (chain.t_mem, chain.t_grok, chain.diverged, chain.censored_at)


def test_records_memorisation_and_generalisation():
    light = tasks.make("add_mod31_quadratic")  # memorizes at ~20 AdamW steps, groks at ~230
    hparams = {k: v for k, v in light.reference.items() if k != "sampler"}
    result = run(
        light, "adamw", hparams, seeds=2, budget=3000, eval_every=10, progress=False, confirm=0
    )
    assert result.steps_run < 3000 and len(result.chains) == 2
    for chain in result.chains:
        assert chain.memorized and chain.grokked
        assert chain.t_mem % 10 == 0 and chain.t_grok % 10 == 0  # resolution = eval_every
        assert chain.t_mem_grad_evals == chain.t_mem  # AdamW: one gradient per step
        assert chain.t_grok >= 3 * chain.t_mem  # grokking: a clear delay
        assert 0 < chain.t_mem_seconds < chain.t_grok_seconds
        assert not chain.diverged
    # it stopped as soon as every chain had reached the target
    assert result.steps_run == max(c.t_grok for c in result.chains)
    # the curves hold one row per (evaluation, chain), starting at step 0
    steps = sorted({row["step"] for row in result.curves})
    assert steps[0] == 0 and steps[-1] == result.steps_run
    assert len(result.curves) == 2 * len(steps)
    assert {"train_acc", "val_acc", "weight_norm", "dist_init", "dist_mem", "accept"} <= set(
        result.curves[0]
    )
    # distance from the position at t_mem is undefined before t_mem, zero at it
    chain0 = [r for r in result.curves if r["chain"] == 0]
    at_mem = next(r for r in chain0 if r["step"] == result.chains[0].t_mem)
    assert at_mem["dist_mem"] == 0.0
    assert all(math.isnan(r["dist_mem"]) for r in chain0 if r["step"] < at_mem["step"])


def test_unreached_targets_are_censored_not_counted_as_the_budget(small):
    result = run(small, "adamw", ADAMW, seeds=2, budget=3, eval_every=1, progress=False)
    for chain in result.chains:
        assert chain.t_grok is None and chain.t_grok_grad_evals is None
        assert chain.t_grok_seconds is None and not chain.grokked
        assert chain.censored_at == 3 == result.steps_run


def test_chains_in_one_run_match_separate_runs(small):
    together = run(
        small,
        "adamw",
        ADAMW,
        seeds=[3, 4, 5],
        budget=120,
        eval_every=10,
        progress=False,
    )
    for c, seed in enumerate([3, 4, 5]):
        alone = run(
            small,
            "adamw",
            ADAMW,
            seeds=[seed],
            budget=120,
            eval_every=10,
            progress=False,
        )
        assert outcome(together.chains[c]) == outcome(alone.chains[0])
        # float32 sums in a batched matmul of another batch size round differently: 120 steps
        # of AdamW carry that to ~1e-4 relative
        for key, value in alone.chains[0].final.items():
            assert together.chains[c].final[key] == pytest.approx(value, rel=1e-3, abs=1e-6), key


def test_a_grid_of_hyperparameters_runs_as_one_job(small):
    grid = run(
        small,
        "sgld",
        {"step_size": [1e-2, 3e-2], "temperature": [0.0, 1e-6]},
        seeds=[0, 0],
        budget=20,
        eval_every=10,
        progress=False,
    )
    assert [c.hparams["step_size"] for c in grid.chains] == [1e-2, 3e-2]
    assert [c.hparams["temperature"] for c in grid.chains] == [0.0, 1e-6]
    with pytest.raises(ValueError, match="one value per chain"):
        run(small, "sgld", {"step_size": [1e-2, 3e-2, 1e-1]}, seeds=2, budget=2, progress=False)


def test_a_diverging_chain_is_marked_frozen_and_reported(small):
    """SGD with a huge step on chain 1 overflows; chain 0 must carry on untouched."""
    result = run(
        small,
        "sgd",
        {"step_size": [1e-2, 1e30]},
        seeds=[0, 0],
        budget=30,
        eval_every=5,
        progress=False,
    )
    good, bad = result.chains
    assert bad.diverged and bad.diverged_step is not None and bad.divergent_transitions > 0
    assert not good.diverged and good.divergent_transitions == 0
    rows = [r for r in result.curves if r["chain"] == 1 and r["step"] >= bad.diverged_step]
    assert len({r["dist_init"] for r in rows}) == 1  # frozen where it stood ...
    assert torch.isfinite(result.theta[1]).all()  # ... at its last finite position
    alone = run(
        small, "sgd", {"step_size": 1e-2}, seeds=[0], budget=30, eval_every=5, progress=False
    )
    assert good.final == pytest.approx(alone.chains[0].final, rel=1e-5, nan_ok=True)


def test_start_from_a_given_theta(small):
    """Ten steps then ten more from where they ended equals twenty steps (gradient descent)."""

    def descend(steps, theta0=None):
        return run(
            small,
            "sgd",
            {"step_size": 0.05},
            seeds=2,
            budget=steps,
            eval_every=steps,
            progress=False,
            theta0=theta0,
        )

    first = descend(10)
    second = descend(10, theta0=first.theta)
    straight = descend(20)
    torch.testing.assert_close(second.theta, straight.theta)


def test_hmc_always_gets_the_full_training_set(small):
    result = run(
        small,
        "hmc",
        dict(step_size=1e-3, num_leapfrog=3, temperature=1e-4),
        seeds=1,
        budget=4,
        eval_every=2,
        batch_size=8,
        progress=False,
    )
    assert result.batch_size is None
    assert result.grad_evals_per_step == 3  # L a step: 3·4 + 1 = 13 over 4 steps
    assert 0.0 <= result.chains[0].accept_rate <= 1.0


def test_minibatches_are_shared_and_seeded(small):
    def sgd_on_minibatches(data_seed):
        return run(
            small,
            "sgd",
            {"step_size": 0.05},
            seeds=1,
            budget=10,
            eval_every=10,
            batch_size=8,
            progress=False,
            data_seed=data_seed,
        )

    a, b, c = sgd_on_minibatches(1), sgd_on_minibatches(1), sgd_on_minibatches(2)
    assert torch.equal(a.theta, b.theta) and not torch.equal(a.theta, c.theta)


def test_a_gaussian_target_runs_for_its_budget():
    result = run(
        tasks.make("gaussian_illcond"),
        "sgld",
        {"step_size": 1e-3, "temperature": 1.0},
        seeds=3,
        budget=50,
        eval_every=10,
        progress=False,
    )
    assert result.steps_run == 50
    assert all(c.t_mem is None and c.t_grok is None for c in result.chains)
    assert "potential" in result.curves[0]


def test_bad_arguments(small):
    with pytest.raises(ValueError, match="budget"):
        run(small, "adamw", ADAMW, seeds=1, budget=0, progress=False)
    with pytest.raises(ValueError, match="at least one chain"):
        run(small, "adamw", ADAMW, seeds=[], budget=5, progress=False)


class ScriptedTask:
    """A task whose validation accuracy follows a script per chain (one entry per evaluation,
    the first at step 0): the tracker's rules are checked on known sequences."""

    name = "scripted"
    description = "scripted accuracies"
    reference: dict = {}
    target = 0.99
    budget = 70
    batch_size = None
    num_params = 2

    def __init__(self, script):
        self.script = [list(s) for s in script]
        self.config = {"script": self.script}
        self.calls = 0

    def init(self, seed, chains, dtype=torch.float32, device=None):
        return torch.zeros(chains, 2, dtype=dtype)

    def potential(self, prior_precision=0.0):
        return lambda theta, batch=None: 0.5 * theta.square().sum(dim=1)

    def evaluate(self, theta):
        i = min(self.calls, len(self.script[0]) - 1)
        self.calls += 1
        val = torch.tensor([s[i] for s in self.script])
        return {
            "train_loss": torch.zeros(len(val)),
            "train_acc": torch.ones(len(val)),
            "val_loss": 1 - val,
            "val_acc": val,
        }

    def batches(self, generator, batch_size=None):
        while True:
            yield None

    def batch(self):
        return None

    def to(self, device):
        return self


#: evaluations every 10 steps at steps 0, 10, ..., 70
TOUCH_THEN_HOLD = [0, 0.5, 1, 1, 0.3, 1, 1, 1]  # touches at 20, falls at 40, holds from 50
HOLD_THEN_COLLAPSE = [0, 1, 1, 1, 1, 1, 0.2, 0.2]  # holds 10-50, then collapses


def test_touch_then_fall_back_is_not_grokking():
    """The default window is the rest of the run: only a stretch that holds to the end counts."""
    task = ScriptedTask([TOUCH_THEN_HOLD, HOLD_THEN_COLLAPSE])
    result = run(task, "sgd", {"step_size": 0.1}, seeds=2, eval_every=10, progress=False)
    hold, collapse = result.chains
    assert result.steps_run == 70 and result.confirm is None
    assert (hold.t_touch, hold.t_grok, hold.generalized) == (20, 50, True)
    assert hold.t_grok_grad_evals == 50 and hold.t_touch_grad_evals == 20
    assert (collapse.t_touch, collapse.t_grok, collapse.generalized) == (10, None, False)
    assert not collapse.grokked and collapse.censored_at == 70


def test_a_finite_window_confirms_refutes_and_stops_when_all_confirmed():
    task = ScriptedTask([TOUCH_THEN_HOLD, HOLD_THEN_COLLAPSE])
    result = run(
        task, "sgd", {"step_size": 0.1}, seeds=2, eval_every=10, progress=False, confirm=20
    )
    hold, collapse = result.chains
    # 20-30 held only 10 steps (refuted at 40); 50-70 held 20: confirmed at 70, from 50
    assert hold.t_grok == 50
    # 10-30 held 20 steps: confirmed at 30, from 10; the run stops once both confirmed
    assert collapse.t_grok == 10 and result.steps_run == 70
    first_touch = run(
        ScriptedTask([TOUCH_THEN_HOLD, HOLD_THEN_COLLAPSE]),
        "sgd",
        {"step_size": 0.1},
        seeds=2,
        eval_every=10,
        progress=False,
        confirm=0,
    )
    assert [c.t_grok for c in first_touch.chains] == [20, 10] and first_touch.steps_run == 20


def test_bad_windows_and_evaluation_intervals_are_refused():
    task = ScriptedTask([TOUCH_THEN_HOLD])
    for kwargs in ({"confirm": -1}, {"eval_every": 0}, {"eval_every": -3}):
        with pytest.raises(ValueError, match="confirm|eval_every"):
            run(task, "sgd", {"step_size": 0.1}, seeds=1, progress=False, **kwargs)
