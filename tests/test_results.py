"""Results as data (:mod:`bench.results`): the frames against the store they come from, their
documented columns and dtypes, selections that read only what they select, a store opened
read-only, ``python -m bench export`` and its refusals, and the README's analysis snippet.

The store is the committed one of tests/golden (a real smoke comparison of AdamW, SGLD and HMC
on a small task, both protocols), copied so that nothing here can touch it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from bench import frames, results
from bench.__main__ import main
from bench.store import Entry, Store

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "store_v3.sqlite"


@pytest.fixture
def store(tmp_path) -> Path:
    path = tmp_path / "results" / "store.sqlite"
    path.parent.mkdir()
    shutil.copy(GOLDEN, path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _documented() -> dict[str, dict[str, str]]:
    """The module docstring's three tables: frame -> {column: dtype}."""
    doc = results.__doc__
    out = {}
    for name in ("runs", "curves", "studies"):
        part = doc.split(f"``{name}``, one row per", 1)[1]
        table = part.split("========\n", 2)[2].split("\n====", 1)[0]
        rows = [re.split(r"\s{2,}", line.strip()) for line in table.splitlines() if line.strip()]
        out[name] = {r[0]: r[1] for r in rows if "<" not in r[0]}
    return out


def test_the_documented_columns_are_the_frames_columns_in_their_dtypes(store):
    documented = _documented()
    stated = {
        "runs": frames.RUN_COLUMNS,
        "curves": frames.CURVE_COLUMNS,
        "studies": frames.STUDY_COLUMNS,
    }
    built = {
        "runs": results.runs(store),
        "curves": results.curves(store),
        "studies": results.studies(store),
    }
    for name, frame in built.items():
        columns = {k: v[0] for k, v in stated[name].items()}
        assert documented[name] == columns, name
        assert list(frame.columns[: len(columns)]) == list(columns)  # stable order
        assert {c: str(frame[c].dtype) for c in columns} == columns, name
        rest = list(frame.columns[len(columns) :])
        assert all(re.match(r"(hp|search|final)_", c) for c in rest) or name == "curves"
        # every column can be read as an attribute: none is shadowed by a DataFrame method
        assert not [c for c in frame.columns if hasattr(pd.DataFrame, c)], name


def test_an_empty_selection_still_has_every_column_and_dtype(store):
    frame = results.runs(store, task="no_such_task")
    assert frame.empty
    assert {c: str(frame[c].dtype) for c in frames.RUN_COLUMNS} == {
        k: v[0] for k, v in frames.RUN_COLUMNS.items()
    }


def test_runs_are_the_stored_chains_one_row_per_chain_and_place(store):
    with Store(store, read_only=True) as s:
        compare = s.compares()[0]
        entries = s.entries(compare.key)
        runs = results.runs(s, compare=compare.key)
        chains = {}
        for entry in entries:
            for key in [*entry.tuning_runs, *entry.final_runs]:
                for c in s.get_run(key, curves=False).result.chains:
                    chains[(entry.sampler, entry.role, key, c.chain)] = c
    assert len(runs) == len(chains) == 14  # 3 samplers x (2 tuning + 2 fresh) + 2 reference
    assert set(runs["comparison"]) == {compare.key}
    assert runs.groupby("role").size().to_dict() == {"final": 6, "reference": 2, "tune": 6}
    for row in runs.itertuples():
        role = "reference" if row.role == "reference" else "tuned"
        c = chains[(row.sampler, role, row.run_key, row.chain)]
        assert row.seed == c.seed and row.censored_at == c.censored_at
        assert (None if pd.isna(row.t_grok) else row.t_grok) == c.t_grok
        assert row.censored == (c.t_grok is None) and row.diverged == c.diverged
        assert row.final_val_acc == pytest.approx(c.final["val_acc"])
        assert row.prior_precision == c.hparams["prior_precision"]
        assert row.censored_at_grad_evals == c.censored_at * row.grad_evals_per_step
    assert runs["model"].notna().all()
    assert runs["start"].isna().all()  # a store written before runs recorded their start
    # hyperparameters are columns of their own; a pair (AdamW's betas) is two
    adamw = runs[runs["sampler"] == "adamw"]
    assert adamw["hp_betas_0"].notna().all() and adamw["hp_betas_1"].notna().all()
    assert runs.loc[runs["sampler"] == "sgld", "hp_betas_0"].isna().all()
    assert (runs.loc[runs["sampler"] == "adamw", "temperature"] == 0.0).all()  # an optimizer
    # a tuning chain's trial is a row of the studies frame, of the same sampler
    studies = results.studies(store, compare=compare.key[:8])  # a prefix of the key will do
    tune = runs[runs["role"] == "tune"]
    pairs = set(zip(studies["sampler"], studies["trial"], strict=True))
    assert set(zip(tune["sampler"], tune["trial"], strict=True)) <= pairs
    assert studies.groupby("sampler")["chosen"].sum().to_dict() == {
        "adamw": 1,
        "hmc": 1,
        "sgld": 1,
    }
    assert not studies["pruned"].any() and studies["state"].isna().all()
    assert (studies["number"] == studies["trial"]).all()


