"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, GroupNorm, RMSNorm."""
from __future__ import annotations

from ..dims import fmt_shape
from ._shapes import (Pos, PosFloat, PosOrTuple, Prob, check, expect_float, expect_min_rank, expect_rank, fill,
                      layout, static, tup, with_values)
from .base import Inferred, OpDef, OpError, OpParams, register


def _affine(shape: tuple, weight: bool, bias: bool) -> dict:
    return ({"weight": shape} if weight else {}) | ({"bias": shape} if bias else {})


# --- BatchNorm -----------------------------------------------------------------------------

class BatchNormParams(OpParams):
    num_features: int | None = None
    eps: PosFloat = 1e-5
    momentum: Prob | None = 0.1
    affine: bool = True
    track_running_stats: bool = True


def _register_batchnorm(n: int) -> None:
    name = f"BatchNorm{n}d"
    layouts = ("N, C", "N, C, L") if n == 1 else (layout(n),)

    def infer(p, inputs):
        x, = inputs
        expect_rank(name, x, *layouts)
        expect_float(name, x)
        p = fill(name, p, "num_features", static(name, x.shape[1], "channels", x), "channels")
        return Inferred(p, (x,))

    register(OpDef(
        name=name, params=type(f"{name}Params", (BatchNormParams,), {"__module__": __name__}),
        infer=infer, doc=f"Batch normalisation over the channels: {' or '.join(f'[{s}] -> [{s}]' for s in layouts)}.",
        param_shapes=lambda p: _affine((p.num_features,), p.affine, p.affine),
        inferred=("num_features",),
        positional=("num_features", "eps", "momentum", "affine", "track_running_stats"),
        category="norm", example=f"x |> {name}",
    ))


for _n in (1, 2, 3):
    _register_batchnorm(_n)


# --- LayerNorm and RMSNorm: normalise over the trailing dims ---------------------------------

def _normalized_shape(name: str, p, x):
    """Fill normalized_shape with the input's last dim, or check the trailing dims against it."""
    expect_min_rank(name, x, 1)
    expect_float(name, x)
    if p.normalized_shape is None:
        return with_values(p, normalized_shape=(static(name, x.shape[-1], "features", x),))
    given = tup(name, "normalized_shape", p.normalized_shape, 1) if isinstance(p.normalized_shape, int) \
        else tuple(p.normalized_shape)
    check(len(given) > 0, f"{name} got an empty normalized_shape", arg="normalized_shape")
    if x.shape[-len(given):] != given:
        raise OpError(f"{name} got normalized_shape {fmt_shape(given)} but its input ends in "
                      f"{fmt_shape(x.shape[-len(given):])}", code="E0301", arg="normalized_shape")
    return with_values(p, normalized_shape=given)


class LayerNormParams(OpParams):
    normalized_shape: PosOrTuple | None = None
    eps: PosFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True


def _layer_norm(p, inputs):
    return Inferred(_normalized_shape("LayerNorm", p, inputs[0]), inputs)


register(OpDef(
    name="LayerNorm", params=LayerNormParams, infer=_layer_norm,
    doc="Layer normalisation over the trailing normalized_shape dims (default the last): [*, S] -> [*, S].",
    param_shapes=lambda p: _affine(tuple(p.normalized_shape), p.elementwise_affine,
                                   p.elementwise_affine and p.bias),
    inferred=("normalized_shape",),
    positional=("normalized_shape", "eps", "elementwise_affine", "bias"),
    category="norm", example="x |> LayerNorm",
))


class RMSNormParams(OpParams):
    normalized_shape: PosOrTuple | None = None
    eps: PosFloat | None = None
    elementwise_affine: bool = True


def _rms_norm(p, inputs):
    return Inferred(_normalized_shape("RMSNorm", p, inputs[0]), inputs)


register(OpDef(
    name="RMSNorm", params=RMSNormParams, infer=_rms_norm,
    doc="Root-mean-square normalisation over the trailing normalized_shape dims (default the last): "
        "[*, S] -> [*, S].",
    param_shapes=lambda p: _affine(tuple(p.normalized_shape), p.elementwise_affine, False),
    inferred=("normalized_shape",), positional=("normalized_shape", "eps", "elementwise_affine"),
    category="norm", example="x |> RMSNorm(eps = 1e-6)",
))


# --- GroupNorm -----------------------------------------------------------------------------

class GroupNormParams(OpParams):
    num_groups: Pos
    num_channels: int | None = None
    eps: PosFloat = 1e-5
    affine: bool = True


def _group_norm(p: GroupNormParams, inputs):
    x, = inputs
    expect_min_rank("GroupNorm", x, 2)
    expect_float("GroupNorm", x)
    channels = static("GroupNorm", x.shape[1], "channels", x)
    # fill's check, with the help the builder gives to `inferred` sizes (num_channels is not one: see below)
    if p.num_channels not in (None, channels):
        raise OpError(f"GroupNorm got num_channels {p.num_channels} but its input has {channels} channels",
                      code="E0301", arg="num_channels", help="drop num_channels; specc infers it from the input")
    p = with_values(p, num_channels=channels)
    check(p.num_channels % p.num_groups == 0,
          f"GroupNorm got num_groups {p.num_groups} but its {p.num_channels} channels are not "
          f"divisible by it", arg="num_groups")
    return Inferred(p, (x,))


register(OpDef(
    name="GroupNorm", params=GroupNormParams, infer=_group_norm,
    doc="Group normalisation: [N, C, *] -> [N, C, *], the C channels split into num_groups groups "
        "(C must divide by num_groups).\nnum_channels is inferred from the input (C) and checked when given, "
        "as in torch's GroupNorm(32, 64).",
    param_shapes=lambda p: _affine((p.num_channels,), p.affine, p.affine),
    # torch's order, num_channels included: GroupNorm(32) or GroupNorm(32, 64). num_channels is not
    # `inferred`: the builder drops inferred fields from the positional order unless they come first
    # (Linear(in, out)), so it would read GroupNorm(32, 64) as eps = 64. The rule fills it all the same.
    positional=("num_groups", "num_channels", "eps", "affine"),
    category="norm", example="x |> GroupNorm(32)",
))
