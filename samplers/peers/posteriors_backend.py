"""posteriors' SGLD and SGHMC behind our Sampler protocol, on the torch potential itself.

posteriors (PyPI ``posteriors``) is a PyTorch library of stochastic-gradient MCMC:
``posteriors.sgmcmc.sgld.build(log_posterior, lr, beta, temperature)`` and
``posteriors.sgmcmc.sghmc.build(log_posterior, lr, alpha, beta, sigma, temperature, momenta)``
return a transform with ``init(params)`` and ``update(state, batch)``; the gradient comes from
``torch.func.grad_and_value(log_posterior)``. Unlike BlackJAX (a JAX port of the potential) and
Pyro (one kernel per chain), it runs on our potential, in torch, for all chains at once.

**Chains.** posteriors takes one parameter tensor (or tree). We hand it the ``(C, D)`` tensor
with the log posterior ``sum_c -U_c(theta_c)``: chains share no parameters, so the gradient of
the sum with respect to row c is ``-∇U_c``, and both updates act entry by entry, so this is C
independent chains; per-chain hyperparameters enter as ``(C, 1)`` tensors, which posteriors'
arithmetic broadcasts. (``torch.func.vmap`` over chains gives the same numbers, but refuses
posteriors' ``torch.randn_like`` unless told ``randomness="different"``, and costs a transform
per call.) The per-chain values ``U_c`` ride along as the log posterior's auxiliary output, so
``Info.potential`` costs no extra forward pass. posteriors differentiates ``U`` with
``torch.func``; it does not use a potential's fused ``value_and_grad`` (the Gaussian targets
have one, so there the gradients differ from ours by float rounding; on the model tasks both
are autograd's and agree bit for bit).

**Randomness.** posteriors draws its noise with ``torch.randn_like``, from torch's global
generator (and ``sghmc.init`` draws the initial momenta from it). Each ``step`` draws one seed
from the caller's ``torch.Generator``, runs posteriors inside ``torch.random.fork_rng`` with the
global generator of theta's device seeded from it, and leaves the global generator as it was:
the same generator seed gives the same trajectory, and nobody else's random stream moves.

Mapping (U our potential: mean loss + ½λ‖θ‖²; h = ``step_size``; tau = ``temperature``;
alpha = ``friction``; xi ~ N(0, I)):

``posteriors.sgld``
    posteriors: ``θ <- θ + lr·∇log p(θ) + sqrt(T·lr·(2 - T·lr·beta))·xi``, targeting
    ``exp(log p / T)`` (Welling & Teh 2011). We pass ``log p = -U``, ``lr = h``,
    ``T = tau`` and ``beta = 0`` (no gradient-noise correction; ours has none): term by term
    our ``θ - h·∇U + sqrt(2·h·tau)·xi``, the same Markov chain, stationary law
    ``∝ exp(-U/tau)`` up to the same O(h) bias. U is a mean over the data, so a posteriors user
    who writes the per-datum log posterior with ``T = 1/N`` runs exactly our chain at tau =
    1/N, the Bayesian posterior. At ``tau = 0`` it is gradient descent, equal to our ``sgld``
    (and ``sgd`` without momentum) on the model tasks bit for bit
    (``tests/test_posteriors_peer.py``).

``posteriors.sghmc``
    posteriors (Chen, Fox & Guestrin 2014 with a mass ``sigma²``)::

        θ <- θ + lr·sigma⁻²·m
        m <- m + lr·∇log p(θ_old) - lr·sigma⁻²·alpha_p·m + sqrt(T·lr·(2·alpha_p - T·lr·beta))·xi

    We pass ``log p = -U``, ``lr = h``, ``sigma = sqrt(h)``, ``alpha_p = alpha``, ``T = tau``,
    ``beta = 0`` and ``momenta = 0`` at ``init`` (ours starts at rest; posteriors' default
    draws ``N(0, 1)`` from the global generator). Then ``lr·sigma⁻² = 1`` and posteriors'
    momentum *is* our velocity ``v``: ``v <- (1 - alpha)·v - h·∇U + sqrt(2·alpha·h·tau)·xi``,
    the same friction, step and noise as our ``sghmc``, and the stationary momentum law
    ``exp(-v²/(2·h·tau))`` is ours. (The equivalent ``lr = sqrt(h)``, ``alpha_p =
    alpha/sqrt(h)``, ``sigma = 1`` gives ``m = v/sqrt(h)``; the chain is the same.)

    **One difference no mapping removes: the ordering.** posteriors moves the position with the
    *old* momentum and then updates the momentum with the gradient at the old position
    (explicit Euler, as BlackJAX's SGHMC); ours updates the momentum first and moves with the
    new one (symplectic Euler). In positions, posteriors' chain is
    ``θ_{t+1} = θ_t + v_t``, ``v_{t+1} = (1 - alpha)·v_t - h·∇U(θ_t) + noise``, which is ours
    with the gradient one step late: its first step does not move (``v_0 = 0``), and at
    ``tau = 0`` it is not SGD with momentum. On a quadratic with curvature λ the explicit
    ordering is stable only for ``alpha > h·λ`` (ours for ``h·λ < 2·(2 - alpha)``), and its
    O(h) bias differs from ours; ``tests/test_posteriors_peer.py`` checks the recurrence at
    ``tau = 0`` to float rounding and each chain's exact stationary covariance on the Gaussian
    targets (a discrete Lyapunov equation per ordering).

Beyond posteriors, the wrapper keeps our contract: ``step`` never mutates its input (posteriors
runs with ``inplace=False``), and a chain whose potential, new position or new momentum is not
finite is flagged ``diverged`` and stays where it was. One step costs one gradient evaluation.

Install: ``pip install posteriors`` (it depends on torch, tensordict, torchopt and optree, and
leaves an installed torch alone).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from samplers.base import (
    Info,
    PotentialError,
    Sampler,
    finite_rows,
    keep_finite,
    ones,
)
from samplers.peers import EXAMPLES, PARAMS, NativeLoop
from samplers.peers import grad_evals_per_step as peer_grad_evals_per_step

with warnings.catch_warnings():
    # tensordict (>= 0.15) warns, once per state class at import, that posteriors' tensor
    # defaults are shared between instances; only in-place updates could touch them, and the
    # wrapper never runs in place.
    warnings.simplefilter("ignore", FutureWarning)
    from posteriors.sgmcmc import sghmc as _sghmc
    from posteriors.sgmcmc import sgld as _sgld


@contextlib.contextmanager
def global_rng_from(generator: torch.Generator, device: torch.device) -> Iterator[int]:
    """Run the body with torch's global generator of ``device`` seeded from ``generator`` (one
    draw), and restore it afterwards. Yields the seed."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    if device.type != "cuda":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield seed
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.random.fork_rng(devices=[index], device_type="cuda"):
        torch.cuda.default_generators[index].manual_seed(seed)
        yield seed


