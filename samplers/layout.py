"""The layout of theta: which slices of a chain's ``D`` parameters are a model's weight matrices.

Most samplers see theta as ``D`` numbers. A few optimizers treat a layer's weight matrix as a
matrix: Muon orthogonalizes its update, Lion's row clipping bounds the norm of each unit's
weights. They need the model's blocks, and the task states them, nothing guesses: a potential
that carries a ``layout`` attribute (``tasks``' model potentials do, from
:attr:`tasks.models.ChainModel.layout`) lists its blocks in order as
``(name, offset, shape, kind)``, where ``kind`` is

- ``"matrix"``: a layer's weights, stored input-major ``(fan_in, fan_out)`` (``h @ W``), the
  transpose of ``torch.nn.Linear.weight``; a unit's weights are a column;
- ``"embedding"``: a lookup table ``(vocabulary, width)`` as ``torch.nn.Embedding.weight``; a
  token's vector is a row;
- ``"vector"``: anything else (a bias).

A potential without one (the toy Gaussians, any plain callable) is one ``"vector"`` block of
``D`` parameters: it has no weight matrices, and each sampler says what it then does.
:func:`with_layout` gives a layout to a potential that lacks one (or keeps it through a wrapper
such as ``torch.compile``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

KINDS = ("matrix", "embedding", "vector")


class LayoutError(ValueError):
    """A layout that does not tile theta: blocks out of order, overlapping, or of another size."""


@dataclass(frozen=True)
class Block:
    """One block of theta: ``theta[:, offset:offset + size]`` viewed as ``(C, *shape)``."""

    name: str
    offset: int
    shape: tuple[int, ...]
    kind: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.offset + self.size

    def of(self, x: Tensor) -> Tensor:
        """This block of ``x`` (C, D) as ``(C, *shape)`` (a view: writes reach ``x``)."""
        return x[:, self.offset : self.stop].unflatten(1, self.shape)


def layout_of(potential: Any, params: int) -> tuple[Block, ...]:
    """The blocks of a ``D = params`` theta that ``potential`` states (checked to tile
    ``[0, D)`` in order), or one ``"vector"`` block of ``D`` when it states none."""
    declared = getattr(potential, "layout", None)
    if declared is None:
        return (Block("theta", 0, (params,), "vector"),)
    return check_layout(declared, params)


def check_layout(declared: Iterable[Any], params: int) -> tuple[Block, ...]:
    """``declared`` ``(name, offset, shape, kind)`` entries as :class:`Block`, or a
    :class:`LayoutError` saying which entry breaks the tiling of ``[0, params)``."""
    blocks = []
    offset = 0
    for entry in declared:
        name, start, shape, kind = entry
        block = Block(str(name), int(start), tuple(int(n) for n in shape), str(kind))
        if block.kind not in KINDS:
            raise LayoutError(f"layout block {name!r}: kind must be one of {KINDS}, got {kind!r}")
        if block.kind != "vector" and len(block.shape) != 2:
            raise LayoutError(
                f"layout block {name!r}: a {kind!r} block is 2-D, got shape {block.shape}"
            )
        if block.offset != offset:
            raise LayoutError(
                f"layout block {name!r} starts at {block.offset}, expected {offset}: the blocks "
                "must tile theta in order, without gaps or overlaps"
            )
        blocks.append(block)
        offset = block.stop
    if offset != params:
        raise LayoutError(f"the layout covers {offset} parameters, but theta has {params}")
    return tuple(blocks)


@dataclass(frozen=True, eq=False)
class with_layout:  # noqa: N801 - used as a function: with_layout(potential, layout)
    """``potential`` with ``layout`` (``(name, offset, shape, kind)`` entries); everything else
    (its value, a fused ``value_and_grad``, ``blocks``) is the potential's own."""

    potential: Any
    layout: tuple[Any, ...]

    def __call__(self, theta: Tensor, batch: Any = None) -> Tensor:
        return self.potential(theta, batch)

    def __getattr__(self, key: str) -> Any:
        if key in ("potential", "layout"):  # not yet set (copy, pickle): no recursion
            raise AttributeError(key)
        return getattr(self.potential, key)


__all__ = ["KINDS", "Block", "LayoutError", "check_layout", "layout_of", "with_layout"]
