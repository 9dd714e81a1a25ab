"""The exploration protocol and the machinery under it: memorized checkpoints made once and
shared, selection that never prefers a diverged or collapsed trial, jobs split between
processes through claims in the store, worker processes that change no number, and the
in-place upgrade of a version-2 store."""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from bench import checkpoints
from bench import compare as C
from bench.jobs import Job, LocalExecutor, Runner
from bench.spec import RunSpec
from bench.store import Store

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


CRITERION = checkpoints.Criterion(train_loss_ratio=0.2, val_acc_below=1.01, eval_every=5)


def test_checkpoints_meet_the_criterion_are_made_once_and_shared(tmp_path, tiny_task):
    lines: list[str] = []
    with Store(tmp_path / "s.sqlite") as store:
        made = checkpoints.memorized(tiny_task, [0, 1], CRITERION, store, log=lines.append)
        assert store.count("checkpoints") == 2 and len(lines) == 1
        for point in made:
            assert point.metrics["train_acc"] >= 1.0
            start = tiny_task.evaluate(tiny_task.init(point.seed, 1))["train_loss"]
            assert point.metrics["train_loss"] < 0.2 * float(start[0])
            assert point.step % 5 == 0 and point.theta.shape == (tiny_task.num_params,)
            # the point is where the reference optimizer stood: evaluating it agrees
            again = tiny_task.evaluate(point.theta[None])
            assert float(again["train_loss"][0]) == pytest.approx(point.metrics["train_loss"])
        again = checkpoints.memorized(tiny_task, [1, 0], CRITERION, store, log=lines.append)
        assert len(lines) == 1  # nothing new was made
        assert [p.key for p in again] == [made[1].key, made[0].key]
        assert torch.equal(again[1].theta, made[0].theta)


def test_a_reference_that_generalizes_before_memorizing_is_refused(tmp_path, tiny_task):
    strict = replace(CRITERION, val_acc_below=0.0)
    with Store(tmp_path / "s.sqlite") as store, pytest.raises(checkpoints.CheckpointError):
        checkpoints.memorized(tiny_task, [0], strict, store)
    never = replace(CRITERION, train_loss_ratio=1e-12, max_steps=10)
    with Store(tmp_path / "t.sqlite") as store, pytest.raises(checkpoints.CheckpointError):
        checkpoints.memorized(tiny_task, [0], never, store)


def test_every_sampler_starts_from_the_same_checkpoints(tmp_path, tiny_task):
    preset = replace(
        C.PRESETS["smoke"], budget=40, eval_every=20, trials=1, seeds=2, memorized=CRITERION
    )
    with Store(tmp_path / "s.sqlite") as store:
        key = C.compare(tiny_task, ["sgd", "sgld"], preset, store, start="memorized")
        (compare,) = store.compares()
        assert compare.key == key and compare.protocol["start"] == "memorized"
        starts = set()
        for entry in store.entries(key):
            for run_id in entry.final_runs:
                result = store.get_run(run_id).result
                assert result.spec.seeds == (1000, 1001)
                assert all(c.t_mem == 0 for c in result.chains)  # memorized from step 0
                starts.add(run_id)
        # one checkpoint per tuning seed and per fresh seed
        assert store.count("checkpoints") == preset.tune_seeds + preset.seeds == 3
        init = C.compare(tiny_task, ["sgd"], preset, store, start="init")
        assert init != key  # each start is its own comparison


