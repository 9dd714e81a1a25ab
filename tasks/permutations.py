"""Permutation-group tasks on S5 (Power et al. 2022, App. A.1.1).

The 120 elements are the permutations of ``range(5)`` in the lexicographic order of
``itertools.permutations(range(5))``; element ``i`` is ``ELEMENTS[i]``, a tuple ``s`` mapping
``j -> s[j]``. Composition is right-to-left, as for functions: ``(x·y)(j) = x(y(j))``, i.e. apply
``y`` first. The three operations:

- ``s5_compose``: ``x·y``
- ``s5_conj``: ``x·y·x⁻¹``
- ``s5_xyx``: ``x·y·x``

All 120² ordered pairs are used, row-major in ``(x, y)``; the answer is the index of the result.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from .base import DATA_KEYS, TableTask, TaskError, table_task, with_registered_data
from .modular import MODEL_DEFAULTS

Perm = tuple[int, ...]

ELEMENTS: tuple[Perm, ...] = tuple(itertools.permutations(range(5)))
INDEX: dict[Perm, int] = {s: i for i, s in enumerate(ELEMENTS)}


def compose(a: Perm, b: Perm) -> Perm:
    """``a·b``: apply ``b`` first, then ``a``."""
    return tuple(a[j] for j in b)


def inverse(a: Perm) -> Perm:
    out = [0] * len(a)
    for j, aj in enumerate(a):
        out[aj] = j
    return tuple(out)


OPERATIONS: dict[str, tuple[str, Callable[[Perm, Perm], Perm]]] = {
    "s5_compose": ("x·y", compose),
    "s5_conj": ("x·y·x⁻¹", lambda x, y: compose(compose(x, y), inverse(x))),
    "s5_xyx": ("x·y·x", lambda x, y: compose(compose(x, y), x)),
}


@lru_cache(maxsize=8)
def _table_cached(op: str) -> tuple[Tensor, Tensor]:
    fn = OPERATIONS[op][1]
    pairs = [(i, j) for i in range(len(ELEMENTS)) for j in range(len(ELEMENTS))]
    answers = [INDEX[fn(ELEMENTS[i], ELEMENTS[j])] for i, j in pairs]
    return torch.tensor(pairs, dtype=torch.int64), torch.tensor(answers, dtype=torch.int64)


def table(op: str) -> tuple[Tensor, Tensor]:
    """Every pair of ``op``: ``pairs`` (14400, 2) int64 and ``answers`` (14400,) int64."""
    if op not in OPERATIONS:
        raise TaskError(f"unknown S5 operation {op!r}; choose one of {list(OPERATIONS)}")
    pairs, answers = _table_cached(op)
    return pairs.clone(), answers.clone()


def permutation_factory(
    op: str, *, name: str | None = None, description: str | None = None, **defaults: Any
) -> Callable[..., TableTask]:
    """A ``factory(**overrides) -> TableTask`` for an S5 operation with registered ``defaults``.

    ``factory.with_model(model, name=...)``: the same task and data with another model (see
    :func:`tasks.modular.modular_factory`).
    """
    if op not in OPERATIONS:
        raise TaskError(f"unknown S5 operation {op!r}; choose one of {list(OPERATIONS)}")
    model = defaults.get("model", "transformer")
    per_model = with_registered_data(defaults, MODEL_DEFAULTS)
    full = {"frac_train": 0.5, "split_seed": 0, "batch_size": None, "target": 0.99}
    full.update(per_model[model])
    full.update(defaults)
    full["model"] = model
    name = name or op
    formula = OPERATIONS[op][0]
    generic = f"S5 permutations, {formula}, {{model}} trained on {{pct}} of the {{n}} pairs"
    text = description or generic
    n = len(ELEMENTS)

    def factory(**overrides: Any) -> TableTask:
        pairs, answers = table(op)
        return table_task(
            name=name,
            description=text,
            generic_description=generic,
            pairs=pairs,
            answers=answers,
            n_operands=n,
            num_classes=n,
            defaults=full,
            model_defaults=per_model,
            overrides=overrides,
        )

    def with_model(
        other: str, *, name: str, description: str | None = None, **more: Any
    ) -> Callable[..., TableTask]:
        kept = {k: v for k, v in defaults.items() if k in DATA_KEYS}
        return permutation_factory(
            op, name=name, description=description, **{**kept, **more, "model": other}
        )

    factory.with_model = with_model  # type: ignore[attr-defined]
    return factory
