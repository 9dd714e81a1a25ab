"""Models written with a chain dimension: ``logits(theta, x)`` for ``C`` parameter vectors at once.

``theta`` is a flat ``(C, D)`` tensor holding ``C`` independent chains. A model is a fixed list of
named slices (:class:`ParamSpec`); :meth:`ChainModel.unflatten` turns ``theta`` into views of shape
``(C, *shape)`` and the forward pass is written with batched matrix products over the chain
dimension, so ``C`` chains cost one set of kernels, never a Python loop. Inputs ``x`` of shape
``(n, 2)`` (operand indices) are shared by all chains; logits come out as ``(C, n, num_classes)``.

Weights are stored input-major, ``(fan_in, fan_out)``, so a layer is ``h @ W`` with no transpose.

Four models:

- ``transformer``: the one-layer transformer of Nanda et al. 2023 ("Progress measures for
  grokking via mechanistic interpretability"): tokens ``[x, y, "="]``, learned token and
  positional embeddings, causal multi-head attention (4 heads of 32 at d_model 128), a ReLU MLP
  (d_mlp 512) with biases ``b_in``/``b_out`` as in Nanda's code, no layer norm, unembedding read at
  the ``"="`` position. Init is Nanda's: every matrix ``N(0, 1/d_model)`` except the unembedding,
  ``N(0, 1/d_vocab)``; biases zero. Two exact shortcuts, both checked against a literal per-chain
  implementation in the tests: only the last position is read and nothing (no layer norm) couples
  positions except attention, so the attention query and the MLP are computed at the ``"="``
  position only; and keys, values and scores of positions 0 and 1 depend on one token each, so
  they are computed once per vocabulary entry and gathered (cheaper whenever ``n > d_vocab``).
  Deviation: the unembedding has ``num_classes`` outputs (Nanda's has ``d_vocab = p + 1`` and
  trains the extra ``"="`` logit too).
- ``mlp``: a shared token embedding for both operands, concatenated, one ReLU hidden layer with
  bias, a linear read-out with bias. Init ``N(0, 1)`` for the embedding, ``N(0, 1/fan_in)`` for the
  layers, zero biases.
- ``quadratic``: Gromov 2023 ("Grokking modular arithmetic", arXiv:2301.02679): input
  one-hot(x) ⊕ one-hot(y) (2V entries), hidden width 500, activation ``z²``, no biases, in the
  standard parametrization ``f(e) = W2ᵀ (W1ᵀ e)²`` with ``W1 ~ N(0, 1/(2V))`` and
  ``W2 ~ N(0, 1/width)`` (``1/fan_in``), the setting in which his full-batch AdamW runs
  (lr 1e-2, weight decay 5, MSE on one-hot targets) grok within a few dozen steps. See
  :class:`QuadraticMLP` for why not the mean-field one.

- ``onehot``: Prieto et al. 2025 ("Grokking at the edge of numerical stability"): one-hot(x) ⊕
  one-hot(y), two ReLU layers of 200, a linear read-out, no biases; init ``N(0, 1/(3·fan_in))``,
  the variance of torch's default ``nn.Linear`` init. See :class:`OneHotMLP`.

Every model takes ``init_scale``, which multiplies all initial standard deviations (a larger
scale delays generalisation: Liu et al. 2023, "Omnigrok").

Every model states its layout (:attr:`ChainModel.layout`): each block's name, offset in theta,
shape and kind (a layer's ``"matrix"``, an ``"embedding"`` table, a ``"vector"`` such as a
bias), for the optimizers that treat weight matrices apart from the rest (Muon, Lion's row
clipping; see :mod:`samplers.layout`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: What a block of theta is to an optimizer that treats weight matrices apart: a layer's weights
#: stored ``(fan_in, fan_out)``, a lookup table whose rows are the tokens' vectors, or anything
#: else (a bias).
KINDS = ("matrix", "embedding", "vector")


@dataclass(frozen=True)
class ParamSpec:
    """One named block of theta: its shape, the standard deviation of its normal init, and its
    kind (:data:`KINDS`; by default ``"matrix"`` for a 2-D block, else ``"vector"``); ``mean``
    is added to the draw (a LayerNorm gain starts at 1)."""

    name: str
    shape: tuple[int, ...]
    std: float  # 0.0: initialised to ``mean``
    kind: str = ""
    mean: float = 0.0

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", "matrix" if len(self.shape) == 2 else "vector")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "vector" and len(self.shape) != 2:
            raise ValueError(f"{self.name}: a {self.kind!r} block is 2-D, got shape {self.shape}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class ChainModel:
    """A model as a fixed list of slices of a flat ``(C, D)`` parameter tensor."""

    name: str = ""

    def __init__(self, specs: Sequence[ParamSpec], num_classes: int, init_scale: float = 1.0):
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.specs = tuple(specs)
        self.num_classes = num_classes
        self.init_scale = float(init_scale)
        self.offsets: dict[str, tuple[int, int]] = {}
        offset = 0
        for spec in self.specs:
            self.offsets[spec.name] = (offset, offset + spec.size)
            offset += spec.size
        self.num_params = offset

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config()}, num_params={self.num_params})"

    def config(self) -> dict[str, object]:
        """The knobs that define this model (without the derived sizes)."""
        raise NotImplementedError

    @property
    def layout(self) -> tuple[tuple[str, int, tuple[int, ...], str], ...]:
        """``(name, offset, shape, kind)`` of every block of theta, in order (the layout of
        :mod:`samplers.layout`, as plain tuples: tasks know nothing of samplers)."""
        return tuple(
            (spec.name, self.offsets[spec.name][0], spec.shape, spec.kind) for spec in self.specs
        )

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Views of ``theta`` (C, D): ``{name: (C, *shape)}``; gradients flow back into theta."""
        if theta.dim() != 2 or theta.shape[1] != self.num_params:
            raise ValueError(
                f"{self.name}: theta must have shape (C, {self.num_params}), "
                f"got {tuple(theta.shape)}"
            )
        return {
            spec.name: theta[:, a:b].unflatten(1, spec.shape)
            for spec, (a, b) in zip(self.specs, self.offsets.values(), strict=True)
        }

    def flatten(self, params: dict[str, Tensor]) -> Tensor:
        """The inverse of :meth:`unflatten`: ``{name: (C, *shape)}`` -> theta (C, D)."""
        return torch.cat([params[s.name].flatten(1) for s in self.specs], dim=1)

    def init(
        self,
        seed: int,
        chains: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``(chains, D)``; chain ``c`` is drawn from ``torch.Generator().manual_seed(seed + c)``.

        Draws are made in float32 on the CPU and then cast, so every dtype and device starts
        from the same point, and ``init(s, C)[c] == init(s + c, 1)[0]`` exactly.
        """
        rows = []
        for c in range(chains):
            g = torch.Generator().manual_seed(seed + c)
            parts = []
            for spec in self.specs:
                if spec.std == 0.0:
                    parts.append(torch.full((spec.size,), spec.mean))
                else:
                    z = torch.randn(spec.size, generator=g)
                    parts.append(z * (spec.std * self.init_scale) + spec.mean)
            rows.append(self.project_init(torch.cat(parts)))
        theta = torch.stack(rows) if rows else torch.empty(0, self.num_params)
        return theta.to(dtype=dtype, device=device)

    def project_init(self, theta: Tensor) -> Tensor:
        """A hook on one chain's drawn init (D,): unchanged here."""
        return theta

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """theta (C, D), x (n, 2) int64 -> logits (C, n, num_classes)."""
        raise NotImplementedError


class Transformer(ChainModel):
    """Nanda et al. 2023's one-layer transformer on ``[x, y, "="]`` (see the module docstring)."""

    name = "transformer"

    def __init__(
        self,
        n_operands: int,
        num_classes: int,
        d_model: int = 128,
        n_heads: int = 4,
        d_head: int | None = None,
        d_mlp: int | None = None,
        init_scale: float = 1.0,
    ):
        d_head = d_model // n_heads if d_head is None else d_head
        d_mlp = 4 * d_model if d_mlp is None else d_mlp
        for key, value in dict(
            d_model=d_model, n_heads=n_heads, d_head=d_head, d_mlp=d_mlp
        ).items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"transformer: {key} must be a positive integer, got {value!r}")
        self.n_operands, self.d_model, self.n_heads = n_operands, d_model, n_heads
        self.d_head, self.d_mlp = d_head, d_mlp
        self.d_vocab = n_operands + 1  # the operands and "="
        self.eq_token = n_operands
        s = 1.0 / math.sqrt(d_model)
        hd = n_heads * d_head
        specs = [
            ParamSpec("W_E", (self.d_vocab, d_model), s, "embedding"),
            ParamSpec("W_pos", (3, d_model), s, "embedding"),
            ParamSpec("W_Q", (d_model, hd), s),
            ParamSpec("W_K", (d_model, hd), s),
            ParamSpec("W_V", (d_model, hd), s),
            ParamSpec("W_O", (hd, d_model), s),
            ParamSpec("W_in", (d_model, d_mlp), s),
            ParamSpec("b_in", (d_mlp,), 0.0),
            ParamSpec("W_out", (d_mlp, d_model), s),
            ParamSpec("b_out", (d_model,), 0.0),
            ParamSpec("W_U", (d_model, num_classes), 1.0 / math.sqrt(self.d_vocab)),
        ]
        super().__init__(specs, num_classes, init_scale)

    def config(self) -> dict[str, object]:
        return dict(
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_head=self.d_head,
            d_mlp=self.d_mlp,
            init_scale=self.init_scale,
        )

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        w = self.unflatten(theta)
        C, H, dh = theta.shape[0], self.n_heads, self.d_head
        x = x.to(theta.device)
        embed, pos = w["W_E"], w["W_pos"]  # (C, V, d), (C, 3, d)
        resid_eq = embed[:, self.eq_token] + pos[:, 2]  # (C, d): "=" is the same in every example
        q = torch.bmm(resid_eq.unsqueeze(1), w["W_Q"]).view(C, H, dh)  # (C, H, dh)
        k_eq = torch.bmm(resid_eq.unsqueeze(1), w["W_K"]).view(C, H, dh)
        v_eq = torch.bmm(resid_eq.unsqueeze(1), w["W_V"]).view(C, H, dh)
        scale = 1.0 / math.sqrt(dh)
        score_eq = (q * k_eq).sum(-1) * scale  # (C, H)

        # Positions 0 and 1 hold one operand each: tabulate their keys, values and scores against
        # the "=" query for every vocabulary entry, then gather the n examples.
        scores, values = [], []
        for position in (0, 1):
            table = embed + pos[:, position].unsqueeze(1)  # (C, V, d)
            k = torch.bmm(table, w["W_K"]).unflatten(2, (H, dh))  # (C, V, H, dh)
            v = torch.bmm(table, w["W_V"])  # (C, V, H*dh)
            s = torch.einsum("cvhe,che->cvh", k, q) * scale  # (C, V, H)
            scores.append(torch.index_select(s, 1, x[:, position]))  # (C, n, H)
            values.append(torch.index_select(v, 1, x[:, position]).unflatten(2, (H, dh)))
        n = x.shape[0]
        scores.append(score_eq.unsqueeze(1).expand(C, n, H))
        attn = torch.softmax(torch.stack(scores, dim=-1), dim=-1)  # (C, n, H, 3)
        z = (
            attn[..., 0:1] * values[0]
            + attn[..., 1:2] * values[1]
            + attn[..., 2:3] * v_eq.unsqueeze(1)
        )  # (C, n, H, dh)
        resid = resid_eq.unsqueeze(1) + torch.bmm(z.flatten(2), w["W_O"])  # (C, n, d)
        hidden = torch.relu(
            torch.baddbmm(w["b_in"].unsqueeze(1), resid, w["W_in"])
        )  # (C, n, d_mlp)
        resid = resid + torch.baddbmm(w["b_out"].unsqueeze(1), hidden, w["W_out"])
        return torch.bmm(resid, w["W_U"])  # (C, n, K)


