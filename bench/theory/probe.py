"""A task that also measures replicas: the Gram matrix of their displacements from their start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


class ReplicaProbe:
    """A task whose evaluation also reports, for chains in groups of ``replicas`` that start
    from one point each (``origins``, one row per group), the inner products of their
    displacements from that point: chain ``c`` of group ``g`` gets ``gram_j = ⟨θ_c − o_g,
    θ_{g,j} − o_g⟩`` for every replica ``j`` of its group. The replicas' mean displacement and
    their spread, and any bootstrap resample of the replicas, follow exactly from these
    (:func:`bench.theory.claims.drift_diffusion.replica_moments`); a single chain's distance
    cannot tell drift from diffusion. Everything else is the wrapped task's."""

    def __init__(self, inner: Any, replicas: int, origins: Tensor, origin_keys: Sequence[str]):
        self.inner = inner
        self.replicas = int(replicas)
        self.origins = origins.detach().to(torch.float32)
        self.origin_keys = list(origin_keys)

    def __getattr__(self, name: str) -> Any:
        # only reached for what the probe lacks; its own fields must not recurse while
        # unpickling (before __init__ has set them)
        if name.startswith("__") or name in ("inner", "replicas", "origins", "origin_keys"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def config(self) -> dict[str, Any]:
        return {
            **self.inner.config,
            "probe": {"replicas": self.replicas, "origins": self.origin_keys},
        }

    def to(self, device: torch.device | str) -> ReplicaProbe:
        self.inner.to(device)
        self.origins = self.origins.to(device)
        return self

    @torch.no_grad()
    def evaluate(self, theta: Tensor) -> dict[str, Tensor]:
        out = dict(self.inner.evaluate(theta))
        r = self.replicas
        g = theta.shape[0] // r
        d = theta.reshape(g, r, -1).to(torch.float64) - self.origins[:g, None, :].to(torch.float64)
        gram = torch.einsum("gid,gjd->gij", d, d).reshape(g * r, r)  # (G·R, R)
        for j in range(r):
            out[f"gram_{j}"] = gram[:, j].to(torch.float32)
        return out
