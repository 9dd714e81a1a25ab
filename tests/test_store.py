"""The results store: round trips, no duplicates, atomic writes, and clear refusals."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest

import tasks
from bench import keys
from bench.keys import run_key
from bench.run import run
from bench.store import Store, StoreError


@pytest.fixture(scope="module")
def tiny():
    task = tasks.make("add_mod7_mlp", width=16, d_embed=8)
    result = run(
        task,
        "sgld",
        {"step_size": [0.1, 0.3]},
        seeds=[0, 1],
        budget=20,
        eval_every=5,
        prior_precision=0.01,
        progress=False,
    )
    return task, result


def key_of(task, result):
    return run_key(
        task,
        result.sampler,
        result.hparams,
        prior_precision=result.prior_precision,
        seeds=result.seeds,
        budget=result.budget,
        eval_every=result.eval_every,
    )


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
    assert back.hparams == result.hparams and back.seeds == result.seeds
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
    base = dict(prior_precision=0.01, seeds=[0, 1], budget=20, eval_every=5)
    key = run_key(task, "sgld", {"step_size": 0.1}, **base)
    assert key == run_key(task, "sgld", {"step_size": 0.1}, **base)
    assert key != run_key(task, "sgld", {"step_size": 0.2}, **base)
    assert key != run_key(task, "sgd", {"step_size": 0.1}, **base)
    assert key != run_key(task, "sgld", {"step_size": 0.1}, **{**base, "seeds": [0, 2]})
    assert key != run_key(task, "sgld", {"step_size": 0.1}, **{**base, "budget": 21})
    other = tasks.make("add_mod7_mlp", width=17, d_embed=8)
    assert key != run_key(other, "sgld", {"step_size": 0.1}, **base)


def test_key_changes_with_the_numerics_version_only(tiny, monkeypatch):
    task, _ = tiny
    args = dict(prior_precision=0.0, seeds=[0], budget=5, eval_every=1)
    key = run_key(task, "sgd", {}, **args)
    monkeypatch.setattr(keys, "code_version", lambda: "another-commit")
    assert run_key(task, "sgd", {}, **args) == key
    monkeypatch.setattr(keys, "NUMERICS_VERSION", "999")
    assert run_key(task, "sgd", {}, **args) != key


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
