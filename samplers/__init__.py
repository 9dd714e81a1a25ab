"""Samplers and optimizers behind one interface, on a flat multi-chain state ``(chains, params)``.

    >>> import samplers
    >>> samplers.names("*adam*")
    ['adamw', 'ortho_adamw']
    >>> s = samplers.make("sgld", step_size=1e-3, temperature=1e-5)
    >>> samplers.example("sgld").hparams        # the setting the contract tests run
    {'step_size': 0.001, 'temperature': 1.0}

Each sampler declares, on its class, what the rest of the suite needs of it: ``params`` (names,
defaults, ranges), ``examples`` (settings to run it with, :class:`Example`), its cost per step,
and how a point of its search space becomes hyperparameters (``hparams_from_search``; a
plugin's grid is on its class as ``search_space``), and this repository's samplers their
``dynamics`` (:class:`~samplers.search.Dynamics`), which places them in the comparison's shared
units (``bench/compare/rows.py``). A package outside this repository adds samplers through the
entry-point group ``grokbench.samplers`` (:mod:`samplers.registry`). See :mod:`samplers.base`
for the protocol and one module per algorithm for its update equation.
"""

from samplers.adamw import AdamW, AdamWState
from samplers.base import (
    Example,
    HyperparameterError,
    Info,
    Param,
    PotentialError,
    Sampler,
    value_and_grad,
)
from samplers.hmc import HMC, HMCState
from samplers.layout import LayoutError, with_layout
from samplers.lion import Lion, LionState
from samplers.muon import Muon, MuonState
from samplers.ortho_adamw import OrthoAdamW
from samplers.preconditioned_sghmc import PreconditionedSGHMC, PreconditionedSGHMCState
from samplers.registry import (
    ENTRY_POINT_GROUP,
    PluginError,
    UnknownSamplerError,
    example,
    lookup,
    make,
    names,
    register,
    unregister,
)
from samplers.riemannian_langevin import RiemannianLangevin, RiemannianLangevinState
from samplers.search import POSTERIOR, Axis, SearchSpace
from samplers.sgd import SGD, SGDState
from samplers.sghmc import SGHMC, SGHMCState
from samplers.sgld import SGLD, SGLDState

# the frontier optimizers (``Sampler.frontier``) are left out of a default comparison
for _cls in (SGD, AdamW, SGLD, SGHMC, PreconditionedSGHMC, HMC, RiemannianLangevin):
    register(_cls.name, _cls)
for _cls in (OrthoAdamW, Lion, Muon):
    register(_cls.name, _cls)
del _cls

# BlackJAX's and Pyro's implementations under "blackjax.*" and "pyro.*"; registered lazily, so
# importing samplers imports neither jax nor pyro (see samplers.peers).
from samplers.peers import register_peers  # noqa: E402

register_peers(register)

__all__ = [
    "ENTRY_POINT_GROUP",
    "POSTERIOR",
    "AdamW",
    "AdamWState",
    "Axis",
    "Example",
    "HMC",
    "HMCState",
    "HyperparameterError",
    "Info",
    "LayoutError",
    "Lion",
    "LionState",
    "Muon",
    "MuonState",
    "OrthoAdamW",
    "Param",
    "PluginError",
    "PotentialError",
    "PreconditionedSGHMC",
    "PreconditionedSGHMCState",
    "RiemannianLangevin",
    "RiemannianLangevinState",
    "SGD",
    "SGDState",
    "SGHMC",
    "SGHMCState",
    "SGLD",
    "SGLDState",
    "Sampler",
    "SearchSpace",
    "UnknownSamplerError",
    "example",
    "lookup",
    "make",
    "names",
    "register",
    "unregister",
    "value_and_grad",
    "with_layout",
]
