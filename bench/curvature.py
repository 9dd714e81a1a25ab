"""The largest Hessian eigenvalue of a potential per chain, by power iteration on Hessian-vector
products: the curvature that sets a step size's stability limit.

For a potential ``U(theta, batch) -> (C,)`` (:mod:`samplers.base`) the chains are independent,
so the Hessian of ``U.sum()`` is block diagonal with one ``(D, D)`` block per chain, and one
Hessian-vector product through ``U.sum()`` is every chain's own product at once (Pearlmutter
1994, "Fast exact multiplication by the Hessian": ``Hv = ∇(∇U · v)``, a double backward; the
graph of ``∇U`` is built once and reused by every iteration).

Power iteration (Golub & Van Loan, "Matrix Computations", §7.3.1): ``v ← Hv / ‖Hv‖`` from a
random start, the Rayleigh quotient ``λ = vᵀHv`` its estimate. It converges to the eigenvalue of
largest *magnitude*, at the rate ``|λ₂/λ₁|`` per iteration. Where that eigenvalue is negative
(a saddle's direction dominates) the largest one is found by a second run on the shifted
``H - λ₁I``, whose dominant eigenvalue is then ``λ_max - λ₁ ≥ 0``. A chain's estimate is frozen
at the iteration where it converges (relative change below ``tol``), so what one chain returns
never depends on the others.

What the numbers are for: on the quadratic ``U = ½ θᵀHθ``, gradient descent ``θ ← θ - h∇U``
is stable iff ``h < 2/λ_max``; heavy-ball momentum ``v ← μv + ∇U, θ ← θ - hv`` (``sgd``) iff
``h < 2(1 + μ)/λ_max`` (Polyak 1964); a preconditioned step ``θ ← θ - hP∇U`` with a positive
diagonal metric ``P`` (``riemannian_langevin``) iff ``h < 2/λ_max(PH)``, and ``PH`` has the
eigenvalues of the symmetric ``P^½ H P^½``, which is what ``preconditioner=P`` iterates on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class PowerIteration:
    """The result of :func:`power_iteration`, per chain."""

    value: Tensor  # (C,) the Rayleigh quotient vᵀAv at convergence (or at the last iteration)
    vector: Tensor  # (C, D) the unit vector it was taken at
    iterations: Tensor  # (C,) int64: matrix-vector products until the chain converged
    converged: Tensor  # (C,) bool: relative change below tol within iters


def power_iteration(
    matvec: Callable[[Tensor], Tensor],
    start: Tensor,
    *,
    iters: int = 200,
    tol: float = 1e-4,
) -> PowerIteration:
    """The dominant eigenpair of a per-chain symmetric operator ``matvec: (C, D) -> (C, D)``.

    ``start`` ``(C, D)`` is normalized per chain. A chain has converged when
    ``|λ_k - λ_{k-1}| <= tol·|λ_k|``; its value and vector are then kept while the others go on.
    """
    if iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    v = start / start.norm(dim=1, keepdim=True)
    chains = v.shape[0]
    value = torch.full((chains,), float("nan"), dtype=v.dtype, device=v.device)
    vector = v.clone()
    iterations = torch.zeros(chains, dtype=torch.int64, device=v.device)
    done = torch.zeros(chains, dtype=torch.bool, device=v.device)
    previous = None
    for k in range(1, iters + 1):
        w = matvec(v)
        estimate = (v * w).sum(dim=1)  # Rayleigh quotient at v (‖v‖ = 1)
        live = ~done
        value = torch.where(live, estimate, value)
        vector = torch.where(live.unsqueeze(1), v, vector)
        iterations = torch.where(live, torch.full_like(iterations, k), iterations)
        if previous is not None:
            done = done | ((estimate - previous).abs() <= tol * estimate.abs())
        if bool(done.all()):
            break
        previous = estimate
        norm = w.norm(dim=1, keepdim=True)
        # a zero product (H v = 0: a flat direction) leaves v where it is; its value is 0
        v = torch.where(norm > 0, w / norm.clamp_min(torch.finfo(w.dtype).tiny), v)
    return PowerIteration(value=value, vector=vector, iterations=iterations, converged=done)


def hessian_vector_product(
    potential: Callable[[Tensor, Any], Tensor], theta: Tensor, batch: Any = None
) -> Callable[[Tensor], Tensor]:
    """``v ↦ H(theta) v`` per chain, ``(C, D) -> (C, D)``, by double backward through
    ``potential(theta, batch).sum()``; the gradient's graph is built here once."""
    x = theta.detach().requires_grad_(True)
    with torch.enable_grad():
        value = potential(x, batch)
        if value.shape != (theta.shape[0],):
            raise ValueError(
                f"the potential must return one value per chain, shape ({theta.shape[0]},); "
                f"got {tuple(value.shape)}"
            )
        (grad,) = torch.autograd.grad(value.sum(), x, create_graph=True)

    def hvp(v: Tensor) -> Tensor:
        with torch.enable_grad():
            (hv,) = torch.autograd.grad(grad, x, grad_outputs=v, retain_graph=True)
        return hv.detach()

    return hvp


