"""Peer samplers: BlackJAX's and Pyro's implementations behind our Sampler protocol.

Researchers ask two questions of our numbers: *are your samplers right?* and *why not just use
BlackJAX or Pyro?* The peers answer both: the well-known implementations run on the same
potentials, the same data and the same initial weights, through the same runner, so their
stationary moments (``tests/test_peers.py``) and their speed (``python -m bench speed``) are
compared with ours in one run.

Registered names (the prefix names the library)::

    blackjax.sgld   blackjax.sghmc   blackjax.hmc   blackjax.nuts   pyro.hmc   pyro.nuts
    posteriors.sgld   posteriors.sghmc

Hyperparameters keep *our* names and meanings (``step_size`` is our h, ``temperature`` our tau);
each wrapper maps them onto the library's own convention and says how in its docstring. The
BlackJAX wrappers run a jitted, ``jax.vmap``-ed kernel on a JAX port of the potential
(:mod:`samplers.peers.jax_tasks`); the Pyro wrappers call ``HMC``/``NUTS`` with ``potential_fn`` on
the torch potential itself, one kernel per chain; the posteriors wrappers
(:mod:`samplers.peers.posteriors_backend`) call its torch-native SGLD and SGHMC on the torch
potential, all chains at once.

Each backend also runs its library *as its users run it* (:func:`native_loop`: BlackJAX's jitted
``lax.scan``, Pyro's ``MCMC.run``, posteriors' ``transform.update`` loop), which
``python -m bench speed`` times beside the wrappers; the loops live with the wrappers, so that
the speed command only measures.

Importing :mod:`samplers` does not import jax, blackjax, pyro or posteriors (their imports take
seconds): the registry holds a :class:`LazyPeer` per name, which carries the declarations a
caller needs without the library (``params``, ``samples``, ``metropolis``, ``peer``, ``summary``)
and imports the backend module on the first ``samplers.make``. A peer class, and its
``LazyPeer``, have a ``peer`` attribute naming the library (``"blackjax"``, ``"pyro"`` or
``"posteriors"``); our own samplers have none, so ``getattr(samplers.lookup(name), "peer", None)``
tells a peer row from ours.

Install: ``pip install jax blackjax pyro-ppl posteriors`` (CPU jax by default). For a GPU,
install the CUDA build of jax (``pip install -U "jax[cuda12]"``) beside the CUDA build of torch;
tensors cross between the two through DLPack on the same device.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from samplers.base import Example, Param, Sampler

BLACKJAX_MODULE = "samplers.peers.blackjax_backend"
PYRO_MODULE = "samplers.peers.pyro_backend"
POSTERIORS_MODULE = "samplers.peers.posteriors_backend"

_POSITIVE = dict(low=0.0, low_open=True)
_TEMPERATURE = Param(
    1.0, low=0.0, low_open=True, why="the peer divides U by the temperature; tau > 0"
)
_ADAPT = Param(
    0,
    low=0,
    integer=True,
    per_chain=False,
    why="a number of warm-up transitions (0: no adaptation)",
)
_TARGET_ACCEPT = Param(
    0.8,
    low=0.0,
    high=1.0,
    low_open=True,
    high_open=True,
    per_chain=False,
    why="an acceptance probability strictly between 0 and 1",
)

#: SGLD's and SGHMC's declarations, shared by the BlackJAX and posteriors peers.
_SGLD = {
    "step_size": Param(1e-3, **_POSITIVE, why="the step size must be positive"),
    "temperature": Param(
        1e-5, low=0.0, why="a temperature is non-negative (0 is gradient descent)"
    ),
}
_FRICTION = Param(
    0.1, low=0.0, high=1.0, low_open=True, why="friction alpha in (0, 1], as in our sghmc"
)

#: Hyperparameter declarations of every peer: importable without jax or pyro.
PARAMS: dict[str, dict[str, Param]] = {
    "blackjax.sgld": dict(_SGLD),
    "blackjax.sghmc": {
        "step_size": Param(1e-3, **_POSITIVE, why="the learning rate must be positive"),
        "friction": _FRICTION,
        "temperature": Param(
            1e-5, low=0.0, why="a temperature is non-negative (0 is SGD with momentum)"
        ),
        "num_integration_steps": Param(
            10,
            low=1,
            integer=True,
            per_chain=False,
            why="BlackJAX's inner steps per transition (momentum is redrawn between them)",
        ),
    },
    "blackjax.hmc": {
        "step_size": Param(1e-2, **_POSITIVE, why="the leapfrog step must be positive"),
        "num_leapfrog": Param(
            10, low=1, integer=True, per_chain=False, why="at least one leapfrog step"
        ),
        "temperature": _TEMPERATURE,
        "adapt_steps": _ADAPT,
        "target_accept": _TARGET_ACCEPT,
    },
    "blackjax.nuts": {
        "step_size": Param(1e-2, **_POSITIVE, why="the leapfrog step must be positive"),
        "temperature": _TEMPERATURE,
        "adapt_steps": _ADAPT,
        "target_accept": _TARGET_ACCEPT,
        "max_num_doublings": Param(
            10, low=1, integer=True, per_chain=False, why="at least one trajectory doubling"
        ),
    },
    "pyro.hmc": {
        "step_size": Param(1e-2, **_POSITIVE, why="the leapfrog step must be positive"),
        "num_leapfrog": Param(
            10, low=1, integer=True, per_chain=False, why="at least one leapfrog step"
        ),
        "temperature": _TEMPERATURE,
        "adapt_steps": _ADAPT,
        "target_accept": _TARGET_ACCEPT,
    },
    "pyro.nuts": {
        "step_size": Param(1e-2, **_POSITIVE, why="the leapfrog step must be positive"),
        "temperature": _TEMPERATURE,
        "adapt_steps": _ADAPT,
        "target_accept": _TARGET_ACCEPT,
        "max_tree_depth": Param(
            10, low=1, integer=True, per_chain=False, why="at least one tree doubling"
        ),
    },
    "posteriors.sgld": dict(_SGLD),
    "posteriors.sghmc": {
        "step_size": Param(1e-3, **_POSITIVE, why="the learning rate must be positive"),
        "friction": _FRICTION,
        "temperature": Param(
            1e-5, low=0.0, why="a temperature is non-negative (0 is gradient descent)"
        ),
    },
}

#: Example settings of every peer (``Sampler.examples``): small, stable steps on the
#: ill-conditioned toy Gaussian at τ = 1.
EXAMPLES: dict[str, dict[str, Example]] = {
    name: {"toy": Example(hparams)}
    for name, hparams in {
        "blackjax.sgld": dict(step_size=1e-3, temperature=1.0),
        "blackjax.sghmc": dict(
            step_size=1e-3, friction=0.2, temperature=1.0, num_integration_steps=3
        ),
        "blackjax.hmc": dict(step_size=0.05, num_leapfrog=5),
        "blackjax.nuts": dict(step_size=0.05, max_num_doublings=4),
        "pyro.hmc": dict(step_size=0.05, num_leapfrog=5),
        "pyro.nuts": dict(step_size=0.05, max_tree_depth=4),
        "posteriors.sgld": dict(step_size=1e-3, temperature=1.0),
        "posteriors.sghmc": dict(step_size=1e-3, friction=0.2, temperature=1.0),
    }.items()
}


#: Peers whose cost per step is fixed in advance: gradient evaluations per step.
FIXED_GRAD_EVALS = {"blackjax.sgld": 1, "posteriors.sgld": 1, "posteriors.sghmc": 1}


def grad_evals_per_step(name: str, hparams: Mapping[str, Any]) -> int:
    """Gradient evaluations one step of peer ``name`` costs (``Sampler.grad_evals_per_step``).

    ``blackjax.sgld``, ``posteriors.sgld`` and ``posteriors.sghmc`` have a fixed cost (1).
    BlackJAX's HMC caches a gradient, its SGHMC takes ``num_integration_steps`` inner steps, and
    NUTS and Pyro's kernels spend a number that depends on the trajectory (and more during
    adaptation): for those a ``ValueError`` says so.
    """
    del hparams
    if name in FIXED_GRAD_EVALS:
        return FIXED_GRAD_EVALS[name]
    raise ValueError(
        f"{name} spends a varying number of gradient evaluations per step, which the "
        "equal-budget protocol cannot fix in advance; compare it with `python -m bench run` "
        "or `python -m bench speed` (blackjax.sgld takes part in compare)"
    )


class PeerUnavailableError(ImportError):
    """A peer whose library (jax, blackjax, pyro-ppl or posteriors) is not installed."""


@dataclass(frozen=True)
class LazyPeer:
    """A registry entry that imports its backend only when a sampler is made."""

    name: str
    peer: str  # the library: "blackjax", "pyro" or "posteriors"
    module: str
    cls: str
    summary: str
    samples: bool = True
    metropolis: bool = False
    params: Mapping[str, Param] = field(default_factory=dict)
    examples: Mapping[str, Example] = field(default_factory=dict)
    search_space: Any = None  # a peer searches the space of its algorithm (bench.compare.spaces)

    def __call__(self, **hparams: Any) -> Sampler:
        return self.load()(**hparams)

    def grad_evals_per_step(self, hparams: Mapping[str, Any]) -> int:
        """The peer class's ``grad_evals_per_step``, without importing its library."""
        return grad_evals_per_step(self.name, hparams)

    def load(self) -> type[Sampler]:
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as err:
            package = {"blackjax": "jax blackjax", "pyro": "pyro-ppl"}.get(self.peer, self.peer)
            raise PeerUnavailableError(
                f"{self.name} needs {err.name!r}, which is not installed: pip install {package}"
            ) from err
        return getattr(module, self.cls)


