"""What the command line's flags name, checked: values, counts, devices, samplers, presets,
stores and executors. Every check raises :class:`BadInput` (or the library's own error) before
anything is written."""

from __future__ import annotations

import argparse
import ast
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import samplers
from bench import compare as comparison
from bench.jobs import LocalExecutor
from bench.ray_executor import RayExecutor
from bench.store import StoreError, check_creatable
from samplers.registry import unknown_name_message


class BadInput(Exception):
    """A user error that the CLI reports in one line, without a traceback."""


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


def parse_prior(text: str | None) -> float | list[float] | None:
    """``--prior-precision``: a number, or a list with one number per chain (as ``--set``);
    ``None`` when not given. Whether each is >= 0 is the task's check."""
    if text is None:
        return None
    value = parse_value(text)
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        raise BadInput(
            f"--prior-precision takes a number or one per chain, e.g. 1e-3 or [1e-4,1e-3]; got "
            f"{text!r}"
        )
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else float(value)


#: What ``--curves`` writes, by the file's suffix.
CURVE_FORMATS = {".csv": "CSV", ".jsonl": "JSON lines"}


def check_curves_path(path: Path) -> None:
    """Refuse a ``--curves`` file of an unknown kind, or a folder, before anything runs."""
    if path.suffix not in CURVE_FORMATS:
        kinds = ", ".join(f"{k} ({v})" for k, v in CURVE_FORMATS.items())
        raise BadInput(f"--curves writes {kinds}; got {str(path)!r}")
    if path.is_dir():
        raise BadInput(f"--curves {path} is a directory; give a file path")


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


def parse_samplers(text: str | None) -> list[str]:
    if text is None:
        names = comparison.own_samplers()
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise BadInput("--samplers is empty: name at least one sampler, e.g. adamw,sgld")
    seen = []
    for name in names:
        if name in comparison.row_names():  # a row (grokfast, hmc+mass) or the frontier group
            seen += [name] if name not in seen else []
            continue
        if name not in samplers.names():  # "did you mean", among samplers and rows
            known = sorted({*samplers.names(), *comparison.row_names()})
            raise samplers.UnknownSamplerError(unknown_name_message("sampler", name, known))
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
        "batches": args.batches,
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
