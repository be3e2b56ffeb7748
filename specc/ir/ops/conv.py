"""Conv1d/2d/3d and ConvTranspose1d/2d/3d, generated from one definition each."""
from __future__ import annotations

from typing import Literal

from .. import dims
from ._shapes import (SPATIAL, NonNegOrTuple, Pos, PosOrTuple, check, check_positive, expect_float, expect_rank,
                      fill, layout, static, transpose_out, tup, window_out)
from .base import Inferred, OpDef, OpError, OpParams, register


class ConvParams(OpParams):
    in_channels: int | None = None
    out_channels: Pos
    kernel_size: PosOrTuple
    stride: PosOrTuple = 1
    padding: NonNegOrTuple | Literal["same", "valid"] = 0
    dilation: PosOrTuple = 1
    groups: Pos = 1
    bias: bool = True
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"


class ConvTransposeParams(OpParams):
    in_channels: int | None = None
    out_channels: Pos
    kernel_size: PosOrTuple
    stride: PosOrTuple = 1
    padding: NonNegOrTuple = 0
    output_padding: NonNegOrTuple = 0
    groups: Pos = 1
    bias: bool = True
    dilation: PosOrTuple = 1


def _channels(name: str, p, x):
    """Check rank and dtype, fill in_channels, check groups; return the resolved params."""
    expect_float(name, x)
    p = fill(name, p, "in_channels", static(name, x.shape[1], "channels", x), "channels")
    for field in ("in_channels", "out_channels"):
        c = getattr(p, field)
        check(c % p.groups == 0, f"{name} got groups {p.groups} but {field} {c} is not divisible by it",
              arg="groups")
    return p


def _conv_infer(name: str, n: int):
    def infer(p: ConvParams, inputs):
        x, = inputs
        expect_rank(name, x, layout(n))
        p = _channels(name, p, x)
        k, s, d = (tup(name, f, getattr(p, f), n) for f in ("kernel_size", "stride", "dilation"))
        spatial = x.shape[2:]
        if p.padding == "same":
            check(s == (1,) * n, f"{name} got padding 'same' but stride {list(s)}; 'same' needs stride 1",
                  arg="padding")
            out = spatial
            pad = tuple(di * (ki - 1) - di * (ki - 1) // 2 for ki, di in zip(k, d))  # the larger side
        else:
            pad = (0,) * n if p.padding == "valid" else tup(name, "padding", p.padding, n)
            out = tuple(window_out(*a) for a in zip(spatial, k, s, pad, d))
        check_positive(name, x, out, f"kernel_size {list(k)}")
        _check_padding_mode(name, p.padding_mode, spatial, pad)
        return Inferred(p, (x.with_shape(x.shape[:1] + (p.out_channels,) + out),))
    return infer


def _check_padding_mode(name: str, mode: str, spatial: tuple, pad: tuple) -> None:
    """Reflect padding mirrors the input, so it must be shorter than it; circular may wrap around once."""
    for size, q in zip(spatial, pad):
        if not dims.is_static(size) or mode not in ("reflect", "circular"):
            continue
        if mode == "reflect" and q >= size:
            raise OpError(f"{name} pads {q} by reflection, but the input is only {size} wide there; "
                          "reflect padding must be smaller than the input", arg="padding")
        if mode == "circular" and q > size:
            raise OpError(f"{name} pads {q} circularly, but the input is only {size} wide there; "
                          "circular padding may wrap around at most once", arg="padding")


def _transpose_infer(name: str, n: int):
    def infer(p: ConvTransposeParams, inputs):
        x, = inputs
        expect_rank(name, x, layout(n))
        p = _channels(name, p, x)
        k, s, pad, op, d = (tup(name, f, getattr(p, f), n)
                            for f in ("kernel_size", "stride", "padding", "output_padding", "dilation"))
        check(all(o < max(si, di) for o, si, di in zip(op, s, d)),
              f"{name} got output_padding {list(op)} but it must be smaller than stride or dilation",
              arg="output_padding")
        out = tuple(transpose_out(*a) for a in zip(x.shape[2:], k, s, pad, d, op))
        check_positive(name, x, out, f"kernel_size {list(k)} and padding {list(pad)}")
        return Inferred(p, (x.with_shape(x.shape[:1] + (p.out_channels,) + out),))
    return infer


def _doc(n: int, transpose: bool) -> str:
    """The shape rule: the output size along the first spatial dim (the others alike)."""
    first, *rest = SPATIAL[n]
    sizes = ", ".join(SPATIAL[n])
    outs = ", ".join(f"{d}_out" for d in SPATIAL[n])
    alike = f" ({', '.join(f'{d}_out' for d in rest)} alike)" if rest else ""
    groups = "C and out_channels must divide by groups."
    if transpose:
        return (f"Transposed {n}-d convolution (an upsampling conv): [N, C, {sizes}] -> [N, out_channels, {outs}].\n"
                f"{first}_out = ({first} - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1"
                f"{alike}.\noutput_padding must be below stride or dilation. {groups}")
    return (f"{n}-d convolution: [N, C, {sizes}] -> [N, out_channels, {outs}].\n"
            f"{first}_out = floor(({first} + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1{alike}.\n"
            f"padding = \"same\" keeps the size (stride 1 only); \"valid\" is padding 0. {groups}")


def _register(n: int, transpose: bool) -> None:
    base = ConvTransposeParams if transpose else ConvParams
    name = f"ConvTranspose{n}d" if transpose else f"Conv{n}d"
    params = type(f"{name}Params", (base,), {"__module__": __name__})

    def weight(p):
        k = tup(name, "kernel_size", p.kernel_size, n)
        io = (p.in_channels, p.out_channels // p.groups) if transpose else \
             (p.out_channels, p.in_channels // p.groups)
        return {"weight": io + k} | ({"bias": (p.out_channels,)} if p.bias else {})

    def macs(p, i, o):  # every (input or output) element meets one kernel's worth of weights
        k = dims.prod(tup(name, "kernel_size", p.kernel_size, n))
        if transpose:
            return dims.mul(dims.prod(i[0].shape), p.out_channels // p.groups * k)
        return dims.mul(dims.prod(o[0].shape), p.in_channels // p.groups * k)

    infer = _transpose_infer(name, n) if transpose else _conv_infer(name, n)
    with_out = ("output_padding",) if transpose else ()
    register(OpDef(
        name=name, params=params, infer=infer, doc=_doc(n, transpose),
        param_shapes=weight, macs=macs, inferred=("in_channels",),
        positional=("in_channels", "out_channels", "kernel_size", "stride", "padding", *with_out,
                    *(("groups", "bias", "dilation") if transpose else ("dilation", "groups", "bias"))),
        category="conv",
        example=(f"x |> {name}(64, 2, stride = 2)" if transpose else f"x |> {name}(64, 3, padding = 1)"),
    ))


for _n in (1, 2, 3):
    _register(_n, transpose=False)
for _n in (1, 2, 3):
    _register(_n, transpose=True)
