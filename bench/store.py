"""The results store: every run in an embedded SQLite database that survives interruption.

One file (default ``results/store.sqlite`` under the working directory, ``--store PATH`` to
choose) holds::

    meta      key -> value: the schema version and the application, checked on every open
    runs      one row per finished vectorized run (a RunResult): its key, task, sampler,
              hyperparameters, seeds, budget, code version, device, timings, the result as JSON
              and the evaluation curves (zlib-compressed JSON)
    chains    one row per chain of a run: t_mem / t_grok in steps, gradient evaluations and
              seconds (NULL = not reached, censored at ``censored_at``), divergence, acceptance
    compares  one row per comparison protocol on a task (its preset and settings)
    entries   one row per (comparison, sampler, role): the trials and their tuning runs, the
              chosen configuration and its runs on fresh seeds; role "reference" is the task's
              own optimizer setting run untuned on the same fresh seeds
    checkpoints  one memorized starting point per (task, seed, criterion): the parameters, the
              step it was reached at and its metrics, shared by every sampler that starts there
    claims    one row per job being trained: who holds it and until when (a lease), so that
              several processes on one store split the work instead of each training everything

**Keys** are :mod:`bench.keys`' (what determines a run's numbers, and nothing else).

**Crash safety.** Each finished run is written in one transaction (WAL journal), so a compare
killed at any moment, ``kill -9`` included, loses at most the run in flight; a rerun finds every
committed run by its key and does not run or insert it again (the key is the primary key).

**Sharing work.** A process claims a job before training it (:meth:`Store.claim`): an
unexpired claim by another holder means "someone is on it", so the process takes other work and
comes back; a claim whose holder died expires after its lease and is taken over.

**Reading only.** ``Store(path, read_only=True)`` opens an existing store through SQLite's
read-only mode (``mode=ro``): nothing is created, upgraded or written (what :mod:`bench.results`
and ``python -m bench export`` use); a version-2 store is read as it is. SQLite itself may leave
the empty ``-wal`` and ``-shm`` files of a WAL store it read beside it (they are its lock, not
data; a read-only reader may not delete them while a writer could be using them).

**Refusals.** A file that is not an SQLite database, fails ``PRAGMA quick_check``, belongs to
another application, or was written with another :data:`SCHEMA_VERSION` raises
:class:`StoreError` with the path and what to do; nothing is overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.keys import NUMERICS_VERSION, code_version, host_description, plain
from bench.run import RunResult

#: Bump when the on-disk layout changes; an older or newer store is refused, never rewritten.
SCHEMA_VERSION = 3  # 1: an early draft; 2: no checkpoints or claims (upgraded in place)
APPLICATION = "grokbench"
DEFAULT_PATH = Path("results") / "store.sqlite"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    task_config TEXT NOT NULL,
    sampler TEXT NOT NULL,
    hparams TEXT NOT NULL,
    prior_precision TEXT NOT NULL,
    seeds TEXT NOT NULL,
    budget INTEGER NOT NULL,
    eval_every INTEGER NOT NULL,
    numerics_version TEXT NOT NULL,
    code_version TEXT NOT NULL,
    device TEXT NOT NULL,
    host TEXT NOT NULL,
    steps_run INTEGER NOT NULL,
    grad_evals_per_step INTEGER NOT NULL,
    seconds_train REAL NOT NULL,
    seconds_eval REAL NOT NULL,
    seconds_wall REAL NOT NULL,
    finished_at REAL NOT NULL,
    result TEXT NOT NULL,
    curves BLOB NOT NULL
);
CREATE TABLE chains (
    run_key TEXT NOT NULL REFERENCES runs(key),
    chain INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    hparams TEXT NOT NULL,
    t_mem INTEGER, t_grok INTEGER,
    t_mem_grad_evals INTEGER, t_grok_grad_evals INTEGER,
    t_mem_seconds REAL, t_grok_seconds REAL,
    censored_at INTEGER NOT NULL,
    diverged INTEGER NOT NULL,
    accept_rate REAL NOT NULL,
    PRIMARY KEY (run_key, chain)
);
CREATE TABLE compares (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    task_config TEXT NOT NULL,
    preset TEXT NOT NULL,
    protocol TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE entries (
    compare_key TEXT NOT NULL REFERENCES compares(key),
    sampler TEXT NOT NULL,
    role TEXT NOT NULL,
    trials TEXT NOT NULL,
    tuning_runs TEXT NOT NULL,
    chosen TEXT NOT NULL,
    final_runs TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (compare_key, sampler, role)
);
"""
#: Tables added by schema version 3; a version-2 store gets them on open (nothing else changes).
_SCHEMA_3 = """
CREATE TABLE IF NOT EXISTS checkpoints (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    seed INTEGER NOT NULL,
    criterion TEXT NOT NULL,
    step INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    theta BLOB NOT NULL,
    dtype TEXT NOT NULL,
    code_version TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class StoreError(ValueError):
    """A store that cannot be used: unwritable, corrupt, foreign or of another schema version."""


@dataclass(frozen=True)
class Entry:
    """One sampler's row of a comparison, as stored."""

    compare_key: str
    sampler: str
    trials: list[dict[str, Any]]  # each: config, the run and chains that tried it, its score
    tuning_runs: list[str]
    chosen: dict[str, Any]  # the chosen trial's config
    final_runs: list[str]  # the chosen configuration on fresh seeds (several if chunked)
    role: str = "tuned"  # or "reference": the task's own optimizer setting, untuned


