"""Gaussian targets with known answers, for testing samplers.

The potential of a Gaussian target with mean ``mu`` and covariance ``Sigma`` is

    U(theta) = ½ (theta - mu)ᵀ Sigma⁻¹ (theta - mu),

so at temperature tau every correct sampler's stationary law is ``N(mu, tau·Sigma)``. A prior
precision ``lam`` adds ``½ lam ‖theta‖²``: the law becomes ``N(m, tau·S)`` with
``S = (Sigma⁻¹ + lam I)⁻¹`` and ``m = S Sigma⁻¹ mu``; :meth:`GaussianTarget.moments` returns both.

There is no data here: a Gaussian task ignores its ``batch`` argument (pass ``None``). A
:class:`GaussianTarget` keeps the :class:`tasks.base.Task` protocol with the members a data-free
target needs: ``batches`` yields ``None`` forever, ``to`` is a no-op, ``target`` is ``None`` (no
accuracy to reach), ``reference`` is ``{}`` (no reference optimizer) and ``batch_size`` is
``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .base import check_batch_size, check_prior_precision


def rotation(angle: float) -> Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


@dataclass
class GaussianPotential:
    """``U(theta, batch) -> (C,)`` for a Gaussian; exact fused value and gradient."""

    mean: Tensor  # (D,)
    precision: Tensor  # (D, D)
    prior_precision: float = 0.0

    def __post_init__(self) -> None:
        check_prior_precision(self.prior_precision)

    def _moved(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        return (
            self.mean.to(device=theta.device, dtype=theta.dtype),
            self.precision.to(device=theta.device, dtype=theta.dtype),
        )

    def __call__(self, theta: Tensor, batch: object = None) -> Tensor:
        del batch  # a Gaussian has no data
        mean, precision = self._moved(theta)
        r = theta - mean  # (C, D)
        u = 0.5 * ((r @ precision) * r).sum(dim=1)
        if self.prior_precision:
            u = u + 0.5 * self.prior_precision * (theta * theta).sum(dim=1)
        return u

    def value_and_grad(self, theta: Tensor, batch: object = None) -> tuple[Tensor, Tensor]:
        del batch
        mean, precision = self._moved(theta)
        r = theta - mean
        pr = r @ precision  # precision is symmetric, so this is (precision @ r) row-wise
        value = 0.5 * (pr * r).sum(dim=1)
        grad = pr
        if self.prior_precision:
            value = value + 0.5 * self.prior_precision * (theta * theta).sum(dim=1)
            grad = grad + self.prior_precision * theta
        return value, grad


@dataclass
class GaussianTarget:
    """A Gaussian task: known mean and covariance, any dimension."""

    name: str
    mean: Tensor  # (D,) float64
    cov: Tensor  # (D, D) float64
    description: str = ""
    budget: int = 5_000
    target: float | None = None  # no accuracy to reach: these tasks are for sampling, not grokking
    init_scale: float = 1.0
    reference: dict[str, Any] = field(default_factory=dict)  # no reference optimizer
    batch_size: int | None = None  # no data to batch
    precision: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.mean = self.mean.to(torch.float64)
        self.cov = self.cov.to(torch.float64)
        self.precision = torch.linalg.inv(self.cov)
        self.precision = 0.5 * (self.precision + self.precision.T)

    @property
    def num_params(self) -> int:
        return self.mean.numel()

    @property
    def config(self) -> dict[str, Any]:
        """The settings that define the target (JSON-serializable, for the result store)."""
        return {
            "dim": self.num_params,
            "mean": self.mean.tolist(),
            "cov": self.cov.tolist(),
            "init_scale": self.init_scale,
            "budget": self.budget,
        }

    def to(self, device: torch.device | str) -> GaussianTarget:
        """A no-op: there is no data to move (the potential follows theta's device)."""
        del device
        return self

    def batch(self) -> None:
        """There is no data: the potential takes ``None``."""
        return None

    def batches(self, generator: torch.Generator, batch_size: int | None = None) -> Iterator[None]:
        """``None`` forever (the potential ignores its batch); ``batch_size`` is checked as for
        every task and then ignored."""
        del generator
        check_batch_size(batch_size)
        return self._nothing()

    @staticmethod
    def _nothing() -> Iterator[None]:
        while True:
            yield None

    @property
    def condition_number(self) -> float:
        eig = torch.linalg.eigvalsh(self.cov)
        return float(eig.max() / eig.min())

    def potential(self, prior_precision: float = 0.0) -> GaussianPotential:
        """``U(theta) + ½·prior_precision·‖theta‖²``; ``prior_precision`` is one finite number
        ``>= 0`` (else :class:`~tasks.base.TaskError`)."""
        check_prior_precision(prior_precision)
        return GaussianPotential(self.mean, self.precision, float(prior_precision))

    def moments(self, temperature: float = 1.0, prior_precision: float = 0.0):
        """Mean and covariance of ``exp(-U/tau)``: ``(m, tau·S)`` as float64 tensors."""
        eye = torch.eye(self.num_params, dtype=torch.float64)
        s = torch.linalg.inv(self.precision + prior_precision * eye)
        m = s @ self.precision @ self.mean
        return m, temperature * s

    def init(
        self,
        seed: int,
        chains: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Chain ``c`` starts at ``mean + init_scale·N(0, I)`` drawn from seed ``seed + c``."""
        rows = []
        for c in range(chains):
            g = torch.Generator().manual_seed(seed + c)
            rows.append(torch.randn(self.num_params, generator=g, dtype=torch.float64))
        z = torch.stack(rows) if rows else torch.empty(0, self.num_params, dtype=torch.float64)
        return (self.mean + self.init_scale * z).to(dtype=dtype, device=device)

    def evaluate(self, theta: Tensor) -> dict[str, Tensor]:
        """Per-chain potential and distance to the mean."""
        with torch.no_grad():
            u = self.potential()(theta.double())
            dist = (theta.double() - self.mean.to(theta.device)).norm(dim=1)
        return {"potential": u, "distance_to_mean": dist}


def standard_gaussian(dim: int = 2) -> GaussianTarget:
    return GaussianTarget(
        name=f"gaussian_iso{dim}" if dim != 2 else "gaussian_iso",
        mean=torch.zeros(dim),
        cov=torch.eye(dim),
        description=f"isotropic standard normal in {dim} dimensions",
    )


def correlated_gaussian(condition: float = 100.0, angle: float = math.pi / 4) -> GaussianTarget:
    """A 2-D Gaussian with eigenvalues 1 and 1/condition, rotated by ``angle`` (correlation 0.98
    at the defaults), centred off the origin so a sampler that ignores the mean is caught."""
    r = rotation(angle)
    cov = r @ torch.diag(torch.tensor([1.0, 1.0 / condition], dtype=torch.float64)) @ r.T
    return GaussianTarget(
        name="gaussian_illcond",
        mean=torch.tensor([1.0, -0.5]),
        cov=cov,
        description=(
            f"correlated 2-D Gaussian, condition number {condition:g}, "
            f"eigenvectors rotated {math.degrees(angle):.0f} degrees"
        ),
    )


def mildly_correlated_gaussian() -> GaussianTarget:
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64)
    return GaussianTarget(
        name="gaussian_corr",
        mean=torch.tensor([0.5, 1.0]),
        cov=cov,
        description="2-D Gaussian with correlation 0.35 and unequal variances",
    )