_MODULES = {"blackjax": BLACKJAX_MODULE, "pyro": PYRO_MODULE, "posteriors": POSTERIORS_MODULE}


def _lazy(name: str, cls: str, summary: str, metropolis: bool = False) -> LazyPeer:
    """The registry entry of peer ``name`` (``library.algorithm``): class ``cls`` of the
    library's backend module, with the declarations of :data:`PARAMS` and :data:`EXAMPLES`."""
    library = name.split(".", 1)[0]
    return LazyPeer(
        name,
        library,
        _MODULES[library],
        cls,
        summary,
        metropolis=metropolis,
        params=PARAMS[name],
        examples=EXAMPLES[name],
    )


PEERS: tuple[LazyPeer, ...] = (
    _lazy(
        "blackjax.sgld",
        "BlackJAXSGLD",
        "BlackJAX's SGLD (jitted, vmapped over chains) on the JAX port of the potential.",
    ),
    _lazy(
        "blackjax.sghmc",
        "BlackJAXSGHMC",
        "BlackJAX's SGHMC: momentum redrawn from N(0, I) each step, so it does not temper.",
    ),
    _lazy(
        "blackjax.hmc",
        "BlackJAXHMC",
        "BlackJAX's HMC with its Stan window adaptation, on the JAX port of the potential.",
        metropolis=True,
    ),
    _lazy(
        "blackjax.nuts",
        "BlackJAXNUTS",
        "BlackJAX's NUTS with its Stan window adaptation, on the JAX port of the potential.",
        metropolis=True,
    ),
    _lazy(
        "pyro.hmc",
        "PyroHMC",
        "Pyro's HMC through potential_fn on the torch potential, one kernel per chain.",
        metropolis=True,
    ),
    _lazy(
        "pyro.nuts",
        "PyroNUTS",
        "Pyro's NUTS through potential_fn on the torch potential, one kernel per chain.",
        metropolis=True,
    ),
    _lazy(
        "posteriors.sgld",
        "PosteriorsSGLD",
        "posteriors' SGLD (torch.func) on the torch potential, all chains as one tensor.",
    ),
    _lazy(
        "posteriors.sghmc",
        "PosteriorsSGHMC",
        "posteriors' SGHMC: moves with the old momentum (explicit), so not equal to ours.",
    ),
)