@dataclass(frozen=True)
class Compare:
    key: str
    task: str
    task_config: dict[str, Any]
    preset: str
    protocol: dict[str, Any]
    created_at: float
    updated_at: float


class Store:
    """An open results store. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        create: bool = True,
        read_only: bool = False,
    ):
        self.path = Path(path)
        self.read_only = read_only
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory; give a file path")
        if not self.path.exists():
            if not create or read_only:
                raise StoreError(
                    f"no results store at {self.path}; run `python -m bench compare` first or "
                    "pass --store PATH"
                )
            check_creatable(self.path)
        try:
            if read_only:  # SQLite refuses every write on this connection
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
            else:
                self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the results store {self.path}: {err}") from None
        try:
            self._open()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise StoreError(
                f"{self.path} is not a readable grokbench store ({err}); it may be corrupt or "
                "another program's file. It was left untouched: move it away or pass another "
                "--store PATH"
            ) from None
        except StoreError:
            self._db.close()
            raise

    def _open(self) -> None:
        db = self._db
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(
                f"{self.path} failed SQLite's integrity check ({check}); it was left untouched: "
                "move it away or pass another --store PATH"
            )
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            if self.read_only:
                raise StoreError(f"{self.path} is an empty file, not a grokbench store")
            self._create()
            return
        if "meta" not in tables:
            raise StoreError(
                f"{self.path} is an SQLite database but not a grokbench store (tables: "
                f"{', '.join(sorted(tables))}); it was left untouched: pass another --store PATH"
            )
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("application") != APPLICATION:
            raise StoreError(f"{self.path} is not a grokbench store (meta: {meta})")
        version = meta.get("schema_version")
        if version == "2" and self.read_only:  # its tables are read as they are
            return
        if version == "2":  # additive upgrade: new tables only, every stored row stays valid
            with self.transaction():
                self._create_tables(_SCHEMA_3)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", ("3",))
            version = str(SCHEMA_VERSION)
        if version != str(SCHEMA_VERSION):
            raise StoreError(
                f"{self.path} was written with store schema version {version}; this code reads "
                f"version {SCHEMA_VERSION}. It was left untouched: use the matching version of "
                "grokbench, or pass another --store PATH to start a new store"
            )
        if not self.read_only:
            db.execute("PRAGMA journal_mode=WAL")

    def _create(self) -> None:
        db = self._db
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with self.transaction():
                # Two processes may create the same store at once: the loser sees the tables.
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    return
                self._create_tables(_SCHEMA + _SCHEMA_3)
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("application", APPLICATION),
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("created_numerics_version", NUMERICS_VERSION),
                        ("created_at", repr(time.time())),
                    ],
                )
        except sqlite3.OperationalError as err:
            raise StoreError(f"cannot write the results store {self.path}: {err}") from None

    def _create_tables(self, schema: str) -> None:
        for statement in schema.split(";"):
            if statement.strip():
                self._db.execute(statement)

    # -- plumbing ---------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- runs -------------------------------------------------------------------------------
    def has_run(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def put_run(
        self,
        key: str,
        result: RunResult,
        *,
        task_config: Mapping[str, Any],
        seconds_wall: float,
        code: str | None = None,
        host: str | None = None,
    ) -> bool:
        """Store a finished run and its chains in one transaction. Returns False (and keeps the
        stored one) when a run with this key is already there."""
        payload = result.to_dict()
        curves = payload.pop("curves")
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone():
                return False
            db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    key,
                    result.task,
                    _dumps(plain(task_config)),
                    result.spec.sampler,
                    _dumps(payload["hparams"]),
                    _dumps(payload["prior_precision"]),
                    _dumps(payload["seeds"]),
                    result.spec.budget,
                    result.spec.eval_every,
                    NUMERICS_VERSION,
                    code or code_version(),
                    result.device,
                    host or host_description(),
                    result.steps_run,
                    result.grad_evals_per_step,
                    result.seconds_train,
                    result.seconds_eval,
                    seconds_wall,
                    time.time(),
                    _dumps(payload),
                    zlib.compress(_dumps(curves).encode(), 6),
                ),
            )
            db.executemany(
                "INSERT INTO chains VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        key,
                        c.chain,
                        c.seed,
                        _dumps(c.hparams),
                        c.t_mem,
                        c.t_grok,
                        c.t_mem_grad_evals,
                        c.t_grok_grad_evals,
                        c.t_mem_seconds,
                        c.t_grok_seconds,
                        c.censored_at,
                        int(c.diverged),
                        c.accept_rate,
                    )
                    for c in result.chains
                ],
            )
        return True

    def get_run(self, key: str, *, curves: bool = True) -> RunRecord | None:
        row = self._db.execute(
            "SELECT result, curves, code_version, seconds_wall, finished_at, host, task_config "
            "FROM runs WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        payload = json.loads(row[0])
        payload["curves"] = json.loads(zlib.decompress(row[1])) if curves else []
        return RunRecord(
            key=key,
            result=RunResult.from_dict(payload),
            code_version=row[2],
            seconds_wall=row[3],
            finished_at=row[4],
            host=row[5],
            task_config=json.loads(row[6]),
        )

    def run_keys(self, task: str | None = None, sampler: str | None = None) -> list[str]:
        """Stored run keys, oldest first (only those of ``task`` and ``sampler`` if given)."""
        query, args = "SELECT key FROM runs WHERE 1", []
        for column, value in (("task", task), ("sampler", sampler)):
            if value is not None:
                query += f" AND {column} = ?"
                args.append(value)
        return [r[0] for r in self._db.execute(query + " ORDER BY finished_at", args)]

    def count(self, table: str) -> int:
        if table not in {"runs", "chains", "compares", "entries", "checkpoints", "claims"}:
            raise ValueError(f"no table {table!r}")
        return self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    # -- checkpoints ------------------------------------------------------------------------
    def put_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store a memorized checkpoint; False (keeping the stored one) if its key is taken."""
        theta = checkpoint.theta.detach().to("cpu").contiguous()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM checkpoints WHERE key = ?", (checkpoint.key,)).fetchone():
                return False
            db.execute(
                "INSERT INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    checkpoint.key,
                    checkpoint.task,
                    checkpoint.seed,
                    _dumps(plain(checkpoint.criterion)),
                    checkpoint.step,
                    _dumps(plain(checkpoint.metrics)),
                    theta.numpy().tobytes(),
                    str(theta.dtype).removeprefix("torch."),
                    checkpoint.code_version or code_version(),
                    time.time(),
                ),
            )
        return True

    def get_checkpoint(self, key: str) -> Checkpoint | None:
        row = self._db.execute(
            "SELECT task, seed, criterion, step, metrics, theta, dtype, code_version "
            "FROM checkpoints WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        dtype = getattr(torch, row[6])
        theta = torch.frombuffer(bytearray(row[5]), dtype=dtype).clone()
        return Checkpoint(
            key=key,
            task=row[0],
            seed=row[1],
            criterion=json.loads(row[2]),
            step=row[3],
            metrics=json.loads(row[4]),
            theta=theta,
            code_version=row[7],
        )

    # -- claims -----------------------------------------------------------------------------
    def claim(
        self,
        key: str,
        holder: str,
        lease: float,
        dead: Callable[[str], bool] | None = None,
    ) -> bool:
        """Claim job ``key`` for ``holder`` for ``lease`` seconds: True if it is now the
        holder's (free, expired, already the holder's, or held by a holder that ``dead`` says
        is gone), False while another live holder's lease runs. Renewing is claiming again."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT holder, expires FROM claims WHERE key = ?", (key,)).fetchone()
            held = row is not None and row[0] != holder and row[1] > now
            if held and (dead is None or not dead(row[0])):
                return False
            db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (key, holder, now + lease))
        return True

    def release(self, key: str, holder: str) -> None:
        """Give up ``holder``'s claim on ``key`` (a stored run needs none)."""
        with self.transaction() as db:
            db.execute("DELETE FROM claims WHERE key = ? AND holder = ?", (key, holder))

    # -- comparisons ------------------------------------------------------------------------
    def put_compare(
        self, key: str, task: str, task_config: dict, preset: str, protocol: dict
    ) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO compares VALUES (?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
                "protocol = excluded.protocol, updated_at = excluded.updated_at",
                (key, task, _dumps(task_config), preset, _dumps(protocol), now, now),
            )

    def put_entry(self, entry: Entry) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?)",
                (
                    entry.compare_key,
                    entry.sampler,
                    entry.role,
                    _dumps(entry.trials),
                    _dumps(entry.tuning_runs),
                    _dumps(entry.chosen),
                    _dumps(entry.final_runs),
                    now,
                ),
            )
            db.execute("UPDATE compares SET updated_at = ? WHERE key = ?", (now, entry.compare_key))

    def compares(self, task: str | None = None) -> list[Compare]:
        """Comparisons, most recently updated first (only those of ``task`` if given)."""
        query = "SELECT * FROM compares"
        args: tuple = ()
        if task is not None:
            query += " WHERE task = ?"
            args = (task,)
        rows = self._db.execute(query + " ORDER BY updated_at DESC", args).fetchall()
        return [
            Compare(
                key=r[0],
                task=r[1],
                task_config=json.loads(r[2]),
                preset=r[3],
                protocol=json.loads(r[4]),
                created_at=r[5],
                updated_at=r[6],
            )
            for r in rows
        ]

    def entries(self, compare_key: str) -> list[Entry]:
        rows = self._db.execute(
            "SELECT * FROM entries WHERE compare_key = ? ORDER BY role DESC, sampler",
            (compare_key,),
        ).fetchall()
        return [
            Entry(
                compare_key=r[0],
                sampler=r[1],
                role=r[2],
                trials=json.loads(r[3]),
                tuning_runs=json.loads(r[4]),
                chosen=json.loads(r[5]),
                final_runs=json.loads(r[6]),
            )
            for r in rows
        ]


@dataclass(frozen=True)
class Checkpoint:
    """A memorized starting point: one chain's parameters ``(D,)`` for ``task`` and ``seed``,
    made by the task's reference optimizer until ``criterion`` held, at ``step``."""

    key: str
    task: str
    seed: int
    criterion: dict[str, Any]
    step: int
    metrics: dict[str, float]
    theta: Any  # torch.Tensor (D,)
    code_version: str = ""


@dataclass(frozen=True)
class RunRecord:
    key: str
    result: RunResult
    code_version: str
    seconds_wall: float
    finished_at: float
    host: str = ""
    task_config: dict[str, Any] = field(default_factory=dict)  # the task's configuration


def check_creatable(path: Path, *, create_parents: bool = True) -> None:
    """Refuse early (before any training) a store that could not be created; make its missing
    parent folders when ``create_parents``."""
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise StoreError(f"cannot create the results store {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create the results store {path}: {existing} is not writable")
    if not create_parents:
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"cannot create the results store {path}: {err}") from None


def _dumps(value: Any) -> str:
    # NaN stays NaN (Python's JSON dialect) inside the store: curves hold NaN before t_mem.
    return json.dumps(value)
