"""The comparison protocol: equal budgets, reuse of stored runs, resume after kill -9, bad input."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

import samplers
from bench import board as boards
from bench import compare as C
from bench import markdown, metrics
from bench.__main__ import main
from bench.store import Store
from samplers import HyperparameterError

ROOT = Path(__file__).resolve().parent.parent
TINY = "add_mod7_mlp"  # 24 training pairs: a step costs about a millisecond


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# -- the protocol's numbers -------------------------------------------------------------------
#: Scales of a made-up checkpoint: known answers for the unit conversions.
SCALES = C.Scales(
    norm=80.0,
    grad_norm=0.01,
    cosine=-0.85,
    lambda_c=1.3e-4,
    sharpness=0.25,
    precond_mean=5000.0,
    precond_sharpness=2000.0,
    n_train=1000,
    dim=10_000,
)


def _corners(row):
    """Every corner of a row's search space (categoricals: every choice)."""
    points = [{}]
    for name, bound in row.bounds().items():
        values = bound.choices if bound.choices is not None else (bound.low, bound.high)
        points = [{**p, name: v} for p in points for v in values]
    return points


@pytest.mark.parametrize("row", (*C.ROWS, *C.FRONTIER), ids=lambda r: r.name)
def test_every_row_maps_its_units_to_valid_hyperparameters_and_back(row, tiny_task):
    for point in _corners(row):
        config = row.config(point, SCALES, tiny_task)
        warmup = {row.warmup[0]: 100} if row.warmup else {}  # set per run by jobs_for
        samplers.make(row.sampler, **config["hparams"], **warmup)  # a valid configuration
        units = config["units"]
        for name in ("kappa", "h_rel", "tau_n", "lr"):
            if name in point:
                assert units[name] == pytest.approx(float(point[name]), rel=1e-4), name
        if row.dynamics.decay is not None:
            assert config["prior_precision"] == 0.0  # AdamW, Lion, Muon decay on their own
        else:
            assert config["prior_precision"] > 0 and "weight_decay" not in config["hparams"]


def test_shared_units_have_the_stated_meaning():
    sgd = C.ROWS[1]
    assert sgd.name == "sgd" and sgd.cell() == {
        "geometry": "identity",
        "dynamics": "momentum",
        "noise": "no",
    }
    config = sgd.config({"kappa": 1e-3, "h_rel": 0.5}, SCALES, None)
    h = 0.5 * 2 * (1 + 0.9) / 0.25  # half the heavy-ball limit 2(1 + μ)/λ_max
    assert config["hparams"]["step_size"] == pytest.approx(h, rel=1e-5)
    assert config["prior_precision"] == pytest.approx(1e-3 * (1 - 0.9) / h, rel=1e-5)
    sgld = next(r for r in C.ROWS if r.name == "sgld")
    config = sgld.config({"kappa": 1e-3, "h_rel": 1.0, "tau_n": 1.0}, SCALES, None)
    assert config["hparams"]["temperature"] == pytest.approx(1e-3)  # τ·N = 1: the posterior
    assert config["hparams"]["step_size"] == pytest.approx(2 / 0.25)
    lam = config["prior_precision"]
    assert config["units"]["noise_scale"] == pytest.approx((10_000 * 1e-3 / lam) ** 0.5)
    pl = next(r for r in C.ROWS if r.name == "riemannian_langevin")
    config = pl.config({"kappa": 1e-3, "h_rel": 1.0, "tau_n": 0.1}, SCALES, None)
    assert config["hparams"]["step_size"] == pytest.approx(2 / 2000.0)  # λ_max(P̂^½HP̂^½)
    assert config["prior_precision"] == pytest.approx(1e-3 / (2 / 2000.0 * 5000.0), rel=1e-5)


def test_a_twin_is_its_row_at_zero_temperature():
    for row in C.ROWS:
        if not row.twin:
            continue
        chosen = row.config({"kappa": 3e-3, "h_rel": 0.3, "tau_n": 0.1}, SCALES, None)
        twin = C.twin_of(row)
        config = row.twin_config(chosen, SCALES)
        assert twin.name == row.name + "@0" and twin.cell()["noise"] == "no"
        assert row.cell()["noise"] == "yes"
        assert {**config["hparams"], "temperature": None} == {
            **chosen["hparams"],
            "temperature": None,
        }
        assert config["hparams"]["temperature"] == 0.0
        assert config["prior_precision"] == chosen["prior_precision"]
    assert not any(r.twin for r in C.ROWS if r.sampler == "hmc")  # exp(−U/τ) has no τ = 0