class EmbeddingMLP(ChainModel):
    """Shared embedding of both operands, concatenated, one ReLU hidden layer, linear read-out."""

    name = "mlp"

    def __init__(
        self,
        n_operands: int,
        num_classes: int,
        d_embed: int = 64,
        width: int = 256,
        init_scale: float = 1.0,
    ):
        for key, value in dict(d_embed=d_embed, width=width).items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"mlp: {key} must be a positive integer, got {value!r}")
        self.n_operands, self.d_embed, self.width = n_operands, d_embed, width
        specs = [
            ParamSpec("embed", (n_operands, d_embed), 1.0, "embedding"),
            ParamSpec("W1", (2 * d_embed, width), 1.0 / math.sqrt(2 * d_embed)),
            ParamSpec("b1", (width,), 0.0),
            ParamSpec("W2", (width, num_classes), 1.0 / math.sqrt(width)),
            ParamSpec("b2", (num_classes,), 0.0),
        ]
        super().__init__(specs, num_classes, init_scale)

    def config(self) -> dict[str, object]:
        return dict(d_embed=self.d_embed, width=self.width, init_scale=self.init_scale)

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        w = self.unflatten(theta)
        x = x.to(theta.device)
        de = self.d_embed
        # concat(E[x], E[y]) @ W1 + b1 == (E[x] @ W1[:de] + b1) + E[y] @ W1[de:]: tabulate per
        # token (the bias folded into the left table, V rows instead of n), then gather.
        left = torch.baddbmm(w["b1"].unsqueeze(1), w["embed"], w["W1"][:, :de])  # (C, V, width)
        right = torch.bmm(w["embed"], w["W1"][:, de:])
        pre = torch.index_select(left, 1, x[:, 0]) + torch.index_select(right, 1, x[:, 1])
        hidden = torch.relu(pre)  # (C, n, width)
        return torch.baddbmm(w["b2"].unsqueeze(1), hidden, w["W2"])  # (C, n, K)


