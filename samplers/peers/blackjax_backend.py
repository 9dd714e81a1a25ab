"""BlackJAX's SGLD, SGHMC, HMC and NUTS behind our Sampler protocol.

Each wrapper ports the torch potential to JAX once (:func:`samplers.peers.jax_tasks.port`, cached
on the sampler), and at every ``step`` converts ``theta`` to JAX (DLPack, zero-copy on the CPU),
runs one jitted BlackJAX transition for all chains at once through ``jax.vmap`` and converts the
result back. The JAX PRNG key of a step is drawn from the caller's ``torch.Generator`` (one
``torch.randint``) and split into one key per chain, so the same generator seed gives the same
trajectory. Hyperparameters keep our names and meaning and may be per-chain ``(C,)`` tensors.

Mapping onto BlackJAX (U is our potential, tau our temperature, h our step size):

``blackjax.sgld``
    BlackJAX: ``x <- x + eps·∇log p(x) + sqrt(2·eps·T)·xi`` (``sgmcmc.diffusions.
    overdamped_langevin``), with the gradient from its ``sgmcmc.gradients.grad_estimator(
    logprior, loglikelihood, data_size)``. We pass ``log p = -U`` (logprior ``-½λ‖θ‖²``,
    per-example log-likelihood ``-loss_i``, ``data_size = 1``, so the estimator's
    ``logprior + data_size·mean_i loglik_i`` is exactly ``-U`` on the batch), ``eps = h`` and
    ``T = tau``: term by term this is our ``theta - h·∇U + sqrt(2·h·tau)·xi``, the same Markov
    chain (only the random numbers differ), stationary law ``∝ exp(-U/tau)`` up to the same O(h)
    bias. ``tau = 0`` is gradient descent in both.

``blackjax.sghmc``
    BlackJAX (``sgmcmc.sghmc``, Ma et al. 2015 scaling): every call draws a fresh momentum
    ``r ~ N(0, I)`` and then runs ``num_integration_steps`` (K) inner steps
    ``x <- x + eps·r;  r <- (1 - a·eps)·r + eps·∇log p(x_old) + sqrt(2·a·eps·T)·xi``,
    moving the position with the *old* momentum (the explicit ordering that is unstable unless
    ``alpha > h·lambda_max``), all K steps on the same minibatch. With ``v = eps·r`` an inner step
    is ours with ``eps = sqrt(h)``, ``a = alpha/sqrt(h)``, ``log p = -U`` and ``T = tau``. One of
    our steps is one BlackJAX call: ``grad_evals = K``.

    **It does not temper.** The redrawn momentum has the kinetic temperature 1 whatever ``T``
    is (``v ~ N(0, h)`` where the tempered law has ``v ~ N(0, h·tau)``), so at ``tau != 1`` the
    chain's stationary law is not ``∝ exp(-U/tau)``: the refresh heats the chain towards
    temperature 1 by an amount that depends on K and alpha. ``tests/test_peers.py`` predicts
    the stationary covariance of this linear chain on a Gaussian exactly and finds it, far from
    ``tau·Sigma``, while our ``sghmc`` (no redraw) matches ``tau·Sigma``. (Dividing the
    log-density by ``tau`` with ``T = 1`` instead would temper correctly, at the price of a step
    ``eps = sqrt(h·tau)`` that vanishes as ``tau -> 0``; this wrapper reproduces BlackJAX's own
    temperature argument, as a user of the library would call it.)

``blackjax.hmc`` and ``blackjax.nuts``
    ``blackjax.hmc(logdensity, step_size, inverse_mass_matrix, num_integration_steps)`` and
    ``blackjax.nuts(...)`` with ``logdensity = -U/tau``: the Hamiltonian ``U/tau + ½pᵀM⁻¹p`` of
    our ``hmc`` with ``M = I`` and the same leapfrog step, so ``step_size`` means the same
    thing. BlackJAX caches ``log p`` and its gradient in its state, so a transition costs
    ``num_leapfrog`` gradients (ours too, after a first L + 1); NUTS reports the mean number
    of leapfrog steps over chains (rounded up). With ``adapt_steps > 0`` the first ``adapt_steps``
    transitions run BlackJAX's Stan window adaptation (dual averaging of the step size towards
    ``target_accept``, default 0.8 as in BlackJAX, and a diagonal mass matrix from Welford
    variance estimates in doubling windows, ``window_adaptation.build_schedule``), per chain and
    one transition per ``step``, as ``blackjax.window_adaptation(...).run`` does in one scan;
    step size and mass matrix are then frozen. ``tests/test_peers.py`` checks the stepwise
    driver against ``window_adaptation(...).run``.

Beyond BlackJAX, the wrapper keeps our contract: ``Info.potential`` is U at the start of the step
(for SGLD/SGHMC a forward pass in the same jitted function, written as BlackJAX's own log-density
estimator so that XLA shares it with the gradient's: it measured 4% of a step on the embedding
MLP), and a chain whose potential or new position is not finite is flagged ``diverged`` and stays
where it was.

Speed note: every call of a jitted function gets fresh buffers; with glibc's default thresholds
large ones come from ``mmap`` and are page-faulted in on every call, which doubled the per-step
cost on the embedding MLP with 16 chains. ``python -m bench speed`` raises glibc's thresholds
(``bench.speed.keep_freed_memory``); for ``bench run`` set ``GLIBC_TUNABLES`` (see bench/speed.py).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import torch
from blackjax.sgmcmc.gradients import grad_estimator, logdensity_estimator
from torch import Tensor

from samplers.base import Info, Sampler, ones
from samplers.peers import EXAMPLES, PARAMS, NativeLoop
from samplers.peers import grad_evals_per_step as peer_grad_evals_per_step
from samplers.peers.jax_tasks import JaxPotential, chain_vector, port, to_jax, to_torch

# -- shared plumbing ---------------------------------------------------------------------------


def jax_seed(generator: torch.Generator) -> np.uint32:
    """One draw from the caller's generator: the seed of this step's JAX key (a host sync on a
    GPU generator, once per step)."""
    draw = torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device)
    return np.uint32(int(draw))


def chain_keys(seed, chains: int) -> jax.Array:
    return jax.random.split(jax.random.key(seed), chains)


class _BlackJAXSampler(Sampler):
    peer = "blackjax"

    @classmethod
    def grad_evals_per_step(cls, hparams: Mapping[str, Any]) -> int:
        return peer_grad_evals_per_step(cls.name, hparams)

    def _port(self, potential: Any) -> JaxPotential:
        cached = self.__dict__.get("_cached_port")
        if cached is None or cached.source is not potential:
            cached = port(potential)
            self.__dict__["_cached_port"] = cached
        return cached

    def _vector(self, key: str, chains: int) -> jax.Array:
        """A hyperparameter as a (C,) jax array, made once (hyperparameters are fixed)."""
        cache = self.__dict__.setdefault("_vectors", {})
        if (key, chains) not in cache:
            cache[key, chains] = chain_vector(self.hparams[key], chains)
        return cache[key, chains]


def _sgmcmc_grad(jp: JaxPotential, data, lam):
    """BlackJAX's gradient estimator of ``log p = -U`` (module docstring) for one chain."""
    if jp.has_data:
        return grad_estimator(
            lambda theta: -0.5 * lam * theta @ theta,
            lambda theta, example: -jp.example_loss(theta, example[0], example[1]),
            1,
        )
    return lambda theta, minibatch: -jax.grad(jp.value)(theta, data, lam)