def test_rows_for_names_rows_of_samplers_and_grid_rows_of_the_rest():
    rows = C.rows_for(["hmc", "sgld", "blackjax.sgld"])
    assert [r.name for r in rows] == ["sgld", "hmc", "hmc+mass", "blackjax.sgld"]
    assert rows[-1].grid and not rows[0].grid
    with pytest.raises(samplers.UnknownSamplerError, match="sgld"):
        C.rows_for(["sgdl"])


def test_frontier_rows_join_only_when_named():
    names = [r.name for r in C.rows_for(C.own_samplers())]
    assert not {r.name for r in C.FRONTIER} & set(names)  # the default board is unchanged
    assert [r.name for r in C.rows_for(["adamw"])] == ["adamw"]  # not Grokfast's AdamW
    assert [r.name for r in C.rows_for(["sgd", "frontier"])] == [
        "sgd",
        "grokfast",
        "ortho_adamw",
        "lion",
        "muon",
    ]
    assert [r.name for r in C.rows_for(["lion", "grokfast"])] == ["grokfast", "lion"]
    assert {r.group for r in C.FRONTIER} == {"frontier"}
    assert dict(C.rows_for(["lion"])[0].bounds())["lr"].high == 1e-2  # a sign step: 10x lower


def test_frontier_group_on_the_page(tmp_path, tiny_task):
    preset = replace(C.PRESETS["smoke"], budget=120, eval_every=20, trials=2, seeds=3)
    with Store(tmp_path / "s.sqlite") as store:
        C.compare(tiny_task, ["sgd", "sghmc", "lion"], preset, store, log=lambda _: None)
        board = boards.build_board(store, store.compares()[0])
    groups = {r.sampler: r.group for r in board.all_rows}
    assert groups == {
        "sgd": "factorial",
        "sghmc": "factorial",
        "sghmc@0": "factorial",
        "lion": "frontier",
        "reference": "factorial",
    }
    gap = board.frontier
    assert (gap.sampler, gap.frontier, gap.baseline) == ("sghmc", "lion", "sgd")
    by = {r.sampler: r for r in board.rows}
    (tl, cl), (ts, cs), (tg, cg) = (boards._by_seed(by[n]) for n in ("lion", "sghmc", "sgd"))
    assert gap.to_frontier == metrics.paired_speedup(tl, cl, ts, cs)
    assert gap.over_baseline == metrics.paired_speedup(ts, cs, tg, cg)
    text = markdown.render_page([board], {})
    assert "**The optimizers at the frontier**" in text
    assert "Between the random walk and the frontier" in text
    main_table, frontier_table = text.split("**The optimizers at the frontier**")
    assert "`lion`" in frontier_table.split("###")[0] and "| `lion` |" not in main_table


def test_rungs_and_tuning_cost(tiny_task):
    from bench.compare import tuner

    preset = replace(C.PRESETS["cpu"]).resolve(tiny_task)
    assert tuner.rung_budgets(preset) == [350, 1000, 3000]
    # 9 trials, 2 seeds, keep a third: 9·2/9 + 3·2/3 + 1·2·1 full-budget chains a batch
    assert C.presets.tuning_chain_budgets(preset) == pytest.approx(2 * (2 + 2 + 2))


