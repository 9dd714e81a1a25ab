"""The generated leaderboard, against a golden file, from a store filled with made-up runs.

The runs are fabricated (no training), so every number on the page is fixed: regenerate the
golden file with ``UPDATE_GOLDEN=1 python -m pytest tests/test_leaderboard.py`` after an
intended change to the page, and review the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

import tasks
from bench import board as boards
from bench import compare as C
from bench import markdown
from bench.__main__ import main
from bench.grokking import ChainResult
from bench.run import RunResult
from bench.spec import RunSpec
from bench.store import Entry, Store

GOLDEN = Path(__file__).parent / "golden" / "leaderboard.md"
BUDGET = 3000  # gradient evaluations
EVERY = 100

# Per sampler: evaluations per step, and per chain (t_mem, t_grok) in gradient evaluations
# (None = not reached within the budget), or (t_mem, None, t_touch) for a chain that touched the
# target and fell back; diverged chains marked "div".
OUTCOMES = {
    "adamw": (
        1,
        [(200, 1200), (200, 1500), (300, 1100), (200, 1300), (300, 1400), (200, 1200)]
        + [(300, None), (200, 1300)],
    ),
    "sgld": (1, [(500, 2500), (600, 2800), (500, None, 1800)] + [(500, None)] * 4 + [(None, None)]),
    "hmc": (5, [(1000, None)] * 8),
    "sgd": (1, [(400, 900), (400, 1000), (500, 800), "div", (400, 1100)] + [(400, 950)] * 3),
    # the τ = 0 twin of sgld: the same chosen settings, no noise
    "sgld@0": (1, [(500, 1900), (600, 2100), (500, 2300), (500, None)] + [(500, 2000)] * 4),
}
REFERENCE = [(150, 900), (150, 880), (140, 970), (150, 900), (160, 1000), (150, 920)] + [
    (150, 870),
    (150, None),
]


def _chain(c, outcome, per_step, hparams, accept):
    steps = BUDGET // per_step
    if outcome == "div":
        return ChainResult(
            c,
            1000 + c,
            hparams,
            None,
            None,
            None,
            None,
            None,
            None,
            steps,
            diverged=True,
            diverged_step=700,
            final={"val_acc": 0.0},
        )
    mem, grok, touch = (*outcome, None) if len(outcome) == 2 else outcome
    touch = grok if touch is None else touch

    def s(evals):
        return None if evals is None else evals // per_step

    return ChainResult(
        chain=c,
        seed=1000 + c,
        hparams=hparams,
        t_mem=s(mem),
        t_grok=s(grok),
        t_mem_grad_evals=mem,
        t_grok_grad_evals=grok,
        t_mem_seconds=None if mem is None else mem / 1000,
        t_grok_seconds=None if grok is None else grok / 1000,
        censored_at=steps,
        t_touch=s(touch),
        t_touch_grad_evals=touch,
        generalized=grok is not None,
        accept_rate=accept,
        final={"val_acc": 1.0 if grok else 0.3},
    )


def _curves(chains, per_step):
    rows = []
    for c in chains:
        for evals in range(0, BUDGET + 1, 500):
            step = evals // per_step
            grok = c.t_grok_grad_evals
            rows.append(
                {
                    "chain": c.chain,
                    "step": step,
                    "grad_evals": evals,
                    "seconds": evals / 1000,
                    "train_acc": 1.0 if c.t_mem_grad_evals and evals >= c.t_mem_grad_evals else 0.2,
                    "val_acc": 1.0 if grok and evals >= grok else 0.05,
                    "accept": float("nan") if step == 0 else c.accept_rate,
                }
            )
    return rows


#: Scales of a made-up checkpoint, and three points of each row's space in shared units.
SCALES = C.Scales(80.0, 0.01, -0.85, 1.3e-4, 0.25, 5000.0, 2000.0, 1000, 10_000)
POINTS = [
    {"kappa": 1e-3, "h_rel": 0.3, "tau_n": 0.01, "lr": 1e-2, "num_leapfrog": 16},
    {"kappa": 3e-3, "h_rel": 0.5, "tau_n": 0.1, "lr": 3e-2, "num_leapfrog": 16},
    {"kappa": 1e-2, "h_rel": 1.0, "tau_n": 1.0, "lr": 1e-1, "num_leapfrog": 24},
]


def fill(store: Store, task) -> str:
    preset = replace(C.PRESETS["cpu"], budget=BUDGET, eval_every=EVERY)
    names = [n for n in OUTCOMES if not n.endswith(C.TWIN)]
    rows = {r.name: r for r in C.rows_for(names)}
    key, protocol = C.protocol_for(task, preset, list(rows.values()), asked="add_mod113")
    protocol["scales"] = SCALES.to_dict()
    store.put_compare(key, task.name, task.config, "cpu", protocol)
    for name, (per_step, outcomes) in OUTCOMES.items():
        twin = name.endswith(C.TWIN)
        row = C.twin_of(rows[name[: -len(C.TWIN)]]) if twin else rows[name]
        trials = []
        for point in POINTS:
            values = {k: point[k] for k in row.bounds(task)}
            trials.append(row.config(values, SCALES, task))
        if twin:
            trials = [rows[row.twin_of].twin_config(t, SCALES) for t in trials]
        chosen = {
            **trials[1],
            "sampler": row.sampler,
            "cell": row.cell(),
            "twin_of": row.twin_of,
            "tuning": None
            if twin
            else {"grad_evals": 36000, "widened": ["kappa widened up to 0.3"], "bounds": {}},
        }
        hparams = {**chosen["hparams"], "prior_precision": chosen["prior_precision"]}
        accept = 0.61 if name == "hmc" else 1.0
        chains = [_chain(c, o, per_step, hparams, accept) for c, o in enumerate(outcomes)]
        result = _result(task, row.sampler, chosen, chains, per_step)
        final_key = f"final-{name}"
        store.put_run(final_key, result, task_config=task.config, seconds_wall=4.0, **HOST)
        tune_key = f"tune-{name}"
        store.put_run(
            tune_key,
            replace(result, chains=chains[:3], curves=[]),
            task_config=task.config,
            seconds_wall=6.0,
            **HOST,
        )
        scored = []
        for i, trial in enumerate(trials):
            grok = 1500.0 + 100 * i if name in ("adamw", "sgd") and i > 0 else None
            bad = name == "sgd" and i == 2
            score = [
                grok is None,
                bad,
                grok,
                -1.0 if grok else 0.0,
                0.0,
                -0.9 if grok else -0.2,
                300.0,
            ]
            state = "COMPLETE" if i == 1 else "PRUNED"
            rung = BUDGET if i == 1 else BUDGET // 9
            scored.append(
                {
                    **trial,
                    "number": i,
                    "batch": 0,
                    "state": state,
                    "rung": rung,
                    "chains": [[tune_key, i]],
                    "score": score,
                }
            )
        if twin:
            store.put_entry(Entry(key, name, [], [], chosen, [final_key], role="twin"))
        else:
            store.put_entry(Entry(key, name, scored, [tune_key], chosen, [final_key]))
    name, chosen = C.reference_config(task)
    hparams = {**chosen["hparams"], "prior_precision": 0.0}
    chains = [_chain(c, o, 1, hparams, 1.0) for c, o in enumerate(REFERENCE)]
    result = _result(task, name, chosen, chains, 1)
    store.put_run("final-reference", result, task_config=task.config, seconds_wall=4.0, **HOST)
    store.put_entry(Entry(key, "reference", [], [], chosen, ["final-reference"], role="reference"))
    return key


HOST = {"code": "abc1234", "host": "a test CPU, 2 cores, Linux"}


def _result(task, name, chosen, chains, per_step):
    spec = RunSpec(
        name,
        chosen["hparams"],
        prior_precision=chosen["prior_precision"],
        seeds=[c.seed for c in chains],
        budget=BUDGET // per_step,
        eval_every=EVERY // per_step,
    )
    return RunResult(
        task=task.name,
        spec=spec,
        batch_size=None,
        device="cpu (2 threads)",
        steps_run=BUDGET // per_step,
        grad_evals_per_step=per_step,
        seconds_train=BUDGET / 1000,
        seconds_eval=0.1,
        chains=chains,
        curves=_curves(chains, per_step),
        target=0.99,
    )


@pytest.fixture(scope="module")
def task():
    return tasks.make("add_mod7_mlp", width=16, d_embed=8)


def test_markdown_matches_the_golden_file(tmp_path, task):
    with Store(tmp_path / "s.sqlite") as store:
        fill(store, task)
        board = boards.build_board(store, store.compares()[0])
    text = markdown.render_page([board], {board.slug: {"accuracy": "a.png", "survival": "s.png"}})
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_ranking_keeps_not_reached_rows_last(tmp_path, task):
    with Store(tmp_path / "s.sqlite") as store:
        fill(store, task)
        board = boards.build_board(store, store.compares()[0])
    assert [r.sampler for r in board.rows] == ["sgd", "adamw", "sgld@0", "sgld", "hmc"]
    sgd, adamw, twin, sgld, hmc = board.rows
    assert twin.cell == {"geometry": "identity", "dynamics": "first order", "noise": "no"}
    # the factor table: noise at fixed geometry and dynamics, paired by checkpoint
    noise, hamiltonian = board.factors
    assert (hamiltonian.factor, hamiltonian.with_row, hamiltonian.without_row) == (
        "Hamiltonian dynamics",
        "hmc",
        "sgld",
    )
    assert hamiltonian.ratio.value is None  # neither reached its median
    assert (noise.factor, noise.with_row, noise.without_row, noise.pairs) == (
        "noise",
        "sgld",
        "sgld@0",
        8,
    )
    assert noise.ratio.value == 0.0  # only the row without noise reached its median
    assert twin.t95_evals.median == 2000 and twin.rmst_evals.value == pytest.approx(
        (1900 + 2100 + 2300 + 3000 + 4 * 2000) / 8
    )
    assert sgd.diverged == 1 and sgd.grokked == 7 and sgd.generalized == 7
    assert (sgld.grokked, sgld.touched, sgld.generalized) == (2, 3, 2)  # one touched, fell back
    assert adamw.grok_evals.median == 1300 and adamw.grok_steps.median == 1300
    assert sgld.grok_evals.median is None and hmc.grok_evals.median is None  # shown, not dropped
    assert hmc.evals_per_step == 5 and hmc.grok_steps.last == 600
    assert hmc.accept == pytest.approx(0.61) and adamw.accept is None
    assert sgd.effects["adamw"].value == pytest.approx(1300 / 950)
    assert sgld.effects["adamw"].value == 0.0  # not reached against reached
    assert adamw.effects["sgd"].value == pytest.approx(950 / 1300)
    assert "sgld" not in sgld.effects and "adamw" not in adamw.effects
    ref = board.reference
    assert ref.is_reference and ref.label == "adamw (reference)" and ref not in board.rows
    assert ref.grok_evals.median == 910 and ref.mem_evals.median == 150  # 900 and 920: midpoint
    assert ref.effects["adamw"].value == pytest.approx(1300 / 910)


def test_write_reports_and_the_report_command(tmp_path, task):
    store_path, reports = tmp_path / "s.sqlite", tmp_path / "reports"
    with Store(store_path) as store:
        fill(store, task)
    assert main(["report", "--store", str(store_path), "--reports", str(reports)]) == 0
    # the page is named after the task asked on the command line (fill's "add_mod113"), its
    # plots and raw records after the task that ran
    page = (reports / "add_mod113.md").read_text()
    assert f"({task.name}_accuracy.png)" in page and f"({task.name}_survival.png)" in page
    for png in (f"{task.name}_accuracy.png", f"{task.name}_survival.png"):
        assert (reports / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index = (reports / "README.md").read_text()
    assert "[add_mod113.md](add_mod113.md)" in index and not (reports / f"{task.name}.md").exists()
    for name in [*OUTCOMES, "adamw.reference"]:
        raw = json.loads((reports / "runs" / task.name / f"{name}.json").read_text())
        assert raw["sampler"] == name.split(".")[0].split(C.TWIN)[0]
        assert raw["final_runs"][0]["key"] == (
            "final-reference" if "." in name else f"final-{name}"
        )
        assert len(raw["final_runs"][0]["result"]["chains"]) == 8
        assert f"runs/{task.name}/{name}.json" in page
    assert not list(reports.rglob(".*.tmp"))  # no temporary files left behind
    # unknown task: a clear error, exit 2
    assert (
        main(
            [
                "report",
                "--store",
                str(store_path),
                "--reports",
                str(reports),
                "--task",
                "add_mod97",
            ]
        )
        == 2
    )
