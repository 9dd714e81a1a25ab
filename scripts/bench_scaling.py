"""Scaling out on this machine, measured side by side (the figures of reports/scaling.md).

    python scripts/bench_scaling.py workers            # wall clock of one batch of jobs:
                                                       # local 1 vs 2 workers, Ray 1 vs 2 CPUs
    python scripts/bench_scaling.py threads            # one job on 1 vs 2 torch threads,
                                                       # the other core idle, then busy
    python scripts/bench_scaling.py compile            # torch.compile of the potential vs eager

``workers`` trains the same independent jobs (SGLD on ``add_mod31_mlp``, through
:class:`bench.jobs.Runner` into a fresh store each time) with each executor and prints the wall
clock and the ratio of 1 worker to 2 (> 1: two workers are faster); a Ray cluster's start-up is
timed apart. ``threads`` and ``compile`` time :func:`bench.run.run` in interleaved rounds and
report medians. Every figure depends on what else the machine is doing: the load average is
printed with it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import tasks
from bench.jobs import Job, LocalExecutor, Runner
from bench.run import run
from bench.store import Store
from samplers.base import value_and_grad


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


# -- workers -----------------------------------------------------------------------------------
def batch(jobs: int, chains: int, steps: int) -> list[Job]:
    return [
        Job(
            sampler="sgld",
            hparams={"step_size": 0.3, "temperature": 1e-6},
            prior_precision=1e-3,
            seeds=[100 * j + c for c in range(chains)],
            steps=steps,
            eval_every=max(1, steps // 20),
            label=f"j{j}",
        )
        for j in range(jobs)
    ]


def timed_batch(executor, jobs: list[Job]) -> float:
    task = tasks.make("add_mod31_mlp")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
        runner = Runner(task, store, executor=executor, log=lambda line: None)
        tick = time.perf_counter()
        runner.run_all(jobs)
        return time.perf_counter() - tick


def cmd_workers(args) -> None:
    jobs = batch(args.jobs, args.chains, args.steps)
    print(f"{args.jobs} jobs of SGLD on add_mod31_mlp, {args.chains} chains x {args.steps} steps")
    print(load())
    rows = []
    for workers in (1, 2):
        with LocalExecutor(workers) as executor:  # 2: process start-up counted, as in compare
            rows.append((f"local, {workers} worker(s)", timed_batch(executor, jobs), None))
    if args.ray:
        from bench.ray_executor import RayExecutor

        for workers in (1, 2):
            tick = time.perf_counter()
            executor = RayExecutor(workers=workers, log=lambda line: None)
            start = time.perf_counter() - tick
            try:
                rows.append((f"Ray, {workers} CPU(s)", timed_batch(executor, jobs), start))
            finally:
                executor.shutdown()
    print(load())
    print("\n| executor | wall clock (s) | Ray start-up (s) |\n|---|---:|---:|")
    for name, wall, start in rows:
        print(f"| {name} | {wall:.1f} | {'' if start is None else f'{start:.1f}'} |")
    for kind in ("local", "Ray"):
        walls = [w for n, w, _ in rows if n.startswith(kind)]
        if len(walls) == 2:
            print(f"{kind}: 1 worker / 2 workers = {walls[0] / walls[1]:.2f}")


# -- threads -----------------------------------------------------------------------------------
def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


def ms_per_step(task, sampler, chains, steps, *, threads=1, compile=False) -> tuple[float, float]:
    result = run(
        task,
        sampler,
        {},
        seeds=chains,
        budget=steps,
        eval_every=steps,
        prior_precision=1e-3 if sampler != "adamw" else 0.0,
        progress=False,
        threads=threads,
        compile=compile,
        device="cpu",
    )
    return 1e3 * result.seconds_per_step, result.seconds_compile or 0.0


def cmd_threads(args) -> None:
    task = tasks.make(args.task)
    print(f"AdamW on {args.task}, {args.chains} chains, {args.steps} steps a round, {load()}")
    ms_per_step(task, "adamw", args.chains, 5)  # warm-up
    print("\n| other core | threads | ms per step (median) | vs 1 thread |\n|---|---:|---:|---:|")
    for busy in (False, True):
        spinner = None
        if busy:  # a process of ours keeps the other core busy, as other work would
            spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(600,))
            spinner.start()
        try:
            times: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.rounds):
                for threads in (1, 2):
                    times[threads].append(
                        ms_per_step(task, "adamw", args.chains, args.steps, threads=threads)[0]
                    )
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.join()
        one = statistics.median(times[1])
        for threads in (1, 2):
            t = statistics.median(times[threads])
            print(f"| {'busy' if busy else 'idle'} | {threads} | {t:.2f} | {t / one:.2f}x |")
    print(load())


# -- compile -----------------------------------------------------------------------------------
def cmd_compile(args) -> None:
    print(f"torch {torch.__version__}, 1 thread, {load()}")
    print(
        "\n| task | sampler | chains | eager ms/step | compiled ms/step | speed-up | compile s "
        "(cold) | compile s (cached) | max abs gradient difference |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for spec in args.cases:
        name, sampler, chains = spec.split(":")
        chains = int(chains)
        task = tasks.make(name)
        ms_per_step(task, sampler, chains, 3)  # eager warm-up
        cold = ms_per_step(task, sampler, chains, 3, compile=True)[1]  # nothing cached yet
        theta = task.init(0, chains)
        potential = task.potential(prior_precision=1e-3)
        _, eager_grad = value_and_grad(potential, theta, task.train)
        _, compiled_grad = value_and_grad(torch.compile(potential), theta, task.train)
        diff = float((eager_grad - compiled_grad).abs().max())
        eager, compiled, cached = [], [], []
        for _ in range(args.rounds):
            eager.append(ms_per_step(task, sampler, chains, args.steps)[0])
            ms, seconds = ms_per_step(task, sampler, chains, args.steps, compile=True)
            compiled.append(ms)
            cached.append(seconds)
        e, c = statistics.median(eager), statistics.median(compiled)
        print(
            f"| {name} | {sampler} | {chains} | {e:.2f} | {c:.2f} | {e / c:.2f}x | {cold:.1f} | "
            f"{statistics.median(cached):.1f} | {diff:.1e} |",
            flush=True,
        )
    print(load())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("workers")
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--no-ray", dest="ray", action="store_false")
    p.set_defaults(func=cmd_workers)
    p = sub.add_parser("threads")
    p.add_argument("--task", default="add_mod31_mlp")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.set_defaults(func=cmd_threads)
    p = sub.add_parser("compile")
    p.add_argument(
        "--cases",
        nargs="+",
        default=["add_mod31_mlp:sgld:64", "add_mod31_mlp:sgld:4", "add_mod31_transformer:adamw:8"],
        help="task:sampler:chains",
    )
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.set_defaults(func=cmd_compile)
    args = parser.parse_args(argv)
    if args.command == "compile" and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        # a fresh compile cache, so that the first compile of each case is a cold one
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
