"""One run, defined once: :class:`RunSpec`, what a run computes, its key and its chains.

A run is a sampler on a task for ``C`` chains at once. Everything that decides its numbers,
apart from the task, is one frozen :class:`RunSpec`::

    RunSpec("sgld", {"step_size": [1e-3, 3e-3], "temperature": 1e-5},
            prior_precision=1e-4, seeds=(0, 1), budget=1000, eval_every=10)

Hyperparameters keep the form a user writes and the store keeps (JSON): a value shared by every
chain, or a list with one value per chain. Which is which is read from the sampler's own
declarations (:class:`samplers.Param`): a list is per-chain unless the parameter is a pair
(``Param.pair``, AdamW's ``betas``), where a pair of numbers is shared and a list of pairs is
per-chain; a parameter declared ``per_chain=False`` (HMC's ``num_leapfrog``) takes one value.
From there :meth:`RunSpec.per_chain` gives one plain dict per chain (every declared
hyperparameter, defaults filled in, and the prior precision: what each chain's record keeps),
and :meth:`RunSpec.sampler_hparams` / :meth:`RunSpec.prior` the ``(C,)`` tensors the sampler
and the potential get.

:meth:`RunSpec.key` is the run's reuse key in the store: a hash of the task (name and
configuration), every field here and :data:`bench.keys.NUMERICS_VERSION`. Its payload is the
one stores have been written with since schema 3; changing it orphans every stored run
(tests/test_store.py checks it against a committed store).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

import samplers
from bench.keys import NUMERICS_VERSION, digest, plain

#: Default number of steps between evaluations when a spec gives none: ~200 points per run.
DEFAULT_EVALS_PER_RUN = 200
#: A spec's ``start`` when its chains start from ``task.init`` (else: one checkpoint key each).
INIT = "init"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What a run computes (see the module docstring); frozen, its containers read-only.

    ``budget`` and ``eval_every`` are in steps (``None``: the task's budget, and
    ``budget // DEFAULT_EVALS_PER_RUN``; :meth:`resolve` fills them in). ``batch_size`` is the
    minibatch asked for (``None``: the task's); a Metropolis sampler gets the full batch
    whatever it says. ``confirm`` is the window of sustained grokking in steps (``None``: the
    rest of the run; ``0``: the first touch). ``start`` is ``"init"`` (``task.init`` of each
    seed) or one checkpoint key per chain, the positions then given to :func:`bench.run.run`;
    ``None`` only for a result stored before runs recorded their start. ``data_seed`` seeds the
    minibatch stream and, with the first seed, the noise. ``max_norm_growth`` (``None``: no
    check) is the runner's divergence check on the weights: a chain whose ``‖θ‖`` at an
    evaluation exceeds ``max_norm_growth · ‖θ_start‖`` is diverged, as a non-finite one is
    (issue 18: Riemannian Langevin's frozen metric grew ``‖θ‖`` ×2e15 while the accuracy the
    page saw still held). It enters the key, the JSON and the repr only when set, so every
    spec without it keeps the key it was stored under.
    """

    sampler: str
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    prior_precision: float | Sequence[float] = 0.0
    seeds: Sequence[int] | int = (0,)  # the chains' seeds; a count n means 0..n-1
    budget: int | None = None
    eval_every: int | None = None
    batch_size: int | None = None
    confirm: int | None = None
    start: str | Sequence[str] | None = INIT
    data_seed: int = 0
    max_norm_growth: float | None = None

    def __post_init__(self) -> None:
        # Frozen all the way down: lists become tuples, the mapping a read-only view. The key's
        # JSON writes tuples as lists, so this changes no key.
        set_ = object.__setattr__
        set_(self, "hparams", MappingProxyType({k: _frozen(v) for k, v in self.hparams.items()}))
        set_(self, "prior_precision", _frozen(self.prior_precision))
        seeds = range(self.seeds) if isinstance(self.seeds, int) else self.seeds
        set_(self, "seeds", tuple(int(s) for s in seeds))
        if self.start is not None and not isinstance(self.start, str):
            set_(self, "start", tuple(self.start))
        if not self.seeds:
            raise ValueError("a run needs at least one chain (seed)")
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"budget must be at least 1 step, got {self.budget}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"eval_every must be at least 1 step, got {self.eval_every}")
        if self.confirm is not None and self.confirm < 0:
            raise ValueError(f"confirm must be a window of >= 0 steps or None, got {self.confirm}")
        if self.max_norm_growth is not None and not (
            isinstance(self.max_norm_growth, (int, float))
            and not isinstance(self.max_norm_growth, bool)
            and math.isfinite(self.max_norm_growth)
            and self.max_norm_growth > 1
        ):
            raise ValueError(
                f"max_norm_growth must be a finite number > 1 or None, got "
                f"{self.max_norm_growth!r}: it is the factor by which ‖θ‖ may grow over its start "
                "before a chain counts as diverged, and at 1 or less a chain would be diverged "
                "where it starts"
            )
        if self.max_norm_growth is not None:
            set_(self, "max_norm_growth", float(self.max_norm_growth))  # 10 and 10.0: one key
        if isinstance(self.start, str) and self.start != INIT:
            raise ValueError(
                f"start is {INIT!r} or one checkpoint key per chain, got {self.start!r}"
            )
        if isinstance(self.start, tuple) and len(self.start) != len(self.seeds):
            raise ValueError(
                f"{len(self.start)} starting points for {len(self.seeds)} seeds: one per chain"
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"RunSpec({fields})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickled for worker processes and Ray as its fields (a mapping view does not pickle)
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return type(self), tuple(dict(v) if isinstance(v, Mapping) else v for v in values)

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    # -- chains ------------------------------------------------------------------------------
    @property
    def chains(self) -> int:
        """C, the number of chains (one per seed)."""
        return len(self.seeds)

    def per_chain(self) -> list[dict[str, Any]]:
        """One plain dict per chain: every hyperparameter the sampler declares (its default
        where the spec gives none; a pair as a list) and ``prior_precision``."""
        params = self._params()
        out: list[dict[str, Any]] = [{} for _ in self.seeds]
        for key, param in params.items():
            value, varies = self._expanded(key, self.hparams.get(key, param.default), param)
            for c, row in enumerate(out):
                row[key] = _plain_value(value[c] if varies else value, param.integer, varies)
        prior, varies = self._column("prior_precision", self.prior_precision)
        for c, row in enumerate(out):
            row["prior_precision"] = float(prior[c]) if varies else prior
        return out

    def sampler_hparams(self) -> dict[str, Any]:
        """The keyword arguments of ``samplers.make``: shared values as they are (a pair as a
        tuple), per-chain ones as ``(C,)`` float64 tensors (a per-chain pair as two)."""
        params = self._params()
        unknown = sorted(set(self.hparams) - set(params))
        if unknown:
            raise samplers.HyperparameterError(
                f"{self.sampler}: unknown hyperparameter(s) {unknown}; {self.sampler} takes "
                f"{sorted(params)}"
            )
        out = {}
        for key, value in self.hparams.items():
            value, varies = self._expanded(key, value, params[key])
            if params[key].pair:
                out[key] = tuple(_tensor(v) for v in zip(*value, strict=True)) if varies else value
            else:
                out[key] = _tensor(value) if varies else value
        return out

    def prior(self) -> float | Tensor:
        """λ of the prior ``½·λ·‖θ‖²``: a number, or a ``(C,)`` float64 tensor per chain."""
        value, varies = self._column("prior_precision", self.prior_precision)
        return _tensor(value) if varies else value

    def grad_evals_per_step(self) -> int:
        """What one step costs in gradient evaluations, as the sampler states it (the settings
        that decide the cost cannot vary per chain, so the first chain's are everyone's)."""
        first = {k: v for k, v in self.per_chain()[0].items() if k != "prior_precision"}
        return samplers.lookup(self.sampler).grad_evals_per_step(first)

    def _params(self) -> Mapping[str, samplers.Param]:
        return samplers.lookup(self.sampler).params

    def _expanded(self, key: str, value: Any, param: samplers.Param) -> tuple[Any, bool]:
        """``(value, varies)``: whether ``value`` holds one entry per chain, by the declaration."""
        if param.pair:
            varies = isinstance(value, tuple) and bool(value) and isinstance(value[0], tuple)
            if varies and len(value) != self.chains:
                raise ValueError(_length_message(key, len(value), self.chains))
            return value, varies
        if isinstance(value, tuple) and not param.per_chain:
            raise samplers.HyperparameterError(
                f"{self.sampler}: {key} must be a single number, the same for every chain"
            )
        return self._column(key, value)

    def _column(self, key: str, value: Any) -> tuple[Any, bool]:
        if not isinstance(value, tuple):
            return value, False
        if len(value) != self.chains:
            raise ValueError(_length_message(key, len(value), self.chains))
        return value, True

    # -- identity ----------------------------------------------------------------------------
    def resolve(self, task: Any) -> RunSpec:
        """This spec with the task's defaults filled in: the budget, the evaluation interval."""
        budget = int(self.budget if self.budget is not None else task.budget)
        if budget < 1:
            raise ValueError(f"budget must be at least 1 step, got {budget}")
        every = int(self.eval_every or max(1, budget // DEFAULT_EVALS_PER_RUN))
        return dataclasses.replace(self, budget=budget, eval_every=every)

    def key(self, task: Any) -> str:
        """The reuse key of this run on ``task``: 24 hex digits of a SHA-256 of the task's name
        and configuration, every field (resolved against the task) and the numerics version.
        The payload is byte for byte the one earlier stores were written with."""
        if self.start is None:
            raise ValueError(
                "this spec comes from a result stored before runs recorded their start: its key "
                "is the one it is stored under"
            )
        spec = self.resolve(task)
        payload = {
            "task": task.name,
            "task_config": task.config,
            "sampler": spec.sampler,
            "hparams": dict(spec.hparams),
            "prior_precision": spec.prior_precision,
            "seeds": list(spec.seeds),
            "budget": spec.budget,
            "eval_every": spec.eval_every,
            "batch_size": spec.batch_size,
            "data_seed": spec.data_seed,
            "confirm": spec.confirm,
            "start": spec.start if isinstance(spec.start, str) else list(spec.start),
            "numerics": numerics_version(spec.sampler),
        }
        if spec.max_norm_growth is not None:
            # only when set: the payload of every spec without it is the stored one
            payload["max_norm_growth"] = spec.max_norm_growth
        return digest(payload)

    @classmethod
    def from_chains(
        cls,
        sampler: str,
        rows: Sequence[Mapping[str, Any]],
        prior_precision: Sequence[float],
        seeds: Sequence[int],
        **settings: Any,
    ) -> RunSpec:
        """The spec of chains given one by one (one hyperparameter dict and prior each): a
        value all chains share is written once, else one per chain (the inverse of
        :meth:`per_chain`, and the form stored keys were computed on)."""
        if not len(rows) == len(prior_precision) == len(seeds):
            raise ValueError(
                f"{len(rows)} hyperparameter rows, {len(prior_precision)} priors and "
                f"{len(seeds)} seeds: give one of each per chain"
            )
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return cls(
            sampler,
            {k: _collapse([r[k] for r in rows]) for k in keys},
            prior_precision=_collapse(prior_precision),
            seeds=seeds,
            **settings,
        )

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: lists for tuples, a plain dict of hyperparameters; ``max_norm_growth``
        only when set (a spec without it writes what it always wrote)."""
        out = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if out["max_norm_growth"] is None:
            del out["max_norm_growth"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"not fields of a RunSpec: {unknown}")
        return cls(**data)


def _frozen(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Tensor):
        raise TypeError("a RunSpec holds plain values: give a per-chain list, not a tensor")
    return value


def _collapse(values: Sequence[Any]) -> Any:
    """One value when every chain has the same, else the list of them (pairs as lists)."""
    first = values[0]
    if all(v == first for v in values):
        return list(first) if isinstance(first, tuple) else first
    return [list(v) if isinstance(v, tuple) else v for v in values]


def _tensor(values: Sequence[float]) -> Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _plain_value(value: Any, integer: bool, varies: bool) -> Any:
    """A chain's value as its record keeps it: a pair as a list, an integer setting as an int,
    a per-chain number as a float (as read back from the sampler's float64 tensor)."""
    if isinstance(value, tuple):
        return [_plain_value(v, integer, varies) for v in value]
    if value is None:
        return None
    if integer:
        return int(value)
    return float(value) if varies else value


def _length_message(key: str, given: int, chains: int) -> str:
    return (
        f"{key} has {given} values but the run has {chains} chains; give one value per chain or "
        "a single value"
    )


def numerics_version(sampler: str) -> str:
    """The numerics version of ``sampler``'s runs: :data:`bench.keys.NUMERICS_VERSION`, with the
    sampler's own version appended where it declares one (``Sampler.numerics``), so that a change
    of one sampler's numbers retires its stored runs only."""
    own = getattr(samplers.lookup(sampler), "numerics", None)
    return NUMERICS_VERSION if own is None else f"{NUMERICS_VERSION}+{own}"
