"""The comparison protocol: equal budgets, reuse of stored runs, resume after kill -9, bad input."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import samplers
import tasks
from bench import board as boards
from bench import compare as C
from bench import markdown
from bench.__main__ import main
from bench.store import Store

ROOT = Path(__file__).resolve().parent.parent
TINY = "add_mod7_mlp"  # 24 training pairs: a step costs about a millisecond


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# -- the protocol's numbers -------------------------------------------------------------------
@pytest.mark.parametrize("task_name", [TINY, "add_mod7_quadratic"])
@pytest.mark.parametrize("name", C.own_samplers())
def test_every_sampler_has_a_search_space_with_enough_valid_trials(name, task_name):
    task = tasks.make(task_name)
    space = C.search_space(name, task)
    grid = space.grid(task)
    assert len(grid) >= max(p.trials for p in C.PRESETS.values()), "unequal tuning budgets"
    for trial in C.trials_for(name, task, len(grid)):
        samplers.make(name, **trial["hparams"])  # every grid point is a valid configuration
        assert trial["prior_precision"] >= 0
        if name == "adamw":
            assert trial["prior_precision"] == 0.0  # AdamW decays on its own
        elif name in ("sgd", "sgld", "sghmc", "hmc", "riemannian_langevin"):
            assert "weight_decay" not in trial["hparams"]
            assert trial["prior_precision"] > 0  # their decay is the prior


def test_trials_are_a_fixed_subset_of_the_grid(tiny_task):
    a = C.trials_for("sgld", tiny_task, 8)
    assert a == C.trials_for("sgld", tiny_task, 8)
    assert len(a) == 8 and len({repr(t) for t in a}) == 8
    grid = C.search_space("sgld", tiny_task).grid(tiny_task)
    assert all(t["search"] in grid for t in a)
    adam = C.trials_for("adamw", tiny_task, 100)
    ref = tiny_task.reference
    assert {"step_size": ref["step_size"], "weight_decay": ref["weight_decay"]} in [
        t["search"] for t in adam
    ]


@pytest.mark.parametrize("name", C.own_samplers())
def test_trials_cover_every_axis_evenly(name):
    task = tasks.make("add_mod7_quadratic")
    space = C.search_space(name, task)
    for k in (3, 6, 8):
        if k > len(space.grid(task)):
            continue
        trials = C.trials_for(name, task, k)
        assert len(trials) == k
        for axis in space.axes:
            values = axis.resolve(task)
            counts = [sum(t["search"][axis.name] == v for t in trials) for v in values]
            assert max(counts) - min(counts) <= 1, (axis.name, counts)


def test_hmc_step_size_shrinks_like_sqrt_temperature(tiny_task):
    for trial in C.trials_for("hmc", tiny_task, 100):
        s = trial["search"]
        eps = trial["hparams"]["step_size"]
        assert eps == pytest.approx((s["eta"] * s["temperature"]) ** 0.5, rel=1e-5)


def test_budgets_are_equal_in_gradient_evaluations(tiny_task):
    preset = replace(C.PRESETS["smoke"], budget=600, eval_every=30).resolve(tiny_task)
    hmc = C.trials_for("hmc", tiny_task, 2)
    warmup = C.search_space("hmc", tiny_task).warmup
    (job, members), *_ = C.jobs_for("hmc", hmc, [0], preset, "tune", warmup=warmup)
    L = hmc[0]["hparams"]["num_leapfrog"]
    # a step costs L (the start gradient is carried over); the warm-up is a share of the steps
    assert job.spec.budget == 600 // L and job.spec.eval_every == max(1, 30 // L)
    assert job.spec.hparams["adapt_steps"] == int(0.2 * job.spec.budget)
    assert job.spec.grad_evals_per_step() == L
    (job, members), *_ = C.jobs_for("sgld", C.trials_for("sgld", tiny_task, 2), [0, 1], preset, "t")
    assert job.spec.budget == 600 and job.spec.eval_every == 30
    assert members == [(0, 0), (0, 1), (1, 0), (1, 1)]  # one chain per (trial, seed)
    assert job.spec.seeds == (0, 1, 0, 1) and job.spec.start == "init"
    # one value per chain, written once where every chain shares it
    chosen = [trial["hparams"]["step_size"] for trial in C.trials_for("sgld", tiny_task, 2)]
    assert [row["step_size"] for row in job.spec.per_chain()] == [
        chosen[0],
        chosen[0],
        chosen[1],
        chosen[1],
    ]


def test_jobs_split_by_settings_that_cannot_vary_per_chain(tiny_task):
    preset = replace(C.PRESETS["smoke"], max_chains=3).resolve(tiny_task)
    configs = [
        {"hparams": {"step_size": 0.1, "num_leapfrog": L}, "prior_precision": 0.0, "search": {}}
        for L in (2, 2, 5)
    ]
    jobs = C.jobs_for("hmc", configs, [0, 1], preset, "tune")
    assert [job.spec.chains for job, _ in jobs] == [3, 1, 2]  # L=2: 4 chains in 3 + 1; L=5: 2
    assert {job.spec.hparams["num_leapfrog"] for job, _ in jobs} == {2, 5}
    assert jobs[2][0].spec.budget == preset.budget // 5  # L = 5 gradient evaluations a step


# -- the whole protocol, in process -----------------------------------------------------------
def test_compare_records_everything_and_a_rerun_reuses_it(tmp_path, tiny_task):
    preset = replace(C.PRESETS["smoke"], budget=200, eval_every=20, trials=2, seeds=3)
    lines: list[str] = []
    names = ["adamw", "hmc"]
    with Store(tmp_path / "s.sqlite") as store:
        key = C.compare(tiny_task, names, preset, store, log=lines.append)
        runs, chains = store.count("runs"), store.count("chains")
        entries = store.entries(key)
        assert [(e.sampler, e.role) for e in entries] == [
            ("adamw", "tuned"),
            ("hmc", "tuned"),
            ("adamw", "reference"),
        ]
        assert entries[2].chosen["hparams"]["step_size"] == tiny_task.reference["step_size"]
        # per sampler: tuning jobs (one per num_leapfrog for HMC), then one fresh-seed job; the
        # reference shares its run with tuned AdamW when both have the same configuration
        used = {k for e in entries for k in (*e.tuning_runs, *e.final_runs)}
        assert runs == len(used) == len(store.run_keys())
        assert [len(e.final_runs) for e in entries] == [1, 1, 1]
        assert chains == sum(len(store.get_run(k).result.chains) for k in used)
        for entry in entries[:2]:
            assert len(entry.trials) == 2
            assert entry.chosen in [
                {k: t[k] for k in ("search", "hparams", "prior_precision")} for t in entry.trials
            ]
            final = store.get_run(entry.final_runs[0]).result
            assert final.spec.seeds == (1000, 1001, 1002)  # fresh seeds, never used in tuning
            evals = C.grad_evals_per_step(entry.sampler, entry.chosen["hparams"])
            assert final.spec.budget * evals <= 200 and final.grad_evals_per_step == evals
        again: list[str] = []
        assert C.compare(tiny_task, names, preset, store, log=again.append) == key
        assert (store.count("runs"), store.count("chains")) == (runs, chains)
        assert again[-1].strip().startswith("0 runs trained")
        board = boards.build_board(store, store.compares()[0])
    assert {r.sampler for r in board.rows} == set(names)  # not-reached rows are kept
    assert board.reference is not None and board.reference.n == 3
    text = markdown.render_page([board], {})
    for name in names:
        assert f"`{name}`" in text


# -- resume after kill -9 ---------------------------------------------------------------------
def _compare_cmd(store: Path, reports: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench",
        "compare",
        "--task",
        TINY,
        "--preset",
        "smoke",
        "--samplers",
        "adamw,sgd,sgld,sghmc",
        "--budget",
        "300",
        "--eval-every",
        "20",
        "--trials",
        "2",
        "--seeds",
        "3",
        "--store",
        str(store),
        "--reports",
        str(reports),
        "--threads",
        "1",
        "--workers",
        "1",  # worker processes are tested in tests/test_exploration.py; spawning costs seconds
    ]


def test_kill_9_mid_compare_then_rerun_loses_and_duplicates_nothing(
    tmp_path, kill_9, finished_runs
):
    store, reports = tmp_path / "store.sqlite", tmp_path / "reports"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kill_9(
        _compare_cmd(store, reports),
        ready=lambda: len(finished_runs(store)) >= 2,
        cwd=tmp_path,
        env=env,
        timeout=90,
    )
    before = finished_runs(store)
    assert 2 <= len(before) < 9  # killed mid-compare: some runs stored, not all
    assert not (reports / f"{TINY}.md").exists()

    done = subprocess.run(
        _compare_cmd(store, reports), cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "reused from the store" in done.stdout
    after = finished_runs(store)
    for key, finished_at in before.items():  # nothing lost, nothing recomputed
        assert after[key] == finished_at
    with Store(store) as s:
        (compare,) = s.compares()
        entries = s.entries(compare.key)
        assert len(entries) == 5  # four samplers and the reference
        referenced = {k for e in entries for k in (*e.tuning_runs, *e.final_runs)}
        assert referenced == set(after)  # every stored run is used, and none is missing
        assert s.count("runs") == len(after)
        assert s.count("chains") == sum(len(s.get_run(k).result.chains) for k in after)
    with sqlite3.connect(store) as db:
        dup = db.execute(
            "SELECT run_key, chain, count(*) FROM chains GROUP BY 1, 2 HAVING count(*) > 1"
        )
        assert dup.fetchall() == []
    db.close()
    assert (reports / f"{TINY}.md").exists() and (reports / "README.md").exists()


# -- the command line -------------------------------------------------------------------------
def _cli(tmp_path, *extra: str) -> list[str]:
    return [
        "compare",
        "--store",
        str(tmp_path / "store.sqlite"),
        "--reports",
        str(tmp_path / "reports"),
        "--preset",
        "smoke",
        *extra,
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "add_mod133"], "did you mean"),
        (["--task", TINY, "--samplers", "sgdl"], "did you mean 'sgd' or 'sgld'"),
        (["--task", TINY, "--samplers", ""], "--samplers is empty"),
        (["--task", TINY, "--samplers", " , "], "--samplers is empty"),
        (["--task", TINY, "--budget", "0"], "--budget must be at least 1"),
        (["--task", TINY, "--seeds", "0"], "--seeds must be at least 1"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    assert main(_cli(tmp_path, *args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_store_or_reports_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = ["compare", "--task", TINY, "--preset", "smoke", "--store", str(blocker / "s.sqlite")]
    assert main([*args, "--reports", str(tmp_path / "reports")]) == 2
    assert "cannot create the results store" in capsys.readouterr().err
    args = ["compare", "--task", TINY, "--preset", "smoke", "--store", str(tmp_path / "s.sqlite")]
    assert main([*args, "--reports", str(blocker / "reports")]) == 2
    assert "cannot write reports" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_report_without_a_store_exits_2(tmp_path, capsys):
    store = tmp_path / "none.sqlite"
    assert main(["report", "--store", str(store), "--reports", str(tmp_path / "r")]) == 2
    assert "no results store" in capsys.readouterr().err
    assert not store.exists()


def test_peers_with_a_varying_cost_per_step_are_refused_and_peer_rows_are_marked():
    from bench.board import peer_of
    from bench.compare import grad_evals_per_step

    assert grad_evals_per_step("blackjax.sgld", {}) == 1
    assert grad_evals_per_step("hmc", {"num_leapfrog": 7}) == 7  # the start gradient carried over
    for peer in ("blackjax.hmc", "blackjax.nuts", "blackjax.sghmc", "pyro.nuts"):
        with pytest.raises(ValueError, match="varying number of gradient evaluations"):
            grad_evals_per_step(peer, {})
    assert peer_of("blackjax.sgld") == "blackjax"
    assert peer_of("sgld") is None