def _sgmcmc_potential(jp: JaxPotential, theta, data, lam):
    """U at ``theta`` written as BlackJAX's log-density estimator computes it, so that XLA can
    share the forward pass with the gradient's."""
    if jp.has_data:
        logdensity = logdensity_estimator(
            lambda t: -0.5 * lam * t @ t,
            lambda t, example: -jp.example_loss(t, example[0], example[1]),
            1,
        )
        return -logdensity(theta, data)
    return jp.value(theta, data, lam)


def _contained(new, theta, u):
    ok = jnp.isfinite(u) & jnp.all(jnp.isfinite(new))
    return jnp.where(ok, new, theta), ok


_COMPILED: dict[tuple, Any] = {}


def _compiled(key: tuple, build):
    """Jitted functions shared by every sampler on a potential of the same structure."""
    fn = _COMPILED.get(key)
    if fn is None:
        fn = _COMPILED[key] = build()
    return fn


# -- SGLD --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlackJAXSGLDState:
    theta: Tensor  # (C, D)
    step: int = 0


def sgld_transition(jp: JaxPotential):
    """One chain's BlackJAX SGLD transition: ``(key, theta, data, lam, h, tau) -> theta``."""

    def transition(key, theta, data, lam, h, tau):
        sgld = blackjax.sgld(_sgmcmc_grad(jp, data, lam))
        return sgld.step(key, theta, data, h, tau)

    return transition


