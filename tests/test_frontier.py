"""The frontier optimizers' known answers: ⊥AdamW, Lion (with row clipping) and Muon. The layout
of theta they read the weight matrices from is tested in tests/test_layout.py.

The shared contract (determinism, no mutation, shapes, bad step sizes) runs them in
tests/test_contract.py on the toy Gaussian, which has no layout; here they run on the tiny
modular task, whose potential states its blocks.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

import samplers
from bench import compare as C
from bench.compare.rows import rows_for
from bench.compare.spaces import own_samplers, search_space
from bench.store import Store
from samplers.layout import Block, check_layout, layout_of
from samplers.lion import clip_rows
from samplers.muon import orthogonalize
from samplers.ortho_adamw import orthogonal_part

FRONTIER = ("ortho_adamw", "lion", "muon")


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


@pytest.mark.parametrize("name", FRONTIER)
def test_every_point_of_its_search_space_is_a_valid_setting(name, tiny_task):
    """``python -m bench compare --samplers <name>`` searches the grid its class declares."""
    space = search_space(name, tiny_task)
    assert space is samplers.lookup(name).search_space and space.note
    points = space.grid(tiny_task)
    assert len(points) >= 2
    for point in points:
        given = {**point, **space.fixed}
        hparams = samplers.lookup(name).hparams_from_search(
            {k: v for k, v in given.items() if k != "prior_precision"}
        )
        hparams.update({k: tiny_task.reference[k] for k in space.from_reference})
        samplers.make(name, **hparams)


def test_a_named_comparison_tunes_them_on_their_grids(tmp_path, tiny_task):
    """``compare --samplers ortho_adamw,lion,muon``: each a frontier row, tuned in the shared
    units (lr and κ) inside its row's bounds."""
    preset = replace(C.PRESETS["smoke"], budget=60, eval_every=20, trials=2, seeds=2)
    with Store(tmp_path / "s.sqlite") as store:
        key = C.compare(tiny_task, list(FRONTIER), preset, store, log=lambda line: None)
        entries = {e.sampler: e for e in store.entries(key)}
    assert set(entries) - {"reference"} == set(FRONTIER)
    for row in rows_for(FRONTIER):
        entry = entries[row.name]
        assert len(entry.trials) == 2
        assert row.group == "frontier"
        for axis, bound in row.bounds(tiny_task).items():
            value = entry.chosen["search"][axis]
            # an edge choice may widen the axis ×10 outward once (Bound's rule)
            assert bound.low / 10 <= value <= bound.high * 10, (row.name, axis, value)


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


# -- Lion -----------------------------------------------------------------------------------