@dataclass(frozen=True)
class NativeLoop:
    """A library run as its users run it, for timing (``python -m bench speed``): ``run(n)``
    advances every chain ``n`` steps and waits for the result; compiled and warmed up."""

    run: Callable[[int], None]
    grad_evals_per_step: float  # per chain
    note: str = ""


#: The native loop of each library, by the name ``python -m bench speed`` prints.
NATIVE_LOOPS = {"blackjax": "blackjax-scan", "pyro": "pyro-mcmc", "posteriors": "posteriors-loop"}


def native_loop(
    library: str,
    algorithm: str,
    hparams: Mapping[str, Any],
    potential: Any,
    batch: Any,
    theta0: Any,
    *,
    seed: int = 0,
    steps: int = 100,
) -> NativeLoop | None:
    """``library``'s own loop of ``algorithm`` (``"blackjax"``, ``"sgld"``) on ``theta0``
    ``(C, D)``, with the hyperparameters of ``hparams`` the peer takes; None where the library
    has no such peer. BlackJAX's scan is compiled for ``steps`` steps per call."""
    name = f"{library}.{algorithm}"
    entry = next((e for e in PEERS if e.name == name), None)
    if entry is None:
        return None
    peer = entry(**{k: v for k, v in hparams.items() if k in entry.params})
    return importlib.import_module(entry.module).native_loop(
        peer, potential, batch, theta0, seed, steps
    )


def register_peers(register: Callable[[str, Any], None]) -> None:
    for entry in PEERS:
        register(entry.name, entry)


def is_peer(factory: Any) -> bool:
    """True for a peer's registry entry or sampler (anything with a ``peer`` attribute)."""
    return bool(getattr(factory, "peer", None))


__all__ = [
    "EXAMPLES",
    "FIXED_GRAD_EVALS",
    "NATIVE_LOOPS",
    "PARAMS",
    "PEERS",
    "LazyPeer",
    "NativeLoop",
    "PeerUnavailableError",
    "grad_evals_per_step",
    "is_peer",
    "native_loop",
    "register_peers",
]