class BlackJAXSGLD(_BlackJAXSampler):
    name = "blackjax.sgld"
    params = PARAMS[name]
    examples = EXAMPLES[name]

    def init(self, theta: Tensor) -> BlackJAXSGLDState:
        return BlackJAXSGLDState(theta=theta)

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        chains = theta.shape[0]
        jp = self._port(potential)
        step = _compiled(("sgld", jp.structure), lambda: _build_sgld(jp))
        new, u, ok = step(
            jax_seed(generator),
            to_jax(theta),
            jp.data(batch),
            jp.prior_precision(chains),
            self._vector("step_size", chains),
            self._vector("temperature", chains),
        )
        return BlackJAXSGLDState(theta=to_torch(new, theta), step=state.step + 1), Info(
            grad_evals=1,
            accept_prob=ones(theta),
            diverged=~to_torch(ok, theta).bool(),
            potential=to_torch(u, theta),
        )


def _build_sgld(jp: JaxPotential):
    transition = sgld_transition(jp)

    def one_chain(key, theta, data, lam, h, tau):
        u = _sgmcmc_potential(jp, theta, data, lam)
        new = transition(key, theta, data, lam, h, tau)
        new, ok = _contained(new, theta, u)
        return new, u, ok

    batched = jax.vmap(one_chain, in_axes=(0, 0, None, 0, 0, 0))

    @jax.jit
    def step(seed, theta, data, lam, h, tau):
        return batched(chain_keys(seed, theta.shape[0]), theta, data, lam, h, tau)

    return step


# -- SGHMC -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlackJAXSGHMCState:
    theta: Tensor  # (C, D); BlackJAX keeps no momentum between calls
    step: int = 0


def sghmc_transition(jp: JaxPotential, num_integration_steps: int):
    """One chain's BlackJAX SGHMC call in our parameters (module docstring):
    ``(key, theta, data, lam, h, friction, tau) -> theta``."""

    def transition(key, theta, data, lam, h, friction, tau):
        eps = jnp.sqrt(h)
        sghmc = blackjax.sghmc(
            _sgmcmc_grad(jp, data, lam), num_integration_steps, alpha=friction / eps
        )
        return sghmc.step(key, theta, data, eps, tau)

    return transition


class BlackJAXSGHMC(_BlackJAXSampler):
    name = "blackjax.sghmc"
    params = PARAMS[name]
    examples = EXAMPLES[name]

    def init(self, theta: Tensor) -> BlackJAXSGHMCState:
        return BlackJAXSGHMCState(theta=theta)

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        chains = theta.shape[0]
        jp = self._port(potential)
        k = self.num_integration_steps
        step = _compiled(("sghmc", jp.structure, k), lambda: _build_sghmc(jp, k))
        new, u, ok = step(
            jax_seed(generator),
            to_jax(theta),
            jp.data(batch),
            jp.prior_precision(chains),
            self._vector("step_size", chains),
            self._vector("friction", chains),
            self._vector("temperature", chains),
        )
        return BlackJAXSGHMCState(theta=to_torch(new, theta), step=state.step + 1), Info(
            grad_evals=k,
            accept_prob=ones(theta),
            diverged=~to_torch(ok, theta).bool(),
            potential=to_torch(u, theta),
        )


def _build_sghmc(jp: JaxPotential, num_integration_steps: int):
    transition = sghmc_transition(jp, num_integration_steps)

    def one_chain(key, theta, data, lam, h, friction, tau):
        u = _sgmcmc_potential(jp, theta, data, lam)
        new = transition(key, theta, data, lam, h, friction, tau)
        new, ok = _contained(new, theta, u)
        return new, u, ok

    batched = jax.vmap(one_chain, in_axes=(0, 0, None, 0, 0, 0, 0))

    @jax.jit
    def step(seed, theta, data, lam, h, friction, tau):
        return batched(chain_keys(seed, theta.shape[0]), theta, data, lam, h, friction, tau)

    return step