def test_curves_are_every_evaluation_of_the_selected_chains(store):
    with Store(store, read_only=True) as s:
        key = s.compares()[0].key
        final = [k for e in s.entries(key) if e.sampler == "sgld" for k in e.final_runs]
        stored = [row for k in final for row in s.get_run(k).result.curves]
    curves = results.curves(store, compare=key, sampler="sgld")
    fresh = curves[curves["role"] == "final"]
    assert len(fresh) == len(stored)
    assert fresh["weight_norm"].tolist() == pytest.approx([r["weight_norm"] for r in stored])
    assert set(curves["sampler"]) == {"sgld"} and set(curves["role"]) == {"tune", "final"}


def test_a_selection_reads_only_its_runs_each_once(store, monkeypatch):
    read: list[str] = []
    original = Store.get_run

    def spy(self, key, *, curves=True):
        read.append(key)
        return original(self, key, curves=curves)

    monkeypatch.setattr(Store, "get_run", spy)
    with Store(store, read_only=True) as s:
        first, second = s.compares()
        wanted = {k for e in s.entries(first.key) for k in [*e.tuning_runs, *e.final_runs]}
        others = {k for e in s.entries(second.key) for k in [*e.tuning_runs, *e.final_runs]}
        results.runs(s, compare=first.key)
        assert set(read) == wanted and len(read) == len(wanted) and not wanted & others
        read.clear()
        frame = results.runs(s, sampler="hmc")
        assert set(frame["sampler"]) == {"hmc"} and len(read) == len(set(frame["run_key"]))


def test_the_store_is_opened_read_only_and_left_as_it_was(store, tmp_path):
    before = _digest(store)
    results.runs(store)
    results.curves(store)
    results.studies(store)
    results.export(store, tmp_path / "out")
    assert _digest(store) == before
    with (
        Store(store, read_only=True) as s,
        pytest.raises(sqlite3.OperationalError, match="readonly"),
    ):
        s.put_compare("k", "t", {}, "p", {})


def test_export_writes_the_three_frames_as_csv_and_parquet(store, tmp_path, capsys):
    key = results.comparisons(store)["comparison"][1]
    csv, parquet = tmp_path / "csv", tmp_path / "parquet"
    assert main(["export", "--store", str(store), "--out", str(csv), "--compare", key]) == 0
    argv = ["export", "--store", str(store), "--out", str(parquet), "--format", "parquet"]
    assert main([*argv, "--compare", key]) == 0
    runs = results.runs(store, compare=key)
    assert pd.read_csv(csv / "runs.csv").shape == runs.shape
    for name, frame in [("runs", runs), ("studies", results.studies(store, compare=key))]:
        pd.testing.assert_frame_equal(pd.read_parquet(parquet / f"{name}.parquet"), frame)
    assert len(pd.read_parquet(parquet / "curves.parquet")) == len(pd.read_csv(csv / "curves.csv"))
    assert "wrote" in capsys.readouterr().out


