"""What each subcommand does once its flags are parsed and checked (``bench.cli.inputs``)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import samplers
import tasks
from bench import checkpoints, reports, speed
from bench import compare as comparison
from bench.allocator import keep_freed_memory
from bench.cli.inputs import (
    BadInput,
    at_least_one,
    check_curves_path,
    check_store_path,
    default_workers,
    make_executor,
    parse_prior,
    parse_samplers,
    parse_sets,
    parse_starts,
    preset_overrides,
    setup_device,
)
from bench.files import atomic_write
from bench.keys import plain
from bench.run import RunResult, run
from bench.spec import RunSpec
from bench.store import DEFAULT_PATH, Store
from tasks.base import check_prior_precision


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
    """One run, printed (or as JSON); ``--curves`` writes its evaluations for plotting. With
    ``--start memorized`` every chain starts from its seed's memorized checkpoint, made in the
    store where it is missing, as ``compare`` makes it."""
    task = tasks.make(args.task)
    prior = parse_prior(args.prior_precision)
    hparams, prior = run_settings(task, args.sampler, parse_sets(args.set), prior)
    at_least_one(
        budget=args.budget,
        seeds=args.seeds,
        eval_every=args.eval_every,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    curves = None if args.curves is None else Path(args.curves)
    if curves is not None:
        check_curves_path(curves)
    if args.store is not None and args.start != "memorized":
        raise BadInput("--store keeps the memorized checkpoints: give it with --start memorized")
    if args.start == "memorized" and not task.reference:
        raise BadInput(f"{task.name} has no reference optimizer to make a memorized start with")
    store_path = Path(args.store or DEFAULT_PATH)
    if args.start == "memorized":
        check_store_path(store_path)
    device = setup_device(args.device, None, default_threads=None)
    seeds = list(range(args.seed, args.seed + args.seeds))
    spec = RunSpec(
        args.sampler,
        hparams,
        prior_precision=prior,
        seeds=seeds,
        budget=args.budget,
        eval_every=args.eval_every,
        batch_size=args.batch_size,
    )
    # every value checked before a checkpoint is made or a step is taken
    samplers.make(spec.sampler, **spec.sampler_hparams())
    check_prior_precision(spec.prior())
    theta0 = None
    if args.start == "memorized":

        def log(line: str) -> None:
            print(line.strip(), file=sys.stderr, flush=True)

        with Store(store_path) as store:  # corrupt or foreign: StoreError, exit 2
            points = checkpoints.memorized(
                task, seeds, comparison.MEMORIZED, store, device=device, log=log
            )
        spec = dataclasses.replace(spec, start=[c.key for c in points])
        theta0 = checkpoints.stack(points)
    result = run(
        task,
        spec,
        theta0=theta0,
        device=device,
        progress=None if not args.json else False,
        threads=args.threads or 1,
        compile=args.compile,
    )
    if curves is not None:
        write_curves(curves, result.curves)
    if args.json:
        payload = result.to_dict()
        payload.pop("curves")
        json.dump(payload, sys.stdout, indent=1)
        print()
    else:
        print(format_run(result))
    return 0


def write_curves(path: Path, rows: list[dict[str, float]]) -> None:
    """Every evaluation of every chain, one row each, whole or not at all: CSV (a header, NaN
    as ``nan``) for ``.csv``, JSON lines (NaN as ``null``) for ``.jsonl``."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if path.suffix == ".csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(path, text.getvalue())
    else:
        lines = (json.dumps({k: plain(row.get(k)) for k in columns}) for row in rows)
        atomic_write(path, "".join(line + "\n" for line in lines))


