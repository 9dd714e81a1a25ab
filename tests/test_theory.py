"""``python -m bench theory``: claim names, the replica probe, sweeps trained once through the
store (a killed sweep resumes: only what is missing trains), and the pages it writes."""

from __future__ import annotations

import pickle
import sqlite3
from dataclasses import replace

import pytest
import torch

import tasks
from bench import theory
from bench.__main__ import main
from bench.checkpoints import Criterion
from bench.jobs import LocalExecutor
from bench.store import Store
from bench.theory import sweeps

#: Every claim on a tiny task (24 training pairs) in a few hundred chain-steps: the numbers
#: mean nothing, the plumbing is what is tested.
TINY = replace(
    sweeps.CPU,
    name="tiny",
    task="add_mod7_mlp",
    task_overrides={"width": 32, "d_embed": 16},
    description="a tiny task for the tests",
    seeds=2,
    eval_every=5,
    confirm=20,
    batch_size=8,
    tmem_steps=(0.3, 1.0),
    tmem_hparams={"momentum": 0.9},
    tmem_prior=1e-3,
    tmem_budget=60,
    tmem_eval_every=5,
    drift_hparams={"step_size": 0.3, "temperature": 1e-5},
    drift_prior=1e-3,
    drift_replicas=3,
    drift_groups=2,
    drift_budget=40,
    drift_init_budget=20,
    drift_init_eval_every=2,
    fractions=(0.5, 0.7),
    fraction_hparams={"step_size": 1.0, "momentum": 0.9},
    fraction_prior=1e-3,
    fraction_budget=40,
    eyring_temperatures=(1e-6, 1e-4),
    eyring_samplers={"sgld": {"step_size": 0.3}, "sghmc": {"step_size": 0.03, "friction": 0.1}},
    eyring_prior=1e-3,
    eyring_budget=40,
    decay_priors=(1e-3, 1e-2),
    decay_temperatures=(0.0, 1e-5),
    decay_hparams={"step_size": 0.3},
    decay_budget=40,
    decay_seeds=2,
    memorized=Criterion(val_acc_below=1.01, max_steps=2_000),
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- claim names ------------------------------------------------------------------------------
def test_claims_default_to_all_in_order_and_unknown_names_get_a_did_you_mean():
    assert sweeps.check_claims([]) == list(sweeps.CLAIMS)
    assert sweeps.check_claims(["eyring", "fraction"]) == ["fraction", "eyring"]
    with pytest.raises(sweeps.UnknownClaim, match="did you mean 'eyring'"):
        sweeps.check_claims(["eyrng"])
    with pytest.raises(sweeps.UnknownClaim, match="the claims are"):
        sweeps.check_claims(["zzz"])


def test_a_bad_claim_name_exits_2_with_a_suggestion_and_writes_nothing(tmp_path, capsys):
    args = ["theory", "tgrok_tmem", "--store", str(tmp_path / "s.sqlite")]
    assert main([*args, "--reports", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown claim 'tgrok_tmem'" in err and "did you mean 'tgrok_tmem2'" in err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_task_exits_2_before_the_store_is_made(tmp_path, capsys):
    args = ["theory", "eyring", "--task", "add_mod31_quadratc", "--preset", "cpu"]
    assert main([*args, "--store", str(tmp_path / "s.sqlite"), "--reports", str(tmp_path)]) == 2
    assert "did you mean 'add_mod31_quadratic'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_every_preset_plans_its_claims_on_its_task_without_training():
    for preset in sweeps.PRESETS.values():
        assert preset.make_task().name == preset.task
        for claim in sweeps.CLAIMS:
            assert sweeps.check_claims([claim]) == [claim]
    task = TINY.make_task()
    fake = {s: _Point(s, task) for s in range(2)}
    planned = sweeps.plan(sweeps.CLAIMS, TINY, task, fake)
    by_claim = {c: [p for p in planned if p.claim == c] for c in sweeps.CLAIMS}
    assert {p.arm for p in planned} == {"full", "minibatch"}
    assert {p.job.batch_size for p in planned} == {None, 8}
    # a ladder (or a factorial) is one job per arm and sampler, one value per chain
    (tmem, _) = by_claim["tgrok_tmem2"]
    assert tmem.job.hparams["step_size"] == [0.3, 0.3, 1.0, 1.0]
    assert len(by_claim["eyring"]) == 4  # sgld, sghmc x two arms
    (decay, _) = by_claim["weight_decay"]
    assert len(decay.job.seeds) == 2 * 2 * 2 and len(decay.job.prior_precision) == 8
    assert len(by_claim["fraction"]) == 2 * len(TINY.fractions)
    assert len({p.key for p in planned}) == len(planned)


class _Point:
    """A stand-in for a memorized checkpoint (key, seed, step, theta)."""

    def __init__(self, seed, task):
        self.seed, self.key, self.step = seed, f"ckpt{seed}", 10
        self.theta = task.init(seed, 1)[0]


# -- the replica probe ------------------------------------------------------------------------
def test_the_replica_probe_reports_the_gram_matrix_of_each_group_and_pickles():
    task = tasks.make("add_mod7_mlp", width=32, d_embed=16)
    origins = task.init(0, 2)
    probe = sweeps.ReplicaProbe(task, 3, origins, ["a", "b"])
    theta = origins.repeat_interleave(3, 0) + 0.1 * torch.randn(6, origins.shape[1])
    out = probe.evaluate(theta)
    assert {"train_acc", "val_acc", "gram_0", "gram_2"} <= set(out)
    d = (theta - origins.repeat_interleave(3, 0)).double()
    for c in range(6):
        g = c // 3
        for j in range(3):
            expect = float(d[c] @ d[3 * g + j])
            assert float(out[f"gram_{j}"][c]) == pytest.approx(expect, rel=1e-5)
    assert probe.config["probe"] == {"replicas": 3, "origins": ["a", "b"]}
    assert probe.name == task.name and probe.target == task.target
    again = pickle.loads(pickle.dumps(probe))
    assert torch.equal(again.evaluate(theta)["gram_1"], out["gram_1"])


# -- trained once through the store; a killed sweep resumes --------------------------------------
def test_a_sweep_trains_once_and_after_losing_a_run_retrains_only_that_one(tmp_path):
    claims = ["tgrok_tmem2", "weight_decay"]
    lines: list[str] = []
    with Store(tmp_path / "s.sqlite") as store:
        task = TINY.make_task()
        points = sweeps.memorized_points(
            task, sweeps.checkpoint_seeds(claims, TINY), TINY, store, log=lines.append
        )
        thetas = {c.key: c.theta for c in points.values()}
        planned = sweeps.plan(claims, TINY, task, points)
        assert sweeps.run_plan(planned, store, thetas, log=lines.append) == (4, 0)
        assert store.count("runs") == 4
        assert sweeps.run_plan(planned, store, thetas, log=lines.append) == (0, 4)
        lost = planned[1].key  # as if killed while it trained: never committed
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("DELETE FROM chains WHERE run_key = ?", (lost,))
        db.execute("DELETE FROM runs WHERE key = ?", (lost,))
    with Store(tmp_path / "s.sqlite") as store:
        ran: list[str] = []
        assert sweeps.run_plan(planned, store, thetas, log=ran.append) == (1, 3)
        assert len(ran) == 1 and planned[1].job.label in ran[0]
        assert store.count("runs") == 4 and store.count("checkpoints") == 2


def test_a_claim_writes_its_page_figure_and_the_index(tmp_path):
    reports = tmp_path / "theory"
    with Store(tmp_path / "s.sqlite") as store:
        results = theory.run_theory(
            ["drift_diffusion"], TINY, store, reports, executor=LocalExecutor(1), log=print
        )
    folder = reports / "add_mod7_mlp"
    assert sorted(p.name for p in folder.iterdir()) == [
        "drift_diffusion.json",
        "drift_diffusion.md",
        "drift_diffusion.png",
        "drift_diffusion.svg",
    ]
    page = (folder / "drift_diffusion.md").read_text()
    assert "## Verdict" in page and "drift_diffusion.png" in page and "95 %" in page
    assert results["drift_diffusion"].summary  # exponents were fitted
    index = (reports / "README.md").read_text()
    assert "[drift_diffusion](add_mod7_mlp/drift_diffusion.md)" in index


@pytest.mark.slow
def test_every_claim_runs_end_to_end_on_a_tiny_task(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        results = theory.run_theory([], TINY, store, tmp_path / "r", executor=LocalExecutor(1))
    assert list(results) == list(sweeps.CLAIMS)
    for claim in sweeps.CLAIMS:
        assert (tmp_path / "r" / "add_mod7_mlp" / f"{claim}.svg").exists()
        assert results[claim].verdict
