"""The task contract (:class:`Task`) and the table tasks that keep it (:class:`TableTask`).

:class:`Task` is the protocol every task keeps: the members the runner (``bench/run.py``) and the
comparison (``bench/compare``) use. Two kinds keep it: :class:`TableTask` here, and the
Gaussian targets of :mod:`tasks.toy`.

A :class:`TableTask` holds a table ``a ∘ b`` split into training and validation pairs, a
:class:`~tasks.models.ChainModel`, and everything a runner needs::

    task = tasks.make("add_mod113")
    theta = task.init(seed=0, chains=4)                   # (C, D), never the global RNG
    U = task.potential(prior_precision=0.0)               # U(theta, batch) -> (C,)
    U(theta, task.train).sum().backward()                 # every chain's gradient at once
    task.evaluate(theta)                                  # {train,val}_{loss,acc}: (C,) each

The potential is ``U(theta) = mean training loss over the batch + ½·prior_precision·‖theta‖²``
per chain. The per-example loss is cross-entropy (``loss="ce"``), the squared error to the
one-hot target averaged over classes (``loss="mse"``, so the mean over a batch is
``torch.nn.functional.mse_loss`` of Gromov 2023), or cross-entropy on StableMax's probabilities
(``loss="stablemax"``: Prieto et al. 2025, "Grokking at the Edge of Numerical Stability", where
``s(z) = z + 1`` for ``z >= 0`` and ``1/(1 - z)`` for ``z < 0`` replaces ``exp`` in the softmax,
``p_i = s(z_i) / Σ_j s(z_j)``: it grows linearly, not exponentially, so the loss of a fitted
example does not round to exactly 0 as its logits grow, the authors' "softmax collapse").
Losses are computed in theta's dtype (Nanda et al. upcast the logits to float64, as does the
StableMax authors' code; pass a float64 theta for that).

The split is deterministic: ``perm = torch.randperm(N, generator=torch.Generator().manual_seed(
split_seed))``; the first ``round(frac_train·N)`` indices of ``perm`` are the training pairs, the
rest the validation pairs, and each set is then sorted back into table order (row-major in
``(a, b)``). ``round`` is Python's (half to even).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from .models import KNOBS, MODELS, ChainModel

Batch = tuple[Tensor, Tensor]
LOSSES = ("ce", "mse", "stablemax")

#: Rows (chains x examples) per forward pass in :meth:`TableTask.evaluate`; bounds its memory
#: (about 130 MB for the default transformer).
EVAL_ROWS = 2**15

#: Rows (chains x examples) per forward and backward pass of a gradient on a CPU
#: (:meth:`ModelPotential.blocks`, which gives the measurement): 4 chains of add_mod113's 3,831
#: training pairs.
GRAD_ROWS = 2**14


class TaskError(ValueError):
    """An unknown task, or a task setting outside the range where it is defined."""


#: ``U(theta, batch) -> (C,)``, differentiable in ``theta`` (C, D); ``batch`` is whatever
#: :meth:`Task.batches` yields (``None``: the task's full training set, or no data at all).
Potential = Callable[[Tensor, Any], Tensor]


@runtime_checkable
class Task(Protocol):
    """What every task offers the runner (``bench/run.py``) and the comparison (``bench/compare``).

    ``isinstance(task, Task)`` checks that every member below is present (not their types).
    Kept by :class:`TableTask` (modular arithmetic, S5) and by the Gaussian targets of
    :mod:`tasks.toy`, which have no data, no accuracy target and no reference optimizer.
    """

    #: The name ``tasks.make`` was called with (``"add_mod113"``, ``"div_mod31_mlp"``).
    name: str
    #: One sentence for listings and report headers.
    description: str
    #: Every setting the task was built with, JSON-serializable: the result store keys runs on it.
    config: dict[str, Any]
    #: The reference optimizer in the samplers' vocabulary (``{"sampler": "adamw",
    #: "step_size": ..., ...}``); ``{}`` where there is none (the Gaussian targets).
    reference: dict[str, Any]
    #: Accuracy that counts as memorized (train) and grokked (validation); ``None``: nothing to
    #: reach, the task is for sampling.
    target: float | None
    #: Default number of steps of a run.
    budget: int
    #: Default minibatch size; ``None``: full batch.
    batch_size: int | None

    @property
    def num_params(self) -> int:
        """``D``, the length of one chain's parameter vector."""
        ...

    def init(
        self,
        seed: int,
        chains: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``(chains, D)`` starting points; chain ``c`` depends on ``seed + c`` only and the
        global RNG is never touched."""
        ...

    def potential(self, prior_precision: float | Tensor = 0.0) -> Potential:
        """``U(theta, batch) -> (C,)``, plus ``½·prior_precision·‖theta‖²`` per chain.

        ``prior_precision`` is a number or a per-chain ``(C,)`` tensor, finite and ``>= 0``
        (else :class:`TaskError`)."""
        ...

    def evaluate(self, theta: Tensor) -> dict[str, Tensor]:
        """Per-chain ``(C,)`` metrics; tasks with a ``target`` report ``train_acc`` and
        ``val_acc`` (and ``train_loss``, ``val_loss``)."""
        ...

    def batches(self, generator: torch.Generator, batch_size: int | None = None) -> Iterator[Any]:
        """An endless iterator of batches for the potential, drawn with ``generator``;
        ``batch_size`` (``None``: the task's) must be a positive integer (else
        :class:`TaskError`). Data-free tasks yield ``None`` forever."""
        ...

    def batch(self) -> Any:
        """The full training batch (``None`` for data-free tasks)."""
        ...

    def to(self, device: torch.device | str) -> Task:
        """Move the task's data to ``device`` in place and return the task."""
        ...


def check_prior_precision(prior_precision: float | Tensor) -> float | Tensor:
    """``prior_precision`` if it is a finite number or tensor ``>= 0``, else :class:`TaskError`."""
    why = (
        "prior_precision is the precision λ of the Gaussian prior ½·λ·‖θ‖²; a negative value makes "
        "the potential unbounded below"
    )
    if isinstance(prior_precision, Tensor):
        if prior_precision.is_complex() or prior_precision.dtype == torch.bool:
            raise TaskError(f"{why}; it must be a real tensor, got dtype {prior_precision.dtype}")
        if prior_precision.dim() > 1:
            raise TaskError(
                f"{why}; a tensor must be a scalar or one value per chain (C,), got shape "
                f"{tuple(prior_precision.shape)}"
            )
        values = prior_precision.detach().reshape(-1).double().cpu()
        bad = ~torch.isfinite(values) | (values < 0)
        if bad.any():
            i = int(bad.nonzero()[0])
            where = f" (chain {i} of {values.numel()})" if prior_precision.dim() == 1 else ""
            got = f"got {values[i].item():g}{where}"
            if not torch.isfinite(values[i]):
                raise TaskError(f"{why}; it must be finite, {got}")
            raise TaskError(f"{why}, {got}")
        return prior_precision
    if isinstance(prior_precision, bool) or not isinstance(prior_precision, numbers.Real):
        raise TaskError(f"{why}; it must be a number or a tensor, got {prior_precision!r}")
    if not math.isfinite(prior_precision):
        raise TaskError(f"{why}; it must be finite, got {prior_precision!r}")
    if prior_precision < 0:
        raise TaskError(f"{why}, got {prior_precision:g}")
    return prior_precision


def check_batch_size(batch_size: Any) -> int | None:
    """``batch_size`` if ``None`` (full batch) or a positive integer, else :class:`TaskError`."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TaskError(
            f"batch_size must be a positive integer (examples per minibatch) or None (full "
            f"batch), got {batch_size!r} of type {type(batch_size).__name__}"
        )
    if batch_size < 1:
        raise TaskError(
            f"batch_size must be a positive integer (examples per minibatch) or None (full "
            f"batch), got {batch_size}: a minibatch needs at least one example"
        )
    return int(batch_size)


def per_example_loss(logits: Tensor, y: Tensor, loss: str) -> Tensor:
    """logits (C, n, K), y (n,) -> (C, n)."""
    y = y.to(logits.device)
    if loss == "ce":
        target = y.unsqueeze(0).expand(logits.shape[0], -1)  # (C, n)
        return F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
    if loss == "mse":
        onehot = F.one_hot(y, logits.shape[-1]).to(logits.dtype)  # (n, K)
        return (logits - onehot).square().mean(-1)
    if loss == "stablemax":
        # the clamp keeps the branch where() discards finite, so its gradient is 0, never
        # 0·inf = NaN (the authors' 1/(1 - z + 1e-30) has an infinite derivative at z = 1)
        s = torch.where(logits >= 0, logits + 1.0, 1.0 / (1.0 - logits.clamp(max=0.0)))
        log_p = s.log() - s.sum(dim=-1, keepdim=True).log()  # (C, n, K)
        index = y.view(1, -1, 1).expand(logits.shape[0], -1, 1)
        return -log_p.gather(-1, index).squeeze(-1)
    raise TaskError(f"unknown loss {loss!r}; choose one of {LOSSES}")


@dataclass(frozen=True, eq=False)
class ModelPotential:
    """``U(theta, batch) -> (C,)``: mean loss over ``batch`` plus ``½·prior_precision·‖theta‖²``.

    ``batch`` is an ``(x, y)`` pair shared by every chain; ``None`` means the task's full training
    set. ``prior_precision`` is a float or a per-chain ``(C,)`` tensor.
    """

    model: ChainModel
    loss: str
    default_batch: Batch
    prior_precision: float | Tensor = 0.0

    def __post_init__(self) -> None:
        check_prior_precision(self.prior_precision)

    def __call__(self, theta: Tensor, batch: Batch | None = None) -> Tensor:
        x, y = self.default_batch if batch is None else batch
        u = per_example_loss(self.model.logits(theta, x), y, self.loss).mean(dim=1)  # (C,)
        lam = self.prior_precision
        if isinstance(lam, Tensor):
            lam = lam.to(device=theta.device, dtype=theta.dtype)
            u = u + 0.5 * lam * theta.square().sum(dim=1)
        elif lam:
            u = u + 0.5 * lam * theta.square().sum(dim=1)
        return u

    @property
    def layout(self) -> tuple[tuple[str, int, tuple[int, ...], str], ...]:
        """The model's blocks of theta, ``(name, offset, shape, kind)`` each
        (:attr:`~tasks.models.ChainModel.layout`), for the optimizers that need its weight
        matrices (:mod:`samplers.layout`)."""
        return self.model.layout

    def blocks(
        self, theta: Tensor, batch: Batch | None = None
    ) -> list[tuple[slice, ModelPotential]]:
        """Blocks of chains, each with its own potential, for a gradient taken in passes
        (:func:`samplers.base.value_and_grad`): one block off the CPU or when the chains fit.

        Chains are independent, so the gradient of one block's ``U.sum()`` is those chains' rows
        of the whole gradient. On a CPU a single pass over ``C`` chains writes each layer's
        ``(C, n, width)`` activations to main memory in the forward pass and reads them back in
        the backward pass; passes of at most :data:`GRAD_ROWS` (chain, example) rows keep them
        in cache. Measured on ``add_mod113_mlp`` (n = 3,831), one thread, full-batch AdamW
        through :func:`bench.run.run`, 5 interleaved rounds on a loaded 2-core VM: a 64-chain
        job made 0.80x the chain-steps per second of a 1-chain job in one pass, 0.95x in blocks
        of 4 (a 16-chain job 0.87x and 0.96x). Blocks are of equal size (±1) and never of one
        chain out of several: a batch of one takes another matrix-product path in some models
        (the transformer's gradients then differ in the last bits), while blocks of two or more
        give the single pass's numbers bit for bit (tested).
        """
        chains = theta.shape[0]
        rows = len((self.default_batch if batch is None else batch)[1])
        per_pass = max(2, GRAD_ROWS // max(rows, 1))
        if theta.device.type != "cpu" or chains <= per_pass:
            return [(slice(0, chains), self)]
        count = min(-(-chains // per_pass), chains // 2)
        bounds = [round(i * chains / count) for i in range(count + 1)]
        return [(slice(a, b), self._chains(a, b)) for a, b in itertools.pairwise(bounds)]

    def _chains(self, start: int, stop: int) -> ModelPotential:
        lam = self.prior_precision
        if isinstance(lam, Tensor) and lam.dim() == 1:
            lam = lam[start:stop]
        return ModelPotential(self.model, self.loss, self.default_batch, lam)


def split_indices(n: int, frac_train: float, split_seed: int) -> tuple[Tensor, Tensor]:
    """Training and validation indices into a table of ``n`` pairs (see the module docstring)."""
    if not 0.0 < frac_train < 1.0:
        raise TaskError(
            f"frac_train must lie strictly between 0 and 1 (some pairs to train on, some to "
            f"validate on), got {frac_train!r}"
        )
    n_train = round(frac_train * n)
    if not 0 < n_train < n:
        raise TaskError(
            f"frac_train={frac_train} of {n} pairs leaves {n_train} training and "
            f"{n - n_train} validation pairs; both must be non-empty"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return perm[:n_train].sort().values, perm[n_train:].sort().values


@dataclass(eq=False)
class TableTask:
    """A grokking task (keeps :class:`Task`): the split table, the model, the potential, the
    target and the budget.

    ``reference`` names the reference optimizer and its hyperparameters in the samplers
    package's vocabulary (``{"sampler": "adamw", "step_size": ..., "weight_decay": ..., ...}``).
    ``config`` holds every setting the task was built with, ``overrides`` those that differ from
    the registered defaults (both for the result store).
    """

    name: str
    description: str
    model: ChainModel
    train: Batch  # x (n_train, 2) int64, y (n_train,) int64
    val: Batch
    frac_train: float
    split_seed: int = 0
    loss: str = "ce"
    target: float = 0.99
    budget: int = 10_000
    batch_size: int | None = None
    reference: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def num_params(self) -> int:
        return self.model.num_params

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    def __repr__(self) -> str:
        return (
            f"TableTask({self.name!r}, model={self.model_name}, D={self.num_params}, "
            f"train={len(self.train[1])}, val={len(self.val[1])}, loss={self.loss})"
        )

    def to(self, device: torch.device | str) -> TableTask:
        """Move the data to ``device`` in place (saves a host-to-device copy per step on a GPU)."""
        self.train = (self.train[0].to(device), self.train[1].to(device))
        self.val = (self.val[0].to(device), self.val[1].to(device))
        return self

    def potential(self, prior_precision: float | Tensor = 0.0) -> ModelPotential:
        """``U(theta, batch) -> (C,)``: mean training loss over ``batch`` (``None``: the training
        set) plus ``½·prior_precision·‖theta‖²``; a negative or non-finite ``prior_precision``
        raises :class:`TaskError`."""
        return ModelPotential(self.model, self.loss, self.train, prior_precision)

    def init(
        self,
        seed: int,
        chains: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``(chains, D)``: chain ``c`` from ``torch.Generator().manual_seed(seed + c)``."""
        return self.model.init(seed, chains, dtype=dtype, device=device)

    def batch(self) -> Batch:
        """The full training batch."""
        return self.train

    def batches(self, generator: torch.Generator, batch_size: int | None = None) -> Iterator[Batch]:
        """Endless minibatches: each epoch is a fresh permutation drawn from ``generator``.

        ``batch_size`` defaults to the task's; ``None`` yields the full training set forever.
        The last batch of an epoch may be smaller. A ``batch_size`` that is not a positive
        integer raises :class:`TaskError` here, at the call, not at the first ``next``.
        """
        batch_size = check_batch_size(self.batch_size if batch_size is None else batch_size)
        if batch_size is None or batch_size >= len(self.train[1]):
            return self._full_batches()
        return self._minibatches(generator, batch_size)

    def _full_batches(self) -> Iterator[Batch]:
        while True:
            yield self.train

    def _minibatches(self, generator: torch.Generator, batch_size: int) -> Iterator[Batch]:
        x, y = self.train
        n = len(y)
        while True:
            perm = torch.randperm(n, generator=generator, device=generator.device).to(y.device)
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                yield x[idx], y[idx]

    @torch.no_grad()
    def evaluate(self, theta: Tensor, chunk: int | None = None) -> dict[str, Tensor]:
        """Per-chain ``train_loss, train_acc, val_loss, val_acc``, each ``(C,)`` on theta's device.

        ``chunk`` caps the chains per forward pass; examples are split so that a pass holds at
        most ``EVAL_ROWS`` (chain, example) rows. The losses exclude the prior term.
        """
        out = {}
        for split, data in (("train", self.train), ("val", self.val)):
            out[f"{split}_loss"], out[f"{split}_acc"] = self._loss_and_accuracy(theta, data, chunk)
        return out

    def _loss_and_accuracy(
        self, theta: Tensor, data: Batch, chunk: int | None
    ) -> tuple[Tensor, Tensor]:
        x, y = data
        x, y = x.to(theta.device), y.to(theta.device)
        C, n = theta.shape[0], len(y)
        chunk = C if chunk is None else max(1, int(chunk))
        loss_sum = torch.zeros(C, dtype=theta.dtype, device=theta.device)
        correct = torch.zeros(C, dtype=theta.dtype, device=theta.device)
        for c0 in range(0, C, chunk):
            rows = theta[c0 : c0 + chunk]
            block = max(1, EVAL_ROWS // rows.shape[0])
            for i0 in range(0, n, block):
                logits = self.model.logits(rows, x[i0 : i0 + block])
                yb = y[i0 : i0 + block]
                loss_sum[c0 : c0 + chunk] += per_example_loss(logits, yb, self.loss).sum(dim=1)
                correct[c0 : c0 + chunk] += (logits.argmax(dim=-1) == yb).sum(dim=1)
        return loss_sum / n, correct / n


#: Settings every table task accepts as ``make`` overrides (besides the model's size knobs).
TASK_KEYS = ("frac_train", "split_seed", "model", "loss", "budget", "batch_size", "target")

#: The settings of a registered table task that belong to its data and its protocol, not to its
#: model: they stay when the model is swapped, by name (``add_mod113_mlp``) or by ``model=``.
#: The model's loss, reference optimizer and knobs go with the model.
DATA_KEYS = ("frac_train", "split_seed", "budget", "batch_size", "target")


def with_registered_data(
    registered: Mapping[str, Any], model_defaults: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``model_defaults`` with the registration's own data settings (``DATA_KEYS`` it sets, e.g.
    a budget) on top, so that swapping the model keeps them."""
    pinned = {k: registered[k] for k in DATA_KEYS if k in registered}
    return {model: {**values, **pinned} for model, values in model_defaults.items()}


def table_task(
    *,
    name: str,
    description: str,
    generic_description: str | None = None,
    pairs: Tensor,
    answers: Tensor,
    n_operands: int,
    num_classes: int,
    defaults: Mapping[str, Any],
    model_defaults: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Any],
) -> TableTask:
    """Build a :class:`TableTask` from a complete operation table and validated overrides.

    ``defaults`` are the registered settings (``TASK_KEYS`` plus knobs of the default model);
    ``model_defaults[model]`` gives each model's ``loss``, ``reference`` and ``budget`` defaults,
    used when the model is overridden. Unknown keys raise :class:`TaskError`. ``description``
    (with ``{model}``, ``{pct}``, ``{n}`` fields) gives way to ``generic_description`` when the
    overrides change the model, its knobs, the loss or the reference it may describe.
    """
    model_name = overrides.get("model", defaults["model"])
    if model_name not in MODELS:
        raise TaskError(f"{name}: unknown model {model_name!r}; choose one of {sorted(MODELS)}")
    knobs = KNOBS[model_name]
    unknown = sorted(set(overrides) - set(TASK_KEYS) - set(knobs) - {"reference"})
    if unknown:
        raise TaskError(
            f"{name}: unknown override(s) {unknown}; this task takes {sorted(TASK_KEYS)}, "
            f"'reference', and the {model_name} model's knobs {sorted(knobs)}"
        )
    settings = dict(defaults)
    if model_name != defaults["model"]:
        # The registered knobs, loss and reference belong to the default model: start afresh.
        settings = {k: v for k, v in settings.items() if k in TASK_KEYS}
        settings.update(model_defaults[model_name])
        settings["model"] = model_name
    settings.update(overrides)

    reference = settings["reference"]
    if not isinstance(reference, Mapping) or "sampler" not in reference:
        raise TaskError(
            f"{name}: reference must be a dict naming a 'sampler' and its hyperparameters, "
            f"got {reference!r}"
        )
    loss = settings["loss"]
    if loss not in LOSSES:
        raise TaskError(f"{name}: unknown loss {loss!r}; choose one of {LOSSES}")
    frac_train = settings["frac_train"]
    if isinstance(frac_train, bool) or not isinstance(frac_train, int | float):
        raise TaskError(f"{name}: frac_train must be a number, got {frac_train!r}")
    for key in ("budget", "split_seed"):
        if isinstance(settings[key], bool) or not isinstance(settings[key], int):
            raise TaskError(f"{name}: {key} must be an integer, got {settings[key]!r}")
    if settings["budget"] < 1:
        raise TaskError(f"{name}: budget must be >= 1 step, got {settings['budget']}")
    try:
        batch_size = check_batch_size(settings["batch_size"])
    except TaskError as err:
        raise TaskError(f"{name}: {err}") from None
    if not 0.0 < settings["target"] <= 1.0:
        raise TaskError(
            f"{name}: target is a validation accuracy in (0, 1], got {settings['target']}"
        )

    try:
        train_idx, val_idx = split_indices(len(answers), float(frac_train), settings["split_seed"])
    except TaskError as err:
        raise TaskError(f"{name}: {err}") from None
    try:
        model = MODELS[model_name](
            n_operands, num_classes, **{k: settings[k] for k in knobs if k in settings}
        )
    except ValueError as err:
        raise TaskError(f"{name}: {err}") from None

    described = set(overrides) & {"loss", "reference", *knobs}
    if generic_description and (described or model_name != defaults["model"]):
        description = generic_description
    config = {k: settings[k] for k in TASK_KEYS}
    config.update(model.config())
    config["reference"] = dict(settings["reference"])
    return TableTask(
        name=name,
        description=description.format(
            model=model_name, frac=frac_train, n=len(answers), pct=_percent(frac_train)
        ),
        model=model,
        train=(pairs[train_idx], answers[train_idx]),
        val=(pairs[val_idx], answers[val_idx]),
        frac_train=float(frac_train),
        split_seed=settings["split_seed"],
        loss=loss,
        target=float(settings["target"]),
        budget=settings["budget"],
        batch_size=batch_size,
        reference=dict(settings["reference"]),
        config=config,
        overrides=dict(overrides),
    )


def _percent(frac: float) -> str:
    pct = 100 * frac
    return f"{pct:.0f}%" if math.isclose(pct, round(pct)) else f"{pct:g}%"
