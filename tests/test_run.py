"""The runner: per-chain outcomes, censoring, divergence, and chains that do not interfere."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import pytest
import torch

import samplers
import tasks
from bench.grokking import Tracker, sustained_time
from bench.run import run
from bench.spec import RunSpec

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
        light,
        RunSpec("adamw", hparams, seeds=range(2), budget=3000, eval_every=10, confirm=0),
        progress=False,
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
    result = run(
        small, RunSpec("adamw", ADAMW, seeds=range(2), budget=3, eval_every=1), progress=False
    )
    for chain in result.chains:
        assert chain.t_grok is None and chain.t_grok_grad_evals is None
        assert chain.t_grok_seconds is None and not chain.grokked
        assert chain.censored_at == 3 == result.steps_run


def test_chains_in_one_run_match_separate_runs(small):
    together = run(
        small, RunSpec("adamw", ADAMW, seeds=[3, 4, 5], budget=120, eval_every=10), progress=False
    )
    for c, seed in enumerate([3, 4, 5]):
        alone = run(
            small, RunSpec("adamw", ADAMW, seeds=[seed], budget=120, eval_every=10), progress=False
        )
        assert outcome(together.chains[c]) == outcome(alone.chains[0])
        # float32 sums in a batched matmul of another batch size round differently: 120 steps
        # of AdamW carry that to ~1e-4 relative
        for key, value in alone.chains[0].final.items():
            assert together.chains[c].final[key] == pytest.approx(value, rel=1e-3, abs=1e-6), key


def test_a_grid_of_hyperparameters_runs_as_one_job(small):
    grid = run(
        small,
        RunSpec(
            "sgld",
            {"step_size": [0.01, 0.03], "temperature": [0.0, 1e-06]},
            seeds=[0, 0],
            budget=20,
            eval_every=10,
        ),
        progress=False,
    )
    assert [c.hparams["step_size"] for c in grid.chains] == [1e-2, 3e-2]
    assert [c.hparams["temperature"] for c in grid.chains] == [0.0, 1e-6]
    with pytest.raises(ValueError, match="one value per chain"):
        run(
            small,
            RunSpec("sgld", {"step_size": [0.01, 0.03, 0.1]}, seeds=range(2), budget=2),
            progress=False,
        )


def test_a_diverging_chain_is_marked_frozen_and_reported(small):
    """SGD with a huge step on chain 1 overflows; chain 0 must carry on untouched."""
    result = run(
        small,
        RunSpec("sgd", {"step_size": [0.01, 1e30]}, seeds=[0, 0], budget=30, eval_every=5),
        progress=False,
    )
    good, bad = result.chains
    assert bad.diverged and bad.diverged_step is not None and bad.divergent_transitions > 0
    assert not good.diverged and good.divergent_transitions == 0
    rows = [r for r in result.curves if r["chain"] == 1 and r["step"] >= bad.diverged_step]
    assert len({r["dist_init"] for r in rows}) == 1  # frozen where it stood ...
    assert torch.isfinite(result.theta[1]).all()  # ... at its last finite position
    alone = run(
        small,
        RunSpec("sgd", {"step_size": 0.01}, seeds=[0], budget=30, eval_every=5),
        progress=False,
    )
    assert good.final == pytest.approx(alone.chains[0].final, rel=1e-5, nan_ok=True)


def test_start_from_a_given_theta(small):
    """Ten steps then ten more from where they ended equals twenty steps (gradient descent)."""

    def descend(steps, theta0=None):
        start = "init" if theta0 is None else ["after-10-steps"] * 2  # the start, named
        spec = RunSpec(
            "sgd", {"step_size": 0.05}, seeds=[0, 1], budget=steps, eval_every=steps, start=start
        )
        return run(small, spec, progress=False, theta0=theta0)

    first = descend(10)
    second = descend(10, theta0=first.theta)
    straight = descend(20)
    torch.testing.assert_close(second.theta, straight.theta)


def test_hmc_always_gets_the_full_training_set(small):
    result = run(
        small,
        RunSpec(
            "hmc",
            dict(step_size=0.001, num_leapfrog=3, temperature=0.0001),
            seeds=range(1),
            budget=4,
            eval_every=2,
            batch_size=8,
        ),
        progress=False,
    )
    assert result.batch_size is None
    assert result.grad_evals_per_step == 3  # L a step: 3·4 + 1 = 13 over 4 steps
    assert 0.0 <= result.chains[0].accept_rate <= 1.0


def test_minibatches_are_shared_and_seeded(small):
    def sgd_on_minibatches(data_seed):
        return run(
            small,
            RunSpec(
                "sgd",
                {"step_size": 0.05},
                seeds=range(1),
                budget=10,
                eval_every=10,
                batch_size=8,
                data_seed=data_seed,
            ),
            progress=False,
        )

    a, b, c = sgd_on_minibatches(1), sgd_on_minibatches(1), sgd_on_minibatches(2)
    assert torch.equal(a.theta, b.theta) and not torch.equal(a.theta, c.theta)


def test_a_gaussian_target_runs_for_its_budget():
    result = run(
        tasks.make("gaussian_illcond"),
        RunSpec(
            "sgld",
            {"step_size": 0.001, "temperature": 1.0},
            seeds=range(3),
            budget=50,
            eval_every=10,
        ),
        progress=False,
    )
    assert result.steps_run == 50
    assert all(c.t_mem is None and c.t_grok is None for c in result.chains)
    assert "potential" in result.curves[0]


def test_bad_arguments(small):
    with pytest.raises(ValueError, match="budget"):
        run(small, RunSpec("adamw", ADAMW, seeds=range(1), budget=0), progress=False)
    with pytest.raises(ValueError, match="at least one chain"):
        run(small, RunSpec("adamw", ADAMW, seeds=[], budget=5), progress=False)


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
    result = run(
        task, RunSpec("sgd", {"step_size": 0.1}, seeds=range(2), eval_every=10), progress=False
    )
    hold, collapse = result.chains
    assert result.steps_run == 70 and result.spec.confirm is None
    assert (hold.t_touch, hold.t_grok, hold.generalized) == (20, 50, True)
    assert hold.t_grok_grad_evals == 50 and hold.t_touch_grad_evals == 20
    assert (collapse.t_touch, collapse.t_grok, collapse.generalized) == (10, None, False)
    assert not collapse.grokked and collapse.censored_at == 70


def test_a_finite_window_confirms_refutes_and_stops_when_all_confirmed():
    task = ScriptedTask([TOUCH_THEN_HOLD, HOLD_THEN_COLLAPSE])
    result = run(
        task,
        RunSpec("sgd", {"step_size": 0.1}, seeds=range(2), eval_every=10, confirm=20),
        progress=False,
    )
    hold, collapse = result.chains
    # 20-30 held only 10 steps (refuted at 40); 50-70 held 20: confirmed at 70, from 50
    assert hold.t_grok == 50
    # 10-30 held 20 steps: confirmed at 30, from 10; the run stops once both confirmed
    assert collapse.t_grok == 10 and result.steps_run == 70
    first_touch = run(
        ScriptedTask([TOUCH_THEN_HOLD, HOLD_THEN_COLLAPSE]),
        RunSpec("sgd", {"step_size": 0.1}, seeds=range(2), eval_every=10, confirm=0),
        progress=False,
    )
    assert [c.t_grok for c in first_touch.chains] == [20, 10] and first_touch.steps_run == 20


STEPS = list(range(0, 80, 10))


def test_sustained_time_from_a_curve_hand_cases():
    """The rule of the tracker with no window, read off a recorded curve at any threshold."""
    assert sustained_time(STEPS, TOUCH_THEN_HOLD, 0.99) == 50  # 0.3 at 40 breaks the stretch
    assert sustained_time(STEPS, TOUCH_THEN_HOLD, 0.5) == 50
    assert sustained_time(STEPS, TOUCH_THEN_HOLD, 0.3) == 10  # 0.5 and 0.3 both hold at 0.3
    assert sustained_time(STEPS, HOLD_THEN_COLLAPSE, 0.99) is None  # ends below: censored
    assert sustained_time(STEPS, HOLD_THEN_COLLAPSE, 0.2) == 10
    assert sustained_time(STEPS, TOUCH_THEN_HOLD, 0.99, diverged=True) is None
    assert sustained_time([0, 5], [1.0, 1.0], 0.99) == 0  # held from the first evaluation
    assert sustained_time([0, 5, 9], [1.0, math.nan, 1.0], 0.99) == 9  # NaN breaks a stretch
    assert sustained_time([], [], 0.99) is None
    # any clock of the same evaluations: gradient evaluations of a 4-gradient step
    assert sustained_time([4 * s for s in STEPS], TOUCH_THEN_HOLD, 0.99) == 200
    with pytest.raises(ValueError, match="one value per step"):
        sustained_time([0, 10], [1.0], 0.99)
    with pytest.raises(ValueError, match="strictly increasing"):
        sustained_time([0, 10, 10], [1.0, 1.0, 1.0], 0.99)


def test_sustained_time_agrees_with_the_tracker():
    """On random curves (values on a coarse grid, so ties with the threshold happen) the
    curve's time at the target is the tracker's t_grok with no window, diverged or not."""
    rng = torch.Generator().manual_seed(0)
    for trial in range(300):
        n = int(torch.randint(1, 12, (1,), generator=rng))
        values = (torch.randint(0, 5, (n,), generator=rng) / 4).tolist()  # 0, .25, ... 1
        threshold = [0.5, 0.75, 1.0][trial % 3]
        steps = [10 * i for i in range(n)]
        tracker = Tracker(1, torch.device("cpu"), threshold, confirm=None)
        dies = trial % 7 == 0
        for i, (step, value) in enumerate(zip(steps, values, strict=True)):
            if dies and i == n - 1:
                tracker.mark_dead(torch.tensor([True]), step, "non-finite")
            metrics = {"train_acc": torch.ones(1), "val_acc": torch.tensor([value])}
            tracker.update(step, step, 0.0, metrics, torch.zeros(1, 2))
        mark = tracker.grokked(0)
        expected = mark[0] if mark else None
        assert sustained_time(steps, values, threshold, diverged=dies) == expected, values


def test_sustained_time_reads_t_grok_back_from_a_runs_curves():
    result = run(
        ScriptedTask([TOUCH_THEN_HOLD, HOLD_THEN_COLLAPSE]),
        RunSpec("sgd", {"step_size": 0.1}, seeds=range(2), eval_every=10),
        progress=False,
    )
    for chain in result.chains:
        rows = [r for r in result.curves if r["chain"] == chain.chain]
        curve = [r["step"] for r in rows], [r["val_acc"] for r in rows]
        assert sustained_time(*curve, result.target, diverged=chain.diverged) == chain.t_grok


def test_bad_windows_and_evaluation_intervals_are_refused():
    for kwargs in ({"confirm": -1}, {"eval_every": 0}, {"eval_every": -3}):
        with pytest.raises(ValueError, match="confirm|eval_every"):
            RunSpec("sgd", {"step_size": 0.1}, **kwargs)


# -- the spec: one definition of a run ---------------------------------------------------------
def test_per_chain_values_are_read_from_the_samplers_declarations():
    """A list is one value per chain, except for a pair (AdamW's betas), where a pair of numbers
    is shared and a list of pairs is per chain; defaults fill what the spec leaves out."""
    shared = RunSpec("adamw", {"step_size": [0.1, 0.2], "betas": [0.9, 0.98]}, seeds=[0, 1])
    rows = shared.per_chain()
    assert [r["step_size"] for r in rows] == [0.1, 0.2]
    assert [r["betas"] for r in rows] == [[0.9, 0.98], [0.9, 0.98]]
    assert rows[0]["weight_decay"] == 1.0 and rows[0]["prior_precision"] == 0.0  # defaults
    kwargs = shared.sampler_hparams()
    assert kwargs["betas"] == (0.9, 0.98)
    torch.testing.assert_close(kwargs["step_size"], torch.tensor([0.1, 0.2], dtype=torch.float64))
    varying = RunSpec("adamw", {"betas": [[0.9, 0.98], [0.8, 0.9]]}, seeds=[0, 1])
    assert [r["betas"] for r in varying.per_chain()] == [[0.9, 0.98], [0.8, 0.9]]
    first, second = varying.sampler_hparams()["betas"]
    assert first.tolist() == [0.9, 0.8] and second.tolist() == [0.98, 0.9]
    grid = RunSpec("hmc", {"num_leapfrog": 3}, prior_precision=[1e-4, 1e-3], seeds=[0, 0])
    assert grid.grad_evals_per_step() == 3
    assert [r["prior_precision"] for r in grid.per_chain()] == [1e-4, 1e-3]
    assert grid.prior().dtype == torch.float64 and grid.prior().tolist() == [1e-4, 1e-3]
    with pytest.raises(samplers.HyperparameterError, match="same for every chain"):
        RunSpec("hmc", {"num_leapfrog": [3, 4]}, seeds=[0, 1]).sampler_hparams()
    with pytest.raises(ValueError, match="one value per chain"):
        RunSpec("adamw", {"betas": [[0.9, 0.98]] * 3}, seeds=[0, 1]).per_chain()
    with pytest.raises(samplers.HyperparameterError, match="unknown hyperparameter"):
        RunSpec("sgd", {"temperature": 1.0}).sampler_hparams()


def test_a_chain_records_what_the_sampler_ran(small):
    """The per-chain dicts a result keeps are the spec's per-chain expansion, the values the
    sampler was made with (all of its hyperparameters, defaults included)."""
    spec = RunSpec("adamw", {"step_size": [0.01, 0.02]}, seeds=[0, 1], budget=2, eval_every=1)
    result = run(small, spec, progress=False)
    assert [c.hparams for c in result.chains] == spec.per_chain()
    made = samplers.make("adamw", **spec.sampler_hparams())
    assert set(result.chains[0].hparams) == {*made.hparams, "prior_precision"}


def test_a_spec_is_frozen_and_round_trips_through_json(small):
    spec = RunSpec(
        "adamw",
        {"step_size": [0.01, 0.02], "betas": [0.9, 0.98]},
        prior_precision=[0.0, 1e-4],
        seeds=[3, 4],
        budget=10,
        eval_every=5,
        confirm=5,
        start=["a", "b"],
        data_seed=2,
    )
    with pytest.raises(AttributeError):
        spec.budget = 3
    with pytest.raises(TypeError):
        spec.hparams["step_size"] = 1.0
    text = json.dumps(spec.to_dict())
    back = RunSpec.from_dict(json.loads(text))
    assert back == spec and back.key(small) == spec.key(small) and hash(back) == hash(spec)
    assert pickle.loads(pickle.dumps(spec)) == spec  # to worker processes and Ray
    assert spec.key(small) != dataclasses.replace(spec, data_seed=3).key(small)
    with pytest.raises(ValueError, match="not fields"):
        RunSpec.from_dict({**spec.to_dict(), "steps": 3})


def test_a_result_carries_its_spec_through_the_store(small, tmp_path):
    from bench.store import Store

    spec = RunSpec("sgd", {"step_size": [0.05, 0.1]}, seeds=[0, 1], budget=4, eval_every=2)
    result = run(small, spec, progress=False)
    assert result.spec == spec.resolve(small) and result.spec.key(small) == spec.key(small)
    with Store(tmp_path / "s.sqlite") as store:
        store.put_run(spec.key(small), result, task_config=small.config, seconds_wall=1.0)
        back = store.get_run(spec.key(small)).result
    assert back.spec == result.spec and back.spec.key(small) == spec.key(small)
    assert back.to_dict() == json.loads(json.dumps(result.to_dict()))


def test_the_start_and_the_positions_go_together(small):
    theta = small.init(0, 2)
    with pytest.raises(ValueError, match="give their positions as theta0"):
        run(small, RunSpec("sgd", seeds=[0, 1], budget=1, start=["a", "b"]), progress=False)
    with pytest.raises(ValueError, match="only of one"):
        run(small, RunSpec("sgd", seeds=[0, 1], budget=1), theta0=theta, progress=False)
    with pytest.raises(ValueError, match="one per chain"):
        RunSpec("sgd", seeds=[0, 1], start=["a"])
    with pytest.raises(ValueError, match="3 seeds for a theta0 with 2 chains"):
        run(small, RunSpec("sgd", seeds=[0, 1, 2], start=["a", "b", "c"], budget=1), theta0=theta)
    with pytest.raises(ValueError, match="one checkpoint key per chain"):
        RunSpec("sgd", start="memorized")
