"""The frontier optimizers' known answers: ⊥AdamW, Lion (with row clipping) and Muon. The layout
of theta they read the weight matrices from is tested in tests/test_layout.py.

The shared contract (determinism, no mutation, shapes, bad step sizes) runs them in
tests/test_contract.py on the toy Gaussian, which has no layout; here they run on the tiny
modular task, whose potential states its blocks.
"""

from __future__ import annotations

import pytest
import torch

import samplers
from bench.compare.spaces import own_samplers
from samplers.ortho_adamw import orthogonal_part

FRONTIER = ("ortho_adamw",)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny models: one torch thread (see conftest)."""


def run(sampler, theta, potential, steps):
    state = sampler.init(theta)
    for _ in range(steps):
        state, info = sampler.step(state, potential, None, torch.Generator().manual_seed(0))
        assert not info.diverged.any()
    return state


def quadratic(theta, batch):
    """U = ½‖θ‖², ∇U = θ: a gradient known by heart."""
    del batch
    return 0.5 * theta.square().sum(dim=1)


# -- registration ---------------------------------------------------------------------------


def test_frontier_optimizers_are_registered_but_not_in_the_default_comparison():
    for name in FRONTIER:
        entry = samplers.lookup(name)
        assert entry.frontier and not entry.samples and name not in own_samplers()
        assert entry.summary and "toy" in entry.examples
    assert "adamw" in own_samplers() and not samplers.lookup("adamw").frontier


# -- every frontier optimizer on a task with a layout -----------------------------------------


@pytest.mark.parametrize("name", FRONTIER)
def test_per_chain_values_on_a_task_match_scalar_runs(name, tiny_task):
    """On a potential with matrices (the contract's toy has none): a (C,) step size and momentum
    give chain c what a scalar run gives it."""
    potential = tiny_task.potential()
    theta = tiny_task.init(1, 3, dtype=torch.float64)
    step = samplers.example(name).hparams["step_size"]
    values = {"step_size": [step, step / 2, step / 4]}
    if name == "muon":
        values["momentum"] = [0.9, 0.5, 0.0]
    if name == "lion":
        values["max_row_norm"] = [0.5, 1.0, 2.0]
    vector = samplers.make(
        name, **{k: torch.tensor(v, dtype=theta.dtype) for k, v in values.items()}
    )
    together = run(vector, theta, potential, steps=3)
    for c in range(3):
        alone = run(
            samplers.make(name, **{k: v[c] for k, v in values.items()}), theta, potential, 3
        )
        torch.testing.assert_close(together.theta[c], alone.theta[c], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", FRONTIER)
def test_same_start_same_trajectory_and_inputs_untouched_on_a_task(name, tiny_task):
    potential = tiny_task.potential()
    theta = tiny_task.init(2, 2)
    before = theta.clone()
    sampler = samplers.make(name, **samplers.example(name).hparams)
    state = sampler.init(theta)
    first, _ = sampler.step(state, potential, None, torch.Generator())
    snapshot = {k: v.clone() for k, v in vars(state).items() if isinstance(v, torch.Tensor)}
    again, _ = sampler.step(state, potential, None, torch.Generator())
    for key, value in vars(first).items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, getattr(again, key)), key
    for key, value in snapshot.items():
        assert torch.equal(getattr(state, key), value), key
    assert torch.equal(theta, before) and not torch.equal(first.theta, theta)


# -- ⊥AdamW ---------------------------------------------------------------------------------


def test_the_projected_gradient_is_orthogonal_to_theta_per_chain():
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(4, 50, generator=generator, dtype=torch.float64)
    g = torch.randn(4, 50, generator=generator, dtype=torch.float64)
    theta[3] = 0.0  # no direction to remove: g as it is
    ortho = orthogonal_part(g, theta)
    dots = (ortho * theta).sum(dim=1)
    assert (dots[:3].abs() < 1e-12 * g[:3].norm(dim=1) * theta[:3].norm(dim=1)).all()
    assert torch.equal(ortho[3], g[3])
    # what is removed is along theta: ortho + c·theta == g
    c = ((g - ortho)[:3] / theta[:3]).mean(dim=1, keepdim=True)
    torch.testing.assert_close(ortho[:3] + c * theta[:3], g[:3], rtol=1e-12, atol=1e-12)


def test_ortho_adamw_is_torch_adamw_on_the_projected_gradient(tiny_task):
    hparams = dict(step_size=1e-2, weight_decay=0.5, betas=(0.9, 0.98), eps=1e-8)
    theta0 = tiny_task.init(0, 1, dtype=torch.float64)
    potential = tiny_task.potential()
    ours = samplers.make("ortho_adamw", **hparams)
    state = ours.init(theta0)

    param = torch.nn.Parameter(theta0.clone())
    lr, wd, betas, eps = hparams.values()
    reference = torch.optim.AdamW([param], lr=lr, weight_decay=wd, betas=betas, eps=eps)
    for _ in range(4):
        state, _ = ours.step(state, potential, None, torch.Generator())
        reference.zero_grad()
        potential(param, None).sum().backward()
        param.grad = orthogonal_part(param.grad, param.detach())
        reference.step()
        torch.testing.assert_close(state.theta, param.detach(), rtol=1e-12, atol=1e-14)
    assert samplers.make("ortho_adamw").weight_decay == 0.0  # the published setting
