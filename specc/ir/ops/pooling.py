"""Pooling (MaxPool/AvgPool 1d/2d and their adaptive forms, generated from one definition each)
and Upsample."""
from __future__ import annotations

import math
from typing import Literal, Union

from .. import dims
from ..dims import Dim
from ._shapes import (SPATIAL, NonNegOrTuple, Pos, PosFloat, PosOrTuple, check, check_positive, expect_float,
                      expect_rank, layout, tup, window_out)
from .base import Inferred, OpDef, OpParams, register


class MaxPoolParams(OpParams):
    kernel_size: PosOrTuple
    stride: PosOrTuple | None = None  # None: the kernel size, like torch
    padding: NonNegOrTuple = 0
    dilation: PosOrTuple = 1
    ceil_mode: bool = False


class AvgPoolParams(OpParams):
    kernel_size: PosOrTuple
    stride: PosOrTuple | None = None
    padding: NonNegOrTuple = 0
    ceil_mode: bool = False
    count_include_pad: bool = True


class AdaptivePoolParams(OpParams):
    output_size: Union[Pos, tuple[Pos | None, ...]]  # None in a tuple keeps that input size


def _pool_infer(name: str, n: int):
    def infer(p, inputs):
        x, = inputs
        expect_rank(name, x, layout(n))
        expect_float(name, x)
        k = tup(name, "kernel_size", p.kernel_size, n)
        s = k if p.stride is None else tup(name, "stride", p.stride, n)
        pad = tup(name, "padding", p.padding, n)
        d = tup(name, "dilation", getattr(p, "dilation", 1), n)
        check(all(2 * pi <= ki for pi, ki in zip(pad, k)),  # torch: of the kernel, whatever the dilation
              f"{name} got padding {list(pad)} but it must be at most half the kernel size {list(k)}",
              arg="padding")
        out = tuple(window_out(*a, ceil_mode=p.ceil_mode) for a in zip(x.shape[2:], k, s, pad, d))
        check_positive(name, x, out, f"kernel_size {list(k)}")
        return Inferred(p, (x.with_shape(x.shape[:2] + out),))
    return infer


def _adaptive_infer(name: str, n: int):
    def infer(p, inputs):
        x, = inputs
        expect_rank(name, x, layout(n))
        expect_float(name, x)
        size = tup(name, "output_size", p.output_size, n)
        check(all(s is None or s > 0 for s in size), f"{name} got output_size {list(size)}",
              arg="output_size")
        check(n > 1 or None not in size, f"{name} needs an output size; none (keep the input's) is for 2-d pools",
              arg="output_size")
        out = tuple(d if s is None else s for s, d in zip(size, x.shape[2:]))
        return Inferred(p, (x.with_shape(x.shape[:2] + out),))
    return infer


def _doc(kind: str, n: int) -> str:
    """The shape rule: the output size along the first spatial dim (the other alike)."""
    what = "Maximum" if "Max" in kind else "Average"
    first, *rest = SPATIAL[n]
    outs = ", ".join(f"{d}_out" for d in SPATIAL[n])
    alike = f" ({rest[0]}_out alike)" if rest else ""
    if kind.startswith("Adaptive"):
        if n == 1:
            return f"{what} over windows sized to give output_size: [N, C, L] -> [N, C, output_size]."
        return (f"{what} over windows sized to give output_size: [{layout(n)}] -> [N, C, *output_size]; "
                "a none in the list keeps that input size.")
    span = f"{first} + 2*padding - " + ("dilation*(kernel_size - 1) - 1" if kind == "MaxPool" else "kernel_size")
    return (f"{what} over kernel_size windows: [{layout(n)}] -> [N, C, {outs}].\n"
            f"{first}_out = floor(({span}) / stride) + 1{alike}; stride defaults to kernel_size.\n"
            "ceil_mode = true rounds up instead, less one if the last window would then start in the "
            "right padding. padding must be at most half of kernel_size.")


def _register(kind: str, n: int) -> None:
    name = f"{kind}{n}d"
    params = {"MaxPool": MaxPoolParams, "AvgPool": AvgPoolParams}.get(kind, AdaptivePoolParams)
    adaptive = params is AdaptivePoolParams
    register(OpDef(
        name=name, params=type(f"{name}Params", (params,), {"__module__": __name__}),
        infer=(_adaptive_infer if adaptive else _pool_infer)(name, n), doc=_doc(kind, n),
        # MaxPool: not ceil_mode, which torch's order puts after return_indices (not supported here)
        positional=tuple(f for f in params.model_fields if not (kind == "MaxPool" and f == "ceil_mode")),
        category="pooling",
        example=f"x |> {name}({1 if adaptive else 2})",
    ))


for _kind in ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool"):
    for _n in (1, 2):
        _register(_kind, _n)


# --- Upsample ------------------------------------------------------------------------------

class UpsampleParams(OpParams):
    size: PosOrTuple | None = None
    scale_factor: PosFloat | tuple[PosFloat, ...] | None = None
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: bool | None = None  # only for bilinear


def _scaled(d, s: float, x) -> Dim:
    if float(s).is_integer():
        return dims.mul(d, int(s))
    check(dims.is_static(d), f"Upsample needs a whole-number scale_factor to scale the size {d} of "
          f"its input {x}, or give size", arg="scale_factor")
    return math.floor(d * s)


def _upsample(p: UpsampleParams, inputs):
    x, = inputs
    if p.mode == "bilinear":
        expect_rank("Upsample", x, layout(2))
    else:
        expect_rank("Upsample", x, layout(1), layout(2), layout(3))
    expect_float("Upsample", x)
    check((p.size is None) != (p.scale_factor is None), "Upsample needs exactly one of size and scale_factor",
          arg="scale_factor")
    check(p.align_corners is None or p.mode != "nearest",
          "Upsample got align_corners but it only applies to mode \"bilinear\"", arg="align_corners")
    n, spatial = x.rank - 2, x.shape[2:]
    if p.size is not None:
        out = tup("Upsample", "size", p.size, n)
    else:
        scale = tup("Upsample", "scale_factor", p.scale_factor, n)
        out = tuple(_scaled(d, s, x) for d, s in zip(spatial, scale))
    check_positive("Upsample", x, out, "its scale_factor")
    return Inferred(p, (x.with_shape(x.shape[:2] + out),))


register(OpDef(
    name="Upsample", params=UpsampleParams, infer=_upsample,
    doc="Resizes the spatial dims: [N, C, *S] -> [N, C, *size], or [N, C, *floor(S * scale_factor)].\n"
        "Exactly one of size and scale_factor; a symbolic S needs a whole-number scale_factor. "
        "mode \"nearest\" takes 3-d to 5-d inputs, \"bilinear\" 4-d ones.",
    positional=("size", "scale_factor", "mode", "align_corners"), category="pooling",
    example="x |> Upsample(scale_factor = 2)",
))