def log_posterior(potential: Any):
    """``log_posterior(params, batch) -> (sum_c -U_c, U)`` for posteriors: the (C, D) tensor
    as one parameter, the per-chain potentials ``(C,)`` as the auxiliary output."""

    def fn(params: Tensor, batch: Any) -> tuple[Tensor, Tensor]:
        value = potential(params, batch)
        if not isinstance(value, Tensor) or value.shape != (params.shape[0],):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise PotentialError(
                f"the potential must return one value per chain, shape ({params.shape[0]},); "
                f"got {shape}. Return U(theta, batch) per chain, not its sum or mean over chains"
            )
        return -value.sum(), value

    return fn


class _PosteriorsSampler(Sampler):
    peer = "posteriors"

    @classmethod
    def grad_evals_per_step(cls, hparams: Mapping[str, Any]) -> int:
        return peer_grad_evals_per_step(cls.name, hparams)


# -- SGLD --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosteriorsSGLDState:
    theta: Tensor  # (C, D)
    step: int = 0


class PosteriorsSGLD(_PosteriorsSampler):
    name = "posteriors.sgld"
    params = PARAMS[name]
    examples = EXAMPLES[name]

    def init(self, theta: Tensor) -> PosteriorsSGLDState:
        return PosteriorsSGLDState(theta=theta)

    def transform(self, potential: Any, theta: Tensor):
        """posteriors' SGLD transform in our parameters (module docstring)."""
        return _sgld.build(
            log_posterior(potential),
            lr=self.h("step_size", theta),
            beta=0.0,
            temperature=self.h("temperature", theta),
        )

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        transform = self.transform(potential, theta)
        with global_rng_from(generator, theta.device):
            new, u = transform.update(transform.init(theta), batch, inplace=False)
        u = u.detach()
        proposal = new.params
        ok = finite_rows(u, proposal)
        (new_theta,) = keep_finite(ok, (proposal, theta))
        return PosteriorsSGLDState(theta=new_theta, step=state.step + 1), Info(
            grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u
        )


