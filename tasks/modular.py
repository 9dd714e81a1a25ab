"""Modular arithmetic tasks of Power et al. 2022 ("Grokking", App. A.1.1), for any prime p.

The nine operations, all mod p with operands ``x, y`` in ``[0, p)``:

==========  ==============================================  ================
name        answer                                          pairs
==========  ==============================================  ================
``add``     x + y                                           all p²
``sub``     x − y                                           all p²
``div``     x / y = x·y^(p−2)                               y ≠ 0: p(p−1)
``divodd``  x / y if y is odd, else x − y                   all p²
``sqsum``   x² + y²                                         all p²
``quad``    x² + xy + y²                                    all p²
``quadx``   x² + xy + y² + x                                all p²
``cubic``   x³ + xy                                         all p²
``cubic2``  x³ + xy² + y                                    all p²
==========  ==============================================  ================

``mul`` (x·y, y ≠ 0: p(p−1) pairs) is not one of Power et al.'s nine: it is the task of Grokfast
(Lee et al. 2024) and the cliptogrok study, whose data drop y = 0 as ``div`` does.

Only ``div`` and ``mul`` drop the pairs with y = 0 (0 has no inverse). ``divodd`` keeps them: 0
is even, so its answer there is ``x − 0 = x``, defined for every x, and its table has all p² pairs.

Pairs are listed row-major (``x`` major, ``y`` minor); the input is ``(x, y)`` and the answer is a
class in ``[0, p)``. Task names are ``{op}_mod{p}`` (e.g. ``div_mod97``), optionally followed by
``_{model}`` (``add_mod59_mlp``); :func:`tasks.make` parses any prime p.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from .base import DATA_KEYS, TableTask, TaskError, table_task, with_registered_data

#: Nanda et al. 2023's optimizer for the transformer (they also warm the rate up over 10 steps).
NANDA_ADAMW = {"sampler": "adamw", "step_size": 1e-3, "weight_decay": 1.0, "betas": (0.9, 0.98)}
#: Measured here (tasks/registry.py: add_mod31_mlp groks with it on 3 of 3 seeds).
MLP_ADAMW = {"sampler": "adamw", "step_size": 1e-2, "weight_decay": 1.0, "betas": (0.9, 0.98)}
#: Gromov 2023's full-batch AdamW for his quadratic MLP: lr 1e-2, weight decay 5, torch's
#: default betas (tasks/models.py, QuadraticMLP; measured in tasks/registry.py).
QUADRATIC_ADAMW = {
    "sampler": "adamw",
    "step_size": 1e-2,
    "weight_decay": 5.0,
    "betas": (0.9, 0.999),
}

#: Prieto et al. 2025's ⊥AdamW for their one-hot MLP (the code of "Grokking at the edge of
#: numerical stability", figure 1: lr 0.01, beta2 0.99, eps 1e-25, no weight decay, full batch).
PRIETO_ORTHO_ADAMW = {
    "sampler": "ortho_adamw",
    "step_size": 1e-2,
    "weight_decay": 0.0,
    "betas": (0.9, 0.99),
    "eps": 1e-25,
}

#: Grokfast's baseline for its decoder (Lee et al. 2024, their main.py): Adam, lr 1e-3, betas
#: (0.9, 0.98), no weight decay (they also warm the rate up over 10 steps; not here).
GROKFAST_ADAM = {"sampler": "adamw", "step_size": 1e-3, "weight_decay": 0.0, "betas": (0.9, 0.98)}

#: Per-model defaults, used for a parsed name and when ``model=`` is overridden.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "transformer": {"loss": "ce", "reference": NANDA_ADAMW, "budget": 20_000},
    "mlp": {"loss": "ce", "reference": MLP_ADAMW, "budget": 10_000},
    "quadratic": {"loss": "mse", "reference": QUADRATIC_ADAMW, "budget": 10_000},
    "onehot": {"loss": "ce", "reference": PRIETO_ORTHO_ADAMW, "budget": 2_000},
    "decoder": {"loss": "ce", "reference": GROKFAST_ADAM, "budget": 2_000, "batch_size": 512},
}


def _inverses(p: int) -> Tensor:
    """``inv[y] = y^(p-2) mod p`` (Fermat); ``inv[0]`` is 0 and never used."""
    return torch.tensor([0] + [pow(y, p - 2, p) for y in range(1, p)], dtype=torch.int64)


def _div(x: Tensor, y: Tensor, p: int) -> Tensor:
    return x * _inverses(p)[y]


def _divodd(x: Tensor, y: Tensor, p: int) -> Tensor:
    # y = 0 takes the even branch (x - 0); inv[0] = 0 is computed by where() and discarded.
    return torch.where(y % 2 == 1, x * _inverses(p)[y], x - y)


#: name -> (formula, answer(x, y, p) before "mod p", excludes y = 0)
OPERATIONS: dict[str, tuple[str, Callable[[Tensor, Tensor, int], Tensor], bool]] = {
    "add": ("x + y", lambda x, y, p: x + y, False),
    "sub": ("x - y", lambda x, y, p: x - y, False),
    "div": ("x / y", _div, True),
    "mul": ("x * y", lambda x, y, p: x * y, True),  # Grokfast's and cliptogrok's: y ≠ 0
    "divodd": ("x / y if y is odd else x - y", _divodd, False),  # y = 0 is even: x - 0
    "sqsum": ("x^2 + y^2", lambda x, y, p: x * x + y * y, False),
    "quad": ("x^2 + xy + y^2", lambda x, y, p: x * x + x * y + y * y, False),
    "quadx": ("x^2 + xy + y^2 + x", lambda x, y, p: x * x + x * y + y * y + x, False),
    "cubic": ("x^3 + xy", lambda x, y, p: (x * x % p) * x + x * y, False),
    "cubic2": ("x^3 + xy^2 + y", lambda x, y, p: (x * x % p) * x + x * (y * y % p) + y, False),
}


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def _smallest_factor(n: int) -> int:
    return next(f for f in range(2, n + 1) if n % f == 0)


def check_modulus(p: int) -> None:
    if isinstance(p, bool) or not isinstance(p, int) or not is_prime(p):
        why = "it is not an integer"
        if isinstance(p, int) and not isinstance(p, bool):
            why = (
                "it is less than 2"
                if p < 2
                else f"{p} = {_smallest_factor(p)}·{p // _smallest_factor(p)}"
            )
        raise TaskError(
            f"modulus p={p!r} is not prime ({why}); the modular tasks need a prime p so that "
            "every nonzero y has an inverse"
        )


@lru_cache(maxsize=64)
def _table_cached(op: str, p: int) -> tuple[Tensor, Tensor]:
    _, fn, nonzero_y = OPERATIONS[op]
    xs = torch.arange(p, dtype=torch.int64)
    ys = torch.arange(1 if nonzero_y else 0, p, dtype=torch.int64)
    x, y = torch.meshgrid(xs, ys, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    return torch.stack([x, y], dim=1), fn(x, y, p) % p


def table(op: str, p: int) -> tuple[Tensor, Tensor]:
    """Every pair of ``op`` mod ``p``: ``pairs`` (N, 2) int64 and ``answers`` (N,) int64."""
    if op not in OPERATIONS:
        raise TaskError(f"unknown operation {op!r}; choose one of {list(OPERATIONS)}")
    check_modulus(p)
    pairs, answers = _table_cached(op, p)
    return pairs.clone(), answers.clone()


def modular_factory(
    op: str, p: int, *, name: str | None = None, description: str | None = None, **defaults: Any
) -> Callable[..., TableTask]:
    """A ``factory(**overrides) -> TableTask`` for ``op`` mod ``p`` with registered ``defaults``.

    ``factory.with_model(model, name=...)`` is the factory of the same task (operation, p and
    the registered data settings, :data:`~tasks.base.DATA_KEYS`) with another model and that
    model's own loss and reference optimizer: what ``tasks.make("<registered name>_<model>")``
    builds.
    """
    if op not in OPERATIONS:
        raise TaskError(f"unknown operation {op!r}; choose one of {list(OPERATIONS)}")
    check_modulus(p)
    model = defaults.get("model", "transformer")
    per_model = with_registered_data(defaults, MODEL_DEFAULTS)
    full = {"frac_train": 0.5, "split_seed": 0, "batch_size": None, "target": 0.99}
    full.update(per_model[model])
    full.update(defaults)
    full["model"] = model
    name = name or f"{op}_mod{p}"
    formula = OPERATIONS[op][0]
    generic = f"({formula}) mod {p}, {{model}} trained on {{pct}} of the {{n}} pairs"
    text = description or generic

    def factory(**overrides: Any) -> TableTask:
        if "p" in overrides:
            if overrides["p"] != p:
                raise TaskError(
                    f"{name}: p is part of the name; ask for '{op}_mod{overrides['p']}' instead "
                    f"of overriding p={overrides['p']!r}"
                )
            overrides = {k: v for k, v in overrides.items() if k != "p"}
        pairs, answers = table(op, p)
        return table_task(
            name=name,
            description=text,
            generic_description=generic,
            pairs=pairs,
            answers=answers,
            n_operands=p,
            num_classes=p,
            defaults=full,
            model_defaults=per_model,
            overrides=overrides,
        )

    def with_model(
        other: str, *, name: str, description: str | None = None, **more: Any
    ) -> Callable[..., TableTask]:
        kept = {k: v for k, v in defaults.items() if k in DATA_KEYS}
        return modular_factory(
            op, p, name=name, description=description, **{**kept, **more, "model": other}
        )

    factory.with_model = with_model  # type: ignore[attr-defined]
    return factory