def test_budgets_are_equal_in_gradient_evaluations(tiny_task):
    preset = replace(C.PRESETS["smoke"], budget=600, eval_every=30).resolve(tiny_task)
    hmc = next(r for r in C.ROWS if r.name == "hmc")
    configs = [
        hmc.config({"kappa": 1e-3, "h_rel": 0.5, "tau_n": 1.0, "num_leapfrog": 16}, SCALES, None)
    ]
    (job, members), *_ = C.jobs_for("hmc", configs, [0], preset, "tune", warmup=hmc.warmup)
    # a step costs L (the start gradient is carried over); the warm-up is a share of the steps
    assert job.spec.budget == 600 // 16 and job.spec.eval_every == max(1, 30 // 16)
    assert job.spec.hparams["adapt_steps"] == int(0.3 * job.spec.budget)
    assert job.spec.grad_evals_per_step() == 16
    # a rung of the tuner: a shorter run with the full run's warm-up (a prefix of it)
    (rung, _), *_ = C.jobs_for("hmc", configs, [0], preset, "tune", warmup=hmc.warmup, budget=200)
    assert rung.spec.budget == 200 // 16 and rung.spec.hparams["adapt_steps"] == int(0.3 * 37)
    sgld = next(r for r in C.ROWS if r.name == "sgld")
    configs = [
        sgld.config({"kappa": k, "h_rel": 0.5, "tau_n": 1.0}, SCALES, None) for k in (1e-3, 1e-2)
    ]
    (job, members), *_ = C.jobs_for("sgld", configs, [0, 1], preset, "t")
    assert job.spec.budget == 600 and job.spec.eval_every == 30
    assert job.spec.max_norm_growth == preset.max_norm_growth == 10.0
    assert members == [(0, 0), (0, 1), (1, 0), (1, 1)]  # one chain per (trial, seed)
    assert job.spec.seeds == (0, 1, 0, 1) and job.spec.start == "init"
    priors = [c["prior_precision"] for c in configs]
    assert list(job.spec.prior_precision) == [priors[0], priors[0], priors[1], priors[1]]


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
    preset = replace(C.PRESETS["smoke"], budget=180, eval_every=20, trials=3, seeds=3)
    lines: list[str] = []
    names = ["adamw", "sgld"]
    with Store(tmp_path / "s.sqlite") as store:
        key = C.compare(tiny_task, names, preset, store, log=lines.append)
        runs, chains = store.count("runs"), store.count("chains")
        by_name = {e.sampler: e for e in store.entries(key)}
        entries = [by_name[n] for n in ("adamw", "sgld", "sgld@0", "reference")]
        assert [e.role for e in entries] == ["tuned", "tuned", "twin", "reference"]
        assert len(by_name) == 4
        assert entries[3].chosen["hparams"]["step_size"] == tiny_task.reference["step_size"]
        twin, sgld = entries[2].chosen, entries[1].chosen
        assert twin["hparams"] == {**sgld["hparams"], "temperature": 0.0}
        assert twin["twin_of"] == "sgld" and twin["cell"]["noise"] == "no"
        used = {k for e in entries for k in (*e.tuning_runs, *e.final_runs)}
        assert runs == len(used) == len(store.run_keys())
        assert chains == sum(len(store.get_run(k).result.chains) for k in used)
        for entry in entries[:2]:
            # successive halving: 3 trials at the first rung, 1 goes on to the last
            assert len(entry.trials) == 3
            assert sorted(t["state"] for t in entry.trials) == ["COMPLETE", "PRUNED", "PRUNED"]
            done = next(t for t in entry.trials if t["state"] == "COMPLETE")
            assert entry.chosen["hparams"] == done["hparams"] and done["rung"] == 180
            final = store.get_run(entry.final_runs[0]).result
            assert final.spec.seeds == (1000, 1001, 1002)  # fresh seeds, never used in tuning
            assert final.spec.budget == 180 and final.spec.max_norm_growth == 10.0
        # the same tuning cost in gradient evaluations for every row: 3·20 + 1·60 + 1·180
        assert [e.chosen["tuning"]["grad_evals"] for e in entries[:2]] == [300, 300]
        studies = optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 's.sqlite'}")
        assert sorted(s.n_trials for s in studies) == [3, 3]  # kept in the store's own file
        again: list[str] = []
        assert C.compare(tiny_task, names, preset, store, log=again.append) == key
        assert (store.count("runs"), store.count("chains")) == (runs, chains)
        assert again[-1].strip().startswith("0 runs trained")
        studies = optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 's.sqlite'}")
        assert sorted(s.n_trials for s in studies) == [3, 3]  # nothing asked twice
        assert {e.sampler: e for e in store.entries(key)} == by_name
        board = boards.build_board(store, store.compares()[0])
    assert {r.sampler for r in board.rows} == {"adamw", "sgld", "sgld@0"}  # none dropped
    assert board.reference is not None and board.reference.n == 3
    text = markdown.render_page([board], {})
    for name in names:
        assert f"`{name}`" in text


