"""The contract every sampler keeps, and the helpers they share.

A sampler is a small object with two pure methods, in the spirit of optax and BlackJAX::

    state = sampler.init(theta)                                    # theta: (C, D)
    state, info = sampler.step(state, potential, batch, generator)

``theta`` holds ``C`` independent chains of ``D`` parameters each. A *potential* is any callable
``U(theta, batch) -> (C,)`` that autograd can differentiate; because chains are independent, the
gradient of ``U(theta, batch).sum()`` is every chain's own gradient at once. A potential may also
carry a fused ``value_and_grad(theta, batch) -> ((C,), (C, D))`` method, which is used when present,
or a ``blocks(theta, batch) -> [(rows, potential of those rows), ...]`` method, which has the
gradient taken in passes over blocks of chains (``tasks``' model potentials on a CPU).

Every sampler targets (or, at temperature 0, minimises towards the mode of)

    p_tau(theta)  ∝  exp(-U(theta) / tau),

so temperatures mean the same thing in every module. ``step`` never mutates its input state, and
with the same ``torch.Generator`` seed the trajectory is bitwise identical on the CPU. Each step
reports the gradient evaluations it spent (``Info.grad_evals``); the class method
``grad_evals_per_step(hparams)`` declares that cost before anything runs (1, HMC's
``num_leapfrog``), so that a budget in gradient evaluations can be turned into steps.

Hyperparameters may be Python scalars or per-chain tensors of shape ``(C,)``, so one vectorised
job can run a whole grid; :func:`per_chain` turns either into something that broadcasts against a
``(C, D)`` tensor.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

Batch = Any
Hyper = float | int | Tensor


class Potential(Protocol):
    def __call__(self, theta: Tensor, batch: Batch) -> Tensor: ...


@dataclass(frozen=True)
class Info:
    """What one step did, per chain.

    ``potential`` is U at the position the step started from (the value the gradient was taken
    at), so a runner can log the training loss without another forward pass.
    """

    grad_evals: int  # gradient evaluations this step spent, the same for every chain
    accept_prob: Tensor  # (C,) Metropolis acceptance probability; 1.0 where there is no MH step
    diverged: Tensor  # (C,) bool: the energy or the proposal turned non-finite (or ΔH > 1000)
    potential: Tensor  # (C,) U(theta) at the start of the step


class HyperparameterError(ValueError):
    """A hyperparameter that is unknown, or outside the range where the update is defined."""


class PotentialError(ValueError):
    """A potential that does not keep the ``U(theta, batch) -> (C,)`` contract."""


@dataclass(frozen=True)
class Param:
    """Declares one hyperparameter: its default and the range that makes the update well defined."""

    default: Any
    low: float | None = None  # inclusive unless ``low_open``
    high: float | None = None  # inclusive unless ``high_open``
    low_open: bool = False
    high_open: bool = False
    why: str = ""
    integer: bool = False
    per_chain: bool = True  # may be a (C,) tensor
    optional: bool = False  # None allowed
    pair: bool = False  # a 2-tuple whose entries each obey the range (AdamW's betas)
    flag: bool = False  # True or False, one for every chain (HMC's adapt_mass)


@dataclass(frozen=True)
class Example:
    """A setting a sampler declares for others to run it with (``Sampler.examples``).

    ``"toy"``: small, stable steps on the toy Gaussians of :mod:`tasks.toy` at τ = 1, which the
    contract tests and ``python -m bench.perf`` run; every sampler declares one. ``"light"``: a
    setting picked by hand on the light grokking task (``tasks.LIGHT_TASK``), with its prior
    precision λ, which the asv suite tracks from commit to commit (not a tuned optimum: for that,
    ``python -m bench compare``).
    """

    hparams: Mapping[str, Any]
    prior_precision: float = 0.0
    why: str = ""


class Sampler:
    """Base class: validation of hyperparameters and the shared plumbing of ``step``.

    Subclasses declare ``name``, ``params`` (a mapping of :class:`Param`), and implement
    ``init(theta)`` and ``_step(state, potential, batch, generator)``.
    """

    name: str = ""
    params: Mapping[str, Param] = {}
    #: False for optimizers (no temperature): the registry uses it to describe the sampler.
    samples: bool = True
    #: True for a Metropolis–Hastings sampler: its test is exact only on the full training set, so
    #: the runner never hands it a minibatch, and a divergent transition is a rejection, not a
    #: broken chain.
    metropolis: bool = False
    #: True for the fastest known grokking methods (⊥AdamW, Lion, Muon): registered and tested
    #: like every sampler, but left out of a default comparison (``bench.compare.own_samplers``)
    #: until they join the board as their own group; ``--samplers`` names them. The asv suite
    #: tracks them like every sampler.
    frontier: bool = False
    #: The library of another project's implementation (``"blackjax"``); None for ours.
    peer: str | None = None
    #: One line for listings: the first line of the sampler module's docstring.
    summary: str = ""
    #: This sampler's own numerics version, bumped when its numbers change while every other
    #: sampler's stay: part of its runs' keys (``bench.spec.RunSpec.key``) beside the global
    #: ``bench.keys.NUMERICS_VERSION``, so stored runs of the other samplers stay valid.
    numerics: str | None = None
    #: Example settings by kind (see :class:`Example`): ``"toy"`` at least.
    examples: Mapping[str, Example] = {}
    #: The grid a comparison searches (:class:`samplers.search.SearchSpace`); None for the
    #: samplers of this repository, whose grids live in :mod:`bench.compare.spaces`.
    search_space: Any = None
    #: Its place in the comparison's factorial and the hyperparameters that carry the shared
    #: units (:class:`samplers.search.Dynamics`); None: searched on its grid only.
    dynamics: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "summary" not in cls.__dict__:
            doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
            cls.summary = doc[0] if doc else ""

    def __init__(self, **hparams: Any) -> None:
        unknown = sorted(set(hparams) - set(self.params))
        if unknown:
            raise HyperparameterError(
                f"{self.name}: unknown hyperparameter(s) {unknown}; "
                f"{self.name} takes {sorted(self.params)}"
            )
        self.hparams: dict[str, Any] = {}
        for key, spec in self.params.items():
            value = hparams.get(key, spec.default)
            self.hparams[key] = validate_hparam(self.name, key, value, spec)

    def __getattr__(self, key: str) -> Any:
        # Hyperparameters read as attributes (``sampler.step_size``); only reached when normal
        # lookup fails, so methods and instance attributes are unaffected.
        hparams = self.__dict__.get("hparams", {})
        if key in hparams:
            return hparams[key]
        raise AttributeError(key)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({args})"

    # -- public protocol -------------------------------------------------------------------
    @classmethod
    def grad_evals_per_step(cls, hparams: Mapping[str, Any]) -> int:
        """Gradient evaluations one ``step`` costs with ``hparams`` (missing keys take their
        defaults), known before anything runs, so that an equal budget in gradient evaluations
        can be turned into a number of steps. 1 here; a sampler that spends more overrides it
        (HMC: ``num_leapfrog``). It is the cost of a step in the long run: ``Info.grad_evals``
        reports what each step actually spent (HMC's first step costs one more)."""
        del hparams
        return 1

    @classmethod
    def hparams_from_search(cls, point: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters of a point of the sampler's search space (its axes, without the
        prior precision). The identity here; a sampler that searches a variable of its own
        overrides it (HMC searches η and takes ε = sqrt(η·τ))."""
        return dict(point)

    def init(self, theta: Tensor) -> Any:
        raise NotImplementedError

    def step(
        self, state: Any, potential: Potential, batch: Batch, generator: torch.Generator
    ) -> tuple[Any, Info]:
        check_theta(state.theta)
        self._check_chains(state.theta.shape[0])
        return self._step(state, potential, batch, generator)

    def _step(self, state, potential, batch, generator):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers for subclasses ------------------------------------------------------------
    def _check_chains(self, chains: int) -> None:
        for key, value in self.hparams.items():
            for v in value if isinstance(value, tuple) else (value,):
                self._check_one(key, v, chains)

    def _check_one(self, key: str, value: Any, chains: int) -> None:
        if isinstance(value, Tensor) and value.numel() != chains:
            raise HyperparameterError(
                f"{self.name}: {key} has {value.numel()} values but theta has {chains} chains; "
                "a per-chain hyperparameter needs one value per chain"
            )

    def h(self, key: str, theta: Tensor) -> float | Tensor:
        """Hyperparameter ``key`` ready to broadcast against ``theta`` (scalar or ``(C, 1)``)."""
        return per_chain(self.hparams[key], theta)


def per_chain(value: Hyper, theta: Tensor) -> float | Tensor:
    """A scalar stays a Python number; a ``(C,)`` tensor becomes ``(C, 1)`` on theta's device;
    a pair (AdamW's betas) is converted entry by entry."""
    if isinstance(value, tuple):
        return tuple(per_chain(v, theta) for v in value)
    if isinstance(value, Tensor):
        return value.to(device=theta.device, dtype=theta.dtype).reshape(-1, 1)
    return value


def _short(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"tensor{tuple(value.shape)}"
    return repr(value)


def validate_hparam(sampler: str, key: str, value: Any, spec: Param) -> Any:
    """``value`` of hyperparameter ``key`` checked against its declaration ``spec`` (a number or
    a ``(C,)`` tensor inside the range, a pair entry by entry), or :class:`HyperparameterError`
    saying which and why. A sampler that reads a hyperparameter before construction (HMC's cost
    per step) checks it with this."""
    if spec.pair:
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise HyperparameterError(f"{sampler}: {key} must be a pair (a, b), got {value!r}")
        single = dataclasses.replace(spec, pair=False)
        return tuple(
            validate_hparam(sampler, f"{key}[{i}]", v, single) for i, v in enumerate(value)
        )
    if value is None:
        if spec.optional:
            return None
        raise HyperparameterError(f"{sampler}: {key} must be given ({spec.why})")
    if spec.flag:
        if not isinstance(value, bool):
            raise HyperparameterError(
                f"{sampler}: {key} must be True or False ({spec.why}), got {value!r}"
            )
        return value
    if isinstance(value, Tensor):
        if not spec.per_chain:
            raise HyperparameterError(f"{sampler}: {key} must be a single number, not a tensor")
        if value.dim() != 1:
            raise HyperparameterError(
                f"{sampler}: {key} must be a scalar or a (chains,) tensor, got shape "
                f"{tuple(value.shape)}"
            )
        if value.is_floating_point():
            value = value.detach().clone()
        else:
            value = value.detach().to(torch.get_default_dtype())
        values = value.tolist()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HyperparameterError(
            f"{sampler}: {key} must be a number, got {type(value).__name__} {value!r}"
        )
    else:
        values = [value]
    for v in values:
        if not math.isfinite(v):
            raise HyperparameterError(f"{sampler}: {key} must be finite, got {v}")
        if spec.integer and v != int(v):
            raise HyperparameterError(f"{sampler}: {key} must be an integer, got {v}")
        if spec.low is not None and (v < spec.low or (spec.low_open and v == spec.low)):
            bound = f"> {spec.low}" if spec.low_open else f">= {spec.low}"
            raise HyperparameterError(f"{sampler}: {key} must be {bound} ({spec.why}), got {v}")
        if spec.high is not None and (v > spec.high or (spec.high_open and v == spec.high)):
            bound = f"< {spec.high}" if spec.high_open else f"<= {spec.high}"
            raise HyperparameterError(f"{sampler}: {key} must be {bound} ({spec.why}), got {v}")
    if spec.integer and not isinstance(value, Tensor):
        return int(value)
    return value


def check_theta(theta: Tensor) -> None:
    if not isinstance(theta, Tensor):
        raise TypeError(f"theta must be a torch.Tensor of shape (chains, params), got {theta!r}")
    if theta.dim() != 2:
        raise ValueError(
            f"theta must be 2-D with shape (chains, params), got shape {tuple(theta.shape)}; "
            "for a single chain use theta.unsqueeze(0)"
        )
    if not theta.is_floating_point():
        raise ValueError(f"theta must be a floating-point tensor, got {theta.dtype}")


def value_and_grad(potential: Potential, theta: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
    """``U(theta)`` ``(C,)`` and its gradient ``(C, D)``, detached from any graph.

    Uses the potential's fused ``value_and_grad`` when it has one. The shape of the value is
    checked, because a potential that returns a scalar (the mean over chains, say) would silently
    couple the chains' gradients.
    """
    fused = getattr(potential, "value_and_grad", None)
    blocks = getattr(potential, "blocks", None)
    if fused is not None:
        value, grad = fused(theta, batch)
    elif blocks is not None and len(parts := blocks(theta, batch)) > 1:
        # the potential asks for its gradient in passes over blocks of chains (a model on a CPU,
        # whose activations then stay in cache): chains are independent, so each block's
        # gradient is its rows of the whole one
        pairs = [_autograd_value_and_grad(part, theta[rows], batch) for rows, part in parts]
        value = torch.cat([v for v, _ in pairs])
        grad = torch.cat([g for _, g in pairs])
    else:
        value, grad = _autograd_value_and_grad(potential, theta, batch)
    check_potential_value(value, theta)
    if grad.shape != theta.shape:
        raise PotentialError(
            f"the potential's gradient has shape {tuple(grad.shape)}, expected {tuple(theta.shape)}"
        )
    return value, grad


def _autograd_value_and_grad(
    potential: Potential, theta: Tensor, batch: Batch
) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = theta.detach().requires_grad_(True)
        value = potential(x, batch)
        check_potential_value(value, theta)
        (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def check_potential_value(value: Any, theta: Tensor) -> None:
    """A potential's value must be ``(C,)``: one per chain (else :class:`PotentialError`)."""
    if not isinstance(value, Tensor) or value.shape != (theta.shape[0],):
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise PotentialError(
            f"the potential must return one value per chain, shape ({theta.shape[0]},); got "
            f"{shape}. Return U(theta, batch) per chain, not its sum or mean over chains"
        )


def finite_rows(value: Tensor, proposal: Tensor) -> Tensor:
    """``(C,)`` bool: the chain's energy ``(C,)`` and every entry of its proposal ``(C, D)`` are
    finite.

    A non-finite gradient always reaches the proposal (every update moves theta by a positive
    multiple of it), so the gradient needs no check of its own. A row is tested through its sum,
    one reduction instead of a ``(C, D)`` boolean mask; a finite row whose sum overflows (entries
    near 1e38) is flagged too, which is right: such a chain has diverged.
    """
    return torch.isfinite(value) & torch.isfinite(proposal.sum(dim=1))


def keep_finite(ok: Tensor, *pairs: tuple[Tensor, Tensor]) -> list[Tensor]:
    """For each ``(new, old)`` pair: the rows of ``new`` where ``ok``, else the ``old`` row, so a
    diverged chain stands still at its last finite state without poisoning the others.

    On the CPU, where reading ``ok`` costs nothing, the common case (every chain finite) returns
    the new tensors without copying; on a GPU that read would stall the pipeline once per step,
    so the selection always runs there.
    """
    if ok.device.type == "cpu" and bool(ok.all()):
        return [new for new, _ in pairs]
    mask = ok.unsqueeze(1)
    return [torch.where(mask, new, old) for new, old in pairs]


def gradient_step(theta: Tensor, direction: Tensor, step_size: float | Tensor) -> Tensor:
    """``theta - step_size·direction`` in one fused kernel when the step is a number."""
    if isinstance(step_size, Tensor):
        return theta - step_size * direction
    return torch.add(theta, direction, alpha=-step_size)


def noise(theta: Tensor, generator: torch.Generator) -> Tensor:
    """Standard normal noise shaped like theta from the caller's generator, never the global RNG."""
    return torch.randn(theta.shape, generator=generator, device=theta.device, dtype=theta.dtype)


def ones(theta: Tensor) -> Tensor:
    return torch.ones(theta.shape[0], device=theta.device, dtype=theta.dtype)


SamplerFactory = Callable[..., Sampler]