class QuadraticMLP(ChainModel):
    """Gromov 2023: one-hot(x) ⊕ one-hot(y) -> width ``z²`` units -> num_classes, no biases.

    Standard parametrization: ``f(e) = W2ᵀ (W1ᵀ e)²``, where ``e`` is the 2V-dimensional two-hot
    input (so ``W1ᵀ e = W1[x] + W1[V + y]``), with ``W1 ~ N(0, 1/(2V))`` and ``W2 ~ N(0, 1/width)``
    (variance ``1/fan_in``), no multipliers in the forward pass. In this parametrization the
    published AdamW setting of A. Gromov, "Grokking modular arithmetic" (2023, arXiv:2301.02679)
    reproduces here: x + y mod 97, 50% of pairs, width 500, full-batch AdamW lr 1e-2, weight
    decay 5, MSE to one-hot targets. It is also the parametrization of the code of Gromov's group
    (D. Doshi, A. Das, T. He, A. Gromov, "To grok or not to grok", 2023, arXiv:2310.13061:
    ``fc2(fc1(x)²)``, no biases, no output multiplier, ``AdamW(lr=1e-2, weight_decay=5)`` on
    ``MSELoss``), whose init, ``N(0, 0.25/(2·width)^(2/3))`` for both layers, gave the same
    curve as the ``1/fan_in`` init here in our measurement (memorized at step 40, 99% validation
    accuracy at step 50, seed 0).

    Not the mean-field parametrization ``W2ᵀ (W1ᵀ e / sqrt(2V))² / width`` with ``N(0, 1)``
    weights, which Gromov's analysis of plain gradient descent uses (with a learning rate that
    grows with the width): AdamW's steps are ``~lr`` per weight whatever the gradient's scale, so
    the ``1/width`` read-out makes the function move ``~width`` times slower, while weight decay
    5 at lr 1e-2 shrinks every weight by 5% a step; measured here (p = 97, 50% of pairs, width
    500), the mean-field network decays to the origin, a stationary point of a ``z²`` network,
    within 200 steps and never fits the training set, where this one reaches 100% training and
    validation accuracy in about 50 steps (tasks/registry.py, add_mod97_quadratic).
    """

    name = "quadratic"

    def __init__(
        self, n_operands: int, num_classes: int, width: int = 500, init_scale: float = 1.0
    ):
        if not (isinstance(width, int) and width >= 1):
            raise ValueError(f"quadratic: width must be a positive integer, got {width!r}")
        self.n_operands, self.width = n_operands, width
        specs = [
            # Rows of W1 are the one-hot inputs: x's block, then y's block.
            ParamSpec("W1", (2 * n_operands, width), 1.0 / math.sqrt(2 * n_operands)),
            ParamSpec("W2", (width, num_classes), 1.0 / math.sqrt(width)),
        ]
        super().__init__(specs, num_classes, init_scale)

    def config(self) -> dict[str, object]:
        return dict(width=self.width, init_scale=self.init_scale)

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        w = self.unflatten(theta)
        x = x.to(theta.device)
        W1 = w["W1"]  # (C, 2V, width)
        pre = torch.index_select(W1, 1, x[:, 0]) + torch.index_select(
            W1, 1, x[:, 1] + self.n_operands
        )  # (C, n, width): W1ᵀ e for the two-hot e
        return torch.bmm(pre.square(), w["W2"])  # (C, n, K)


