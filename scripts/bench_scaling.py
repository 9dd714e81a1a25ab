"""Scaling out on this machine, measured side by side (the figures of reports/scaling.md).

    python scripts/bench_scaling.py workers            # wall clock of one batch of jobs:
                                                       # local 1 vs 2 workers, Ray 1 vs 2 CPUs
    python scripts/bench_scaling.py threads            # one job on 1 vs 2 torch threads,
                                                       # as found, then with a busy process
    python scripts/bench_scaling.py compile            # torch.compile of the potential vs eager

``workers`` trains the same independent jobs (SGLD on ``add_mod31_mlp``, through
:class:`bench.jobs.Runner` into a fresh store each time) with each executor and prints the wall
clock and the ratio of 1 worker to 2 (> 1: two workers are faster); the executor's start-up
(worker processes, a Ray cluster) is timed apart, as a compare pays it once. ``threads`` and
``compile`` time :func:`bench.run.run` in interleaved rounds and report medians. Every figure
depends on what else the machine is doing: the load average is printed with it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import tasks
from bench.allocator import tune_from_environment
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
    rows = []
    for repeat in range(args.repeats):  # interleaved, so that a busy spell hits every executor
        for workers in (1, 2):
            tick = time.perf_counter()
            with LocalExecutor(workers) as executor:
                started = [executor.submit(os.getpid) for _ in range(workers)]
                _ = [f.result() for f in started]  # the worker processes are up
                start = time.perf_counter() - tick
                wall = timed_batch(executor, jobs)
            rows.append((repeat, f"local, {workers} worker(s)", wall, start, load()))
        if args.ray:
            from bench.ray_executor import RayExecutor

            for workers in (1, 2):
                tick = time.perf_counter()
                executor = RayExecutor(workers=workers, log=lambda line: None)
                start = time.perf_counter() - tick
                try:
                    wall = timed_batch(executor, jobs)
                finally:
                    executor.shutdown()
                rows.append((repeat, f"Ray, {workers} CPU(s)", wall, start, load()))
    print("\n| round | executor | wall clock (s) | start-up (s) | after it |")
    print("|---:|---|---:|---:|---|")
    for repeat, name, wall, start, after in rows:
        started = "" if start is None else f"{start:.1f}"
        print(f"| {repeat + 1} | {name} | {wall:.1f} | {started} | {after} |")
    for kind in ("local", "Ray"):
        for repeat in range(args.repeats):
            walls = [w for r, n, w, _, _ in rows if n.startswith(kind) and r == repeat]
            if len(walls) == 2:
                print(
                    f"round {repeat + 1}, {kind}: 1 worker / 2 workers = {walls[0] / walls[1]:.2f}"
                )


# -- threads -----------------------------------------------------------------------------------
def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


def ms_per_step(
    task, sampler, chains, steps, *, threads=1, compile=False, device="cpu"
) -> tuple[float, float]:
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
        device=device,
    )
    return 1e3 * result.seconds_per_step, result.seconds_compile or 0.0


def cmd_threads(args) -> None:
    task = tasks.make(args.task)
    print(f"AdamW on {args.task}, {args.chains} chains, {args.steps} steps a round, {load()}")
    ms_per_step(task, "adamw", args.chains, 5)  # warm-up
    print("\n| machine | threads | ms per step (median) | vs 1 thread |\n|---|---:|---:|---:|")
    for busy in (False, True):
        spinner = None
        if busy:  # one more process of ours keeps a core busy, as other work would
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
            where = "as found, plus one busy process of ours" if busy else "as found"
            print(f"| {where} | {threads} | {t:.2f} | {t / one:.2f}x |")
    print(load())


# -- compile -----------------------------------------------------------------------------------
def cmd_compile(args) -> None:
    print(f"torch {torch.__version__} on {args.device}, 1 CPU thread, {load()}")
    print(
        "\n| task | sampler | chains | eager ms/step | compiled ms/step | speed-up | compile s: "
        "cold | new process, cache on disk | same process again | max abs gradient difference |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for spec in args.cases:
        name, sampler, chains = spec.split(":")
        chains = int(chains)
        task = tasks.make(name)
        dev = args.device
        ms_per_step(task, sampler, chains, 3, device=dev)  # eager warm-up
        cold = ms_per_step(task, sampler, chains, 3, compile=True, device=dev)[1]  # nothing cached
        theta = task.init(0, chains, device=dev)
        potential = task.potential(prior_precision=1e-3)
        _, eager_grad = value_and_grad(potential, theta, task.train)
        _, compiled_grad = value_and_grad(torch.compile(potential), theta, task.train)
        diff = float((eager_grad - compiled_grad).abs().max())
        fresh = subprocess.run(  # what each new worker process pays for its first job
            [sys.executable, __file__, "compile-once", spec, "--device", dev],
            capture_output=True,
            text=True,
            check=True,
        )
        disk = float(fresh.stdout.strip().splitlines()[-1])
        eager, compiled, cached = [], [], []
        for _ in range(args.rounds):
            eager.append(ms_per_step(task, sampler, chains, args.steps, device=dev)[0])
            ms, seconds = ms_per_step(task, sampler, chains, args.steps, compile=True, device=dev)
            compiled.append(ms)
            cached.append(seconds)
        e, c = statistics.median(eager), statistics.median(compiled)
        print(
            f"| {name} | {sampler} | {chains} | {e:.2f} | {c:.2f} | {e / c:.2f}x | {cold:.1f} | "
            f"{disk:.1f} | {statistics.median(cached):.1f} | {diff:.1e} |",
            flush=True,
        )
    print(load())


def cmd_compile_once(args) -> None:
    name, sampler, chains = args.case.split(":")
    task = tasks.make(name)
    print(ms_per_step(task, sampler, int(chains), 3, compile=True, device=args.device)[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("workers")
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--repeats", type=int, default=2)
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
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=cmd_compile)
    p = sub.add_parser("compile-once", help="(internal) one compile in a new process")
    p.add_argument("case", help="task:sampler:chains")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_compile_once)
    args = parser.parse_args(argv)
    tune_from_environment()  # as every `python -m bench` command does (bench/allocator.py)
    if args.command == "compile" and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        # a fresh compile cache, so that the first compile of each case is a cold one
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
