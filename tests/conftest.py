"""The fixtures the test files share: one torch thread, the tiny and light tasks, the toy
Gaussian, a sampler's trajectory, and the kill -9 harness of the resume tests.

Fixtures, not importable helpers: pytest puts them in every test's reach without a package
``tests`` (which the import-linter contracts would then have to know about). A fixture that hands
back a function (``run_sampler``, ``kill_9``, ``finished_runs``) is how a test calls shared code.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch

import tasks
from tasks.toy import correlated_gaussian

#: The repository root: what a subprocess needs on its PYTHONPATH.
ROOT = Path(__file__).resolve().parent.parent
#: 24 training pairs: a step of the tiny task costs about a millisecond.
TINY = "add_mod7_mlp"


@pytest.fixture
def one_thread():
    """Tiny models and thousands of tiny steps: on a shared two-core machine torch's second
    intra-op thread only adds synchronisation (one thread is up to ~10x faster). The numbers
    are the same either way. A file that wants it everywhere re-exports it with autouse."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_task():
    """``add_mod7_mlp`` with a small embedding MLP: grokking machinery in milliseconds a step."""
    return tasks.make(TINY, width=32, d_embed=16)


@pytest.fixture(scope="module")
def light_task():
    """The light CPU grokking task (``tasks.LIGHT_TASK``, the embedding MLP on add_mod31)."""
    return tasks.make(tasks.LIGHT_TASK)


@pytest.fixture(scope="module")
def target():
    """The ill-conditioned 2-D Gaussian (condition number 100) the sampler contracts run on."""
    return correlated_gaussian(condition=100.0)


def _run_sampler(sampler, theta, potential, steps, seed=0, batch=None):
    state = sampler.init(theta)
    generator = torch.Generator().manual_seed(seed)
    infos = []
    for _ in range(steps):
        state, info = sampler.step(state, potential, batch, generator)
        infos.append(info)
    return state, infos


@pytest.fixture(scope="session")
def run_sampler():
    """``run_sampler(sampler, theta, potential, steps, seed=0, batch=None) -> (state, infos)``:
    ``steps`` steps from ``sampler.init(theta)`` on a generator seeded with ``seed``."""
    return _run_sampler


@pytest.fixture(scope="session")
def repo_env() -> dict[str, str]:
    """The environment of a subprocess that imports this checkout (``python -m bench ...``)."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _finished_runs(store: Path) -> dict[str, float]:
    if not store.exists():
        return {}
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return dict(db.execute("SELECT key, finished_at FROM runs"))
    except sqlite3.OperationalError:  # not created yet
        return {}


@pytest.fixture(scope="session")
def finished_runs() -> Callable[[Path], dict[str, float]]:
    """``finished_runs(store) -> {run key: finished_at}`` read straight from the SQLite file
    (empty before the store exists), so a test can watch a store another process writes."""
    return _finished_runs


def _kill_9(
    cmd: Sequence[str],
    *,
    ready: Callable[[], bool],
    cwd: Path,
    env: dict[str, str],
    timeout: float = 90.0,
) -> None:
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"{cmd[:4]} finished before it could be killed"
        assert ready(), f"{cmd[:4]} was not ready to be killed within {timeout:g} s"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:  # a failed assertion must not leave the process running
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def kill_9():
    """``kill_9(cmd, ready=..., cwd=..., env=..., timeout=90)``: start ``cmd``, wait until
    ``ready()`` (say, two runs in its store), then kill it with SIGKILL, as a crash or an
    out-of-memory kill would, and check that it died of that signal. A command that finishes
    first, or is not ready in time, fails the test."""
    return _kill_9
