"""The command line, ``python -m bench {list,run,speed,compare,report}``: every subcommand's
arguments, its input checks, the device and threads, and exit status 2 on bad input.

Bad input (an unknown task or sampler, a hyperparameter out of range, a budget of zero, a device
this machine lacks) prints one clear line on stderr and exits with status 2; every check runs
before anything is written.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import samplers
import tasks
from bench import compare as comparison
from bench import reports, speed
from bench.allocator import keep_freed_memory, tune_from_environment
from bench.jobs import LocalExecutor
from bench.ray_executor import RayExecutor
from bench.run import RunResult, run
from bench.store import DEFAULT_PATH, Store, StoreError, check_creatable

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """A user error that the CLI reports in one line, without a traceback."""


# -- shared input handling -----------------------------------------------------------------
def parse_value(text: str) -> Any:
    """``--set`` values: Python literals (``1e-3``, ``[1e-3, 3e-3]`` for one value per chain,
    ``0.9,0.98`` for a pair), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """``--set key=value`` pairs as a dict; a key given twice is refused, not overwritten."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"--set takes key=value, got {pair!r}")
        if key in out:
            raise BadInput(f"--set {key} is given twice ({out[key]!r} and {value.strip()!r})")
        out[key] = parse_value(value.strip())
    return out


def at_least_one(**values: int | None) -> None:
    """Refuse a count or budget below 1, naming the flag."""
    for key, value in values.items():
        if value is not None and value < 1:
            raise BadInput(f"--{key.replace('_', '-')} must be at least 1, got {value}")


def setup_device(name: str | None, threads: int | None, *, default_threads: int | None) -> str:
    """The device a command runs on (``cuda`` when present unless ``name`` says otherwise) and
    torch's CPU threads: ``threads``, else ``default_threads`` on a CPU (``None``: torch's)."""
    device = name or ("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BadInput(f"--device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(
            f"--device {device}: this torch ({torch.__version__}) sees no CUDA device; "
            "use --device cpu"
        )
    at_least_one(threads=threads)
    if device == "cpu" and threads is None:
        threads = default_threads
    if threads is not None:
        torch.set_num_threads(threads)
    return device


# -- list and run --------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    names = tasks.names(args.pattern)
    if not names:
        raise BadInput(
            f"no registered task matches {args.pattern!r}; try `python -m bench list` for all, "
            "or a pattern such as '*_mod113'"
        )
    print("tasks:")
    for name in names:
        task = tasks.make(name)
        print(f"  {name:<24} D={task.num_params:<8} {task.description}")
    print("samplers:")
    for name in samplers.names():
        entry = samplers.lookup(name)  # a sampler class, or a lazily imported peer
        kind = f"peer:{entry.peer}" if entry.peer else ("sampler" if entry.samples else "optimizer")
        print(f"  {name:<24} {kind:<13} {entry.summary}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    task = tasks.make(args.task)
    hparams, prior = run_settings(task, args.sampler, parse_sets(args.set), args.prior_precision)
    at_least_one(
        budget=args.budget,
        seeds=args.seeds,
        eval_every=args.eval_every,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    device = setup_device(args.device, None, default_threads=None)
    seeds = list(range(args.seed, args.seed + args.seeds))
    result = run(
        task,
        args.sampler,
        hparams,
        seeds=seeds,
        budget=args.budget,
        eval_every=args.eval_every,
        prior_precision=prior,
        batch_size=args.batch_size,
        device=device,
        progress=None if not args.json else False,
        threads=args.threads or 1,
        compile=args.compile,
    )
    if args.json:
        payload = result.to_dict()
        if not args.curves:
            payload.pop("curves")
        json.dump(payload, sys.stdout, indent=1)
        print()
    else:
        print(format_run(result))
    return 0


def run_settings(
    task: Any, sampler: str, given: dict[str, Any], prior: float | None
) -> tuple[dict[str, Any], Any]:
    """A run's hyperparameters and prior precision: for the task's reference sampler, its
    reference setting with ``--set`` on top (say so on stderr); for another sampler, its own
    defaults with ``--set`` on top. ``--prior-precision`` and ``--set prior_precision=`` win."""
    hparams = dict(given)
    if "prior_precision" in hparams and prior is not None:
        raise BadInput("give the prior precision once: --prior-precision or --set, not both")
    prior = hparams.pop("prior_precision", prior)
    reference = dict(task.reference)
    if reference.pop("sampler", None) == sampler:
        ref_prior = reference.pop("prior_precision", 0.0)
        hparams = {**reference, **hparams}
        prior = ref_prior if prior is None else prior
        print(
            f"{task.name}: {sampler} at the task's reference setting {reference}, with --set on "
            "top",
            file=sys.stderr,
        )
    return hparams, 0.0 if prior is None else prior


def format_run(result: RunResult) -> str:
    """A per-chain table of a run, with the run's header."""
    lines = [
        f"{result.task} · {result.sampler} on {result.device}: {result.steps_run} steps "
        f"({result.grad_evals_per_step} grad evals each), {1e3 * result.seconds_per_step:.2f} ms "
        f"per step, evaluation every {result.eval_every} steps (t_mem/t_grok resolution)"
        + (
            f"; torch.compile took {result.seconds_compile:.1f} s (not in the step times)"
            if result.seconds_compile is not None
            else ""
        ),
    ]
    varying = _varying_hparams(result)
    head = [
        "chain",
        "seed",
        *varying,
        "t_mem",
        "t_grok",
        "grok evals",
        "grok s",
        "train acc",
        "val acc",
        "status",
    ]
    rows = []
    for c in result.chains:
        status = "diverged" if c.diverged else ("grokked" if c.grokked else "censored")
        # a task without a target (a Gaussian) has nothing to memorise: "-", not censored
        censored_at = c.censored_at if result.target is not None else None
        if result.target is None and not c.diverged:
            status = "sampled"
        rows.append(
            [
                c.chain,
                c.seed,
                *(_fmt(c.hparams.get(k)) for k in varying),
                _fmt(c.t_mem, censored_at),
                _fmt(c.t_grok, censored_at),
                _fmt(c.t_grok_grad_evals),
                _fmt(c.t_grok_seconds),
                _fmt(c.final.get("train_acc")),
                _fmt(c.final.get("val_acc")),
                status,
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in [head, *rows]:
        lines.append("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _varying_hparams(result: RunResult) -> list[str]:
    if len(result.chains) < 2:
        return []
    keys = result.chains[0].hparams
    return [k for k in keys if len({repr(c.hparams[k]) for c in result.chains}) > 1]


def _fmt(value, censored_at=None) -> str:
    if value is None:
        return f">{censored_at}" if censored_at is not None else "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# -- speed ---------------------------------------------------------------------------------
def cmd_speed(args: argparse.Namespace) -> int:
    hparams = parse_sets(args.set)
    if args.sampler not in speed.SAMPLERS:
        raise BadInput(
            f"--sampler must be one of {', '.join(speed.SAMPLERS)}, got {args.sampler!r}"
        )
    if any(c < 1 for c in args.chains):
        raise BadInput("--chains must be at least 1")
    at_least_one(steps=args.steps, rounds=args.rounds)
    device = setup_device(args.device or "cpu", args.threads, default_threads=None)
    impls = tuple(args.only) if args.only else speed.IMPLEMENTATIONS
    tuned = keep_freed_memory() if args.malloc_tuning else False
    timings: list[speed.Timing] = []
    for chains in args.chains:
        timings += speed.measure(
            args.task,
            args.sampler,
            chains,
            hparams=hparams,
            steps=args.steps,
            rounds=args.rounds,
            prior_precision=args.prior_precision,
            implementations=impls,
            device=device,
        )
    print(speed.format_table(timings, args.task, args.sampler))
    print(f"glibc keeps freed memory: {'yes' if tuned else 'no'}")
    return 0


# -- compare and report --------------------------------------------------------------------
def parse_samplers(text: str | None) -> list[str]:
    if text is None:
        names = comparison.own_samplers()
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise BadInput("--samplers is empty: name at least one sampler, e.g. adamw,sgld")
    seen = []
    for name in names:
        samplers.lookup(name).grad_evals_per_step({})  # unknown name or varying cost: refused
        comparison.search_space(name)  # a sampler the comparison has no grid for: refused
        if name not in seen:
            seen.append(name)
    return seen


def preset_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol numbers given on the command line, each checked to be at least 1."""
    overrides = {
        "budget": args.budget,
        "eval_every": args.eval_every,
        "trials": args.trials,
        "tune_seeds": args.tune_seeds,
        "seeds": args.seeds,
        "confirm": args.confirm,
        "batch_size": args.batch_size,
    }
    at_least_one(**overrides)
    return {k: v for k, v in overrides.items() if v is not None}


def parse_starts(text: str | None, preset: comparison.Preset) -> tuple[str, ...]:
    """The protocols to run: ``--start memorized|init|both``, else the preset's."""
    if text is None:
        return preset.starts
    return comparison.STARTS if text == "both" else (text,)


def default_workers(device: str) -> int:
    """One single-threaded worker per core on a CPU (two jobs side by side use both cores); one
    on a GPU, whose jobs are vectorized over chains already."""
    return max(1, os.cpu_count() or 1) if device == "cpu" else 1


def check_store_path(path: Path) -> None:
    """Refuse early a store path that could not be created (no file is made here)."""
    if path.is_dir():
        raise StoreError(f"store path {path} is a directory; give a file path")
    if not path.exists():
        check_creatable(path, create_parents=False)


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--address`` and ``--compile``, for every command that trains jobs
    through :class:`bench.jobs.Runner`."""
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: worker processes on this machine (default); ray: one Ray task per job, on "
        "the cluster at --address or on a local Ray started for the run (pip install -e '.[ray]')",
    )
    p.add_argument(
        "--address",
        default=None,
        help="with --executor ray: an existing cluster (auto, host:port or ray://host:port)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile each job's potential (pays on long runs and GPUs; compiling takes "
        "1-3 min per job's first step on a CPU; off by default)",
    )


def make_executor(
    args: argparse.Namespace, device: str, workers: int | None, log: Callable[[str], None]
) -> Any:
    """The executor of ``--executor`` (a Ray one starts or joins its cluster here); ``workers``
    is the local default, a Ray cluster's own capacity unless ``--workers`` says otherwise."""
    threads = getattr(args, "threads", None) or 1
    if args.executor == "ray":
        return RayExecutor(
            args.address,
            workers=getattr(args, "workers", None),
            device=device,
            threads=threads,
            compile=args.compile,
            log=log,
        )
    if args.address:
        raise BadInput("--address names a Ray cluster: give it with --executor ray")
    return LocalExecutor(workers or 1, threads=threads, compile=args.compile)


def cmd_compare(args: argparse.Namespace) -> int:
    """Check every input, then open the store, then train: a bad input leaves nothing behind."""
    log = _printer()
    overrides = preset_overrides(args)
    asked = tasks.make(args.task)  # unknown task: TaskError with suggestions
    names = parse_samplers(args.samplers)
    # One thread by default: on a shared two-core machine, two threads contending with other
    # work were measured 6-10x slower than one on these small models.
    device = setup_device(args.device, args.threads, default_threads=1)
    if device == "cpu":
        log(f"CPU threads: {torch.get_num_threads()} (--threads to change)")
    at_least_one(workers=args.workers)
    workers = args.workers or default_workers(device.split(":")[0])
    if args.address and args.executor != "ray":
        raise BadInput("--address names a Ray cluster: give it with --executor ray")
    out = Path(args.reports)
    reports.check_writable(out)
    check_store_path(Path(args.store))

    preset = comparison.choose_preset(
        args.preset, overrides, args.task, names, device.split(":")[0], log, workers=workers
    )
    starts = parse_starts(args.start, preset)
    task = preset.task_for(args.task)
    if task.config.get("model") != asked.config.get("model"):
        log(
            f"the {preset.name} preset runs {asked.name}'s data and split with the "
            f"{task.config.get('model')} model instead of the {asked.config.get('model')}; "
            "--preset paper runs the task as registered"
        )
    resolved = preset.resolve(task)
    for name in names:
        size = len(comparison.search_space(name, task).grid(task))
        if size < resolved.trials:
            raise BadInput(
                f"--trials {resolved.trials} is more than the {size} points of {name}'s search "
                "space: the tuning budgets would not be equal"
            )
    # the executor before the store: a cluster that cannot be started or joined writes nothing
    with (
        make_executor(args, device, workers, log) as executor,
        Store(args.store) as store,  # corrupt or foreign: StoreError before any training
    ):
        log(
            f"compare {task.name}: preset {preset.name}, {len(names)} samplers "
            f"({', '.join(names)}), {resolved.trials} trials x {resolved.tune_seeds} seed(s) "
            f"each, then {resolved.seeds} fresh seeds; budget {resolved.budget} gradient "
            f"evaluations per chain; start(s) {', '.join(starts)}; {executor.workers} "
            f"worker(s); store {store.path}"
        )
        tick = time.perf_counter()
        keys = []
        for start in starts:
            log(f"protocol: {start} start")
            keys.append(
                comparison.compare(
                    task,
                    names,
                    preset,
                    store,
                    start=start,
                    executor=executor,
                    device=device,
                    log=log,
                    asked=args.task,
                )
            )
        log(f"compare finished in {(time.perf_counter() - tick) / 60:.1f} min")
        if not args.no_report:
            for path in reports.write_reports(store, out, compare_keys=keys):
                log(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Regenerate leaderboards from the store, no training."""
    log = _printer()
    out = Path(args.reports)
    reports.check_writable(out)
    with Store(args.store, create=False) as store:
        written = reports.write_reports(store, out, tasks=args.task)
    for path in written:
        log(f"wrote {path}")
    return 0


def cmd_theory(args: argparse.Namespace) -> int:
    """Run the claims' sweeps through the store, then write reports/theory/<task>/<claim>.md;
    every input is checked before the store is opened."""
    from bench import theory

    log = _printer()
    claims = theory.check_claims(args.claims)  # UnknownClaim (a ValueError): "did you mean"
    at_least_one(batch_size=args.batch_size, workers=args.workers)
    device = setup_device(args.device, args.threads, default_threads=1)
    name = args.preset
    if name == "auto":
        name = "cpu" if device == "cpu" else "paper"
    preset = theory.preset_for(name, args.task)
    preset.make_task()  # unknown task: TaskError with suggestions
    workers = args.workers or default_workers(device.split(":")[0])
    out = Path(args.reports)
    reports.check_writable(out)
    check_store_path(Path(args.store))
    tick = time.perf_counter()
    with Store(args.store) as store, LocalExecutor(workers) as executor:
        theory.run_theory(
            claims,
            preset,
            store,
            out,
            batch_size=args.batch_size,
            executor=executor,
            device=device,
            log=log,
        )
    log(f"theory finished in {(time.perf_counter() - tick) / 60:.1f} min on {workers} worker(s)")
    return 0


def _printer() -> Callable[[str], None]:
    def log(line: str) -> None:
        print(line, flush=True)

    return log


# -- the parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Optimizers and MCMC samplers on grokking tasks, compared fairly.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list tasks and samplers, one line each")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard filter on task names")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one sampler on one task for N seeds (as N chains)")
    p.add_argument("--task", required=True)
    p.add_argument("--sampler", required=True)
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a hyperparameter, e.g. step_size=1e-3 or step_size=[1e-3,3e-3] (per chain)",
    )
    p.add_argument("--seeds", type=int, default=1, help="number of chains (seeds)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--budget", type=int, default=None, help="steps (default: the task's)")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument(
        "--prior-precision",
        type=float,
        default=None,
        help="lambda of the prior ½·lambda·‖θ‖² in the potential (default: the task's reference "
        "setting's for its reference sampler, else 0)",
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads for the run (default: 1)"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the potential first (its time is reported; off by default)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--curves", action="store_true", help="with --json: include the curves")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "speed",
        help="time ours, BlackJAX's and Pyro's implementation of a sampler side by side",
    )
    p.add_argument("--task", required=True)
    p.add_argument("--sampler", required=True, help=f"one of {', '.join(speed.SAMPLERS)}")
    p.add_argument("--chains", type=int, nargs="+", default=[1, 16])
    p.add_argument("--steps", type=int, default=100, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a hyperparameter")
    p.add_argument("--prior-precision", type=float, default=0.0)
    p.add_argument(
        "--only", nargs="+", choices=speed.IMPLEMENTATIONS, help="time only these implementations"
    )
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    p.add_argument(
        "--no-malloc-tuning",
        dest="malloc_tuning",
        action="store_false",
        help="let glibc return freed memory to the kernel (see bench/speed.py)",
    )
    p.set_defaults(func=cmd_speed)

    p = sub.add_parser(
        "compare",
        help="tune every sampler with an equal budget, run the best on fresh seeds, "
        "write the leaderboard",
        description=(
            "Tune every sampler with the same budget in gradient evaluations, run the best "
            "configuration on fresh seeds, store every run (a rerun or a resumed run reuses "
            "them) and write reports/<task>.md. On a CPU the default preset is the CPU preset: "
            f"the task's data with the {comparison.CPU_MODEL} model, from memorized "
            "checkpoints; see bench/compare/protocol.py for the protocol and "
            "bench/compare/spaces.py for the search spaces."
        ),
    )
    p.add_argument("--task", required=True, help="e.g. add_mod113")
    p.add_argument(
        "--samplers",
        default=None,
        help="comma-separated sampler names (default: every registered sampler of this package)",
    )
    p.add_argument(
        "--preset",
        default="auto",
        choices=["auto", *comparison.PRESETS],
        help="auto: paper on a GPU, the CPU preset on a CPU unless the paper one is quick",
    )
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"(default: {DEFAULT_PATH})")
    p.add_argument("--reports", default="reports", help="leaderboard folder (default: reports)")
    p.add_argument("--budget", type=int, default=None, help="gradient evaluations per chain")
    p.add_argument("--eval-every", type=int, default=None, help="in gradient evaluations")
    p.add_argument("--trials", type=int, default=None, help="configurations per sampler")
    p.add_argument("--tune-seeds", type=int, default=None, help="seeds per trial")
    p.add_argument("--seeds", type=int, default=None, help="fresh seeds for the chosen config")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default on a CPU: 1)"
    )
    p.add_argument(
        "--start",
        choices=["memorized", "init", "both"],
        default=None,
        help="memorized: every sampler from shared memorized checkpoints (the exploration "
        "protocol); init: from the task's initialization; both (default: the preset's)",
    )
    p.add_argument(
        "--confirm",
        type=int,
        default=None,
        help="window of sustained grokking in gradient evaluations (default: the rest of the run)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="minibatch (default: full batch)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="jobs trained side by side (default: one per core on a CPU, 1 on a GPU; with "
        "--executor ray, the cluster's capacity)",
    )
    add_executor_options(p)
    p.add_argument("--no-report", action="store_true", help="only fill the store")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "report",
        help="regenerate the leaderboards from the store (no training)",
        description="Regenerate reports/<task>.md, its plots and reports/README.md from the store.",
    )
    p.add_argument("--task", action="append", default=None, help="only this task (repeatable)")
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"(default: {DEFAULT_PATH})")
    p.add_argument("--reports", default="reports", help="leaderboard folder (default: reports)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "theory",
        help="measure the thermodynamic predictions of grokking (bench/theory/)",
        description=(
            "Run each claim's sweep through the store (reused on rerun, resumable) in a "
            "full-batch and a minibatch arm, fit the predicted law beside its competitor, and "
            "write reports/theory/<task>/<claim>.md with its plot and reports/theory/README.md."
        ),
    )
    p.add_argument(
        "claims",
        nargs="*",
        metavar="CLAIM",
        help="tgrok_tmem2, drift_diffusion, fraction, eyring, weight_decay (default: all)",
    )
    p.add_argument("--task", default=None, help="(default: the preset's task)")
    p.add_argument(
        "--preset",
        default="auto",
        choices=["auto", "cpu", "paper"],
        help="cpu: a light task, every claim in under 30 min on two cores; paper: add_mod113 "
        "for a GPU; auto: paper on a GPU, else cpu",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="the minibatch arm's (default: the preset's)"
    )
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"(default: {DEFAULT_PATH})")
    p.add_argument("--reports", default="reports/theory", help="(default: reports/theory)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1)")
    p.add_argument(
        "--workers", type=int, default=None, help="jobs side by side (default: one per core)"
    )
    p.set_defaults(func=cmd_theory)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "malloc_tuning", True):  # `bench speed --no-malloc-tuning` measures without
        tune_from_environment()  # recycle freed buffers: 1.3-1.8x faster steps on a CPU
    try:
        return args.func(args)
    except (
        BadInput,
        tasks.TaskError,
        samplers.HyperparameterError,
        samplers.UnknownSamplerError,
        ValueError,  # StoreError and ReportError among them
        ImportError,  # a peer whose library is not installed (samplers.peers)
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
