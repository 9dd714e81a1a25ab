"""Pyro's HMC and NUTS behind our Sampler protocol, on the torch potential itself.

``pyro.infer.mcmc.HMC(potential_fn=...)`` and ``NUTS(potential_fn=...)`` sample one flat parameter
vector ``{"theta": (D,)}``; ``potential_fn`` is chain c's ``U(theta)/tau_c`` from our potential
(a per-chain prior precision is sliced to that chain), so Pyro targets ``exp(-U/tau)`` with the
Hamiltonian ``U/tau + ½pᵀM⁻¹p`` of our ``hmc``: ``step_size`` and ``num_leapfrog`` mean the same
thing. Pyro has no vectorised multi-chain kernel (its ``MCMC(num_chains=...)`` forks processes),
so the wrapper keeps one kernel per chain and steps them in turn: C chains cost C times one.

Mapping and deviations:

- ``HMC(step_size=h, num_steps=L)``: Pyro stores the trajectory length ``h·L`` and takes
  ``int(length / step_size)`` leapfrog steps; the length is nudged up by one part in 10¹² so
  that rounding cannot drop a step. When the step size adapts, Pyro keeps the *length* and
  changes the number of steps (our ``hmc`` keeps L).
- ``adapt_steps > 0``: Pyro's warm-up (``kernel.setup(warmup_steps=adapt_steps)``): Stan's
  windowed adaptation of the step size (dual averaging towards ``target_accept``, Pyro's default
  0.8) and of a diagonal mass matrix, after Pyro's own search for a reasonable first step. With
  0 nothing adapts.
- ``grad_evals`` counts the calls Pyro makes to ``potential_fn`` (each is followed by a
  gradient), averaged over chains and rounded up: L per HMC transition, the tree size for NUTS.
  Pyro caches the gradient at the current point, as BlackJAX does.
- Randomness: Pyro draws from torch's global generator. Each chain's transition runs inside
  ``torch.random.fork_rng`` seeded from the caller's generator, so the trajectory is
  deterministic and the global generator is left as it was.
- ``Info.accept_prob`` is recovered from Pyro's running mean of the acceptance probability;
  ``diverged`` is Pyro's divergence record (ΔH > 1000, recorded after warm-up only) or a
  non-finite potential at the start. A chain whose potential is not finite where it stands is
  not handed to Pyro (its NUTS raises on NaN tree weights): it stays, with acceptance 0.
- ``step`` never mutates its input state: the kernels (which hold Pyro's caches and adaptation
  state) are copied before they move, and the copies go into the new state.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from pyro.infer.mcmc import HMC, NUTS
from pyro.ops.integrator import potential_grad
from torch import Tensor

from samplers.base import Info, PotentialError, Sampler, check_theta
from samplers.peers import EXAMPLES, PARAMS, NativeLoop
from samplers.peers import grad_evals_per_step as peer_grad_evals_per_step

_LENGTH_NUDGE = 1.0 + 1e-12


@dataclass(frozen=True)
class PyroState:
    theta: Tensor  # (C, D)
    step: int = 0
    kernels: tuple = ()  # one Pyro kernel per chain (empty before the first step)
    source: tuple | None = None  # (theta, potential, batch) the kernels' caches belong to


class _Counter:
    """Chain c's ``potential_fn`` for Pyro: ``U_c(z["theta"])/tau_c``, counting its calls."""

    def __init__(self, potential: Any, batch: Any, tau: float) -> None:
        self.potential, self.batch, self.tau = potential, batch, tau
        self.calls = 0

    def __call__(self, z: dict[str, Tensor]) -> Tensor:
        self.calls += 1
        theta = z["theta"].unsqueeze(0)
        value = self.potential(theta, self.batch)
        if not isinstance(value, Tensor) or value.shape != (1,):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise PotentialError(
                f"the potential must return one value per chain, shape (1,) for one chain; got "
                f"{shape}. Return U(theta, batch) per chain, not its sum or mean over chains"
            )
        return value[0] / self.tau


def chain_potential(potential: Any, c: int, chains: int) -> Any:
    """Chain c's own potential: a per-chain ``prior_precision`` is sliced to its entry."""
    lam = getattr(potential, "prior_precision", None)
    if (
        isinstance(lam, Tensor)
        and lam.numel() == chains
        and chains > 1
        and dataclasses.is_dataclass(potential)
    ):
        return dataclasses.replace(potential, prior_precision=lam.reshape(-1)[c : c + 1])
    return potential


