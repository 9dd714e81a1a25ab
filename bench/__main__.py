"""Command line: ``python -m bench {list,run,speed,compare,report}``.

Bad input (an unknown task or sampler, a hyperparameter out of range, a budget of zero) prints one
clear line on stderr and exits with status 2; nothing is written.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from typing import Any

import samplers
import tasks
from bench.allocator import tune_from_environment

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Raised for user errors that the CLI reports without a traceback."""


def parse_value(text: str) -> Any:
    """``--set`` values: Python literals (``1e-3``, ``[1e-3, 3e-3]`` for one value per chain,
    ``0.9,0.98`` for a pair), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def cmd_list(args: argparse.Namespace) -> int:
    print("tasks:")
    for name in tasks.names(args.pattern):
        task = tasks.make(name)
        params = getattr(task, "num_params", "?")
        print(f"  {name:<24} D={params:<8} {task.description}")
    print("samplers:")
    for name in samplers.names():
        cls = samplers.lookup(name)
        kind = "optimizer" if not getattr(cls, "samples", True) else "sampler"
        peer = getattr(cls, "peer", None)  # another library's implementation (samplers.peers)
        if peer:
            kind, doc = f"peer:{peer}", [cls.summary]
        else:
            module = sys.modules[cls.__module__].__doc__ if cls.__module__ else ""
            doc = (module or "").strip().splitlines()
        print(f"  {name:<24} {kind:<13} {doc[0] if doc else ''}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.run import run

    task = tasks.make(args.task)
    hparams = parse_sets(args.set)
    prior = hparams.pop("prior_precision", args.prior_precision)
    if args.budget is not None and args.budget < 1:
        raise BadInput(f"--budget must be at least 1 step, got {args.budget}")
    if args.seeds < 1:
        raise BadInput(f"--seeds must be at least 1, got {args.seeds}")
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
        device=args.device,
        progress=None if not args.json else False,
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


def format_run(result) -> str:
    """A per-chain table of a run, with the run's header."""
    lines = [
        f"{result.task} · {result.sampler} on {result.device}: {result.steps_run} steps "
        f"({result.grad_evals_per_step} grad evals each), {1e3 * result.seconds_per_step:.2f} ms "
        f"per step, evaluation every {result.eval_every} steps (t_mem/t_grok resolution)",
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


def _varying_hparams(result) -> list[str]:
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


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import main as compare_main

    return compare_main(args)


def cmd_report(args: argparse.Namespace) -> int:
    from bench.compare import report_main

    return report_main(args)


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
        default=0.0,
        help="lambda of the prior ½·lambda·‖θ‖² in the potential",
    )
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--curves", action="store_true", help="with --json: include the curves")
    p.set_defaults(func=cmd_run)

    from bench.speed import add_arguments as add_speed_arguments

    add_speed_arguments(sub)

    try:
        from bench.compare import add_arguments
    except ImportError:  # compare not built yet
        add_arguments = None
    if add_arguments is not None:
        add_arguments(sub, cmd_compare, cmd_report)
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
        ValueError,
        ImportError,  # a peer whose library is not installed (samplers.peers)
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