def test_export_refuses_bad_input_in_one_line_with_exit_2(store, tmp_path, capsys):
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE x (y)")
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    key = results.comparisons(store)["comparison"][0]
    cases = [
        (["--store", str(store), "--compare", key[:6] + "zz"], f"did you mean '{key}'"),
        (["--store", str(store), "--compare", "add_mod7_mlp"], "is a task: use --task"),
        (["--store", str(foreign)], "not a grokbench store"),
        (["--store", str(tmp_path / "missing.sqlite")], "no results store"),
        (["--store", str(store), "--claim", "eyrnig"], "did you mean 'eyring'"),
        (["--store", str(store), "--task", "nothing_here"], "no run"),
    ]
    for argv, message in cases:
        assert main(["export", "--out", str(tmp_path / "out"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert main(["export", "--store", str(store), "--out", str(a_file / "sub")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "missing.sqlite").exists()


def test_parquet_without_pyarrow_names_the_package(store, tmp_path, monkeypatch):
    real = results.importlib.util.find_spec
    monkeypatch.setattr(
        results.importlib.util, "find_spec", lambda n: None if n == "pyarrow" else real(n)
    )
    with pytest.raises(results.ResultsError, match="pip install pyarrow"):
        results.export(store, tmp_path / "out", "parquet")


def test_a_tuners_trial_state_and_number_are_read_where_recorded(store):
    with Store(store) as s:  # a writable copy: add an Optuna-like study to one entry
        key = s.compares()[0].key
        entry = next(e for e in s.entries(key) if e.sampler == "sgld")
        trials = [
            {**t, "number": 10 + i, "state": "PRUNED" if i else "COMPLETE"}
            for i, t in enumerate(entry.trials)
        ]
        s.put_entry(Entry(key, "sgld", trials, entry.tuning_runs, entry.chosen, entry.final_runs))
    studies = results.studies(store, compare=key, sampler="sgld")
    assert studies["number"].tolist() == [10, 11]
    assert studies["state"].tolist() == ["COMPLETE", "PRUNED"]
    assert studies["pruned"].tolist() == [False, True]


def test_the_readme_snippet_runs_on_a_store(store, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- analyse-it-yourself -->\n```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) <= 16
    monkeypatch.chdir(store.parent.parent)  # the snippet reads results/store.sqlite
    exec(compile(block, "README.md", "exec"), {})
    assert (store.parent.parent / "sgld_val_acc_vs_norm.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "grok_rate" in printed and "sgld" in printed
    import matplotlib.pyplot as plt

    plt.close("all")


def test_a_claims_runs_are_found_by_its_plan(tmp_path, monkeypatch, one_thread):
    from dataclasses import replace

    from bench import theory
    from bench.checkpoints import Criterion
    from bench.theory import claims
    from bench.theory.claims import tgrok_tmem2

    tiny = replace(
        theory.PRESETS["cpu"],
        name="tiny",
        task="add_mod7_mlp",
        task_overrides={"width": 16, "d_embed": 8},
        seeds=2,
        eval_every=5,
        confirm=20,
        batch_size=8,
        memorized=Criterion(val_acc_below=1.01, max_steps=2_000),
        claims={
            "tgrok_tmem2": tgrok_tmem2.Settings(
                steps=(0.3, 1.0), hparams={"momentum": 0.9}, prior=1e-3, budget=30, eval_every=5
            )
        },
    )
    path = tmp_path / "theory.sqlite"
    with Store(path) as s:
        theory.run_theory(["tgrok_tmem2"], tiny, s, tmp_path, write=False, log=lambda _: None)
        stored = set(s.run_keys())
    monkeypatch.setattr(claims, "PRESETS", {"tiny": tiny})
    runs = results.runs(path, claim="tgrok_tmem2")
    # the full and minibatch arms' ladders, and the minibatch arm's ladder at λ = 0 (Kozyrev)
    assert set(runs["run_key"]) == stored and len(stored) == 3
    assert set(runs["claim"]) == {"tgrok_tmem2"} and set(runs["arm"]) == {"full", "minibatch"}
    assert runs["comparison"].isna().all() and runs["label"].notna().all()
    assert results.studies(path, claim="tgrok_tmem2").empty
    assert results.runs(path, claim="eyring").empty  # its checkpoints are not in the store
