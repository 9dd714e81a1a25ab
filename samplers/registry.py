"""The sampler registry: ``names()``, ``make(name, **hparams)``, ``register``, and plugins.

Peers (other libraries' implementations) register under a prefix, e.g. ``blackjax.sgld``.

**Plugins.** A package installed beside grokbench adds a sampler without a fork by declaring it
under the entry-point group ``grokbench.samplers`` (as pytest and gymnasium plugins do), the
entry point's name being the sampler's name and its value the :class:`~samplers.base.Sampler`
subclass::

    # the plugin's pyproject.toml
    [project.entry-points."grokbench.samplers"]
    my_sgld = "my_package.sampler:MySGLD"      # MySGLD.name == "my_sgld"

The first call to :func:`names` or :func:`lookup` loads every such entry point (importing
:mod:`samplers` loads none, so it stays cheap and cannot import itself in a circle). The class
brings what the suite needs of it: ``params``, ``examples`` (a ``"toy"`` one at least: the
contract tests run it) and ``search_space`` (a :class:`~samplers.search.SearchSpace`, which
``python -m bench compare --samplers my_sgld`` searches).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
from collections.abc import Mapping

from samplers.base import Example, Sampler, SamplerFactory
from tasks.suggestions import did_you_mean

#: The entry-point group a plugin declares its samplers under.
ENTRY_POINT_GROUP = "grokbench.samplers"

_REGISTRY: dict[str, SamplerFactory] = {}
_PLUGINS_LOADED = False


class UnknownSamplerError(KeyError):
    """A sampler name that is not registered; the message suggests the nearest names."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


class PluginError(RuntimeError):
    """A ``grokbench.samplers`` entry point that does not load, or loads something unusable."""


def register(name: str, factory: SamplerFactory) -> None:
    if name in _REGISTRY:
        raise ValueError(f"a sampler named {name!r} is already registered")
    _REGISTRY[name] = factory


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (a sampler registered in a notebook or a test)."""
    load_plugins()
    if name not in _REGISTRY:
        raise UnknownSamplerError(unknown_name_message("sampler", name, list(_REGISTRY)))
    del _REGISTRY[name]


def names(pattern: str = "*") -> list[str]:
    """Registered sampler names matching a shell-style ``pattern``, sorted (plugins included)."""
    load_plugins()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def lookup(name: str) -> SamplerFactory:
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownSamplerError(unknown_name_message("sampler", name, list(_REGISTRY))) from None


def make(name: str, **hparams) -> Sampler:
    """A sampler by name; bad hyperparameters raise :class:`HyperparameterError`."""
    return lookup(name)(**hparams)


def example(name: str, kind: str = "toy") -> Example:
    """The example setting ``kind`` that sampler ``name`` declares (``Sampler.examples``):
    ``"toy"`` (every sampler has one) or ``"light"`` (on the light grokking task)."""
    examples: Mapping[str, Example] = getattr(lookup(name), "examples", {})
    if kind not in examples:
        raise KeyError(
            f"sampler {name!r} declares no {kind!r} example (it has {sorted(examples) or 'none'}); "
            "add one to its class's `examples`"
        )
    return examples[kind]


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    hint = did_you_mean(name, known, cutoff=0.5)
    return f"unknown {kind} {name!r}{'; ' + hint if hint else '.'} Known {kind}s: " + ", ".join(
        sorted(known)
    )


def load_plugins() -> None:
    """Register every sampler declared under :data:`ENTRY_POINT_GROUP`, once per process."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True  # first, so that a plugin calling names() does not recurse
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = entry.load()
        except Exception as err:  # a broken plugin must say which one it is
            raise PluginError(
                f"sampler plugin {entry.name!r} ({entry.value}) failed to load: {err}"
            ) from err
        if not (isinstance(factory, type) and issubclass(factory, Sampler)):
            raise PluginError(
                f"sampler plugin {entry.name!r} ({entry.value}) must name a samplers.Sampler "
                f"subclass, got {factory!r}"
            )
        if factory.name != entry.name:
            raise PluginError(
                f"sampler plugin {entry.name!r} ({entry.value}) names a class whose `name` is "
                f"{factory.name!r}; the entry point's name and the class's must agree"
            )
        if _REGISTRY.get(entry.name) is not factory:  # not registered by hand already
            register(entry.name, factory)
