"""bench.curvature: the largest Hessian eigenvalue per chain by power iteration, against dense
eigendecompositions of known Hessians."""

from __future__ import annotations

import pytest
import torch

import tasks
from bench.curvature import (
    hessian_vector_product,
    power_iteration,
    stability_limit,
    top_eigenpair,
    top_eigenvalue,
)
from tasks.toy import GaussianPotential


def _dense_hessian(potential, theta_row, batch=None):
    """The (D, D) Hessian of one chain, by torch.autograd.functional."""
    return torch.autograd.functional.hessian(
        lambda t: potential(t.unsqueeze(0), batch).sum(), theta_row
    )


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_gaussian_top_eigenvalue_is_the_largest_eigenvalue_of_its_precision(lam):
    # U = ½ (θ-μ)ᵀ Σ⁻¹ (θ-μ) + ½ λ‖θ‖²: the Hessian is Σ⁻¹ + λI everywhere
    target = tasks.make("gaussian_illcond")  # condition number 100
    potential = target.potential(prior_precision=lam)
    theta = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = torch.linalg.eigvalsh(target.precision).max() + lam
    result = top_eigenpair(potential, theta, tol=1e-12)
    assert bool(result.converged.all())
    torch.testing.assert_close(result.value, expected.expand(3), rtol=1e-9, atol=0)


def test_a_larger_gaussian_with_a_slow_spectral_gap():
    g = torch.Generator().manual_seed(0)
    d = 30
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    eig = torch.linspace(0.1, 10.0, d, dtype=torch.float64)  # gap ratio 9.66/10
    precision = q @ torch.diag(eig) @ q.T
    potential = GaussianPotential(torch.zeros(d, dtype=torch.float64), precision)
    theta = torch.zeros(2, d, dtype=torch.float64)
    result = top_eigenpair(potential, theta, iters=2_000, tol=1e-10, generator=g)
    assert bool(result.converged.all())
    torch.testing.assert_close(
        result.value, torch.full((2,), 10.0, dtype=torch.float64), rtol=1e-4, atol=0
    )


def test_a_dominant_negative_eigenvalue_is_shifted_past():
    # eigenvalues -5, 1, 2: power iteration alone finds -5; λ_max is 2
    precision = torch.diag(torch.tensor([-5.0, 1.0, 2.0], dtype=torch.float64))
    potential = GaussianPotential(torch.zeros(3, dtype=torch.float64), precision)
    theta = torch.zeros(4, 3, dtype=torch.float64)
    first = power_iteration(
        hessian_vector_product(potential, theta), torch.ones(4, 3, dtype=torch.float64), tol=1e-12
    )
    torch.testing.assert_close(first.value, torch.full((4,), -5.0, dtype=torch.float64))
    result = top_eigenpair(potential, theta, tol=1e-12)
    torch.testing.assert_close(result.value, torch.full((4,), 2.0, dtype=torch.float64))
    assert bool((result.iterations > first.iterations).all())  # both runs counted


def test_preconditioned_is_the_largest_eigenvalue_of_p_h():
    target = tasks.make("gaussian_corr")
    theta = torch.zeros(2, 2, dtype=torch.float64)
    p = torch.tensor([[3.0, 0.2], [0.5, 0.5]], dtype=torch.float64)  # one metric per chain
    result = top_eigenvalue(target.potential(), theta, tol=1e-12, preconditioner=p)
    for c in range(2):
        expected = torch.linalg.eigvals(torch.diag(p[c]) @ target.precision).real.max()
        torch.testing.assert_close(result[c], expected, rtol=1e-9, atol=0)
    with pytest.raises(ValueError, match="positive"):
        top_eigenvalue(target.potential(), theta, preconditioner=-p)
    with pytest.raises(ValueError, match="shape"):
        top_eigenvalue(target.potential(), theta, preconditioner=torch.ones(3))


@pytest.fixture(scope="module")
def tiny_mlp():
    return tasks.make("add_mod5", model="mlp", d_embed=4, width=8)  # D = 137


def test_model_top_eigenvalue_matches_the_dense_hessian_per_chain(tiny_mlp):
    potential = tiny_mlp.potential(prior_precision=torch.tensor([0.0, 1e-2, 1.0]))
    theta = tiny_mlp.init(0, 3, dtype=torch.float64)
    result = top_eigenpair(potential, theta, iters=5_000, tol=1e-12)
    assert bool(result.converged.all())
    for c in range(3):
        one = tiny_mlp.potential(prior_precision=[0.0, 1e-2, 1.0][c])
        expected = torch.linalg.eigvalsh(_dense_hessian(one, theta[c])).max()
        torch.testing.assert_close(result.value[c], expected, rtol=1e-6, atol=0)


def test_chains_are_independent_and_the_result_is_deterministic(tiny_mlp):
    potential = tiny_mlp.potential()
    theta = tiny_mlp.init(0, 3, dtype=torch.float64)
    before = theta.clone()
    a = top_eigenvalue(potential, theta, generator=torch.Generator().manual_seed(7))
    assert torch.equal(theta, before)  # theta is not touched
    b = top_eigenvalue(potential, theta, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    moved = theta.clone()
    moved[1] += 0.3  # another chain, a different Hessian: chain 0's value must not move
    c = top_eigenvalue(potential, moved, generator=torch.Generator().manual_seed(7))
    assert c[0] == a[0] and c[2] == a[2] and c[1] != a[1]


def test_bad_arguments_are_refused(tiny_mlp):
    theta = tiny_mlp.init(0, 2)
    with pytest.raises(ValueError, match="iters"):
        top_eigenvalue(tiny_mlp.potential(), theta, iters=0)
    with pytest.raises(ValueError, match="tol"):
        top_eigenvalue(tiny_mlp.potential(), theta, tol=0.0)
    with pytest.raises(ValueError, match="one value per chain"):
        top_eigenvalue(lambda t, b: tiny_mlp.potential()(t, b).sum(), theta)


def test_stability_limits():
    assert stability_limit(4.0) == 0.5
    assert stability_limit(4.0, momentum=0.9) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="momentum"):
        stability_limit(4.0, momentum=1.0)
