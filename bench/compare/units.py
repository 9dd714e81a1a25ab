"""Shared units: what a step means at the checkpoint, measured there, and every sampler's
hyperparameters written in the same three numbers.

A comparison that searches each sampler's raw hyperparameters on its own grid compares the grids,
not the samplers: at a memorized checkpoint of add_mod113 (‖∇L‖ ≈ 0.01, cos(∇L, θ) ≈ −0.85) the
weights only shrink towards a generalizing solution when weight decay beats the loss gradient, so
a grid that caps λ caps who may grok. Here every row of the factorial searches the same units:

* ``kappa`` (κ): the decay of θ per gradient evaluation, ``κ = η_eff·λ`` where ``η_eff`` is the
  step a unit force moves θ by in one gradient evaluation: ``h`` for a first-order step,
  ``h/(1 − μ)`` for heavy-ball momentum μ (its terminal velocity), ``h·mean(P)`` under a diagonal
  metric P, ``L·ε²/(2τ)`` for HMC (a trajectory of ``L`` leapfrog steps from rest moves θ by
  ``(Lε)²/(2τ)`` times the force: per gradient evaluation ``L·ε²/(2τ)``), and ``lr·wd`` for
  AdamW's decoupled decay. ``λ_c = −⟨∇L, θ⟩/‖θ‖²`` is the decay below which descent still grows
  ‖θ‖ at the checkpoint.
* ``h_rel``: the step as a fraction of its stability limit on the checkpoint's curvature
  (:mod:`bench.curvature`): ``2/λ_max`` for a first-order step, ``2(1 + μ)/λ_max`` for heavy
  ball, with ``λ_max(P^½HP^½)`` under a diagonal metric, and a leapfrog step ``ε < 2·sqrt(τ/λ_max)``
  for HMC on ``U/τ`` with unit mass.
* ``tau_n`` (τ·N): the temperature in posterior units, ``τ = tau_n/N_train``; 1 is the Bayesian
  posterior. The noise's scale at the prior's equilibrium, ``sqrt(D·τ/λ)``, is shown beside
  ‖θ_mem‖ on the page.

The diagonal metric at the checkpoint is the one RMSprop converges to when the gradient stays
what it is there, ``P̂ = 1/(eps + |∇L|)`` (``samplers.metric``'s eps); the samplers adapt their own
during a warm-up and check the frozen step against the stability limit (``samplers.metric``), so
``P̂`` only places the grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bench import curvature
from samplers.metric import PARAMS as METRIC_PARAMS
from samplers.search import Dynamics, round_grid

#: The metric's eps, as the preconditioned samplers use it by default.
METRIC_EPS = float(METRIC_PARAMS["eps"].default)
#: Power-iteration steps and tolerance of the curvature probe (a few seconds a checkpoint).
PROBE_ITERS = 100
PROBE_TOL = 1e-3


@dataclass(frozen=True)
class Scales:
    """The checkpoint's numbers that turn shared units into hyperparameters (medians over the
    tuning checkpoints)."""

    norm: float  # ‖θ_mem‖
    grad_norm: float  # ‖∇L‖ of the training loss
    cosine: float  # cos(∇L, θ): negative when descent grows ‖θ‖
    lambda_c: float  # −⟨∇L, θ⟩/‖θ‖²: the decay that balances the loss gradient along θ
    sharpness: float  # λ_max(∇²L)
    precond_mean: float  # mean(P̂), P̂ = 1/(eps + |∇L|)
    precond_sharpness: float  # λ_max(P̂^½ ∇²L P̂^½)
    n_train: int
    dim: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scales:
        return cls(**data)


def probe(task: Any, thetas: torch.Tensor) -> Scales:
    """:class:`Scales` at the checkpoints ``thetas`` (C, D), the median over them: one gradient
    and two power iterations on Hessian-vector products (identity and P̂) per checkpoint, all
    checkpoints as the chains of one batch."""
    batch = task.batch()
    potential = task.potential(prior_precision=0.0)
    theta = thetas.detach().float()
    x = theta.clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(potential(x, batch).sum(), x)
    norm = theta.norm(dim=1)
    dot = (grad * theta).sum(dim=1)
    precond = 1.0 / (METRIC_EPS + grad.abs())
    kwargs = dict(iters=PROBE_ITERS, tol=PROBE_TOL)
    sharp = curvature.top_eigenvalue(potential, theta, batch, **kwargs)
    sharp_p = curvature.top_eigenvalue(potential, theta, batch, preconditioner=precond, **kwargs)

    def med(values: torch.Tensor) -> float:
        return float(np.median(values.detach().double().cpu().numpy()))

    return Scales(
        norm=med(norm),
        grad_norm=med(grad.norm(dim=1)),
        cosine=med(dot / (norm * grad.norm(dim=1)).clamp_min(1e-30)),
        lambda_c=med(-dot / norm**2),
        sharpness=med(sharp),
        precond_mean=med(precond.mean(dim=1)),
        precond_sharpness=med(sharp_p),
        n_train=int(len(batch[1])),
        dim=int(theta.shape[1]),
    )


def momentum(dynamics: Dynamics, hparams: Mapping[str, Any]) -> float:
    """μ of a momentum form (0 for the others)."""
    return dynamics.mu(hparams) if dynamics.form == "momentum" else 0.0


def step_limit(dynamics: Dynamics, hparams: Mapping[str, Any], scales: Scales) -> float:
    """The stability limit of the step (``h``; HMC: ε) at the checkpoint, for ``hparams``' μ
    and temperature."""
    sharp = scales.precond_sharpness if dynamics.geometry == "diagonal" else scales.sharpness
    if dynamics.form == "hamiltonian":
        tau = float(hparams[dynamics.temperature])
        return 2.0 * math.sqrt(tau / scales.sharpness)
    return float(curvature.stability_limit(sharp, momentum(dynamics, hparams)))


def eta_eff(dynamics: Dynamics, hparams: Mapping[str, Any], scales: Scales) -> float:
    """How far a unit force moves θ per gradient evaluation (see the module docstring)."""
    h = float(hparams[dynamics.step])
    if dynamics.form == "hamiltonian":
        tau = float(hparams[dynamics.temperature])
        return int(hparams["num_leapfrog"]) * h * h / (2.0 * tau)
    metric = scales.precond_mean if dynamics.geometry == "diagonal" else 1.0
    return h * metric / (1.0 - momentum(dynamics, hparams))


def to_hparams(
    dynamics: Dynamics, values: Mapping[str, Any], fixed: Mapping[str, Any], scales: Scales
) -> tuple[dict[str, Any], float]:
    """The sampler's hyperparameters and prior λ for a point in shared units: ``values`` holds
    ``kappa`` and ``h_rel`` (AdamW: ``lr`` and ``kappa``), ``tau_n`` for a noisy sampler, and
    any searched hyperparameter of the sampler itself (HMC's ``num_leapfrog``); ``fixed`` the
    row's fixed hyperparameters (μ, friction, ...)."""
    hparams = {k: v for k, v in values.items() if k not in ("kappa", "h_rel", "tau_n", "lr")}
    hparams.update(fixed)
    kappa = float(values["kappa"])
    if dynamics.decay is not None:  # decoupled decay: κ = lr·wd, no prior
        lr = float(values["lr"])
        hparams[dynamics.step] = round_grid(lr)
        hparams[dynamics.decay] = round_grid(kappa / lr)
        return hparams, 0.0
    if dynamics.temperature is not None:
        hparams[dynamics.temperature] = round_grid(float(values.get("tau_n", 0.0)) / scales.n_train)
    hparams[dynamics.step] = round_grid(
        float(values["h_rel"]) * step_limit(dynamics, hparams, scales)
    )
    return hparams, round_grid(kappa / eta_eff(dynamics, hparams, scales))


def in_units(
    dynamics: Dynamics, hparams: Mapping[str, Any], prior: float, scales: Scales
) -> dict[str, float]:
    """A configuration in shared units (the inverse of :func:`to_hparams`), with the noise
    scale ``sqrt(D·τ/λ)`` of a noisy one: what the page prints beside the raw values."""
    if dynamics.decay is not None:
        lr = float(hparams[dynamics.step])
        return {"kappa": lr * float(hparams[dynamics.decay]), "lr": lr}
    out = {
        "kappa": eta_eff(dynamics, hparams, scales) * float(prior),
        "h_rel": float(hparams[dynamics.step]) / step_limit(dynamics, hparams, scales),
    }
    if dynamics.temperature is not None:
        tau = float(hparams[dynamics.temperature])
        out["tau_n"] = tau * scales.n_train
        out["noise_scale"] = math.sqrt(scales.dim * tau / prior) if prior > 0 else math.inf
    return out


__all__ = [
    "METRIC_EPS",
    "Scales",
    "eta_eff",
    "in_units",
    "momentum",
    "probe",
    "step_limit",
    "to_hparams",
]
