"""What identifies a run and what produced it: content keys, the numerics and code versions, the
host.

**Keys.** A run's key (:meth:`bench.spec.RunSpec.key`, a :func:`digest`) is a hash of
everything that determines its numbers: the task's name and configuration, the sampler, the
hyperparameters, the prior precision, the seeds, the budget, the evaluation interval, the batch
size, the data seed, the confirmation window, the start (``init`` or the checkpoints' keys) and
:data:`NUMERICS_VERSION`. It does *not* contain the git commit (recorded per run by
:func:`code_version`), so a finished run is reused across commits until someone bumps
:data:`NUMERICS_VERSION` because the numbers would change. It does not contain the device
either: a CPU and a GPU run of the same key agree in law, not bit for bit, and the one stored
first is kept (its device is recorded and reported).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Bump when the numbers a run produces would change (samplers, tasks, the loop): part of
#: every run key, so old runs are not reused for new numerics (they stay in the store).
#: 2: sustained grokking; HMC's float64 Metropolis test and carried gradient; the Riemannian
#: Langevin metric's warm-up; Gromov's model as published.
NUMERICS_VERSION = "2"


def digest(payload: Any) -> str:
    """24 hex digits of the SHA-256 of ``payload``'s canonical JSON (keys sorted, no spaces)."""
    text = json.dumps(plain(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


#: Folders of generated output, relative to the repository root: ``make compare`` rewrites the
#: tracked pages under ``reports/``, and ``results/`` holds the store. A change there is not a
#: change of the code, so it does not make :func:`code_version` dirty.
GENERATED_PATHS = ("reports", "results", ".asv")


def code_version(root: str | os.PathLike[str] | None = None) -> str:
    """``git rev-parse --short HEAD`` of the checkout at ``root`` (default: the one this package
    sits in), with ``+dirty`` when a tracked file of the *code* differs from HEAD (staged or
    not). Files under :data:`GENERATED_PATHS` do not count (a compare rewrites its own report,
    and the next run is still the same code); neither do untracked files. ``unknown`` outside a
    git checkout or without git."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    try:
        head = _git(root, "rev-parse", "--short", "HEAD")
        dirty = _git(
            root,
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            *(f":(exclude){path}" for path in GENERATED_PATHS),
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _git(root: Path, *args: str) -> str:
    """Run ``git args`` in ``root``; its stripped standard output (raises when git fails)."""
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def host_description() -> str:
    """The machine a run ran on, for the leaderboard: CPU model and core count, and the OS."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()}"


def plain(value: Any) -> Any:
    """JSON-ready: tuples become lists, mappings get string keys."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