# -- HMC and NUTS with the Stan window adaptation ----------------------------------------------


@dataclass(frozen=True)
class BlackJAXHMCState:
    theta: Tensor  # (C, D)
    step_size: Tensor  # (C,) the step BlackJAX uses next (adapted during warm-up)
    step: int = 0
    inverse_mass_matrix: Any = None  # (C, D) jax array; None: identity
    kernel_state: Any = None  # vmapped blackjax HMCState (position, logdensity, grad)
    adaptation: Any = None  # vmapped window-adaptation state during warm-up
    source: tuple | None = None  # (theta, potential, batch) that kernel_state was computed for


def window_adaptation_fns(target_accept: float):
    """``(init, update, final)`` of BlackJAX's Stan window adaptation, for one chain.

    ``window_adaptation.base`` is the stepwise form of ``blackjax.window_adaptation`` (same
    schedule, dual averaging and diagonal Welford estimator); BlackJAX 1.7 marks it deprecated
    in favour of the one-scan ``run``, which cannot advance one transition per ``step``.
    """
    from blackjax.adaptation import window_adaptation as wa

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "window_adaptation.base", DeprecationWarning)
        return wa.base(True, target_accept)


class _BlackJAXHMCFamily(_BlackJAXSampler):
    metropolis = True
    algorithm = "hmc"

    def _statics(self) -> tuple:
        raise NotImplementedError

    def init(self, theta: Tensor) -> BlackJAXHMCState:
        step = torch.as_tensor(self.step_size, dtype=theta.dtype).to(theta.device)
        return BlackJAXHMCState(theta=theta, step_size=step.expand(theta.shape[0]).clone())

    def _step(self, state, potential, batch, generator):
        theta = state.theta
        chains = theta.shape[0]
        jp = self._port(potential)
        statics = self._statics()
        fns = _compiled(
            (self.algorithm, jp.structure, statics, self.target_accept),
            lambda: build_hmc_family(jp, self.algorithm, statics, self.target_accept),
        )
        data, lam = jp.data(batch), jp.prior_precision(chains)
        tau = self._vector("temperature", chains)
        grad_evals = 0

        kernel_state = state.kernel_state
        if state.source is None or not (
            state.source[0] is theta and state.source[1] is potential and state.source[2] is batch
        ):  # a new potential or batch, or a theta moved from outside: recompute the cache
            kernel_state = fns["init"](to_jax(theta), data, lam, tau)
            grad_evals += 1
        step_size = to_jax(state.step_size)
        imm = state.inverse_mass_matrix
        if imm is None:
            imm = jnp.ones((chains, jp.num_params), jnp.float32)

        seed = jax_seed(generator)
        adaptation = None
        if state.step < self.adapt_steps:
            adaptation = state.adaptation
            if adaptation is None:
                adaptation = fns["adapt_init"](kernel_state.position, step_size)
            stage = _schedule(self.adapt_steps)[state.step]
            kernel_state, info, adaptation = fns["adapt_step"](
                seed, kernel_state, adaptation, stage, data, lam, tau
            )
            if state.step + 1 == self.adapt_steps:
                step_size, imm = fns["adapt_final"](adaptation)
                adaptation = None
            else:
                step_size, imm = adaptation.step_size, adaptation.inverse_mass_matrix
        else:
            kernel_state, info = fns["step"](seed, kernel_state, step_size, imm, data, lam, tau)

        u0 = info["u0"]
        new_theta = to_torch(kernel_state.position, theta)
        steps = self._grad_evals(info)
        new = BlackJAXHMCState(
            theta=new_theta,
            step_size=to_torch(step_size, state.step_size),
            step=state.step + 1,
            inverse_mass_matrix=imm,
            kernel_state=kernel_state,
            adaptation=adaptation,
            source=(new_theta, potential, batch),
        )
        return new, Info(
            grad_evals=grad_evals + steps,
            accept_prob=to_torch(info["accept"], theta),
            diverged=to_torch(info["diverged"], theta).bool(),
            potential=to_torch(u0, theta),
        )

    def _grad_evals(self, info) -> int:
        raise NotImplementedError


class BlackJAXHMC(_BlackJAXHMCFamily):
    name = "blackjax.hmc"
    params = PARAMS[name]
    examples = EXAMPLES[name]
    algorithm = "hmc"

    def _statics(self) -> tuple:
        return (self.num_leapfrog,)

    def _grad_evals(self, info) -> int:
        return self.num_leapfrog


