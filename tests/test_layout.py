"""The layout of theta (:mod:`samplers.layout`): the blocks a task's potential states, the
one-vector layout of a potential that states none, and a bad layout refused saying where."""

from __future__ import annotations

import pytest
import torch

import tasks
from samplers.layout import Block, LayoutError, check_layout, layout_of, with_layout
from tasks.models import ParamSpec


def quadratic(theta, batch):
    del batch
    return 0.5 * theta.square().sum(dim=1)


def test_a_task_potential_states_its_blocks(tiny_task):
    potential = tiny_task.potential()
    blocks = layout_of(potential, tiny_task.num_params)
    assert [(b.name, b.kind) for b in blocks] == [
        ("embed", "embedding"),
        ("W1", "matrix"),
        ("b1", "vector"),
        ("W2", "matrix"),
        ("b2", "vector"),
    ]
    theta = tiny_task.init(0, 2)
    views = tiny_task.model.unflatten(theta)
    for block in blocks:
        assert torch.equal(block.of(theta), views[block.name])
    transformer = tasks.make("add_mod7_transformer", d_model=8, n_heads=2, d_mlp=16)
    kinds = {name: kind for name, _, _, kind in transformer.potential().layout}
    assert kinds["W_E"] == kinds["W_pos"] == "embedding" and kinds["W_Q"] == "matrix"
    assert kinds["b_in"] == "vector"


def test_no_layout_is_one_vector_and_a_bad_layout_says_where():
    assert layout_of(quadratic, 5) == (Block("theta", 0, (5,), "vector"),)
    with pytest.raises(LayoutError, match="'b' starts at 5, expected 4"):
        check_layout([("a", 0, (2, 2), "matrix"), ("b", 5, (1,), "vector")], 6)
    with pytest.raises(LayoutError, match="covers 4 parameters, but theta has 6"):
        check_layout([("a", 0, (2, 2), "matrix")], 6)
    with pytest.raises(LayoutError, match="kind must be one of"):
        check_layout([("a", 0, (4,), "bias")], 4)
    with pytest.raises(LayoutError, match="a 'matrix' block is 2-D"):
        check_layout([("a", 0, (4,), "matrix")], 4)
    wrapped = with_layout(quadratic, (("a", 0, (2, 2), "matrix"),))
    theta = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(wrapped(theta, None), quadratic(theta, None))
    assert layout_of(wrapped, 4)[0].kind == "matrix"


def test_a_model_block_declares_a_kind_its_shape_allows():
    assert ParamSpec("W", (3, 4), 1.0).kind == "matrix"
    assert ParamSpec("b", (4,), 0.0).kind == "vector"
    assert ParamSpec("E", (5, 4), 1.0, "embedding").kind == "embedding"
    with pytest.raises(ValueError, match="kind must be one of"):
        ParamSpec("W", (3, 4), 1.0, "weights")
    with pytest.raises(ValueError, match="a 'embedding' block is 2-D"):
        ParamSpec("E", (5,), 1.0, "embedding")