def _chain(**kw):
    base = dict(
        t_grok_grad_evals=None,
        censored_at=100,
        t_mem_grad_evals=10,
        grokked=False,
        diverged=False,
        t_touch=None,
        generalized=False,
        final={"val_acc": 0.5},
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_selection_never_prefers_a_diverged_or_collapsed_trial():
    fast_but_one_collapsed = [
        _chain(t_grok_grad_evals=20, grokked=True, t_touch=2, generalized=True),
        _chain(t_grok_grad_evals=30, grokked=True, t_touch=3, generalized=True),
        _chain(t_touch=1, generalized=False),  # touched the target and fell back
    ]
    slow_and_clean = [
        _chain(t_grok_grad_evals=80, grokked=True, t_touch=8, generalized=True),
        _chain(t_grok_grad_evals=90, grokked=True, t_touch=9, generalized=True),
        _chain(),
    ]
    fast_but_one_diverged = [*fast_but_one_collapsed[:2], _chain(diverged=True)]
    never = [_chain(), _chain(), _chain()]
    ranked = sorted(
        [fast_but_one_collapsed, slow_and_clean, fast_but_one_diverged, never],
        key=lambda chains: C.score(chains, 1),
    )
    assert ranked[0] is slow_and_clean and ranked[-1] is never


def test_hmc_temperatures_reach_the_posterior(tiny_task):
    axis = next(a for a in C.search_space("hmc", tiny_task).axes if a.name == "temperature")
    n_train = len(tiny_task.batch()[1])
    assert pytest.approx(1.0 / n_train, rel=1e-5) in axis.resolve(tiny_task)


def _jobs(n):
    specs = [
        RunSpec("sgd", {"step_size": 0.1 * (i + 1)}, seeds=[0, 1], budget=30, eval_every=10)
        for i in range(n)
    ]
    return [Job(spec, "t") for spec in specs]


def test_worker_processes_give_the_same_numbers(tmp_path, tiny_task):
    out = []
    for workers in (1, 2):
        with Store(tmp_path / f"{workers}.sqlite") as store, LocalExecutor(workers) as pool:
            runner = Runner(tiny_task, store, executor=pool, log=lambda line: None)
            out.append([(k, r.chains) for k, r in runner.run_all(_jobs(3))])
    assert [k for k, _ in out[0]] == [k for k, _ in out[1]]
    for (_, a), (_, b) in zip(out[0], out[1], strict=True):
        # repr: NaN (distance from t_mem before memorization) equals itself there
        assert repr([(c.t_mem, c.t_grok, c.final) for c in a]) == repr(
            [(c.t_mem, c.t_grok, c.final) for c in b]
        )


def test_two_processes_on_one_store_split_the_work(tmp_path, tiny_task):
    """Two runners (two holders, as two terminals would be) on one store each train what the
    other has not claimed: every job is trained exactly once."""
    path = tmp_path / "s.sqlite"
    Store(path).close()
    counts = []

    def work():
        with Store(path) as store:
            runner = Runner(tiny_task, store, log=lambda line: None)
            runner.run_all(_jobs(6))
            counts.append(runner.ran)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Store(path) as store:
        assert store.count("runs") == 6 and store.count("claims") == 0
    assert sum(counts) == 6


def test_a_job_another_process_finishes_just_before_our_claim_is_not_trained_again(
    tmp_path, tiny_task
):
    """The window the two-process test can only hit by chance, made certain: the other holder
    stores the run and releases its claim after this runner's first look and before its claim
    (the other process's whole training happens inside our ``claim``)."""
    job = _jobs(1)[0]
    key = job.key(tiny_task)
    with Store(tmp_path / "o.sqlite") as other:
        Runner(tiny_task, other, log=lambda line: None).run_all([job])
        finished = other.get_run(key, curves=False).result

    class Racing(Store):
        def claim(self, key, holder, lease, dead=None):
            if self.get_run(key, curves=False) is None:
                assert super().claim(key, "other", lease)
                self.put_run(key, finished, task_config=tiny_task.config, seconds_wall=0.0)
                self.release(key, "other")
            return super().claim(key, holder, lease, dead)

    with Racing(tmp_path / "s.sqlite") as store:
        runner = Runner(tiny_task, store, log=lambda line: None)
        [(got, result)] = runner.run_all([job])
        assert got == key and runner.ran == 0 and runner.reused == 1
        assert result.steps_run == finished.steps_run
        assert store.count("runs") == 1 and store.count("claims") == 0


def test_a_job_whose_training_raises_leaves_no_claim(tmp_path, tiny_task, monkeypatch):
    """A crash inside training (here: in the sampler's run) propagates, and the claim is given
    back, so a rerun in the same process trains the job at once instead of waiting a lease."""
    import bench.jobs as jobs

    job = _jobs(1)[0]

    def broken(*args, **kwargs):
        raise RuntimeError("the sampler broke")

    with Store(tmp_path / "s.sqlite") as store:
        with monkeypatch.context() as patch:
            patch.setattr(jobs, "run", broken)
            with pytest.raises(RuntimeError, match="the sampler broke"):
                Runner(tiny_task, store, log=lambda line: None).run_all([job])
        assert store.count("claims") == 0
        runner = Runner(tiny_task, store, log=lambda line: None, lease=3600)
        runner.run_all([job])
        assert runner.ran == 1 and store.count("claims") == 0


def test_a_dead_holders_claim_expires_and_is_taken_over(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        assert store.claim("job", "a", lease=60)
        assert not store.claim("job", "b", lease=60)  # a's lease runs
        assert store.claim("job", "a", lease=60)  # renewing
        assert store.claim("other", "b", lease=-1)  # an already expired lease...
        assert store.claim("other", "a", lease=60)  # ...is taken over
        store.release("job", "a")
        assert store.claim("job", "b", lease=60)


def test_a_version_2_store_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        store.put_compare("k", "t", {}, "cpu", {"budget": 1})
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE checkpoints")
        db.execute("DROP TABLE claims")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with Store(path) as store:
        assert store.count("checkpoints") == 0 and store.count("claims") == 0
        assert [c.key for c in store.compares()] == ["k"]  # nothing else changed


def test_a_killed_local_holders_claim_is_taken_over_at_once(tmp_path):
    """A driver killed with kill -9 leaves its claims; a rerun on the same machine sees that
    the holder's process is gone and does not wait for the lease."""
    import socket
    import subprocess
    import sys

    from bench.jobs import holder_is_gone

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = f"{socket.gethostname()}:{done.stdout.strip()}:abc"
    alive = f"{socket.gethostname()}:{os.getpid()}:abc"
    assert holder_is_gone(gone) and not holder_is_gone(alive)
    assert not holder_is_gone("another-host:1:abc")  # trusted until its lease runs out
    with Store(tmp_path / "s.sqlite") as store:
        assert store.claim("job", gone, lease=3600)
        assert store.claim("job", "me", lease=60, dead=holder_is_gone)