class BlackJAXNUTS(_BlackJAXHMCFamily):
    name = "blackjax.nuts"
    params = PARAMS[name]
    examples = EXAMPLES[name]
    algorithm = "nuts"

    def _statics(self) -> tuple:
        return (self.max_num_doublings,)

    def _grad_evals(self, info) -> int:
        return max(1, math.ceil(float(jnp.mean(info["num_steps"]))))


_SCHEDULES: dict[int, np.ndarray] = {}


def _schedule(num_steps: int) -> np.ndarray:
    if num_steps not in _SCHEDULES:
        from blackjax.adaptation.window_adaptation import build_schedule

        _SCHEDULES[num_steps] = np.asarray(build_schedule(num_steps))
    return _SCHEDULES[num_steps]


def hmc_kernel(algorithm: str, statics: tuple):
    """BlackJAX's kernel ``(key, state, logdensity_fn, step_size, imm) -> (state, info)``."""
    if algorithm == "hmc":
        kernel = blackjax.hmc.build_kernel()
        (num_integration_steps,) = statics
        return lambda key, s, fn, eps, imm: kernel(key, s, fn, eps, imm, num_integration_steps)
    kernel = blackjax.nuts.build_kernel()
    (max_num_doublings,) = statics
    return lambda key, s, fn, eps, imm: kernel(key, s, fn, eps, imm, max_num_doublings)


def build_hmc_family(jp: JaxPotential, algorithm: str, statics: tuple, target_accept: float):
    kernel = hmc_kernel(algorithm, statics)
    adapt_init, adapt_update, adapt_final = window_adaptation_fns(target_accept)

    def logdensity(data, lam, tau):
        return lambda theta: -jp.value(theta, data, lam) / tau

    def init(theta, data, lam, tau):
        return blackjax.hmc.init(theta, logdensity(data, lam, tau))

    def transition(key, state, eps, imm, data, lam, tau):
        new, info = kernel(key, state, logdensity(data, lam, tau), eps, imm)
        ok = jnp.isfinite(new.logdensity) & jnp.all(jnp.isfinite(new.position))
        new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
        num_steps = getattr(info, "num_integration_steps", 0)
        out = {
            "u0": -state.logdensity * tau,
            # NUTS averages min(1, ·) over the tree in float32: it can round to 1 + ulp
            "accept": jnp.clip(info.acceptance_rate, 0.0, 1.0),
            "diverged": info.is_divergent | ~jnp.isfinite(state.logdensity),
            "num_steps": jnp.asarray(num_steps),
        }
        return new, out

    def adapt_transition(key, state, adaptation, stage, data, lam, tau):
        new, out = transition(
            key, state, adaptation.step_size, adaptation.inverse_mass_matrix, data, lam, tau
        )
        adaptation = adapt_update(adaptation, stage, new.position, out["accept"])
        return new, out, adaptation

    vinit = jax.vmap(init, in_axes=(0, None, 0, 0))
    vstep = jax.vmap(transition, in_axes=(0, 0, 0, 0, None, 0, 0))
    vadapt = jax.vmap(adapt_transition, in_axes=(0, 0, 0, None, None, 0, 0))

    @jax.jit
    def step(seed, state, eps, imm, data, lam, tau):
        return vstep(chain_keys(seed, eps.shape[0]), state, eps, imm, data, lam, tau)

    @jax.jit
    def adapt_step(seed, state, adaptation, stage, data, lam, tau):
        keys = chain_keys(seed, tau.shape[0])
        return vadapt(keys, state, adaptation, jnp.asarray(stage), data, lam, tau)

    return {
        "init": jax.jit(vinit),
        "step": step,
        "adapt_init": jax.jit(jax.vmap(adapt_init)),
        "adapt_step": adapt_step,
        "adapt_final": jax.jit(jax.vmap(adapt_final)),
        "init_one": init,
        "transition": transition,
        "adapt_transition": adapt_transition,
        "logdensity": logdensity,
    }


def hmc_family_functions(potential: Any, algorithm: str, statics: tuple, target_accept: float):
    """The per-chain pieces of a BlackJAX HMC/NUTS wrapper (for tests and timing)."""
    jp = port(potential)
    return jp, build_hmc_family(jp, algorithm, statics, target_accept)