def test_lion_two_steps_by_hand():
    """U = ½‖θ‖², lr 1.02, wd 0.1, betas (0.9, 0.99). The first coordinate's second step goes
    against its gradient: c = 0.9·m + 0.1·g = 0.0099 - 0.00322 > 0 while g < 0, so the update
    reads the momentum. The last coordinate sits at 0: sign(0) = 0 keeps it there."""
    theta0 = torch.tensor([[1.1, -3.0, 0.0]], dtype=torch.float64)
    lion = samplers.make("lion", step_size=1.02, weight_decay=0.1, betas=(0.9, 0.99))
    state = lion.init(theta0)
    state, _ = lion.step(state, quadratic, None, torch.Generator())
    # theta·(1 - 1.02·0.1) - 1.02·sign(0.1·theta0); m = 0.01·theta0
    expect1 = [1.1 * 0.898 - 1.02, -3.0 * 0.898 + 1.02, 0.0]
    torch.testing.assert_close(state.theta[0].tolist(), expect1, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(state.exp_avg[0].tolist(), [0.011, -0.03, 0.0])
    state, _ = lion.step(state, quadratic, None, torch.Generator())
    t1a, t1b = expect1[:2]  # -0.0322, -1.674
    expect2 = [t1a * 0.898 - 1.02, t1b * 0.898 + 1.02, 0.0]  # signs (+1, -1, 0)
    torch.testing.assert_close(state.theta[0].tolist(), expect2, rtol=1e-12, atol=1e-15)
    m2 = [0.99 * 0.011 + 0.01 * t1a, 0.99 * -0.03 + 0.01 * t1b, 0.0]
    torch.testing.assert_close(state.exp_avg[0].tolist(), m2, rtol=1e-12, atol=1e-15)
    assert math.isclose(expect2[0], -1.0489156, rel_tol=1e-9)


def test_lion_flags_an_infinite_gradient_that_sign_would_hide():
    class InfiniteGradient:
        """U = ½‖θ‖² with an infinite gradient entry for chain 0 (a fused value_and_grad)."""

        def __call__(self, theta, batch):
            return quadratic(theta, batch)

        def value_and_grad(self, theta, batch):
            grad = theta.clone()
            grad[0, 0] = math.inf
            return quadratic(theta, batch), grad

    theta = torch.ones(2, 3)
    lion = samplers.make("lion", step_size=0.1)
    state, info = lion.step(lion.init(theta), InfiniteGradient(), None, torch.Generator())
    assert info.diverged.tolist() == [True, False]
    assert torch.equal(state.theta[0], theta[0]) and torch.isfinite(state.exp_avg).all()


def test_clip_rows_bounds_each_unit_and_leaves_the_rest():
    blocks = check_layout(
        [("W", 0, (2, 2), "matrix"), ("E", 4, (2, 2), "embedding"), ("b", 8, (2,), "vector")], 10
    )
    # W (fan_in 2, fan_out 2): unit 0's weights (3, 4) have norm 5, unit 1's (0, 0.1) norm 0.1;
    # E: token 0's row (0, 0), token 1's (6, 8); the bias is never clipped
    theta = torch.tensor([[3.0, 0.0, 4.0, 0.1, 0.0, 0.0, 6.0, 8.0, 50.0, -50.0]])
    clipped = clip_rows(theta, blocks, 1.0)
    expect = [[0.6, 0.0, 0.8, 0.1, 0.0, 0.0, 0.6, 0.8, 50.0, -50.0]]
    torch.testing.assert_close(clipped, torch.tensor(expect))
    assert theta[0, 0] == 3.0  # a new tensor


def test_lion_row_clipping_bounds_every_row_on_a_task(tiny_task):
    theta = tiny_task.init(0, 2)
    potential = tiny_task.potential()
    bound = torch.tensor([0.5, 2.0])
    lion = samplers.make("lion", step_size=1e-2, max_row_norm=bound)
    state = run(lion, theta, potential, steps=3)
    free = run(samplers.make("lion", step_size=1e-2), theta, potential, steps=1)
    one = run(samplers.make("lion", step_size=1e-2, max_row_norm=bound), theta, potential, 1)
    for block in layout_of(potential, tiny_task.num_params):
        w = block.of(state.theta)
        if block.kind == "vector":  # not clipped: after one step as without clipping
            assert torch.equal(block.of(one.theta), block.of(free.theta))
            continue
        norms = w.norm(dim=1 if block.kind == "matrix" else 2)  # (C, units)
        assert (norms <= bound[:, None] * (1 + 1e-6)).all(), block.name
    # the initial rows are longer than 0.5 (embedding rows ~ sqrt(16)): the bound binds
    embed = layout_of(potential, tiny_task.num_params)[0]
    assert embed.of(theta).norm(dim=2).min() > 0.5


def test_lion_refuses_to_clip_without_a_layout_and_bad_values():
    lion = samplers.make("lion", max_row_norm=1.0)
    state = lion.init(torch.ones(2, 3))
    with pytest.raises(samplers.HyperparameterError, match="potential states none"):
        lion.step(state, quadratic, None, torch.Generator())
    with pytest.raises(samplers.HyperparameterError, match=r"max_row_norm must be > 0"):
        samplers.make("lion", max_row_norm=0.0)
    with pytest.raises(samplers.HyperparameterError, match=r"betas\[1\] must be <= 1.0"):
        samplers.make("lion", betas=(0.9, 1.5))


# -- Muon -----------------------------------------------------------------------------------


def test_muon_is_torch_muon_on_the_matrices_and_adamw_on_the_rest(tiny_task):
    """One chain of ours against torch.optim.Muon on the weight matrices (in nn.Linear's
    (fan_out, fan_in) orientation) and torch.optim.AdamW on the embedding and biases."""
    hparams = dict(step_size=2e-2, momentum=0.9, weight_decay=0.1, adam_step_size=3e-3)
    theta0 = tiny_task.init(0, 1)
    potential = tiny_task.potential()
    blocks = layout_of(potential, tiny_task.num_params)
    ours = samplers.make("muon", **hparams)
    state = ours.init(theta0)

    params = {}
    for b in blocks:
        value = b.of(theta0)[0]
        params[b.name] = torch.nn.Parameter((value.T if b.kind == "matrix" else value).clone())

    def flat():
        parts = [params[b.name].T if b.kind == "matrix" else params[b.name] for b in blocks]
        return torch.cat([p.reshape(-1) for p in parts]).unsqueeze(0)

    matrices = [params[b.name] for b in blocks if b.kind == "matrix"]
    rest = [params[b.name] for b in blocks if b.kind != "matrix"]
    muon = torch.optim.Muon(matrices, lr=2e-2, momentum=0.9, weight_decay=0.1, nesterov=True)
    adamw = torch.optim.AdamW(rest, lr=3e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1)
    for _ in range(3):
        state, _ = ours.step(state, potential, None, torch.Generator())
        muon.zero_grad()
        adamw.zero_grad()
        potential(flat(), None).sum().backward()
        muon.step()
        adamw.step()
        torch.testing.assert_close(state.theta, flat().detach(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(state.theta, theta0)


def test_the_orthogonalized_update_has_singular_values_near_one():
    """torch's quintic Newton–Schulz lands them in about [0.5, 1.5] (its documentation), where a
    Gaussian matrix's spread from ~1 to ~7."""
    generator = torch.Generator().manual_seed(0)
    for shape in [(16, 8), (8, 16), (12, 12)]:
        block = Block("W", 0, shape, "matrix")
        g = torch.randn(3, block.size, generator=generator)
        before = torch.linalg.svdvals(g.unflatten(1, shape))
        after = torch.linalg.svdvals(orthogonalize(g, block, 5).float().unflatten(1, shape))
        assert before.max() > 3.0
        assert ((after > 0.5) & (after < 1.5)).all(), (shape, after)


def test_muon_without_a_layout_is_adamw_bit_for_bit(target):
    theta = target.init(0, 3)
    muon = samplers.make("muon", adam_step_size=1e-2, weight_decay=0.3, betas=(0.8, 0.9))
    adamw = samplers.make("adamw", step_size=1e-2, weight_decay=0.3, betas=(0.8, 0.9))
    a = run(muon, theta, target.potential(), steps=4)
    b = run(adamw, theta, target.potential(), steps=4)
    assert torch.equal(a.theta, b.theta)


def test_muon_refuses_bad_values():
    cases = [
        (dict(ns_steps=0), r"ns_steps must be >= 1"),
        (dict(ns_steps=100), r"ns_steps must be <= 99"),
        (dict(ns_steps=torch.tensor([5, 5])), r"ns_steps must be a single number"),
        (dict(nesterov=1), r"nesterov must be True or False"),
        (dict(momentum=1.0), r"momentum must be < 1.0"),
        (dict(adam_step_size=0.0), r"adam_step_size must be > 0"),
    ]
    for hparams, message in cases:
        with pytest.raises(samplers.HyperparameterError, match=message):
            samplers.make("muon", **hparams)