class OneHotMLP(ChainModel):
    """Prieto et al. 2025's MLP: one-hot(x) ⊕ one-hot(y) -> ``depth`` ReLU layers of ``width``
    -> num_classes, no biases.

    ``f(e) = W_outᵀ relu(W_{depth}ᵀ … relu(W1ᵀ e))`` on the 2V-dimensional two-hot input ``e``
    (``W1ᵀ e = W1[x] + W1[V + y]``), widths [200, 200] and no biases as in the code of "Grokking at
    the edge of numerical stability" (L. Prieto, M. Barsbey, P. Mediano, T. Birdal, ICLR 2025),
    where ⊥AdamW groks (x + y) mod 113 on 40% of the pairs within a few hundred full-batch steps
    and AdamW without weight decay does not. Deviation: the init draws ``N(0, 1/(3·fan_in))``, the
    variance of torch's default ``nn.Linear`` init ``U(±1/sqrt(fan_in))``, not that uniform law.
    """

    name = "onehot"

    def __init__(
        self,
        n_operands: int,
        num_classes: int,
        width: int = 200,
        depth: int = 2,
        init_scale: float = 1.0,
    ):
        for key, value in dict(width=width, depth=depth).items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"onehot: {key} must be a positive integer, got {value!r}")
        self.n_operands, self.width, self.depth = n_operands, width, depth
        fans = [2 * n_operands] + [width] * depth
        specs = [
            ParamSpec(f"W{i + 1}", (fans[i], width), 1.0 / math.sqrt(3 * fans[i]))
            for i in range(depth)
        ]
        specs.append(ParamSpec("W_out", (width, num_classes), 1.0 / math.sqrt(3 * width)))
        super().__init__(specs, num_classes, init_scale)

    def config(self) -> dict[str, object]:
        return dict(width=self.width, depth=self.depth, init_scale=self.init_scale)

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        w = self.unflatten(theta)
        x = x.to(theta.device)
        W1 = w["W1"]  # (C, 2V, width): rows are the one-hot inputs, x's block then y's
        hidden = torch.relu(
            torch.index_select(W1, 1, x[:, 0])
            + torch.index_select(W1, 1, x[:, 1] + self.n_operands)
        )  # (C, n, width)
        for i in range(2, self.depth + 1):
            hidden = torch.relu(torch.bmm(hidden, w[f"W{i}"]))
        return torch.bmm(hidden, w["W_out"])  # (C, n, K)


