"""Performance, measured side by side in one process: ``python -m bench.perf``.

Three measurements, each printed as a table (no timed unit tests: the machines are shared, so
only ratios taken in the same run mean much):

1. **Runner overhead.** Seconds per step of :func:`bench.run.run` with AdamW against a plain,
   hand-written ``torch.optim.AdamW`` loop on the same model, data and flat parameters. The two
   are interleaved (A B B A ...) and the median of the per-round ratios is reported, so a noisy
   neighbour slows both alike. Goal: ratio ≤ 1.10 on a CPU.
2. **Chain throughput.** Chain-steps per second of the runner for 1, 8 and 64 chains.
3. **Sampler update cost.** One ``step`` of every sampler on ``C × D`` parameters with a trivial
   fused potential (U = ½‖θ‖²), each at its ``"toy"`` example (``samplers.example``), so the
   figure is the sampler's own arithmetic: the cost it adds on top of the model's forward and
   backward pass.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import samplers
import tasks
from bench.allocator import tune_from_environment
from bench.run import run
from bench.spec import RunSpec
from samplers.peers import is_peer


class _Quadratic:
    """U(θ) = ½‖θ‖² per chain with a fused value and gradient: costs two (C, D) passes."""

    def __call__(self, theta, batch=None):
        return 0.5 * theta.square().sum(dim=1)

    def value_and_grad(self, theta, batch=None):
        return 0.5 * theta.square().sum(dim=1), theta


def plain_adamw_seconds(task, hparams, steps: int, seed: int = 0) -> float:
    """Seconds per step of the textbook loop: zero_grad, loss.backward(), opt.step()."""
    theta = task.init(seed, 1).requires_grad_(True)
    potential = task.potential()
    batch = task.train
    opt = torch.optim.AdamW(
        [theta],
        lr=hparams["step_size"],
        weight_decay=hparams["weight_decay"],
        betas=tuple(hparams["betas"]),
    )
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        potential(theta, batch).sum().backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def runner_seconds(task, hparams, steps: int, chains: int = 1) -> float:
    result = run(
        task,
        RunSpec("adamw", hparams, seeds=chains, budget=steps, eval_every=steps),
        progress=False,
        device="cpu",
        threads=None,  # the --threads of this script, set once for every measurement
    )
    return result.seconds_per_step


def runner_overhead(task, steps: int, rounds: int) -> dict[str, float]:
    hparams = {k: v for k, v in task.reference.items() if k != "sampler"}
    runner_seconds(task, hparams, 10)  # warm-up: allocator, lazy inits
    plain_adamw_seconds(task, hparams, 10)
    ratios, ours, plain = [], [], []
    for i in range(rounds):
        # ABBA order: whichever runs second in a round gets a warmer cache, so alternate
        if i % 2:
            b = plain_adamw_seconds(task, hparams, steps)
            a = runner_seconds(task, hparams, steps)
        else:
            a = runner_seconds(task, hparams, steps)
            b = plain_adamw_seconds(task, hparams, steps)
        ours.append(a)
        plain.append(b)
        ratios.append(a / b)
    return {
        "runner_ms": 1e3 * statistics.median(ours),
        "plain_ms": 1e3 * statistics.median(plain),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def chain_throughput(task, steps: int, chain_counts=(1, 8, 64)) -> list[dict[str, float]]:
    hparams = {k: v for k, v in task.reference.items() if k != "sampler"}
    rows = []
    for chains in chain_counts:
        seconds = runner_seconds(task, hparams, steps, chains=chains)
        rows.append(
            {"chains": chains, "ms_per_step": 1e3 * seconds, "chain_steps_per_s": chains / seconds}
        )
    return rows


def sampler_update_cost(chains: int, params: int, steps: int) -> list[dict[str, float]]:
    theta = torch.randn(chains, params, generator=torch.Generator().manual_seed(0))
    potential = _Quadratic()
    rows = []
    for name in samplers.names():
        if is_peer(samplers.lookup(name)):
            continue  # the peers' cost is timed by `python -m bench speed`, on a real task
        sampler = samplers.make(name, **samplers.example(name, "toy").hparams)
        state = sampler.init(theta)
        generator = torch.Generator().manual_seed(0)
        # warm-up: over its first steps a sampler's fresh (C, D) buffers grow the heap and
        # page-fault on first touch (a step of the first sampler timed was 3-7x its steady cost)
        for _ in range(3):
            state, info = sampler.step(state, potential, None, generator)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            state, info = sampler.step(state, potential, None, generator)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rows.append(
            {
                "sampler": name,
                "seconds_per_step": seconds,
                "grad_evals": info.grad_evals,
                "ns_per_param_per_grad_eval": 1e9 * seconds / (chains * params * info.grad_evals),
            }
        )
        del state
    return rows


def _print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    keys = list(rows[0])
    cells = [[_cell(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True)))
    for c in cells:
        print("  ".join(x.rjust(w) for x, w in zip(c, widths, strict=True)))


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perf", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--task", default=None, help="default: the light CPU task")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chains", type=int, default=1000, help="for the sampler update cost")
    parser.add_argument("--params", type=int, default=100_000, help="for the sampler update cost")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip", nargs="*", default=[], choices=["overhead", "chains", "update"])
    args = parser.parse_args(argv)
    tune_from_environment()  # as every `python -m bench` command does (bench.allocator)
    if args.threads:
        torch.set_num_threads(args.threads)
    task = tasks.make(args.task or tasks.LIGHT_TASK)
    print(f"{task!r} on cpu, {torch.get_num_threads()} threads, torch {torch.__version__}")
    if "overhead" not in args.skip:
        row = runner_overhead(task, args.steps, args.rounds)
        _print_table(
            [row],
            f"runner vs plain torch.optim.AdamW loop, 1 chain, {args.steps} steps "
            f"x {args.rounds} interleaved rounds (ratio = median of round ratios)",
        )
    if "chains" not in args.skip:
        _print_table(chain_throughput(task, args.steps), "runner throughput, AdamW")
    if "update" not in args.skip:
        _print_table(
            sampler_update_cost(args.chains, args.params, steps=5),
            f"sampler update cost, {args.chains} chains x {args.params} params, "
            "trivial potential U = ½‖θ‖² (median of 5 steps)",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
