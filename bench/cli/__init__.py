"""The command line, ``python -m bench
{list,run,speed,compare,recheck,report,theory,frontier,export}``: every subcommand's arguments
(here), its input checks (:mod:`bench.cli.inputs`), what it does (:mod:`bench.cli.commands`), and
exit status 2 on bad input.

Bad input (an unknown task or sampler, a hyperparameter out of range, a budget of zero, a device
this machine lacks) prints one clear line on stderr and exits with status 2; every check runs
before anything is written.
"""

from __future__ import annotations

import argparse
import sys

import samplers
import tasks
from bench import compare as comparison
from bench import speed
from bench.allocator import tune_from_environment
from bench.cli.commands import (
    cmd_compare,
    cmd_export,
    cmd_frontier,
    cmd_list,
    cmd_recheck,
    cmd_report,
    cmd_run,
    cmd_speed,
    cmd_theory,
    run_settings,
)
from bench.cli.inputs import BadInput, make_executor
from bench.store import DEFAULT_PATH

EXIT_BAD_INPUT = 2
__all__ = ["BadInput", "build_parser", "main", "make_executor", "run_settings"]


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
        help="torch.compile each job's potential (pays on long runs of many chains and on GPUs; "
        "a worker's first compile took 10-80 s on a CPU, see reports/scaling.md; off by default)",
    )


def add_job_options(p: argparse.ArgumentParser, reports: str) -> None:
    """``--store``, ``--reports`` (default ``reports``), ``--device``, ``--threads``,
    ``--workers`` and the executor's options: a command that trains jobs through the store and
    writes pages (recheck, theory, frontier)."""
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"(default: {DEFAULT_PATH})")
    p.add_argument("--reports", default=reports, help=f"(default: {reports})")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1)")
    p.add_argument(
        "--workers", type=int, default=None, help="jobs side by side (default: one per core)"
    )
    add_executor_options(p)


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
    p.add_argument(
        "--budget", type=int, default=None, help="steps (default: the task's), from the start"
    )
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument(
        "--prior-precision",
        default=None,
        metavar="LAMBDA",
        help="lambda of the prior ½·lambda·‖θ‖² in the potential, or one per chain as in --set: "
        "[1e-4,1e-3] (default: the task's reference setting's for its reference sampler, else 0)",
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument(
        "--start",
        choices=["init", "memorized"],
        default="init",
        help="init: from the task's initialization (default); memorized: each seed from its "
        "memorized checkpoint, the start of compare's exploration protocol (made once by the "
        "task's reference optimizer, kept in --store and shared with compare)",
    )
    p.add_argument(
        "--store",
        default=None,
        help=f"with --start memorized: the store of the checkpoints (default: {DEFAULT_PATH})",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads for the run (default: 1)"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the potential first (its time is reported; off by default)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON (no curves)")
    p.add_argument(
        "--curves",
        default=None,
        metavar="PATH",
        help="write every evaluation of every chain (step, gradient evaluations, seconds, "
        "losses, accuracies, ‖θ‖, distances, acceptance) to PATH: CSV for .csv, JSON lines for "
        ".jsonl",
    )
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
            "Tune every row of the factorial (geometry x dynamics x noise, each noisy row "
            "beside its zero-temperature twin) with Optuna on the same tuning budget in "
            "gradient evaluations, run each choice on fresh seeds, store every run and study (a "
            "rerun or a resumed run reuses them) and write reports/<task>.md. On a CPU the "
            f"default preset is the CPU preset: the task's data with the {comparison.CPU_MODEL} "
            "model, from memorized checkpoints; see bench/compare/protocol.py for the protocol "
            "and bench/compare/rows.py for the rows and their search spaces in shared units."
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
    p.add_argument("--trials", type=int, default=None, help="trials per tuning batch of each row")
    p.add_argument("--batches", type=int, default=None, help="tuning batches per row")
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
        "recheck",
        help="rerun a board's chosen settings from other checkpoints for longer",
        description=(
            "Rerun every row's chosen setting of the latest board of --task (from memorized "
            "checkpoints) unchanged, from checkpoints the board never saw (seeds 2000 on), for "
            "--factor times its budget, through the store (reused on rerun, resumable), and "
            "write reports/<task>.recheck.md: what held, what broke, and whether the order of "
            "the board survives (bench/compare/recheck.py)."
        ),
    )
    p.add_argument("--task", required=True, help="the board's page, e.g. add_mod113")
    p.add_argument("--rows", default=None, help="comma-separated rows (default: every row)")
    p.add_argument("--seeds", type=int, default=3, help="new checkpoints (default: 3)")
    p.add_argument(
        "--factor", type=float, default=2.0, help="times the board's budget (default: 2)"
    )
    add_job_options(p, reports="reports")
    p.set_defaults(func=cmd_recheck)

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
    add_job_options(p, reports="reports/theory")
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser(
        "frontier",
        help="reproduce the frontier's published grokking results on their settings",
        description=(
            "Run each reproduction's arms (the published optimizer settings on the published "
            "task) through the store (reused on rerun, resumable) and write "
            "reports/frontier/<name>.md with its figure: what the paper reports, what ran "
            "here, and how close it came (bench/frontier.py)."
        ),
    )
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="prieto, grokfast or cliptogrok (default: all)"
    )
    p.add_argument(
        "--seeds", type=int, default=None, help="seeds an arm (default: the reproduction's)"
    )
    add_job_options(p, reports="reports/frontier")
    p.set_defaults(func=cmd_frontier)

    p = sub.add_parser(
        "export",
        help="write a store's runs, curves and tuning trials as CSV or Parquet tables",
        description=(
            "Write runs.<fmt> (one row per chain), curves.<fmt> (per chain and evaluation) and "
            "studies.<fmt> (per tuning trial) for one comparison, one claim, one task or the "
            "whole store; the columns are documented in bench/results.py. The store is opened "
            "read-only."
        ),
    )
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"(default: {DEFAULT_PATH})")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="(default: csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the three files")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--compare", metavar="KEY", help="one comparison (its key or a prefix)")
    which.add_argument("--claim", metavar="NAME", help="one claim of `python -m bench theory`")
    p.add_argument("--task", default=None, help="only this task's runs")
    p.add_argument("--sampler", default=None, help="only this sampler's runs")
    p.set_defaults(func=cmd_export)
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