def top_eigenvalue(
    potential: Callable[[Tensor, Any], Tensor],
    theta: Tensor,
    batch: Any = None,
    *,
    iters: int = 200,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    preconditioner: Tensor | None = None,
) -> Tensor:
    """λ_max of the Hessian of ``potential`` at ``theta``, ``(C,)``, one per chain.

    With ``preconditioner`` ``P`` (``(D,)`` or ``(C, D)``, positive): λ_max(P·H), the curvature
    a step ``θ ← θ - hP∇U`` sees. ``generator`` draws the random start (default: a fresh
    generator seeded 0, so the result is deterministic). See :func:`top_eigenpair` for the
    iteration counts and the convergence flags.
    """
    return top_eigenpair(
        potential,
        theta,
        batch,
        iters=iters,
        tol=tol,
        generator=generator,
        preconditioner=preconditioner,
    ).value


def top_eigenpair(
    potential: Callable[[Tensor, Any], Tensor],
    theta: Tensor,
    batch: Any = None,
    *,
    iters: int = 200,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    preconditioner: Tensor | None = None,
) -> PowerIteration:
    """:func:`top_eigenvalue` with its vector (in the preconditioned coordinates when ``P`` is
    given), the products spent per chain (both runs, where the shift was needed) and whether it
    converged."""
    hvp = hessian_vector_product(potential, theta, batch)
    if preconditioner is not None:
        p = preconditioner.to(device=theta.device, dtype=theta.dtype)
        if p.shape not in (theta.shape, theta.shape[1:]):
            raise ValueError(
                f"preconditioner must have shape {tuple(theta.shape[1:])} or "
                f"{tuple(theta.shape)}, got {tuple(p.shape)}"
            )
        if not bool((p > 0).all()):
            raise ValueError("preconditioner must be positive (a diagonal metric)")
        root = p.sqrt()

        def matvec(v: Tensor) -> Tensor:  # P^½ H P^½ v: symmetric, with PH's eigenvalues
            return root * hvp(root * v)

    else:
        matvec = hvp
    if generator is None:
        generator = torch.Generator(device=theta.device).manual_seed(0)
    start = torch.randn(theta.shape, generator=generator, device=theta.device, dtype=theta.dtype)
    first = power_iteration(matvec, start, iters=iters, tol=tol)
    negative = first.value < 0
    if not bool(negative.any()):
        return first
    # the dominant eigenvalue is negative: λ_max is the dominant one of H - λ₁I, plus λ₁
    shift = torch.where(negative, first.value, torch.zeros_like(first.value)).unsqueeze(1)
    second = power_iteration(lambda v: matvec(v) - shift * v, start, iters=iters, tol=tol)
    pick = negative.unsqueeze(1)
    return PowerIteration(
        value=torch.where(negative, second.value + shift.squeeze(1), first.value),
        vector=torch.where(pick, second.vector, first.vector),
        iterations=first.iterations + torch.where(negative, second.iterations, 0),
        converged=torch.where(negative, second.converged, first.converged),
    )


def stability_limit(lam_max: Tensor | float, momentum: float = 0.0) -> Tensor | float:
    """The largest stable step size on a quadratic of top curvature ``lam_max``:
    ``2(1 + μ)/λ_max`` for heavy-ball momentum ``μ`` (``2/λ_max`` for plain gradient descent)."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    return 2.0 * (1.0 + momentum) / lam_max
