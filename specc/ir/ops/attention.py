"""MultiheadAttention (batch-first, 1 to 3 inputs) and ScaledDotProductAttention."""
from __future__ import annotations

from .. import dims
from ._shapes import (Pos, Prob, broadcast, check, expect_float, expect_min_rank, expect_rank, expect_same_dtype,
                      fill, static)
from .base import Inferred, OpDef, OpError, OpParams, register


class MultiheadAttentionParams(OpParams):
    embed_dim: int | None = None
    num_heads: Pos
    dropout: Prob = 0.0
    bias: bool = True
    kdim: int | None = None
    vdim: int | None = None
    causal: bool = False  # mask attention to later positions (a decoder)


def _mha(p: MultiheadAttentionParams, inputs):
    name = "MultiheadAttention"
    q, k, v = (inputs + (inputs[-1],) * 2)[:3]  # (q) -> (q, q, q); (q, k) -> (q, k, k)
    for i, t in enumerate(inputs):
        expect_rank(name, t, "N, T, E", i=i)
        expect_float(name, t, i=i)
    expect_same_dtype(name, inputs)
    ki, vi = min(1, len(inputs) - 1), len(inputs) - 1  # which input gives the key and the value
    p = fill(name, p, "embed_dim", static(name, q.shape[2], "features", q), "features")
    p = fill(name, p, "kdim", static(name, k.shape[2], "features", k, ki), "features", "its key")
    p = fill(name, p, "vdim", static(name, v.shape[2], "features", v, vi), "features", "its value")
    check(p.embed_dim % p.num_heads == 0,
          f"{name} got num_heads {p.num_heads} but embed_dim {p.embed_dim} is not divisible by it",
          arg="num_heads")
    if k.shape[0] != q.shape[0] or v.shape[0] != q.shape[0]:
        raise OpError(f"{name} got a query {q}, key {k} and value {v} with different batch sizes",
                      input=1)
    if k.shape[1] != v.shape[1]:
        raise OpError(f"{name} got a key {k} and value {v} of different lengths", input=2)
    return Inferred(p, (q,))


def _mha_params(p) -> dict:
    e, b = p.embed_dim, {"in_proj_bias": (3 * p.embed_dim,)} if p.bias else {}
    if p.kdim == e and p.vdim == e:
        w = {"in_proj_weight": (3 * e, e)}
    else:
        w = {"q_proj_weight": (e, e), "k_proj_weight": (e, p.kdim), "v_proj_weight": (e, p.vdim)}
    return w | b | {"out_proj.weight": (e, e)} | ({"out_proj.bias": (e,)} if p.bias else {})


def _mha_macs(p, inputs, outputs):
    q, k = inputs[0], inputs[min(1, len(inputs) - 1)]
    n, lq, s, e = q.shape[0], q.shape[1], k.shape[1], p.embed_dim
    proj = dims.add(dims.mul(dims.mul(n, lq), 2 * e * e),            # q and out projections
                    dims.mul(dims.mul(n, s), e * (p.kdim + p.vdim)))   # k and v projections
    return dims.add(proj, dims.prod((n, lq, s, 2 * e)))               # scores and weighted sum


register(OpDef(
    name="MultiheadAttention", params=MultiheadAttentionParams, infer=_mha,
    doc="Multi-head attention, batch-first: (query [N, T, E], key [N, S, kdim], value [N, S, vdim]) "
        "-> [N, T, E].\nOne input is self-attention (key = value = query), two give key = value; causal = true masks "
        "later positions. E must divide by num_heads.",
    param_shapes=_mha_params, macs=_mha_macs, inputs=(1, 3), inferred=("embed_dim", "kdim", "vdim"),
    positional=("embed_dim", "num_heads", "dropout", "bias"),
    category="attention", example="x |> MultiheadAttention(12, causal = true)",
))


class SDPAParams(OpParams):
    dropout_p: Prob = 0.0  # applied only while training
    is_causal: bool = False
    scale: float | None = None


def _sdpa(p: SDPAParams, inputs):
    name = "ScaledDotProductAttention"
    q, k, v = inputs
    for i, t in enumerate(inputs):
        expect_min_rank(name, t, 2, i=i)
        expect_float(name, t, i=i)
    expect_same_dtype(name, inputs)
    if k.shape[-1] != q.shape[-1]:
        raise OpError(f"{name} got a query {q} and key {k} with different feature sizes", input=1)
    if k.shape[-2] != v.shape[-2]:
        raise OpError(f"{name} got a key {k} and value {v} of different lengths", input=2)
    batch = broadcast(name, broadcast(name, q.shape[:-2], k.shape[:-2], q, k), v.shape[:-2], q, v)
    return Inferred(p, (q.with_shape(batch + (q.shape[-2], v.shape[-1])),))


def _sdpa_macs(p, inputs, outputs):
    q, k, v = inputs
    return dims.mul(dims.prod(outputs[0].shape[:-1] + (k.shape[-2],)), dims.add(q.shape[-1], v.shape[-1]))


register(OpDef(
    name="ScaledDotProductAttention", params=SDPAParams, infer=_sdpa,
    doc="softmax(q k^T * scale) v: (q [*, L, E], k [*, S, E], v [*, S, Ev]) -> [*, L, Ev].\n"
        "The batch dims * broadcast; torch.nn.functional.scaled_dot_product_attention.",
    macs=_sdpa_macs, inputs=(3, 3), positional=("dropout_p", "is_causal", "scale"),
    category="attention", example="ScaledDotProductAttention(q, k, v, is_causal = true)",
))
