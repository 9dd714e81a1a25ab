"""Jobs trained once, through the store, on this machine's cores.

A :class:`Job` is one vectorized run, a :class:`bench.spec.RunSpec` with a label for the log.
:class:`Runner` trains a list of them: a job whose key is in the store is loaded, never rerun;
the others are claimed in the store (a lease, so that several processes on one store split the
work and a dead holder's job is taken over: at once when the holder was a process on this
machine, else once its lease expires), trained by an executor, and written to the store by this
process alone, one transaction per run. An interrupted batch loses at most the jobs in flight.

Executors: anything with ``workers`` (jobs in flight at once), ``settings``
(:class:`JobSettings`), ``submit(fn, *args, **kwargs)`` returning a
:class:`concurrent.futures.Future` and ``shutdown()`` (:class:`Executor`); the Runner submits
:func:`bench.run.run` with the executor's settings. :class:`LocalExecutor` runs jobs in
``workers`` single-threaded worker processes (one per core on a CPU: two threads on one job were
measured up to 13x slower than one when the other core was busy, and two jobs side by side use
both cores), or in a thread of this process when ``workers`` is 1;
:class:`bench.ray_executor.RayExecutor` runs each job as a task on a Ray cluster. Either way the
results come back to this process, which alone writes the store. How an executor runs every job
(:class:`JobSettings`: CPU threads per job, ``torch.compile``) changes no run's key.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from bench.keys import code_version
from bench.run import RunResult, run
from bench.spec import RunSpec
from bench.store import Store

#: Seconds a claim lasts; a holder renews its claims while it trains, so only a dead holder's
#: claim runs out.
LEASE_SECONDS = 120.0
#: Seconds between looks at the store while every remaining job is another holder's.
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Job:
    """One vectorized run: what it computes, and a label for the log (``tune``, ``final``)."""

    spec: RunSpec
    label: str = ""

    def key(self, task: Any) -> str:
        return self.spec.key(task)


@dataclass(frozen=True)
class JobSettings:
    """How an executor runs each of its jobs; what a job computes does not depend on them (up
    to float rounding for ``compile``), so they are no part of a run's key."""

    threads: int | None = 1  # torch CPU threads per job (None: leave the process's setting)
    compile: bool = False  # torch.compile the potential (bench.run.run's ``compile``)


class Executor(Protocol):
    """What :class:`Runner` needs of an executor."""

    workers: int  # jobs the runner keeps in flight at once
    settings: JobSettings  # how every job runs

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> cf.Future: ...

    def shutdown(self) -> None: ...


class LocalExecutor:
    """``workers`` single-threaded processes (``workers`` = 1: one thread of this process);
    ``threads`` and ``compile`` are the :class:`JobSettings` of every job."""

    def __init__(self, workers: int = 1, *, threads: int | None = 1, compile: bool = False) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 or None, got {threads}")
        self.workers = workers
        self.settings = JobSettings(threads=threads, compile=compile)
        if workers == 1:
            self._pool: cf.Executor = cf.ThreadPoolExecutor(max_workers=1)
        else:
            context = multiprocessing.get_context("spawn")
            self._pool = cf.ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_worker_setup
            )

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> cf.Future:
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def _worker_setup() -> None:
    """In each worker: one torch thread, freed memory kept (bench/allocator.py), and death with
    the parent (a killed driver leaves no worker training for nobody)."""
    from bench.allocator import tune_from_environment

    torch.set_num_threads(1)
    tune_from_environment()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, 9)  # PR_SET_PDEATHSIG = SIGKILL (Linux)
    except (OSError, AttributeError):
        pass


