"""JAX ports of the task potentials, so that BlackJAX samples the very function our torch code does.

``port(potential)`` reads a torch potential and returns a :class:`JaxPotential` for *one chain*:

- :class:`tasks.base.ModelPotential` (models ``mlp``, ``quadratic``, ``transformer``): the same
  flat weight layout (the model's :class:`~tasks.models.ParamSpec` offsets), the same forward pass
  (including the exact shortcuts of :mod:`tasks.models`), the same loss (``ce`` or ``mse``), and
  the same data: the task's training split, or whatever batch the runner hands the step;
- :class:`tasks.toy.GaussianPotential`: ``½ (θ - μ)ᵀ P (θ - μ)``.

Both add ``½·λ·‖θ‖²``, with ``λ`` a float or one value per chain. So
``U_jax(θ_c) == U_torch(θ)[c]`` to float32 precision (``tests/test_peers.py`` checks the value
and the full-batch gradient at the task's initial weights).

A port keeps the potential's *structure* (model, sizes, loss) apart from its *data* (the batch,
or the Gaussian's mean and precision) and ``λ``: data and ``λ`` are arguments of the jitted
functions, so one compilation serves every batch of the same shape and every prior precision.

Computation is in float32, JAX's default: a float64 ``theta`` is rounded on the way in (enabling
``jax_enable_x64`` globally would change every other JAX user in the process).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import Tensor

from samplers.base import PotentialError


@dataclass(eq=False)
class JaxPotential:
    """One chain's potential in JAX.

    ``value(theta, data, lam) -> U`` for ``theta`` of shape ``(D,)``; for a model potential also
    ``example_loss(theta, x_i, y_i) -> loss_i`` (BlackJAX's stochastic-gradient estimator takes
    a per-example log-likelihood). ``structure`` is hashable and identifies the compiled code.
    """

    structure: tuple
    num_params: int
    value: Callable[[jax.Array, Any, jax.Array], jax.Array]
    example_loss: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None
    source: Any  # the torch potential this was ported from
    _batch_cache: tuple | None = None  # (torch x, torch y, jax data): the last batch seen
    _lam: jax.Array | None = None

    @property
    def has_data(self) -> bool:
        return self.example_loss is not None

    def data(self, batch: Any) -> Any:
        """The data argument of :attr:`value`: a model's ``(x, y)`` batch as jax int32 arrays
        (``None`` means the task's training set), or a Gaussian's ``(mean, precision)``."""
        if not self.has_data:
            if self._batch_cache is None:
                self._batch_cache = (None, None, self._gaussian_data())
            return self._batch_cache[2]
        x, y = self.source.default_batch if batch is None else batch
        cache = self._batch_cache
        if cache is not None and cache[0] is x and cache[1] is y:
            return cache[2]
        data = (to_jax(x, jnp.int32), to_jax(y, jnp.int32))
        self._batch_cache = (x, y, data)  # holding x and y keeps their ids from being reused
        return data

    def _gaussian_data(self):
        p = self.source
        return (to_jax(p.mean, jnp.float32), to_jax(p.precision, jnp.float32))

    def prior_precision(self, chains: int) -> jax.Array:
        """``λ`` as a ``(chains,)`` float32 array (made once per chain count)."""
        if self._lam is None or self._lam.shape[0] != chains:
            self._lam = chain_vector(getattr(self.source, "prior_precision", 0.0), chains)
        return self._lam


def port(potential: Any) -> JaxPotential:
    """The JAX port of a torch potential; :class:`PotentialError` for one that has none."""
    from tasks.base import ModelPotential
    from tasks.toy import GaussianPotential

    if isinstance(potential, GaussianPotential):
        return _port_gaussian(potential)
    if isinstance(potential, ModelPotential):
        return _port_model(potential)
    raise PotentialError(
        f"a BlackJAX peer samples a JAX port of the potential, and there is none for "
        f"{type(potential).__name__} {potential!r}: ports exist for tasks.base.ModelPotential "
        f"(models {sorted(_LOGITS)}) and tasks.toy.GaussianPotential. Use a pyro.* peer (it "
        "calls the torch potential itself) or add a port to samplers/peers/jax_tasks.py"
    )


# -- conversion between torch and JAX ---------------------------------------------------------


def to_jax(t: Tensor, dtype=jnp.float32) -> jax.Array:
    """A torch tensor as a jax array of ``dtype``; zero-copy through DLPack where the dtype and
    device already agree (JAX never writes into it: its arrays are immutable)."""
    t = t.detach()
    want = _TORCH_DTYPES[jnp.dtype(dtype)]
    if t.dtype != want:
        t = t.to(want)
    if not t.is_contiguous():
        t = t.contiguous()
    if t.numel() == 0:
        return jnp.zeros(tuple(t.shape), dtype)
    try:
        return jax.dlpack.from_dlpack(t)
    except Exception:  # an unaligned buffer or a device JAX does not see: copy
        return jnp.asarray(t.cpu().numpy())


def to_torch(a: jax.Array, like: Tensor) -> Tensor:
    """A jax array as a torch tensor with ``like``'s device and dtype (zero-copy when they agree).

    The result shares memory with an immutable JAX buffer: write into a clone, never in place.
    """
    try:
        t = torch.from_dlpack(a)
    except Exception:  # pragma: no cover - a backend without DLPack export
        t = torch.from_numpy(np.asarray(a))
    return t.to(device=like.device, dtype=like.dtype)


_TORCH_DTYPES = {
    jnp.dtype(jnp.float32): torch.float32,
    jnp.dtype(jnp.int32): torch.int32,
}


def chain_vector(value: Any, chains: int) -> jax.Array:
    """A scalar or ``(C,)`` hyperparameter as a ``(C,)`` float32 jax array."""
    if isinstance(value, Tensor):
        v = value.detach().to(device="cpu", dtype=torch.float32).reshape(-1)
        if v.numel() == 1:
            v = v.expand(chains)
        return jnp.asarray(v.numpy())
    return jnp.full((chains,), float(value), jnp.float32)


# -- Gaussians ----------------------------------------------------------------------------------


def _gaussian_value(theta, data, lam):
    mean, precision = data
    r = theta - mean
    return 0.5 * r @ (precision @ r) + 0.5 * lam * theta @ theta


def _port_gaussian(potential) -> JaxPotential:
    d = potential.mean.numel()
    return JaxPotential(("gaussian", d), d, _gaussian_value, None, potential)


# -- models -------------------------------------------------------------------------------------


def _unflatten(theta: jax.Array, layout: tuple) -> dict[str, jax.Array]:
    return {name: theta[a:b].reshape(shape) for name, a, b, shape in layout}


def _mlp_logits(w, x, cfg):
    de = cfg["d_embed"]
    # concat(E[x], E[y]) @ W1 == E[x] @ W1[:de] + E[y] @ W1[de:], as in tasks.models
    left = w["embed"] @ w["W1"][:de]  # (V, width)
    right = w["embed"] @ w["W1"][de:]
    hidden = jax.nn.relu(left[x[:, 0]] + right[x[:, 1]] + w["b1"])  # (n, width)
    return hidden @ w["W2"] + w["b2"]  # (n, K)


def _quadratic_logits(w, x, cfg):
    v = cfg["n_operands"]
    pre = w["W1"][x[:, 0]] + w["W1"][x[:, 1] + v]  # (n, width)
    return (pre * pre) @ w["W2"]  # standard parametrization, as tasks.models.QuadraticMLP


def _transformer_logits(w, x, cfg):
    h, dh = cfg["n_heads"], cfg["d_head"]
    embed, pos = w["W_E"], w["W_pos"]
    resid_eq = embed[cfg["eq_token"]] + pos[2]  # (d,)
    q = (resid_eq @ w["W_Q"]).reshape(h, dh)
    k_eq = (resid_eq @ w["W_K"]).reshape(h, dh)
    v_eq = (resid_eq @ w["W_V"]).reshape(h, dh)
    scale = 1.0 / math.sqrt(dh)
    score_eq = (q * k_eq).sum(-1) * scale  # (H,)
    scores, values = [], []
    for position in (0, 1):  # keys, values and scores tabulated per token, then gathered
        table = embed + pos[position]  # (V, d)
        k = (table @ w["W_K"]).reshape(-1, h, dh)
        v = (table @ w["W_V"]).reshape(-1, h, dh)
        s = jnp.einsum("vhe,he->vh", k, q) * scale  # (V, H)
        scores.append(s[x[:, position]])  # (n, H)
        values.append(v[x[:, position]])  # (n, H, dh)
    n = x.shape[0]
    scores.append(jnp.broadcast_to(score_eq, (n, h)))
    attn = jax.nn.softmax(jnp.stack(scores, axis=-1), axis=-1)  # (n, H, 3)
    z = attn[..., 0:1] * values[0] + attn[..., 1:2] * values[1] + attn[..., 2:3] * v_eq
    resid = resid_eq + z.reshape(n, h * dh) @ w["W_O"]  # (n, d)
    hidden = jax.nn.relu(resid @ w["W_in"] + w["b_in"])
    resid = resid + hidden @ w["W_out"] + w["b_out"]
    return resid @ w["W_U"]  # (n, K)


_LOGITS = {"mlp": _mlp_logits, "quadratic": _quadratic_logits, "transformer": _transformer_logits}
_CONFIG = {
    "mlp": ("d_embed",),
    "quadratic": ("n_operands", "width"),
    "transformer": ("n_heads", "d_head", "eq_token"),
}


def _per_example_loss(logits, y, loss: str, num_classes: int):
    """logits (n, K), y (n,) -> (n,), as tasks.base.per_example_loss."""
    if loss == "ce":
        picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
        return jax.nn.logsumexp(logits, axis=1) - picked
    if loss == "mse":
        return jnp.mean((logits - jax.nn.one_hot(y, num_classes, dtype=logits.dtype)) ** 2, -1)
    raise PotentialError(f"no JAX port of the loss {loss!r}")


def _port_model(potential) -> JaxPotential:
    model = potential.model
    if model.name not in _LOGITS:
        raise PotentialError(
            f"no JAX port of the model {model.name!r}; ports exist for {sorted(_LOGITS)}"
        )
    layout = tuple(
        (spec.name, a, b, spec.shape)
        for spec, (a, b) in zip(model.specs, model.offsets.values(), strict=True)
    )
    cfg = {key: getattr(model, key) for key in _CONFIG[model.name]}
    structure = (
        "model",
        model.name,
        layout,
        tuple(sorted(cfg.items())),
        model.num_classes,
        potential.loss,
    )
    logits_fn, loss, num_classes = _LOGITS[model.name], potential.loss, model.num_classes

    def batch_loss(theta, x, y):  # (n,)
        return _per_example_loss(logits_fn(_unflatten(theta, layout), x, cfg), y, loss, num_classes)

    def value(theta, data, lam):
        x, y = data
        return batch_loss(theta, x, y).mean() + 0.5 * lam * theta @ theta

    def example_loss(theta, x_i, y_i):
        return batch_loss(theta, x_i[None], y_i[None])[0]

    return JaxPotential(structure, model.num_params, value, example_loss, potential)


__all__ = ["JaxPotential", "chain_vector", "port", "to_jax", "to_torch"]
