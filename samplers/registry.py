"""The sampler registry: ``names()``, ``make(name, **hparams)`` and ``register``.

Peers (other libraries' implementations) register under a prefix, e.g. ``blackjax.sgld``.
"""

from __future__ import annotations

import difflib
import fnmatch

from samplers.base import Sampler, SamplerFactory

_REGISTRY: dict[str, SamplerFactory] = {}


class UnknownSamplerError(KeyError):
    """A sampler name that is not registered; the message suggests the nearest names."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def register(name: str, factory: SamplerFactory) -> None:
    if name in _REGISTRY:
        raise ValueError(f"a sampler named {name!r} is already registered")
    _REGISTRY[name] = factory


def names(pattern: str = "*") -> list[str]:
    """Registered sampler names matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def lookup(name: str) -> SamplerFactory:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownSamplerError(unknown_name_message("sampler", name, list(_REGISTRY))) from None


def make(name: str, **hparams) -> Sampler:
    """A sampler by name; bad hyperparameters raise :class:`HyperparameterError`."""
    return lookup(name)(**hparams)


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
    return f"unknown {kind} {name!r}{hint} Known {kind}s: {', '.join(sorted(known))}"
