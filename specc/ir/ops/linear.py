"""Linear, Embedding and Parameter: the ops that own a weight matrix or a learned tensor."""
from __future__ import annotations

from .. import dims
from ..types import TensorType
from ._shapes import Pos, check, expect_float, expect_min_rank, fill, static
from .base import Inferred, OpDef, OpError, OpParams, register


class LinearParams(OpParams):
    in_features: int | None = None
    out_features: Pos
    bias: bool = True


def _linear(p: LinearParams, inputs):
    x, = inputs
    expect_min_rank("Linear", x, 1)
    expect_float("Linear", x)
    p = fill("Linear", p, "in_features", static("Linear", x.shape[-1], "input features", x), "features")
    return Inferred(p, (x.with_shape(x.shape[:-1] + (p.out_features,)),))


register(OpDef(
    name="Linear", params=LinearParams, infer=_linear,
    doc="y = x W^T + b over the last dim: [*, in_features] -> [*, out_features].",
    param_shapes=lambda p: {"weight": (p.out_features, p.in_features)}
    | ({"bias": (p.out_features,)} if p.bias else {}),
    macs=lambda p, i, o: dims.mul(dims.prod(o[0].shape), p.in_features),
    inferred=("in_features",), positional=("in_features", "out_features", "bias"),
    category="linear", example="x |> Linear(128)",
))


class EmbeddingParams(OpParams):
    num_embeddings: Pos
    embedding_dim: Pos
    padding_idx: int | None = None


def _embedding(p: EmbeddingParams, inputs):
    x, = inputs
    if x.dtype not in ("int32", "int64"):  # torch's embedding takes no narrower ids
        raise OpError(f"Embedding expects int64 or int32 token ids but got {x}", code="E0306", input=0)
    n = p.num_embeddings
    check(p.padding_idx is None or -n <= p.padding_idx < n,
          f"Embedding got padding_idx {p.padding_idx} but has only {n} embeddings", arg="padding_idx")
    return Inferred(p, (TensorType("float32", x.shape + (p.embedding_dim,)),))


register(OpDef(
    name="Embedding", params=EmbeddingParams, infer=_embedding,
    doc="A lookup table: int ids [*] -> float vectors [*, embedding_dim], in the weights' dtype.",
    param_shapes=lambda p: {"weight": (p.num_embeddings, p.embedding_dim)},
    positional=("num_embeddings", "embedding_dim", "padding_idx"), outputs_weight=True,
    category="linear", example="tokens |> wte: Embedding(50257, 768)",
))


class ParameterParams(OpParams):
    shape: tuple[Pos, ...]


register(OpDef(
    name="Parameter", params=ParameterParams,
    infer=lambda p, inputs: Inferred(p, (TensorType("float32", tuple(p.shape)),)),
    doc="A learned tensor, initialised to zeros: no input -> [*shape].\n"
        "E.g. a class token [1, 1, 768] or a position embedding [1, 197, 768]; its state_dict key is "
        "'<layer>.weight'.",
    param_shapes=lambda p: {"weight": tuple(p.shape)},
    inputs=(0, 0), positional=("shape",), outputs_weight=True,
    category="linear", example="cls = class_token: Parameter([1, 1, 768])",
))
