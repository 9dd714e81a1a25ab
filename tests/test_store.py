"""The results store: round trips, no duplicates, atomic writes, and clear refusals."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import samplers
import tasks
from bench import board as boards
from bench import checkpoints, keys, markdown
from bench import compare as C
from bench.jobs import Runner
from bench.run import run
from bench.spec import RunSpec
from bench.store import Store, StoreError

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def tiny():
    task = tasks.make("add_mod7_mlp", width=16, d_embed=8)
    spec = RunSpec(
        "sgld",
        {"step_size": [0.1, 0.3]},
        prior_precision=0.01,
        seeds=[0, 1],
        budget=20,
        eval_every=5,
    )
    return task, run(task, spec, progress=False)


def key_of(task, result):
    return result.spec.key(task)


def test_round_trip(tmp_path, tiny):
    task, result = tiny
    key = key_of(task, result)
    with Store(tmp_path / "s.sqlite") as store:
        assert not store.has_run(key)
        assert store.put_run(key, result, task_config=task.config, seconds_wall=1.5, code="abc")
        record = store.get_run(key)
    assert record.code_version == "abc" and record.seconds_wall == 1.5
    back = record.result
    assert same(back.chains, result.chains)  # NaN (dist_mem before t_mem) equals NaN here
    assert back.spec == result.spec
    assert same(back.curves, result.curves)


def same(a, b) -> bool:
    plain = [dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x for x in a]
    other = [dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x for x in b]
    return json.dumps(plain) == json.dumps(other)


def test_no_duplicates(tmp_path, tiny):
    task, result = tiny
    key = key_of(task, result)
    with Store(tmp_path / "s.sqlite") as store:
        assert store.put_run(key, result, task_config=task.config, seconds_wall=1.0)
        assert not store.put_run(key, result, task_config=task.config, seconds_wall=2.0)
        assert store.count("runs") == 1
        assert store.count("chains") == len(result.chains)
        assert store.get_run(key).seconds_wall == 1.0  # the first one is kept
    with Store(tmp_path / "s.sqlite") as store:  # and across processes / reopenings
        assert not store.put_run(key, result, task_config=task.config, seconds_wall=3.0)
        assert store.count("runs") == 1


def test_key_depends_on_what_determines_the_numbers(tiny):
    task, result = tiny
    base = RunSpec("sgld", {"step_size": 0.1}, prior_precision=0.01, seeds=[0, 1], budget=20)
    key = base.key(task)
    assert key == RunSpec.from_dict(base.to_dict()).key(task)
    for change in (
        {"hparams": {"step_size": 0.2}},
        {"sampler": "sgd"},
        {"seeds": [0, 2]},
        {"budget": 21},
        {"eval_every": 5},
        {"prior_precision": 0.02},
        {"batch_size": 8},
        {"confirm": 10},
        {"data_seed": 1},
        {"start": ["a", "b"]},
    ):
        assert key != dataclasses.replace(base, **change).key(task), change
    # the task's defaults resolved: the same numbers, the same key
    assert key == dataclasses.replace(base, eval_every=1).key(task)  # 20 // 200, at least 1
    other = tasks.make("add_mod7_mlp", width=17, d_embed=8)
    assert key != base.key(other)


def test_key_changes_with_the_numerics_version_only(tiny, monkeypatch):
    task, _ = tiny
    spec = RunSpec("sgd", seeds=[0], budget=5, eval_every=1)
    key = spec.key(task)
    monkeypatch.setattr(keys, "code_version", lambda: "another-commit")
    assert spec.key(task) == key
    monkeypatch.setattr("bench.spec.NUMERICS_VERSION", "999")
    assert spec.key(task) != key


def test_a_samplers_own_numerics_version_retires_its_runs_only(tiny, monkeypatch):
    """A sampler that declares its own numerics version (riemannian_langevin's checked freeze)
    gets new keys; every other sampler's stored runs keep theirs."""
    task, _ = tiny
    rl = RunSpec("riemannian_langevin", seeds=[0], budget=5, eval_every=1)
    sgd = RunSpec("sgd", seeds=[0], budget=5, eval_every=1)
    keys_before = rl.key(task), sgd.key(task)
    monkeypatch.setattr(samplers.lookup("riemannian_langevin"), "numerics", "another")
    assert rl.key(task) != keys_before[0]
    assert sgd.key(task) == keys_before[1]


# -- a store written before RunSpec ------------------------------------------------------------
def _golden_recipe():
    """tests/golden/store_v3.py: how the committed store was made (its task, samplers, preset)."""
    spec = importlib.util.spec_from_file_location("store_v3", GOLDEN / "store_v3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_store_written_before_runspec_keeps_every_run(tmp_path):
    """Every run of the committed store is found under the key today's code computes for the
    job that made it (from the trials its entries recorded, at the preset of then), loads with
    its spec, is reused rather than retrained, and its comparisons still render."""
    recipe = _golden_recipe()
    path = tmp_path / "store_v3.sqlite"
    shutil.copy(GOLDEN / "store_v3.sqlite", path)
    task = tasks.make(
        recipe.TASK["name"], width=recipe.TASK["width"], d_embed=recipe.TASK["d_embed"]
    )
    # the smoke preset as it was when the store was written (its numbers have changed since)
    then = dict(budget=300, eval_every=10, trials=2, tune_seeds=2, seeds=3, max_norm_growth=None)
    preset = dataclasses.replace(C.PRESETS["smoke"], **{**then, **recipe.PRESET}).resolve(task)
    tune_seeds = list(range(preset.tune_seeds))
    fresh = list(range(C.FRESH_SEED, C.FRESH_SEED + preset.seeds))
    with Store(path) as store:
        stored = set(store.run_keys())
        compares = store.compares(task.name)
        assert sorted(c.protocol["start"] for c in compares) == ["init", "memorized"]
        computed = {}
        for compare in compares:
            starts = None
            if compare.protocol["start"] == "memorized":
                starts = {
                    s: checkpoints.checkpoint_key(task, s, preset.memorized)
                    for s in tune_seeds + fresh
                }
                assert all(store.get_checkpoint(k) is not None for k in starts.values())
            for entry in store.entries(compare.key):
                warmup = C.search_space(entry.sampler).warmup if entry.role == "tuned" else None
                tuning = []
                if entry.role == "tuned":
                    configs = [
                        {k: t[k] for k in ("search", "hparams", "prior_precision")}
                        for t in entry.trials
                    ]
                    tuning = C.jobs_for(
                        entry.sampler,
                        configs,
                        tune_seeds,
                        preset,
                        "tune",
                        starts=starts,
                        warmup=warmup,
                    )
                finals = C.jobs_for(
                    entry.sampler,
                    [entry.chosen],
                    fresh,
                    preset,
                    "final",
                    starts=starts,
                    warmup=warmup,
                )
                assert [j.key(task) for j, _ in tuning] == entry.tuning_runs
                assert [j.key(task) for j, _ in finals] == entry.final_runs
                computed.update({j.key(task): j for j, _ in [*tuning, *finals]})
        assert set(computed) == stored and len(stored) == 12
        for key, job in computed.items():
            # the stored result's spec is the job's, but for its start, not recorded then
            assert store.get_run(key).result.spec == dataclasses.replace(job.spec, start=None)
        runner = Runner(task, store, log=lambda line: None)
        runner.run_all(list(computed.values()))  # no start needed: nothing is trained
        assert (runner.ran, runner.reused) == (0, 12)
        pages = [boards.build_board(store, c) for c in store.compares(task.name)]
        text = markdown.render_page(pages, {})
    assert all(f"`{name}`" in text for name in recipe.SAMPLERS)


def test_a_failed_transaction_leaves_nothing(tmp_path, tiny):
    task, result = tiny
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(RuntimeError), store.transaction() as db:
            db.execute("INSERT INTO meta VALUES ('half', 'written')")
            raise RuntimeError("killed mid-write")
        with store.transaction() as db:
            assert db.execute("SELECT count(*) FROM meta WHERE key = 'half'").fetchone()[0] == 0


def test_other_schema_version_is_refused_untouched(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schema version 999"):
        Store(path)
    assert path.read_bytes() == before


def test_corrupt_file_is_refused_untouched(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database, just some bytes\n" * 200)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a readable grokbench store"):
        Store(path)
    assert path.read_bytes() == before


def test_truncated_store_is_refused(tmp_path, tiny):
    task, result = tiny
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.put_run(key_of(task, result), result, task_config=task.config, seconds_wall=1.0)
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError):
        Store(path).count("runs")


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    db.close()
    with pytest.raises(StoreError, match="not a grokbench store"):
        Store(path)


def test_unwritable_or_missing_paths(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not a directory|cannot"):
        Store(blocker / "store.sqlite")
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="no results store"):
        Store(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    with Store(tmp_path / "new" / "dir" / "s.sqlite") as store:  # parents are created
        assert store.count("runs") == 0
