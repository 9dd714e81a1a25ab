"""The diagonal RMSprop metric of the preconditioned samplers: adapted, then frozen at a safe step.

One implementation for ``riemannian_langevin`` (pSGLD) and ``preconditioned_sghmc``. Per chain
(g = ∇U(theta), alpha the EMA factor, t the step from 1)::

    V <- alpha·V + (1 - alpha)·g²,   V_0 = mean_i(g_1,i²)          (adapt)
    P  = 1 / (eps + sqrt(V))                                       (elementwise, diagonal)
    at the step t = freeze_after:                                  (freeze)
        s  = h·λ_max(P^½ ∇²U P^½)       (Lanczos on Hessian-vector products, below)
        P <- P·min(1, margin·limit / s)  and P is then constant

``limit`` is the sampler's linear stability limit of h·λ for a quadratic under the frozen metric:
2 for the first-order update theta <- theta - h·P·g, 2·(2 - alpha) for the momentum form
v <- (1 - alpha)·v - h·P·g, theta <- theta + v (heavy ball with mu = 1 - alpha: stable while
h·λ < 2·(1 + mu)). ``margin`` is the sampler's ``freeze_margin`` (default 0.5); ``None`` freezes P
as adapted, the behaviour before the check.

Why the frozen step must be measured. An adaptive metric trains at the edge of stability (Cohen
et al. 2022, "Adaptive gradient methods at the edge of stability"): where gradients are small, V
is small and P large, until h·λ_max(P H) passes the limit; the top direction then oscillates and
grows, its gradient raises V, and P falls back. Adaptation holds the step *at* the limit through
that feedback, and freezing removes the feedback. Measured from memorized checkpoints of
add_mod113's data with the embedding MLP (``riemannian_langevin`` at h 0.01, tau 1e-6, prior
lambda 1e-3, alpha 0.99, eps 1e-4, 2 seeds each of the registered ``add_mod113_mlp`` reference,
AdamW wd 2, and of the CPU preset's, wd 1): during the warm-up h·λ_max(P^½HP^½) wandered between
1.7 and 5.4 (20 power iterations every 50 steps) while the chains grokked; frozen at step 800 it
was past the limit 2 on every checkpoint (3.32, 2.65, 3.22, 2.38 in a first run; 2.41, 3.18,
5.05, 3.09 by Lanczos in the slow test's run, tests/test_factorial_samplers.py). Frozen as
adapted, every chain broke: in the first run all four at chance accuracy 20-110 steps after the
freeze and at ‖theta‖ > 1e6 93-166 steps after it (‖theta‖ 45 at the freeze); in the test's run
all four back at chance on their own training set within 25-600 steps, three at ‖theta‖ > 1e14.
Nothing else was near a limit: max P was 7.8e3-8.2e3, below the cap 1/eps = 1e4 (eps was not
binding), the prior's own rate h·P·lambda at most 0.08, and the V_0 start weighs alpha^800 =
3e-4 by then. So the cause is a step past the stability limit under the frozen metric; the
metric itself (its shape across coordinates) is sound. The fix keeps that shape and sets the
frozen step from the curvature where the chain is, as Stan re-adapts the step size of HMC after
each update of its mass matrix (there by acceptance, here by the stability limit, for a sampler
without a Metropolis test). With it the same four chains stayed at validation accuracy >= 0.999
for 2,000 steps after the freeze, ‖theta‖ 44.1-44.9 at the end (and in the first run's two
chains so fixed, h·λ_max crept from 0.64-0.97 to 0.72-0.85 over those steps). The margin 0.5
leaves room for that rise of the curvature after the freeze and for the estimate, which
approaches λ_max from below. Scaling P by a constant keeps the target exact: the frozen chain
is SGLD (or SGHMC) in a fixed geometry, only with a smaller step.

The estimate. λ_max of A = P^½ H P^½ per chain by ``LANCZOS_STEPS`` (or D, if fewer) steps of
Lanczos (the largest Ritz value; PyHessian, Yao et al. 2020, does the same on network Hessians),
each step one exact Hessian-vector product by double backward through the potential (which must
be twice differentiable by autograd, as every task's and toy potential is). Measured at step 800
of two chains on add_mod113_mlp: 10, 20, 40 and 80 Lanczos steps gave 2.437, 2.445, 2.446, 2.446
(and 2.523, 2.527, 2.528, 2.528); gradient differences in float32 could not replace the products
(central differences gave 2.7-2.8 at a probe of 1e-2·‖theta‖, 3.7-4.7 at 1e-3, 6-16 below: the
rounding of the gradients, divided by the probe). Lanczos starts from a random direction (the
sampler's generator): a start along the gradient missed the top direction where that coordinate
had already settled (on a diagonal quadratic, 2 of 16 chains estimated 0.5-0.6 for a true 2.4-4.0,
and diverged). Cost, counted as ``1 + HVP_COST·LANCZOS_STEPS`` = 41 gradient evaluations once,
at the freezing step, in that step's ``Info.grad_evals``. A chain whose estimate is not finite (a
diverged chain) keeps its metric.

How V starts: from the data, at once (V_0 = the chain's mean square gradient at its first step,
a scalar per chain; see ``riemannian_langevin``'s docstring for the measurements behind it). A
chain whose gradient is exactly zero keeps P = 1 until its first non-zero gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from samplers.base import Batch, Param, Potential, check_potential_value, noise

#: Default warm-up of the metric (steps); see riemannian_langevin's docstring.
FREEZE_AFTER = 1000
#: Default fraction of the stability limit the frozen step may reach (see :func:`stable`).
FREEZE_MARGIN = 0.5

#: The metric's hyperparameters, declared once for every sampler that carries it.
PARAMS = {
    "alpha": Param(
        0.99, low=0.0, high=1.0, high_open=True, why="the metric's EMA factor is in [0, 1)"
    ),
    "eps": Param(
        1e-4,
        low=0.0,
        low_open=True,
        why="eps caps the preconditioner at 1/eps; it must be positive",
    ),
    "freeze_after": Param(
        FREEZE_AFTER,
        low=1,
        integer=True,
        per_chain=False,
        optional=True,
        why="the number of warm-up steps after which the metric is frozen (None: never)",
    ),
    "freeze_margin": Param(
        FREEZE_MARGIN,
        low=0.0,
        high=1.0,
        low_open=True,
        per_chain=False,
        optional=True,
        why="the frozen step's fraction of the stability limit, in (0, 1] (None: frozen "
        "as adapted, unchecked)",
    ),
}

#: Lanczos steps of the stability estimate at the freeze (one Hessian-vector product each).
LANCZOS_STEPS = 20
#: Gradient evaluations one Hessian-vector product is counted as (Pearlmutter 1994; measured
#: 2.0-2.3 gradients on the embedding MLP of add_mod113, one thread).
HVP_COST = 2


def init(theta: Tensor) -> tuple[Tensor, Tensor]:
    """``(square_avg, started)``: V = 0 ``(C, D)`` and no chain started ``(C,)``."""
    started = torch.zeros(theta.shape[0], dtype=torch.bool, device=theta.device)
    return torch.zeros_like(theta), started


def adapt(
    square_avg: Tensor,
    started: Tensor,
    all_started: bool,
    g: Tensor,
    alpha: float | Tensor,
    eps: float | Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """One EMA update: ``(P, V, started)`` after seeing the gradient ``g`` ``(C, D)``."""
    g2 = g * g
    if all_started:
        square_avg = alpha * square_avg + (1.0 - alpha) * g2
        return 1.0 / (eps + square_avg.sqrt()), square_avg, started
    # A chain starts its EMA from the mean square of its first non-zero gradient, a scalar per
    # chain; until then (a gradient that is exactly zero) P = 1.
    scale = g2.mean(dim=1, keepdim=True)  # (C, 1)
    square_avg = alpha * torch.where(started.unsqueeze(1), square_avg, scale) + (1.0 - alpha) * g2
    started = started | (scale.squeeze(1) > 0)
    rows = started.unsqueeze(1)
    metric = torch.where(rows, 1.0 / (eps + square_avg.sqrt()), 1.0)
    return metric, torch.where(rows, square_avg, 0.0), started


def stable(
    potential: Potential,
    batch: Batch,
    theta: Tensor,
    metric: Tensor,
    step_size: float | Tensor,
    limit: float | Tensor,
    margin: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, int]:
    """The metric to freeze at ``theta``: ``(P', s, grad_evals)`` with ``s = h·λ_max(P^½HP^½)``
    ``(C,)`` measured for ``metric`` and ``P' = P·min(1, margin·limit/s)``. Lanczos starts from
    a random direction drawn from ``generator``."""
    root = metric.sqrt()
    with torch.enable_grad():
        x = theta.detach().requires_grad_(True)
        value = potential(x, batch)
        check_potential_value(value, theta)
        # chains are independent: the gradient of the sum is every chain's gradient, and so is
        # the Hessian-vector product of it with a (C, D) direction
        (grad,) = torch.autograd.grad(value.sum(), x, create_graph=True)

    def product(v: Tensor) -> Tensor:
        if not grad.requires_grad:  # a potential linear in theta: no curvature
            return torch.zeros_like(v)
        (hv,) = torch.autograd.grad(
            grad, x, grad_outputs=root * v, retain_graph=True, allow_unused=True
        )
        return torch.zeros_like(v) if hv is None else root * hv.detach()

    steps = min(LANCZOS_STEPS, theta.shape[1])
    top = lanczos_top(product, noise(theta, generator), steps)
    sharpness = _flat(step_size, theta) * top  # (C,)
    bound = margin * _flat(limit, theta)
    ok = torch.isfinite(sharpness) & (sharpness > bound)
    factor = torch.where(ok, bound / torch.where(ok, sharpness, 1.0), 1.0)
    return metric * factor.unsqueeze(1), sharpness, 1 + HVP_COST * steps


def lanczos_top(product, start: Tensor, steps: int) -> Tensor:
    """The largest Ritz value ``(C,)`` of the symmetric operators ``product`` (one per row of
    ``start`` ``(C, D)``) after ``steps`` Lanczos steps (no reorthogonalization: the extreme Ritz
    value converges first and is not spoilt by the loss of orthogonality, Paige 1976)."""
    tiny = torch.finfo(start.dtype).tiny
    q = start / start.norm(dim=1, keepdim=True).clamp_min(tiny)
    q_prev = torch.zeros_like(q)
    beta = torch.zeros(q.shape[0], dtype=q.dtype, device=q.device)
    alphas, betas = [], []
    for _ in range(steps):
        w = product(q)
        a = (w * q).sum(dim=1)
        w = w - a.unsqueeze(1) * q - beta.unsqueeze(1) * q_prev
        beta = w.norm(dim=1)
        # an invariant subspace found (beta ~ 0): the Ritz values are exact, stop that chain
        done = beta <= 1e-6 * a.abs().clamp_min(tiny)
        beta = torch.where(done, 0.0, beta)
        alphas.append(a)
        betas.append(beta)
        q_prev, q = q, torch.where(done.unsqueeze(1), 0.0, w / beta.clamp_min(tiny).unsqueeze(1))
    t = torch.diag_embed(torch.stack(alphas, dim=1))  # (C, k, k)
    off = torch.stack(betas[:-1], dim=1) if steps > 1 else None
    if off is not None:
        t = t + torch.diag_embed(off, offset=1) + torch.diag_embed(off, offset=-1)
    t = t.double()
    finite = torch.isfinite(t).flatten(1).all(dim=1)
    top = torch.linalg.eigvalsh(torch.where(finite[:, None, None], t, 0.0))[:, -1]
    return torch.where(finite, top, float("nan")).to(start.dtype)


def _flat(value: float | Tensor, theta: Tensor) -> float | Tensor:
    """A scalar or ``(C,)`` hyperparameter as a number or ``(C,)`` tensor on theta's device."""
    if isinstance(value, Tensor):
        return value.to(device=theta.device, dtype=theta.dtype).reshape(-1)
    return value
