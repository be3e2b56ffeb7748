"""Arithmetic: Add, Sub, Mul, Div (broadcasting, or with a scalar `other`), MatMul, Mean, Sum."""
from __future__ import annotations

from .. import dims
from ..types import FLOAT_DTYPES, TensorType
from ._shapes import broadcast, check, expect_float, expect_same_dtype, norm_dim, promote_tensors
from .base import Inferred, OpDef, OpError, OpParams, register


class BinaryParams(OpParams):
    other: int | float | None = None  # the second operand when the op has one tensor input


def _binary(name: str):
    def infer(p: BinaryParams, inputs):
        x = inputs[0]
        for i, t in enumerate(inputs):
            if name == "Sub" and t.dtype == "bool":  # torch refuses it
                raise OpError(f"Sub is not defined for bool tensors, got {t}", code="E0306", input=i,
                              help="give the input a number dtype (float32, int64) to subtract with it")
        if len(inputs) == 2:
            check(p.other is None, f"{name} got both a second input and other {p.other}", arg="other")
            y = inputs[1]
            shape, dtype = broadcast(name, x.shape, y.shape, x, y), promote_tensors(x, y)
        else:
            check(p.other is not None, f"{name} needs a second input or a scalar other", arg="other")
            shape, dtype = x.shape, x.dtype
            if dtype not in FLOAT_DTYPES and (isinstance(p.other, float) or dtype == "bool"):
                dtype = "float32" if isinstance(p.other, float) else "int64"
        if name == "Div" and dtype not in FLOAT_DTYPES:
            dtype = "float32"  # true division
        return Inferred(p, (TensorType(dtype, shape),))
    return infer


for _name, _sym in (("Add", "+"), ("Sub", "-"), ("Mul", "*"), ("Div", "/")):
    register(OpDef(
        name=_name, params=type(f"{_name}Params", (BinaryParams,), {"__module__": __name__}),
        infer=_binary(_name),
        doc=f"a {_sym} b with numpy broadcasting: [*A], [*B] -> [*broadcast(A, B)]; or x {_sym} other for a "
            f"scalar other: [*] -> [*].\nThe dtype follows torch's promotion"
            f"{' and is floating point (true division)' if _name == 'Div' else ''}.",
        inputs=(1, 2), positional=("other",), category="arith",
        example=f"{_name}(a, b)" if _name != "Mul" else "x |> Mul(0.5)",
    ))


class MatMulParams(OpParams):
    pass


def _matmul(p, inputs):
    a, b = inputs
    for i, t in enumerate(inputs):
        if t.rank == 0:
            raise OpError(f"MatMul expects inputs with at least 1 dim but got {t}", code="E0305", input=i)
    sa = (1,) + a.shape if a.rank == 1 else a.shape  # a vector is a row (or a column, for b)
    sb = b.shape + (1,) if b.rank == 1 else b.shape
    if sa[-1] != sb[-2]:
        raise OpError(f"MatMul cannot multiply {a} by {b}: {sa[-1]} vs {sb[-2]}", input=1)
    expect_same_dtype("MatMul", inputs)
    batch = broadcast("MatMul", sa[:-2], sb[:-2], a, b)
    shape = batch + sa[-2:-1] * (a.rank > 1) + sb[-1:] * (b.rank > 1)
    return Inferred(p, (TensorType(a.dtype, shape),))


register(OpDef(
    name="MatMul", params=MatMulParams, infer=_matmul,
    doc="torch.matmul(a, b): [*A, n, k] @ [*B, k, m] -> [*broadcast(A, B), n, m].\n"
        "A 1-d a [k] or b [k] drops that dim from the output: [*, n, k] @ [k] -> [*, n].",
    macs=lambda p, i, o: dims.mul(dims.prod(o[0].shape), i[0].shape[-1]),
    inputs=(2, 2), category="arith", example="scores = MatMul(q, kt)",
))


class ReduceParams(OpParams):
    dim: int | tuple[int, ...] | None = None  # None: all dims
    keepdim: bool = False


def _reduce(name: str):
    def infer(p: ReduceParams, inputs):
        x, = inputs
        if name == "Mean":
            expect_float(name, x)
        given = range(x.rank) if p.dim is None else (p.dim,) if isinstance(p.dim, int) else p.dim
        ds = {norm_dim(name, d, x.rank) for d in given}
        check(len(ds) == len(given) and (len(ds) > 0 or p.dim is None), f"{name} got dim {list(given)}: "
              + ("name each dim once" if given else "an empty list; leave `dim` out to reduce over every dim"),
              arg="dim")
        shape = [1 if i in ds else s for i, s in enumerate(x.shape) if p.keepdim or i not in ds]
        dtype = x.dtype if x.dtype in FLOAT_DTYPES else "int64"
        return Inferred(p, (TensorType(dtype, tuple(shape)),))
    return infer


for _name in ("Mean", "Sum"):
    register(OpDef(
        name=_name, params=type(f"{_name}Params", (ReduceParams,), {"__module__": __name__}),
        infer=_reduce(_name),
        doc=f"The {_name.lower()} over `dim` (an int, a list, or all dims): [N, T, C] -> [N, C] for dim = 1.\n"
            "The reduced dims are dropped, or kept as 1 with keepdim = true ([N, 1, C]); all dims: [*] -> []."
            f"{' Integer and bool inputs give int64.' if _name == 'Sum' else ''}",
        positional=("dim", "keepdim"), category="arith", example=f"x |> {_name}(1)",
    ))
