"""Samplers and optimizers behind one interface, on a flat multi-chain state ``(chains, params)``.

    >>> import samplers
    >>> samplers.names()
    ['adamw', 'hmc', 'riemannian_langevin', 'sgd', 'sghmc', 'sgld']
    >>> s = samplers.make("sgld", step_size=1e-3, temperature=1e-5)

See :mod:`samplers.base` for the protocol and one module per algorithm for its update equation.
"""

from samplers.adamw import AdamW, AdamWState
from samplers.base import (
    HyperparameterError,
    Info,
    Param,
    PotentialError,
    Sampler,
    value_and_grad,
)
from samplers.hmc import HMC, HMCState
from samplers.registry import UnknownSamplerError, lookup, make, names, register
from samplers.riemannian_langevin import RiemannianLangevin, RiemannianLangevinState
from samplers.sgd import SGD, SGDState
from samplers.sghmc import SGHMC, SGHMCState
from samplers.sgld import SGLD, SGLDState

for _cls in (SGD, AdamW, SGLD, SGHMC, HMC, RiemannianLangevin):
    register(_cls.name, _cls)
del _cls

# BlackJAX's and Pyro's implementations under "blackjax.*" and "pyro.*"; registered lazily, so
# importing samplers imports neither jax nor pyro (see samplers.peers).
from samplers.peers import register_peers  # noqa: E402

register_peers(register)

__all__ = [
    "AdamW",
    "AdamWState",
    "HMC",
    "HMCState",
    "HyperparameterError",
    "Info",
    "Param",
    "PotentialError",
    "RiemannianLangevin",
    "RiemannianLangevinState",
    "SGD",
    "SGDState",
    "SGHMC",
    "SGHMCState",
    "SGLD",
    "SGLDState",
    "Sampler",
    "UnknownSamplerError",
    "lookup",
    "make",
    "names",
    "register",
    "value_and_grad",
]