def holder_is_gone(holder: str) -> bool:
    """True for a holder (``host:pid:nonce``) on this host whose process no longer runs: a
    driver killed with ``kill -9`` never releases its claims, and a rerun on the same machine
    should not wait for their leases to run out. Holders on other hosts are trusted until then."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class Runner:
    """Trains jobs once through the store; see the module docstring."""

    def __init__(
        self,
        task: Any,
        store: Store,
        *,
        executor: Executor | None = None,
        device: str | None = None,
        log: Callable[[str], None] = print,
        lease: float = LEASE_SECONDS,
    ) -> None:
        self.task = task
        self.store = store
        self.executor = executor or LocalExecutor(1)
        self.device = device
        self.log = log
        self.lease = lease
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.code = code_version()
        self.ran = 0
        self.reused = 0

    def run_all(
        self,
        jobs: Sequence[Job],
        starts: Callable[[Job], torch.Tensor | None] = lambda job: None,
        check: Callable[[Job, RunResult], None] | None = None,
    ) -> list[tuple[str, RunResult]]:
        """``(key, result)`` of every job, in order (results without their final positions).
        ``starts(job)`` gives its chains' starting positions (``None``: ``task.init``);
        ``check(job, result)`` vets a fresh result before it is stored."""
        keys = [job.key(self.task) for job in jobs]
        done: dict[str, RunResult] = {}
        todo = []
        for job, key in zip(jobs, keys, strict=True):
            if key in done:
                continue
            record = self.store.get_run(key, curves=False)
            if record is not None:
                done[key] = record.result
                self.reused += 1
            elif all(key != k for k, _ in todo):
                todo.append((key, job))
        total, started = len(todo), time.perf_counter()
        settings = getattr(self.executor, "settings", JobSettings())
        flying: dict[cf.Future, tuple[str, Job, float]] = {}
        waiting: list[tuple[str, Job]] = []  # claimed by another live holder
        held: set[str] = set()  # claimed by this runner and not yet released
        trained = 0
        try:
            while todo or flying or waiting:
                while todo and len(flying) < self.executor.workers:
                    key, job = todo.pop(0)
                    if not self.store.claim(key, self.holder, self.lease, dead=holder_is_gone):
                        waiting.append((key, job))
                        continue
                    held.add(key)
                    # Read the store only once the claim is ours: a holder stores its run before
                    # it releases its claim, so a run finished by another process just before our
                    # claim is visible now (reading first left a window in which it was trained
                    # twice).
                    record = self.store.get_run(key, curves=False)
                    if record is not None:  # another process finished it meanwhile
                        self.store.release(key, self.holder)
                        held.discard(key)
                        done[key] = record.result
                        self.reused += 1
                        total -= 1
                    else:
                        future = self.executor.submit(
                            run,
                            self.task,
                            job.spec,
                            theta0=starts(job),
                            device=self.device,
                            progress=False,
                            threads=settings.threads,
                            compile=settings.compile,
                        )
                        flying[future] = (key, job, time.perf_counter())
                if not flying:
                    if waiting:  # only others' jobs left: look again shortly
                        time.sleep(POLL_SECONDS)
                        todo, waiting = waiting, []
                    continue
                finished, _ = cf.wait(
                    flying, timeout=self.lease / 3, return_when=cf.FIRST_COMPLETED
                )
                for future in finished:
                    key, job, tick = flying.pop(future)
                    result = future.result()
                    result.theta = None  # final positions: the store does not keep them
                    if check is not None:
                        check(job, result)
                    wall = time.perf_counter() - tick
                    self.store.put_run(
                        key, result, task_config=self.task.config, seconds_wall=wall, code=self.code
                    )
                    self.store.release(key, self.holder)
                    held.discard(key)
                    done[key] = result
                    self.ran += 1
                    trained += 1
                    self._report(job, result, wall, trained, total, len(flying), started)
                for key, _, _ in flying.values():  # still training: keep the lease
                    self.store.claim(key, self.holder, self.lease)
        finally:
            # Every claim still held: jobs in flight, and a job whose submission or training
            # raised (its claim would otherwise block a rerun in this process for a lease).
            for key in held:
                self.store.release(key, self.holder)
        return [(key, done[key]) for key in keys]

    def _report(self, job, result, wall, trained, total, in_flight, started) -> None:
        grokked = sum(c.grokked for c in result.chains)
        elapsed = time.perf_counter() - started
        eta = elapsed / trained * (total - trained) if trained else float("nan")
        self.log(
            f"  [{trained}/{total} jobs, {in_flight} in flight, ETA {eta / 60:.1f} min] "
            f"{job.spec.sampler:<20} {job.label:<6} {len(result.chains):>3} chains x "
            f"{result.steps_run:>6} steps  grokked {grokked}/{len(result.chains)}  {wall:6.1f} s"
            + (
                f" (torch.compile {result.seconds_compile:.1f} s)"
                if result.seconds_compile is not None
                else ""
            )
        )