# -- SGHMC -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosteriorsSGHMCState:
    theta: Tensor  # (C, D)
    velocity: Tensor  # (C, D): posteriors' momenta, which equal our velocity under the mapping
    step: int = 0


class PosteriorsSGHMC(_PosteriorsSampler):
    name = "posteriors.sghmc"
    params = PARAMS[name]
    examples = EXAMPLES[name]

    def init(self, theta: Tensor) -> PosteriorsSGHMCState:
        return PosteriorsSGHMCState(theta=theta, velocity=torch.zeros_like(theta))

    def transform(self, potential: Any, theta: Tensor):
        """posteriors' SGHMC transform in our parameters (module docstring)."""
        h = self.h("step_size", theta)
        return _sghmc.build(
            log_posterior(potential),
            lr=h,
            alpha=self.h("friction", theta),
            beta=0.0,
            sigma=h**0.5,
            temperature=self.h("temperature", theta),
            momenta=0.0,
        )

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        transform = self.transform(potential, theta)
        with global_rng_from(generator, theta.device):
            new, u = transform.update(
                _sghmc.SGHMCState(theta, state.velocity), batch, inplace=False
            )
        u = u.detach()
        proposal, velocity = new.params, new.momenta
        ok = finite_rows(u, proposal) & torch.isfinite(velocity.sum(dim=1))
        new_theta, new_velocity = keep_finite(ok, (proposal, theta), (velocity, state.velocity))
        new_state = PosteriorsSGHMCState(new_theta, new_velocity, state.step + 1)
        return new_state, Info(grad_evals=1, accept_prob=ones(theta), diverged=~ok, potential=u)


# -- posteriors as its users run it (``python -m bench speed``'s "posteriors-loop") --------------


def native_loop(
    peer: Sampler, potential: Any, batch: Any, theta0: Tensor, seed: int, steps: int
) -> NativeLoop:
    """posteriors as its users run it, for timing against the wrapper: the transform built once
    (posteriors' own ``build(...)`` with our mapping) and ``transform.update(state, batch)`` in a
    Python loop, drawing from torch's global generator (``seed`` unused), nothing else computed.
    SGHMC starts with zero momenta, as the wrapper does."""
    del seed, steps
    transform = peer.transform(potential, theta0)
    box = {"state": transform.init(theta0.clone())}

    def run(n: int) -> None:
        state = box["state"]
        for _ in range(n):
            state, _ = transform.update(state, batch)
        if state.params.device.type == "cuda":
            torch.cuda.synchronize(state.params.device)  # GPU sync point: the timing ends here
        box["state"] = state

    run(3)
    return NativeLoop(run, 1.0, "global RNG")


__all__ = [
    "PosteriorsSGHMC",
    "PosteriorsSGHMCState",
    "PosteriorsSGLD",
    "PosteriorsSGLDState",
    "global_rng_from",
    "log_posterior",
    "native_loop",
]
