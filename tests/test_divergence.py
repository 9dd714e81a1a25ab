"""Divergence named: the runner's norm-growth check, the cause each diverged chain records, and a
spec without the check keeping the key and the records it was stored with."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

import tasks
from bench.keys import digest
from bench.run import RunResult, run
from bench.spec import RunSpec, numerics_version

# SGD at step 10 on this task throws ‖θ‖ from 32 to ~1,300 in its first steps (measured: ×42)
# with every number finite, the loss included; at step 0.01 ‖θ‖ stays at 32.
STEPS = {"step_size": [0.01, 10.0]}


@pytest.fixture(scope="module")
def small():
    return tasks.make("add_mod11", model="mlp", frac_train=0.6, target=0.6)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny models: one torch thread (see conftest)."""


def norms(result, chain):
    return [r["weight_norm"] for r in result.curves if r["chain"] == chain]


def test_a_runaway_norm_is_diverged_not_censored(small):
    spec = RunSpec("sgd", STEPS, seeds=[0, 0], budget=30, eval_every=5, max_norm_growth=10)
    result = run(small, spec, progress=False)
    calm, runaway = result.chains
    assert runaway.diverged and runaway.diverged_cause == "norm growth"
    assert runaway.diverged_step == 5  # the first evaluation that sees it
    assert not runaway.grokked and not runaway.generalized and runaway.t_grok is None
    assert not calm.diverged and calm.diverged_cause is None
    # held where it stood when seen, and the norm it was seen at is past the limit
    held = norms(result, 1)[1:]
    assert len(set(held)) == 1 and held[0] > 10 * norms(result, 1)[0]
    assert all(math.isfinite(runaway.final[k]) for k in ("train_loss", "val_loss", "weight_norm"))
    # without the check the same chain runs on, finite and not diverged
    unchecked = run(small, dataclasses.replace(spec, max_norm_growth=None), progress=False)
    assert [c.diverged for c in unchecked.chains] == [False, False]
    assert unchecked.chains[1].final["weight_norm"] > 10 * norms(unchecked, 1)[0]
    # the calm chain's numbers are the same with or without the check on its neighbour
    assert unchecked.chains[0].final == pytest.approx(calm.final, rel=1e-5, nan_ok=True)


def test_a_generous_limit_changes_nothing(small):
    spec = RunSpec("sgd", STEPS, seeds=[0, 0], budget=20, eval_every=5)
    plain = run(small, spec, progress=False)
    loose = run(small, dataclasses.replace(spec, max_norm_growth=1e6), progress=False)
    for a, b in zip(plain.chains, loose.chains, strict=True):
        assert (a.diverged, a.t_mem, a.t_grok) == (b.diverged, b.t_mem, b.t_grok)
        assert a.final == pytest.approx(b.final, rel=1e-6, nan_ok=True)


def test_the_samplers_flag_is_its_own_cause(small):
    result = run(
        small,
        RunSpec("sgd", {"step_size": [0.01, 1e30]}, seeds=[0, 0], budget=10, eval_every=5),
        progress=False,
    )
    assert [c.diverged_cause for c in result.chains] == [None, "sampler"]


class LossBlowsUp:
    """Two chains on a quadratic whose training loss chain 1 reports as NaN from its second
    evaluation on (a position the sampler saw nothing wrong with)."""

    name = "loss_blows_up"
    description = "a scripted non-finite loss"
    reference: dict = {}
    target = 0.99
    budget = 20
    batch_size = None
    num_params = 2
    config: dict = {}

    def __init__(self):
        self.calls = 0

    def init(self, seed, chains, dtype=torch.float32, device=None):
        return torch.ones(chains, 2, dtype=dtype)

    def potential(self, prior_precision=0.0):
        return lambda theta, batch=None: 0.5 * theta.square().sum(dim=1)

    def evaluate(self, theta):
        self.calls += 1
        loss = torch.tensor([0.0, math.nan if self.calls >= 2 else 0.0])
        ones = torch.ones(2)
        return {"train_loss": loss, "train_acc": ones, "val_loss": loss, "val_acc": ones}

    def batches(self, generator, batch_size=None):
        while True:
            yield None

    def to(self, device):
        return self


def test_a_non_finite_loss_is_its_own_cause():
    result = run(
        LossBlowsUp(),
        RunSpec("sgd", {"step_size": 0.1}, seeds=[0, 0], eval_every=10, max_norm_growth=2),
        progress=False,
    )
    fine, broken = result.chains
    assert (broken.diverged, broken.diverged_cause, broken.diverged_step) == (
        True,
        "non-finite",
        10,
    )
    assert not broken.grokked and fine.grokked and fine.diverged_cause is None


@pytest.mark.parametrize("bad", [1, 1.0, 0.5, 0, -3, math.inf, math.nan, True, "10"])
def test_a_limit_that_cannot_be_one_is_refused(bad):
    with pytest.raises(ValueError, match="max_norm_growth must be a finite number > 1"):
        RunSpec("sgd", max_norm_growth=bad)


def test_without_the_limit_the_key_and_records_are_the_old_ones(small):
    """The payload of a spec without the check is written out here as stores have had it since
    schema 3 (tests/test_store.py checks it against a committed store too)."""
    spec = RunSpec(
        "adamw",
        {"step_size": [0.01, 0.02]},
        prior_precision=[0.0, 1e-4],
        seeds=[3, 4],
        budget=10,
        eval_every=5,
        confirm=5,
        start=["a", "b"],
        data_seed=2,
    )
    old_payload = {
        "task": small.name,
        "task_config": small.config,
        "sampler": "adamw",
        "hparams": {"step_size": [0.01, 0.02]},
        "prior_precision": [0.0, 1e-4],
        "seeds": [3, 4],
        "budget": 10,
        "eval_every": 5,
        "batch_size": None,
        "data_seed": 2,
        "confirm": 5,
        "start": ["a", "b"],
        "numerics": numerics_version("adamw"),
    }
    assert spec.key(small) == digest(old_payload)
    assert "max_norm_growth" not in spec.to_dict() and "max_norm_growth" not in repr(spec)
    checked = dataclasses.replace(spec, max_norm_growth=10)
    assert checked.key(small) == digest({**old_payload, "max_norm_growth": 10.0})
    assert checked.key(small) != dataclasses.replace(spec, max_norm_growth=20).key(small)
    assert checked.key(small) == dataclasses.replace(spec, max_norm_growth=10.0).key(small)
    # an old record (no field) reads back; a checked spec round-trips through JSON
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert RunSpec.from_dict(json.loads(json.dumps(checked.to_dict()))) == checked


def test_a_result_keeps_its_limit_and_causes_through_json(small):
    spec = RunSpec("sgd", STEPS, seeds=[0, 0], budget=10, eval_every=5, max_norm_growth=10)
    result = run(small, spec, progress=False)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["max_norm_growth"] == 10.0
    # a chain that did not diverge writes no cause: its record is the one written before
    assert "diverged_cause" not in data["chains"][0]
    assert data["chains"][1]["diverged_cause"] == "norm growth"
    back = RunResult.from_dict(data)
    assert back.spec == result.spec and back.spec.key(small) == spec.key(small)
    assert [c.diverged_cause for c in back.chains] == [None, "norm growth"]
    plain = run(small, dataclasses.replace(spec, max_norm_growth=None), progress=False)
    assert "max_norm_growth" not in plain.to_dict()