def run_settings(
    task: Any, sampler: str, given: dict[str, Any], prior: float | list[float] | None
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
        f"{result.task} · {result.spec.sampler} on {result.device}: {result.steps_run} steps "
        f"({result.grad_evals_per_step} grad evals each), {1e3 * result.seconds_per_step:.2f} ms "
        f"per step, evaluation every {result.spec.eval_every} steps (t_mem/t_grok resolution)"
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
    for row in comparison.rows_for(names):
        size = len(comparison.search_space(row.sampler, task).grid(task)) if row.grid else None
        if size is not None and size < resolved.trials:
            raise BadInput(
                f"--trials {resolved.trials} is more than the {size} points of {row.name}'s "
                "search grid: the tuning budgets would not be equal"
            )
    # the executor before the store: a cluster that cannot be started or joined writes nothing
    with (
        make_executor(args, device, workers, log) as executor,
        Store(args.store) as store,  # corrupt or foreign: StoreError before any training
    ):
        log(
            f"compare {task.name}: preset {preset.name}, {len(names)} samplers "
            f"({', '.join(names)}), {resolved.batches} tuning batch(es) of {resolved.trials} "
            f"trials x {resolved.tune_seeds} seed(s) each with successive halving, then "
            f"{resolved.seeds} fresh seeds; budget {resolved.budget} gradient "
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
    workers, out = _workers_and_folder(args, device)
    tick = time.perf_counter()
    with Store(args.store) as store, make_executor(args, device, workers, log) as executor:
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
    log(f"theory finished in {(time.perf_counter() - tick) / 60:.1f} min")
    return 0


def cmd_frontier(args: argparse.Namespace) -> int:
    """Run the named reproductions through the store, then write reports/frontier/<name>.md;
    every input is checked before the store is opened."""
    from bench import frontier

    log = _printer()
    chosen = frontier.check_names(args.names)  # unknown: a ValueError naming the known ones
    at_least_one(seeds=args.seeds, workers=args.workers)
    device = setup_device(args.device, args.threads, default_threads=1)
    workers, out = _workers_and_folder(args, device)
    tick = time.perf_counter()
    with Store(args.store) as store, make_executor(args, device, workers, log) as executor:
        for rep in chosen:
            log(f"frontier {rep.name}: {len(rep.arms)} arms on {rep.task}")
            outcomes = frontier.run_reproduction(
                rep, store, seeds=args.seeds, executor=executor, device=device, log=log
            )
            log(f"wrote {frontier.write_page(rep, outcomes, out)}")
            for o in outcomes:
                log(f"  {o.arm.label}: {o.verdict()}")
    log(f"frontier finished in {(time.perf_counter() - tick) / 60:.1f} min")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the frames of :mod:`bench.results` for the selection: every check (format, folder,
    store, selection) before a file is written; the store is opened read-only."""
    from bench import results

    log = _printer()
    results.check_folder(Path(args.out))
    with Store(args.store, read_only=True) as store:  # missing, foreign: StoreError, exit 2
        written = results.export(
            store,
            args.out,
            args.format,
            compare=args.compare,
            claim=args.claim,
            task=args.task,
            sampler=args.sampler,
        )
    for path in written:
        log(f"wrote {path}")
    return 0


def cmd_recheck(args: argparse.Namespace) -> int:
    """Rerun a board's chosen settings from other checkpoints for longer and write the recheck
    page beside the board; every input is checked before anything is trained."""
    from bench import board, recheck_page
    from bench.compare import recheck

    log = _printer()
    at_least_one(seeds=args.seeds, workers=args.workers)
    if not args.factor >= 1.0:
        raise BadInput(
            f"--factor must be at least 1 (a recheck runs past the budget), got {args.factor}"
        )
    device = setup_device(args.device, args.threads, default_threads=1)
    workers, out = _workers_and_folder(args, device)
    rows = [r for r in args.rows.split(",") if r] if args.rows else None
    with Store(args.store, create=False) as store:  # missing, foreign: StoreError, exit 2
        pages = reports.latest_pages(store)
        if args.task not in pages or "memorized" not in pages[args.task]:
            known = ", ".join(sorted(p for p, s in pages.items() if "memorized" in s)) or "none"
            raise BadInput(
                f"no board of {args.task} from memorized checkpoints in {store.path} (boards "
                f"there: {known}); `python -m bench compare --task {args.task}` makes one"
            )
        compare = pages[args.task]["memorized"]
        recheck.pick_rows(store.entries(compare.key), rows)  # an unknown row: exit 2
        task = recheck.task_of(compare)
        with make_executor(args, device, workers, log) as executor:
            checked = recheck.recheck(
                task,
                store,
                compare,
                rows=rows,
                seeds=args.seeds,
                factor=args.factor,
                executor=executor,
                device=device,
                log=log,
            )
        text = recheck_page.render(board.build_board(store, compare), checked, args.task)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.task}.recheck.md"
    atomic_write(path, text)
    log(f"wrote {path}")
    return 0


def _workers_and_folder(args: argparse.Namespace, device: str) -> tuple[int, Path]:
    """Workers for ``device`` (``--workers``, else one per core) and the pages' folder, checked
    writable, after the store's path is checked: a command that trains and writes pages."""
    workers = args.workers or default_workers(device.split(":")[0])
    out = Path(args.reports)
    reports.check_writable(out)
    check_store_path(Path(args.store))
    return workers, out


def _printer() -> Callable[[str], None]:
    def log(line: str) -> None:
        print(line, flush=True)

    return log