# -- BlackJAX as its users run it (``python -m bench speed``'s "blackjax-scan") ------------------


def native_loop(
    peer: Sampler, potential: Any, batch: Any, theta0: Tensor, seed: int, steps: int
) -> NativeLoop:
    """BlackJAX as its users run it, for timing against the wrapper: one jitted ``jax.lax.scan``
    over ``steps`` transitions of the vmapped kernel, no torch <-> JAX conversion, nothing else
    computed (fixed step size, no adaptation, no containment of non-finite chains).

    Returns a :class:`samplers.peers.NativeLoop` compiled for ``steps`` (the scan's length is
    static, so the timed calls must run that many steps)."""
    algorithm = peer.name.split(".", 1)[1]
    jp = port(potential)
    chains = theta0.shape[0]
    data, lam = jp.data(batch), jp.prior_precision(chains)
    h = {k: chain_vector(v, chains) for k, v in peer.hparams.items() if k != "adapt_steps"}
    if algorithm in ("hmc", "nuts"):
        return _native_hmc_family(peer, jp, data, lam, h, to_jax(theta0), seed, steps)
    if algorithm == "sgld":
        transition = jax.vmap(sgld_transition(jp), in_axes=(0, 0, None, 0, 0, 0))
        args = (data, lam, h["step_size"], h["temperature"])
        evals = 1.0
    else:
        k = peer.num_integration_steps
        transition = jax.vmap(sghmc_transition(jp, k), in_axes=(0, 0, None, 0, 0, 0, 0))
        args = (data, lam, h["step_size"], h["friction"], h["temperature"])
        evals = float(k)
    run_scan = _scan(transition)
    box = {"theta": to_jax(theta0)}

    def run(n: int) -> None:
        box["theta"] = run_scan(seed, box["theta"], *args, steps=n)
        jax.block_until_ready(box["theta"])

    run(steps)  # compile for the timed length
    return NativeLoop(run, evals, "")


def _scan(transition):
    """``run(seed, theta, *args, steps)``: ``steps`` transitions in one jitted ``lax.scan``."""

    @partial(jax.jit, static_argnames="steps")
    def run(seed, theta, *args, steps):
        def body(theta, key):
            return transition(jax.random.split(key, theta.shape[0]), theta, *args), None

        theta, _ = jax.lax.scan(body, theta, jax.random.split(jax.random.key(seed), steps))
        return theta

    return run


def _native_hmc_family(peer, jp, data, lam, h, theta, seed, steps):
    algorithm = peer.name.split(".", 1)[1]
    chains = theta.shape[0]
    statics = (peer.num_leapfrog,) if algorithm == "hmc" else (peer.max_num_doublings,)
    fns = build_hmc_family(jp, algorithm, statics, peer.target_accept)
    kernel = hmc_kernel(algorithm, statics)

    def one(key, s, eps, lam_c, tau_c):
        logdensity = fns["logdensity"](data, lam_c, tau_c)
        return kernel(key, s, logdensity, eps, jnp.ones_like(s.position))

    one_per_chain = jax.vmap(one)

    @partial(jax.jit, static_argnames="n")
    def run_mcmc(seed, state, eps, lam, tau, n):
        def body(s, key):
            s, info = one_per_chain(jax.random.split(key, chains), s, eps, lam, tau)
            return s, info.num_integration_steps

        return jax.lax.scan(body, state, jax.random.split(jax.random.key(seed), n))

    box = {"state": fns["init"](theta, data, lam, h["temperature"])}
    counts: list[float] = []

    def run(n: int) -> None:
        state, num = run_mcmc(seed, box["state"], h["step_size"], lam, h["temperature"], n)
        jax.block_until_ready(state)
        box["state"] = state
        counts.append(float(jnp.mean(num)))

    run(steps)  # compile for the timed length
    counts.clear()
    run(steps)
    return NativeLoop(run, sum(counts) / len(counts), "fixed step size")


__all__ = [
    "BlackJAXHMC",
    "BlackJAXNUTS",
    "BlackJAXSGHMC",
    "BlackJAXSGLD",
    "hmc_family_functions",
    "native_loop",
    "sghmc_transition",
    "sgld_transition",
]