def _layer_norm(h: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
    """LayerNorm over the last axis of ``h`` (C, ..., d) with per-chain ``gain``, ``bias`` (C, d)
    (``torch.nn.LayerNorm``'s eps 1e-5)."""
    shape = (h.shape[0],) + (1,) * (h.dim() - 2) + (h.shape[-1],)
    normed = F.layer_norm(h, h.shape[-1:])
    return normed * gain.view(shape) + bias.view(shape)


class Decoder(ChainModel):
    """The causal decoder of Grokfast (Lee et al. 2024) and the cliptogrok study: tokens
    ``[x, ∘, y, =]``, learned token and position embeddings, ``depth`` blocks, a final LayerNorm
    and a bias-free read-out at the last position.

    A block, as in their code (``h`` the residual stream, causal self-attention with
    ``n_heads`` heads and biases as ``torch.nn.MultiheadAttention``'s, a GELU MLP of width
    ``4·d_model``)::

        a = LN_1(h);  h = a + Attn(a);  h = h + MLP(LN_2(h))

    (the attention's residual adds to the normalized stream, not to ``h``: their block does so).
    Init: torch's defaults in variance (embeddings N(0, 1); linear weights N(0, 1/(3·fan_in)), the
    variance of ``U(±1/sqrt(fan_in))``; the attention's projections Xavier's N(0, 1/d) in
    variance; biases 0; LayerNorm gains 1). ``init_row_norm`` > 0 then rescales, as cliptogrok's
    ``project_to_sphere``, every unit's weight vector (a matrix's column here, a token's or a
    position's row) and every vector block (a gain, a bias) to that L2 norm; zero blocks stay 0.

    Deviations: the read-out has ``num_classes`` = p outputs (theirs has p + 2, the operand tokens
    and the two symbols, and the loss runs over all of them); the operator and "=" tokens are the
    ids p and p + 1 of a p + 2 vocabulary, as theirs.
    """

    name = "decoder"
    SEQ = 4  # x, ∘, y, =

    def __init__(
        self,
        n_operands: int,
        num_classes: int,
        d_model: int = 128,
        n_heads: int = 4,
        depth: int = 2,
        init_row_norm: float = 0.0,
        init_scale: float = 1.0,
    ):
        for key, value in dict(d_model=d_model, n_heads=n_heads, depth=depth).items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"decoder: {key} must be a positive integer, got {value!r}")
        if d_model % n_heads:
            raise ValueError(f"decoder: d_model {d_model} is not a multiple of n_heads {n_heads}")
        if not (isinstance(init_row_norm, (int, float)) and init_row_norm >= 0):
            raise ValueError(f"decoder: init_row_norm must be >= 0, got {init_row_norm!r}")
        self.n_operands, self.d_model, self.n_heads, self.depth = (
            n_operands,
            d_model,
            n_heads,
            depth,
        )
        self.init_row_norm = float(init_row_norm)
        d, m = d_model, 4 * d_model
        lin, attn = 1.0 / math.sqrt(3 * d), 1.0 / math.sqrt(d)
        specs = [
            ParamSpec("embed", (n_operands + 2, d), 1.0, "embedding"),
            ParamSpec("pos", (self.SEQ, d), 1.0, "embedding"),
        ]
        for i in range(depth):
            specs += [
                ParamSpec(f"ln1_g{i}", (d,), 0.0, mean=1.0),
                ParamSpec(f"ln1_b{i}", (d,), 0.0),
                ParamSpec(f"W_Q{i}", (d, d), attn),
                ParamSpec(f"W_K{i}", (d, d), attn),
                ParamSpec(f"W_V{i}", (d, d), attn),
                ParamSpec(f"b_Q{i}", (d,), 0.0),
                ParamSpec(f"b_K{i}", (d,), 0.0),
                ParamSpec(f"b_V{i}", (d,), 0.0),
                ParamSpec(f"W_O{i}", (d, d), lin),
                ParamSpec(f"b_O{i}", (d,), 0.0),
                ParamSpec(f"ln2_g{i}", (d,), 0.0, mean=1.0),
                ParamSpec(f"ln2_b{i}", (d,), 0.0),
                ParamSpec(f"W_in{i}", (d, m), lin),
                ParamSpec(f"b_in{i}", (m,), 0.0),
                ParamSpec(f"W_out{i}", (m, d), 1.0 / math.sqrt(3 * m)),
                ParamSpec(f"b_out{i}", (d,), 0.0),
            ]
        specs += [
            ParamSpec("lnf_g", (d,), 0.0, mean=1.0),
            ParamSpec("lnf_b", (d,), 0.0),
            ParamSpec("W_U", (d, num_classes), lin),
        ]
        super().__init__(specs, num_classes, init_scale)

    def config(self) -> dict[str, object]:
        return dict(
            d_model=self.d_model,
            n_heads=self.n_heads,
            depth=self.depth,
            init_row_norm=self.init_row_norm,
            init_scale=self.init_scale,
        )

    def project_init(self, theta: Tensor) -> Tensor:
        r = self.init_row_norm
        if r == 0.0:
            return theta
        out = theta.clone()
        for spec in self.specs:
            a, b = self.offsets[spec.name]
            block = out[a:b].view(spec.shape)  # a view: scaled in place
            axis = {"matrix": 0, "embedding": 1, "vector": 0}[spec.kind]
            norm = block.norm(dim=axis, keepdim=True)
            block.mul_(torch.where(norm > 0, r / norm, torch.zeros_like(norm)))
        return out

    def logits(self, theta: Tensor, x: Tensor) -> Tensor:
        w = self.unflatten(theta)
        x = x.to(theta.device)
        C, n, T, d, H = theta.shape[0], x.shape[0], self.SEQ, self.d_model, self.n_heads
        p = self.n_operands
        tokens = torch.stack(
            [x[:, 0], torch.full_like(x[:, 0], p), x[:, 1], torch.full_like(x[:, 0], p + 1)], 1
        )  # (n, T)
        h = torch.index_select(w["embed"], 1, tokens.reshape(-1)).view(C, n, T, d)
        h = h + w["pos"].unsqueeze(1)
        causal = torch.ones(T, T, dtype=torch.bool, device=theta.device).tril()
        for i in range(self.depth):
            last = i == self.depth - 1  # only the last position feeds the read-out
            a = _layer_norm(h, w[f"ln1_g{i}"], w[f"ln1_b{i}"])
            flat = a.reshape(C, n * T, d)
            k = torch.baddbmm(w[f"b_K{i}"].unsqueeze(1), flat, w[f"W_K{i}"])
            v = torch.baddbmm(w[f"b_V{i}"].unsqueeze(1), flat, w[f"W_V{i}"])
            k, v = (t.view(C, n, T, H, d // H).transpose(2, 3) for t in (k, v))  # (C,n,H,T,dh)
            a_q = a[:, :, -1:] if last else a
            tq = a_q.shape[2]
            q = torch.baddbmm(w[f"b_Q{i}"].unsqueeze(1), a_q.reshape(C, n * tq, d), w[f"W_Q{i}"])
            q = q.view(C, n, tq, H, d // H).transpose(2, 3)  # (C, n, H, tq, dh)
            mask = causal[-tq:]  # the queries' rows of the causal mask
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (C, n, H, tq, dh)
            z = z.transpose(2, 3).reshape(C, n * tq, d)
            h = a_q + torch.baddbmm(w[f"b_O{i}"].unsqueeze(1), z, w[f"W_O{i}"]).view(C, n, tq, d)
            hidden = F.gelu(
                torch.baddbmm(
                    w[f"b_in{i}"].unsqueeze(1),
                    _layer_norm(h, w[f"ln2_g{i}"], w[f"ln2_b{i}"]).reshape(C, n * tq, d),
                    w[f"W_in{i}"],
                )
            )
            h = h + torch.baddbmm(w[f"b_out{i}"].unsqueeze(1), hidden, w[f"W_out{i}"]).view(
                C, n, tq, d
            )
        out = _layer_norm(h[:, :, -1], w["lnf_g"], w["lnf_b"])  # (C, n, d)
        return torch.bmm(out, w["W_U"])  # (C, n, K)


#: model name -> constructor(n_operands, num_classes, **knobs)
MODELS: dict[str, Callable[..., ChainModel]] = {
    "transformer": Transformer,
    "mlp": EmbeddingMLP,
    "quadratic": QuadraticMLP,
    "onehot": OneHotMLP,
    "decoder": Decoder,
}

#: the size knobs each model accepts as overrides
KNOBS: dict[str, tuple[str, ...]] = {
    "transformer": ("d_model", "n_heads", "d_head", "d_mlp", "init_scale"),
    "mlp": ("d_embed", "width", "init_scale"),
    "quadratic": ("width", "init_scale"),
    "onehot": ("width", "depth", "init_scale"),
    "decoder": ("d_model", "n_heads", "depth", "init_row_norm", "init_scale"),
}