class _PyroSampler(Sampler):
    peer = "pyro"
    metropolis = True

    @classmethod
    def grad_evals_per_step(cls, hparams: Mapping[str, Any]) -> int:
        return peer_grad_evals_per_step(cls.name, hparams)

    def init(self, theta: Tensor) -> PyroState:
        return PyroState(theta=theta)

    def _kernel(self, potential_fn: _Counter, c: int):
        raise NotImplementedError

    def step(self, state, potential, batch, generator):
        check_theta(state.theta)
        self._check_chains(state.theta.shape[0])
        with torch.enable_grad():
            return self._step(state, potential, batch, generator)

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        chains = theta.shape[0]
        seeds = torch.randint(
            0, 2**62, (chains,), generator=generator, device=generator.device
        ).tolist()
        same_source = state.source is not None and (
            state.source[0] is theta and state.source[1] is potential and state.source[2] is batch
        )
        rows, kernels, accept, diverged, u0, calls = [], [], [], [], [], []
        for c in range(chains):
            tau = _at(self.hparams["temperature"], c)
            fn = _Counter(chain_potential(potential, c, chains), batch, tau)
            z = {"theta": theta[c].detach().clone()}
            with _seeded(seeds[c], theta.device):
                if not state.kernels:
                    kernel = self._kernel(fn, c)
                    kernel.initial_params = z
                    kernel.setup(warmup_steps=self.adapt_steps)
                else:
                    old = state.kernels[c]
                    kernel = copy.deepcopy(old, memo={id(old.potential_fn): fn})
                    kernel.potential_fn = fn
                    if not same_source:  # new potential or batch, or theta moved from outside
                        grads, energy = potential_grad(fn, z)
                        kernel._cache(z, energy, grads)
                energy0 = float(kernel._potential_energy_last)
                before = (len(kernel._divergences), kernel._mean_accept_prob)
                if math.isfinite(energy0):
                    z_new = kernel.sample(z)
                    prob = _last_accept_prob(kernel, before[1])
                else:  # a broken chain stands still (Pyro's NUTS would raise on NaN weights)
                    z_new, prob = z, 0.0
            rows.append(z_new["theta"].detach())
            kernels.append(kernel)
            accept.append(prob)
            diverged.append(len(kernel._divergences) > before[0] or not math.isfinite(energy0))
            u0.append(energy0 * tau)
            calls.append(fn.calls)
            fn.potential = fn.batch = None  # the stored kernel holds no data between steps
        new_theta = torch.stack(rows).to(theta.dtype)
        new = PyroState(
            theta=new_theta,
            step=state.step + 1,
            kernels=tuple(kernels),
            source=(new_theta, potential, batch),
        )
        like = dict(device=theta.device, dtype=theta.dtype)
        return new, Info(
            grad_evals=max(1, math.ceil(sum(calls) / chains)),
            accept_prob=torch.tensor(accept, **like).clamp(0.0, 1.0),
            diverged=torch.tensor(diverged, device=theta.device),
            potential=torch.tensor(u0, **like),
        )


class PyroHMC(_PyroSampler):
    name = "pyro.hmc"
    params = PARAMS[name]
    examples = EXAMPLES[name]

    def _kernel(self, potential_fn, c):
        step_size = _at(self.hparams["step_size"], c)
        adapt = self.adapt_steps > 0
        kernel = HMC(
            potential_fn=potential_fn,
            step_size=step_size,
            num_steps=self.num_leapfrog,
            adapt_step_size=adapt,
            adapt_mass_matrix=adapt,
            target_accept_prob=self.target_accept,
        )
        kernel.trajectory_length = step_size * self.num_leapfrog * _LENGTH_NUDGE
        return kernel


class PyroNUTS(_PyroSampler):
    name = "pyro.nuts"
    params = PARAMS[name]
    examples = EXAMPLES[name]

    def _kernel(self, potential_fn, c):
        adapt = self.adapt_steps > 0
        return NUTS(
            potential_fn=potential_fn,
            step_size=_at(self.hparams["step_size"], c),
            adapt_step_size=adapt,
            adapt_mass_matrix=adapt,
            target_accept_prob=self.target_accept,
            max_tree_depth=self.max_tree_depth,
        )


def _at(value: Any, c: int) -> float:
    return float(value[c]) if isinstance(value, Tensor) else float(value)


def _last_accept_prob(kernel, mean_before: float) -> float:
    """The acceptance probability of the transition just made, from Pyro's running mean
    ``m_n = m_{n-1} + (a - m_{n-1})/n`` (n restarts at 1 after warm-up)."""
    t, warmup = kernel._t, kernel._warmup_steps
    n = t - warmup if t > warmup else t
    if n <= 1:
        return kernel._mean_accept_prob
    return mean_before + n * (kernel._mean_accept_prob - mean_before)


class _seeded:
    """Run a block on torch's global generator seeded with ``seed``, then restore it."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.seed, self.device = seed, device

    def __enter__(self):
        devices = [self.device] if self.device.type == "cuda" else []
        self.fork = torch.random.fork_rng(devices=devices)
        self.fork.__enter__()
        torch.default_generator.manual_seed(self.seed)
        if devices:
            torch.cuda.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self.fork.__exit__(*exc)


# -- Pyro as its users run it (``python -m bench speed``'s "pyro-mcmc") --------------------------


def native_loop(
    peer: Sampler, potential: Any, batch: Any, theta0: Tensor, seed: int, steps: int
) -> NativeLoop:
    """Pyro as its users run it, for timing against the wrapper:
    ``MCMC(kernel, num_samples=steps, warmup_steps=0).run()`` for each chain in turn, with the
    wrapper's kernel on chain c's ``U/tau``. Gradient evaluations per chain-step are the calls
    to ``potential_fn`` (less the one that sets the kernel up). ``seed`` is unused: Pyro draws
    from torch's global generator."""
    del seed
    from pyro.infer import MCMC

    chains = theta0.shape[0]
    counts: list[float] = []

    def run(n: int) -> None:
        counts.clear()
        for c in range(chains):
            fn = _Counter(chain_potential(potential, c, chains), batch, peer.temperature)
            mcmc = MCMC(
                peer._kernel(fn, c),
                num_samples=n,
                warmup_steps=0,
                initial_params={"theta": theta0[c].detach().clone()},
                disable_progbar=True,
            )
            with torch.enable_grad():
                mcmc.run()
            counts.append((fn.calls - 1) / n)  # one call sets the kernel up

    run(2)
    return NativeLoop(run, sum(counts) / len(counts), "per chain, sequential")


__all__ = ["PyroHMC", "PyroNUTS", "PyroState", "chain_potential", "native_loop"]
