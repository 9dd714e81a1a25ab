"""Hamiltonian Monte Carlo with a Metropolis correction (Duane et al. 1987; Neal 2011).

With temperature tau, unit mass and step size eps, one transition from theta is::

    p ~ N(0, I);   H(theta, p) = U(theta)/tau + ½‖p‖²
    L leapfrog steps:  p <- p - (eps/2)·∇U/tau;  theta <- theta + eps·p;  p <- p - (eps/2)·∇U/tau
    accept (theta', p') with probability min(1, exp(H(theta, p) - H(theta', p')))

It leaves ``p_tau ∝ exp(-U/tau)`` exactly invariant for the potential it is given, so the runner
hands HMC the full training set: with a minibatch, the Metropolis test is exact for the wrong
target. Because U/tau sharpens as tau falls, a stable step size shrinks like sqrt(tau).

Per step: ``grad_evals = L + 1`` (the gradient at the start is recomputed rather than cached, so
a potential or batch that changes between steps stays correct). A NaN or infinite energy rejects
the proposal; an energy error ΔH > 1000 or a non-finite energy marks the chain diverged for the
step (the proposal is rejected and the chain stays where it was).

Step-size adaptation (optional, ``adapt_steps`` > 0): the dual averaging of Hoffman & Gelman
(2014, Algorithm 5) per chain, towards ``target_accept``, during the first ``adapt_steps``
transitions; afterwards the step size is frozen at the averaged iterate, so the chain is a valid
MCMC from then on. Deviations from Neal: no random jitter of eps or L; unit mass matrix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from samplers.base import Info, Param, Sampler, _validate, noise, value_and_grad

# Dual-averaging constants of Hoffman & Gelman (2014), Sec. 3.2.1.
_GAMMA, _T0, _KAPPA = 0.05, 10.0, 0.75
_DIVERGENCE = 1000.0


@dataclass(frozen=True)
class HMCState:
    theta: Tensor  # (C, D)
    step_size: Tensor  # (C,) the leapfrog step in use (adapted during warm-up)
    log_step_bar: Tensor  # (C,) dual averaging: averaged log step size
    error_bar: Tensor  # (C,) dual averaging: running mean of (target - acceptance)
    step: int = 0


class HMC(Sampler):
    name = "hmc"
    metropolis = True
    params = {
        "step_size": Param(1e-2, low=0.0, low_open=True, why="the leapfrog step must be positive"),
        "num_leapfrog": Param(
            10, low=1, integer=True, per_chain=False, why="at least one leapfrog step"
        ),
        "temperature": Param(
            1.0,
            low=0.0,
            low_open=True,
            why="HMC divides U by the temperature; for tau -> 0 use an optimizer",
        ),
        "adapt_steps": Param(
            0, low=0, integer=True, per_chain=False, why="a number of warm-up transitions"
        ),
        "target_accept": Param(
            0.65,
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
            per_chain=False,
            why="an acceptance probability strictly between 0 and 1",
        ),
    }

    @classmethod
    def grad_evals_per_step(cls, hparams: Mapping[str, Any]) -> int:
        """``num_leapfrog + 1`` (the default L when ``hparams`` has none); L is one number for
        every chain, so a per-chain list or tensor is refused with :class:`HyperparameterError`."""
        spec = cls.params["num_leapfrog"]
        value = hparams.get("num_leapfrog", spec.default)
        return _validate(cls.name, "num_leapfrog", value, spec) + 1

    def init(self, theta: Tensor) -> HMCState:
        eps = self.step_size
        step = torch.as_tensor(eps, dtype=theta.dtype, device=theta.device).expand(theta.shape[0])
        step = step.clone()
        return HMCState(
            theta=theta,
            step_size=step,
            log_step_bar=torch.zeros_like(step),
            error_bar=torch.zeros_like(step),
        )

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        tau = self.h("temperature", theta)
        eps = state.step_size.unsqueeze(1)  # (C, 1)
        num_leapfrog = self.num_leapfrog

        momentum = noise(theta, generator)
        u0, grad = value_and_grad(potential, theta, batch)
        h0 = u0 / _flat(tau) + 0.5 * (momentum * momentum).sum(dim=1)

        x = theta
        p = momentum - 0.5 * eps * grad / tau
        for i in range(num_leapfrog):
            x = x + eps * p
            u1, grad = value_and_grad(potential, x, batch)
            p = p - (eps if i < num_leapfrog - 1 else 0.5 * eps) * grad / tau
        h1 = u1 / _flat(tau) + 0.5 * (p * p).sum(dim=1)

        delta = h1 - h0  # (C,) energy error; NaN or inf means the integrator broke down
        finite = torch.isfinite(delta) & torch.isfinite(x).all(dim=1)
        delta = torch.where(finite, delta, torch.full_like(delta, math.inf))
        accept_prob = torch.exp(torch.clamp(-delta, max=0.0))  # NaN-free: inf -> 0
        uniform = torch.rand(
            theta.shape[0], generator=generator, device=theta.device, dtype=theta.dtype
        )
        accepted = uniform < accept_prob
        diverged = ~finite | (delta > _DIVERGENCE)

        new = HMCState(
            theta=torch.where((accepted & finite).unsqueeze(1), x, theta),
            step_size=state.step_size,
            log_step_bar=state.log_step_bar,
            error_bar=state.error_bar,
            step=state.step + 1,
        )
        if state.step < self.adapt_steps:
            new = self._adapt(new, accept_prob)
        return new, Info(
            grad_evals=num_leapfrog + 1, accept_prob=accept_prob, diverged=diverged, potential=u0
        )

    def _adapt(self, state: HMCState, accept_prob: Tensor) -> HMCState:
        """One dual-averaging update (Hoffman & Gelman 2014, Alg. 5), per chain."""
        m = state.step  # 1-based count of adaptation transitions done
        mu = torch.log(10.0 * _initial_step(self.step_size, state.step_size))
        w = 1.0 / (m + _T0)
        error_bar = (1.0 - w) * state.error_bar + w * (self.target_accept - accept_prob)
        log_step = mu - math.sqrt(m) / _GAMMA * error_bar
        eta = m ** (-_KAPPA)
        log_step_bar = eta * log_step + (1.0 - eta) * state.log_step_bar
        # During warm-up the chain explores with the noisy iterate; at its end the averaged one,
        # which is what Hoffman & Gelman recommend for the sampling phase.
        final = m >= self.adapt_steps
        step_size = torch.exp(log_step_bar if final else log_step)
        return HMCState(
            theta=state.theta,
            step_size=step_size,
            log_step_bar=log_step_bar,
            error_bar=error_bar,
            step=state.step,
        )


def _flat(value):
    """A per-chain ``(C, 1)`` hyperparameter as ``(C,)``; scalars pass through."""
    return value.reshape(-1) if isinstance(value, Tensor) else value


def _initial_step(value, like: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand_as(like)
