"""``python -m bench theory``: claim names, the replica probe, sweeps trained once through the
store (a killed sweep resumes: only what is missing trains), and the pages it writes."""

from __future__ import annotations

import ast
import importlib
import pickle
import sqlite3
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import tasks
from bench import theory
from bench.__main__ import main
from bench.checkpoints import Criterion
from bench.jobs import LocalExecutor
from bench.store import Store
from bench.theory import claims, fits, runner
from bench.theory.claims import Chains, drift_diffusion, eyring, fraction, tgrok_tmem2, weight_decay
from bench.theory.claims.base import (
    CONTRADICTED,
    STATUSES,
    SUPPORTED,
    UNTESTABLE,
    Section,
    page_status,
)
from bench.theory.preset import SHARED
from bench.theory.probe import ReplicaProbe

#: Every claim on a tiny task (24 training pairs) in a few hundred chain-steps: the numbers
#: mean nothing, the plumbing is what is tested.
TINY = replace(
    theory.PRESETS["cpu"],
    name="tiny",
    task="add_mod7_mlp",
    task_overrides={"width": 32, "d_embed": 16},
    description="a tiny task for the tests",
    seeds=2,
    eval_every=5,
    confirm=20,
    batch_size=8,
    memorized=Criterion(val_acc_below=1.01, max_steps=2_000),
    claims={
        "tgrok_tmem2": tgrok_tmem2.Settings(
            steps=(0.3, 1.0), hparams={"momentum": 0.9}, prior=1e-3, budget=60, eval_every=5
        ),
        "drift_diffusion": drift_diffusion.Settings(
            hparams={"step_size": 0.3, "temperature": 1e-5},
            prior=1e-3,
            replicas=3,
            groups=2,
            budget=40,
            init_budget=20,
            init_eval_every=2,
        ),
        "fraction": fraction.Settings(
            fractions=(0.5, 0.7), hparams={"step_size": 1.0, "momentum": 0.9}, prior=1e-3, budget=40
        ),
        "eyring": eyring.Settings(
            temperatures=(1e-6, 1e-4),
            samplers={"sgld": {"step_size": 0.3}, "sghmc": {"step_size": 0.03, "friction": 0.1}},
            prior=1e-3,
            budget=40,
        ),
        "weight_decay": weight_decay.Settings(
            priors=(1e-3, 1e-2),
            temperatures=(0.0, 1e-5),
            hparams={"step_size": 0.3},
            budget=40,
            seeds=2,
        ),
    },
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- claim names ------------------------------------------------------------------------------
def test_claims_default_to_all_in_order_and_unknown_names_get_a_did_you_mean():
    assert claims.check_claims([]) == list(claims.CLAIMS)
    assert claims.check_claims(["eyring", "fraction"]) == ["fraction", "eyring"]
    with pytest.raises(claims.UnknownClaim, match="did you mean 'eyring'"):
        claims.check_claims(["eyrng"])
    with pytest.raises(claims.UnknownClaim, match="the claims are"):
        claims.check_claims(["zzz"])


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
    for preset in claims.PRESETS.values():
        assert preset.make_task().name == preset.task
        for claim in claims.CLAIMS:
            assert claims.check_claims([claim]) == [claim]
    task = TINY.make_task()
    fake = {s: _Point(s, task) for s in range(2)}
    planned = claims.plan(claims.CLAIMS, TINY, task, fake)
    by_claim = {c: [p for p in planned if p.claim == c] for c in claims.CLAIMS}
    assert {p.arm for p in planned} == {"full", "minibatch"}
    assert {p.job.spec.batch_size for p in planned} == {None, 8}
    # a ladder (or a factorial) is one job per arm and sampler, one value per chain
    # the step ladder in both arms, and Kozyrev's λ = 0 ladder in the minibatch arm
    (tmem, mini, kozyrev) = by_claim["tgrok_tmem2"]
    assert list(tmem.job.spec.hparams["step_size"]) == [0.3, 0.3, 1.0, 1.0]
    assert (mini.arm, kozyrev.arm) == ("minibatch", "minibatch")
    assert (mini.job.spec.prior_precision, kozyrev.job.spec.prior_precision) == (
        TINY.settings("tgrok_tmem2").prior,
        0.0,
    )
    assert len(by_claim["eyring"]) == 4  # sgld, sghmc x two arms
    (decay, _) = by_claim["weight_decay"]
    assert decay.job.spec.chains == 2 * 2 * 2 and len(decay.job.spec.prior_precision) == 8
    assert len(by_claim["fraction"]) == 2 * len(TINY.settings("fraction").fractions)
    assert len({p.key for p in planned}) == len(planned)


CLAIM_MODULES = sorted(
    f.stem
    for f in Path(claims.__file__).parent.glob("*.py")
    if f.stem not in {"__init__", "base", "common", "regime"}
)


@pytest.mark.parametrize("module", CLAIM_MODULES)
def test_every_claim_module_is_one_registered_room_with_numbers_in_every_preset(module):
    mod = importlib.import_module(f"bench.theory.claims.{module}")
    assert mod.CLAIM.name == module and claims.REGISTRY[module] is mod.CLAIM
    assert set(mod.CLAIM.presets) == set(SHARED) == set(claims.PRESETS)
    for name, preset in claims.PRESETS.items():
        assert isinstance(preset.settings(module), mod.Settings)
        assert preset.settings(module) is mod.CLAIM.presets[name]
    assert list(claims.CLAIMS) == list(claims.REGISTRY) and len(CLAIM_MODULES) == 5


def test_every_theory_job_is_built_by_one_function():
    """bench.theory.plan.job is the one place a Job is made (so a change of Job's shape
    touches one function)."""
    makers = []
    for path in Path(theory.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Job":
                makers.append(path.name)
    assert makers == ["plan.py"]


class _Point:
    """A stand-in for a memorized checkpoint (key, seed, step, theta)."""

    def __init__(self, seed, task):
        self.seed, self.key, self.step = seed, f"ckpt{seed}", 10
        self.theta = task.init(seed, 1)[0]


def test_a_fraction_whose_chains_all_diverged_reads_as_a_dash_beside_the_others():
    def run(frac, diverged):
        chains = [
            SimpleNamespace(
                diverged=diverged,
                t_grok=t,
                t_mem=10,
                censored_at=100,
                generalized=False,
                hparams={"step_size": 30.0},
            )
            for t in (40, 60, 80)
        ]
        spec = SimpleNamespace(eval_every=5, confirm=20, sampler="sgd", prior_precision=1e-4)
        curves = [
            {"chain": c, "step": step, "weight_norm": 20.0 - step / 10}
            for c in range(3)
            for step in (10, 40, 60, 80)
        ]
        result = SimpleNamespace(chains=chains, spec=spec, batch_size=None, curves=curves)
        task = SimpleNamespace(batch=lambda: (None, [0] * int(49 * frac)), num_params=1000)
        planned = SimpleNamespace(arm="full", meta={"fraction": frac}, task=task, key=str(frac))
        return Chains(planned, SimpleNamespace(result=result))

    out = fraction.analyse([run(0.5, True), run(0.6, False), run(0.7, False)], TINY)
    (caption, table) = out.sections[0].tables[0]
    assert table.rows[0] == ["0.5", "24", "0/0", "–", "–"]
    assert [row[2] for row in table.rows[1:]] == ["3/3", "3/3"]
    assert "3 diverged or never memorized, left out" in " ".join(out.sections[0].notes)


# -- the replica probe ------------------------------------------------------------------------
def test_the_replica_probe_reports_the_gram_matrix_of_each_group_and_pickles():
    task = tasks.make("add_mod7_mlp", width=32, d_embed=16)
    origins = task.init(0, 2)
    probe = ReplicaProbe(task, 3, origins, ["a", "b"])
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
    names = ["tgrok_tmem2", "weight_decay"]
    lines: list[str] = []
    with Store(tmp_path / "s.sqlite") as store:
        task = TINY.make_task()
        points = runner.memorized_points(
            task, claims.checkpoint_seeds(names, TINY), TINY, store, log=lines.append
        )
        thetas = {c.key: c.theta for c in points.values()}
        planned = claims.plan(names, TINY, task, points)
        assert runner.run_plan(planned, store, thetas, log=lines.append) == (5, 0)
        assert store.count("runs") == 5
        assert runner.run_plan(planned, store, thetas, log=lines.append) == (0, 5)
        lost = planned[1].key  # as if killed while it trained: never committed
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        db.execute("DELETE FROM chains WHERE run_key = ?", (lost,))
        db.execute("DELETE FROM runs WHERE key = ?", (lost,))
    with Store(tmp_path / "s.sqlite") as store:
        ran: list[str] = []
        assert runner.run_plan(planned, store, thetas, log=ran.append) == (1, 4)
        assert len(ran) == 1 and planned[1].job.label in ran[0]
        assert store.count("runs") == 5 and store.count("checkpoints") == 2


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
    # the page states its regime and its null before the index gives its one line
    assert "Regime: weight decay relaxes in" in page and "null α" in page
    result = results["drift_diffusion"]
    assert result.status in STATUSES and result.why
    line = next(x for x in index.splitlines() if x.startswith("| [drift_diffusion]"))
    assert f"**{result.status}**" in line and result.why in line


def test_a_claim_is_contradicted_where_any_section_contradicts_it_else_supported_or_untestable():
    def sec(status, why="w"):
        return Section(f"s {status}", status=status, why=why)

    mixed = [sec(SUPPORTED), sec(CONTRADICTED, "no")]
    assert page_status(mixed) == (CONTRADICTED, "s contradicted: no; but s supported: w")
    assert page_status([sec(UNTESTABLE), sec(SUPPORTED, "yes")])[0] == SUPPORTED
    assert page_status([sec(UNTESTABLE, "why")]) == (UNTESTABLE, "s not testable here: why")
    assert page_status([Section("t")])[0] == UNTESTABLE


def test_pages_regenerate_identically_from_the_store_reading_each_run_once(tmp_path, monkeypatch):
    first, again = tmp_path / "first", tmp_path / "again"
    with Store(tmp_path / "s.sqlite") as store:
        theory.run_theory(["fraction"], TINY, store, first, executor=LocalExecutor(1), log=print)
    reads: list[str] = []

    class Counting(Store):
        def get_run(self, key, *, curves=True):
            reads.append(key)
            return super().get_run(key, curves=curves)

    # nothing to train: only the analysis and the pages read the store
    monkeypatch.setattr(theory, "run_plan", lambda planned, *a, **k: (0, len(planned)))
    with Counting(tmp_path / "s.sqlite") as store:
        theory.run_theory(["fraction"], TINY, store, again, log=print)
    assert len(reads) == 4 and len(set(reads)) == 4  # two fractions x two arms, each read once
    for path in sorted(first.rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(first)).read_bytes(), path


@pytest.mark.slow
def test_every_claim_runs_end_to_end_on_a_tiny_task(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        results = theory.run_theory([], TINY, store, tmp_path / "r", executor=LocalExecutor(1))
    assert list(results) == list(claims.CLAIMS)
    for claim in claims.CLAIMS:
        assert (tmp_path / "r" / "add_mod7_mlp" / f"{claim}.svg").exists()
        assert results[claim].verdict


def test_the_fraction_page_measures_the_growth_where_the_ladder_steps_by_one_percent():
    # medians per fraction (observed, or None with the censoring time): +50 % per point at the
    # bottom of a 1 % ladder, censored below it
    medians = {0.5: (600.0, 600.0), 0.4: (1000.0, 1000.0), 0.39: (1500.0, 1500.0)}
    medians |= {0.38: (2250.0, 2250.0), 0.37: (None, 3000.0)}
    local = fraction._local_rates(medians)
    assert [(hi, lo) for hi, lo, _, _ in local] == [(0.5, 0.4), (0.4, 0.39), (0.39, 0.38)]
    assert local[-1][3] == pytest.approx(0.5)
    assert local[0][3] == pytest.approx((1000 / 600) ** 0.1 - 1)
    assert fraction._censored_bracket(medians).startswith("0.38 → 0.37: 2,250 → > 3,000")
    # the fit over the two 1 % steps nearest the threshold recovers +50 % per point
    rng = np.random.default_rng(0)
    f = np.repeat([0.4, 0.39, 0.38], 8)
    t = 1000.0 * 1.5 ** ((0.4 - f) * 100) * np.exp(0.05 * rng.standard_normal(len(f)))
    fine = [r for r in local if r[2] <= 1.0 + 1e-9]
    (low, high), rate, (lo, hi) = fraction._near_threshold(fits.Times(t, t), f, fine)
    assert (low, high) == (0.38, 0.4) and lo < 0.5 < hi and rate == pytest.approx(0.5, abs=0.05)