def test_a_row_the_budget_cannot_hold_is_left_out_with_its_reason(tmp_path, tiny_task):
    # 200 evaluations are 12 HMC steps at L = 16: 30 % is 3 warm-up steps, and an adapted mass
    # needs 20, so hmc+mass is left out, the plain hmc row runs, and named alone it is an error
    preset = replace(C.PRESETS["smoke"], budget=200, eval_every=20, trials=1, seeds=1)
    lines: list[str] = []
    with Store(tmp_path / "s.sqlite") as store:
        key = C.compare(tiny_task, ["hmc"], preset, store, log=lines.append)
        assert {e.sampler for e in store.entries(key)} == {"hmc", "reference"}
        (compare,) = store.compares()
        assert set(compare.protocol["rows"]) == {"hmc"}
        (line,) = [s for s in lines if "hmc+mass: left out" in s]
        assert "adapt_steps >= 20" in line
        with pytest.raises(HyperparameterError, match="adapt_steps >= 20"):
            C.compare(tiny_task, ["hmc+mass"], preset, store, log=lines.append)


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
        assert len(entries) == 7  # four rows, the twins of sgld and sghmc, the reference
        studies = optuna.get_all_study_summaries(f"sqlite:///{store}")
        assert sorted(s.n_trials for s in studies) == [2] * 4  # the killed batch asked once
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
        (["--task", TINY, "--samplers", "frontiers"], "did you mean 'frontier'"),
        (["--task", TINY, "--samplers", "grokfst"], "did you mean 'grokfast'"),
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


def test_edges_find_a_choice_in_the_outer_twentieth_of_a_log_range():
    """The tuner's edge rule (widened before the last batch; said on the page after it):
    on κ ∈ [1e-4, 3e-2] the outer 5 % of the log range ends at 1.33e-4 and 2.26e-2."""
    from bench.compare.tuner import edges

    bounds = {
        "kappa": {"low": 1e-4, "high": 3e-2, "log": True},
        "tau_n": {"choices": [1e-3, 1.0]},
    }
    assert edges({"kappa": 0.0296, "tau_n": 1e-3}, bounds) == [("kappa", "high")]
    assert edges({"kappa": 0.0232}, bounds) == [("kappa", "high")]
    assert edges({"kappa": 0.0209}, bounds) == []  # inside, and categorical axes have no edge
    assert edges({"kappa": 1.2e-4}, bounds) == [("kappa", "low")]
    assert edges({"kappa": 1.4e-4}, bounds) == []
    assert edges({}, bounds) == []  # an axis the choice did not search
    linear = {"x": {"low": 0.0, "high": 1.0, "log": False}}
    assert edges({"x": 0.96}, linear) == [("x", "high")] and edges({"x": 0.5}, linear) == []


def test_a_row_whose_search_space_changed_gets_a_new_study(tmp_path):
    """The comparison's key leaves the rows out, so the study's name carries the row's search
    space: resuming a changed row would otherwise tell old trials as if drawn from the new
    space (a widened κ end resumed every trial of the narrower one)."""
    from bench.compare import tuner
    from bench.compare.rows import Bound

    storage = tuner.storage(tmp_path / "s.sqlite")
    (row,) = C.rows_for(["sgd"])
    bounds = {"kappa": Bound(1e-4, 3e-2), "h_rel": Bound(1e-2, 1.0)}
    first = tuner.study(storage, "key", row, bounds)
    again = tuner.study(storage, "key", row, dict(bounds))
    wider = tuner.study(storage, "key", row, {**bounds, "kappa": Bound(1e-4, 3e-1)})
    assert first.study_name == again.study_name != wider.study_name
    assert first.study_name.startswith("key/sgd/")


def test_the_gap_sentence_places_the_sampler_only_where_the_frontier_is_ahead():
    from bench.factorial_page import _gap

    def gap(front, base):
        return boards.FrontierGap(
            "sghmc", "lion", "sgd", metrics.Ratio(*front), metrics.Ratio(*base)
        )

    # the frontier 4x faster than the sampler, the sampler 1.25x slower than SGD: nearer SGD
    assert "closer to the random-walk baseline" in _gap(gap((4.0, 3.0, 5.0), (0.8, 0.7, 0.9)))
    # the frontier 1.2x faster, the sampler 3x faster than SGD: nearer the frontier
    assert "closer to the frontier" in _gap(gap((1.2, 1.1, 1.3), (3.0, 2.0, 4.0)))
    # the frontier slower than the sampler (the add_mod113 page from memorized checkpoints)
    behind = _gap(gap((0.14, 0.11, 0.16), (0.8, 0.78, 0.83)))
    assert "the frontier is not ahead" in behind and "closer to" not in behind
