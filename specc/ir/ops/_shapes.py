"""Shared helpers for the shape rules: checks that raise OpError, and symbolic size arithmetic.

Every size here is a `Dim` (an int or a symbol such as N or T); arithmetic goes through
`specc.ir.dims` so that symbolic sizes stay exact.
"""
from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from .. import dims
from ..dims import Dim, fmt_shape
from ..types import DTYPE_BYTES, FLOAT_DTYPES, INT_DTYPES, TensorType
from .base import OpError, OpParams


# OpParams validate strictly: `true` is not a 1 and "3" is not a 3.
Pos = Annotated[int, Field(gt=0)]
NonNeg = Annotated[int, Field(ge=0)]
Prob = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# torch's conv and pooling kernels take their geometry as 32-bit ints (larger ones overflow at run time)
INT32_MAX = 2**31 - 1
PosOrTuple = Union[Annotated[int, Field(gt=0, le=INT32_MAX)],
                   tuple[Annotated[int, Field(gt=0, le=INT32_MAX)], ...]]  # kernel sizes, strides, dilations
NonNegOrTuple = Union[Annotated[int, Field(ge=0, le=INT32_MAX)],
                      tuple[Annotated[int, Field(ge=0, le=INT32_MAX)], ...]]  # paddings
MAX_RNN_LAYERS = 1000
RnnLayers = Annotated[int, Field(gt=0, le=MAX_RNN_LAYERS)]  # each layer is a weight matrix and a loop in torch

SPATIAL = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def layout(n: int) -> str:
    """The batched channels-first layout of an n-d spatial op: 'N, C, H, W'."""
    return ", ".join(("N", "C") + SPATIAL[n])


# --- checks --------------------------------------------------------------------------------

def expect_rank(op: str, x: TensorType, *layouts: str, i: int = 0) -> None:
    """Raise E0305 unless x has the rank of one of `layouts` ('N, C, H, W')."""
    ranks = [len(lay.split(", ")) for lay in layouts]
    if x.rank in ranks:
        return
    r = " or ".join(f"{n}-d" for n in ranks)
    shapes = " or ".join(f"[{lay}]" for lay in layouts)
    raise OpError(f"{op} expects a {r} input {shapes} but got {x}", code="E0305", input=i)


def expect_min_rank(op: str, x: TensorType, n: int, i: int = 0) -> None:
    if x.rank < n:
        raise OpError(f"{op} expects an input with at least {n} dims but got {x}", code="E0305", input=i)


def expect_float(op: str, x: TensorType, i: int = 0) -> None:
    if x.dtype not in FLOAT_DTYPES:
        raise OpError(f"{op} expects a floating-point input but got {x}", code="E0306", input=i)


def static(op: str, d: Dim, what: str, x: TensorType, i: int = 0) -> int:
    """A size the op must know to build its weights (channels, features): it must be an int."""
    if not dims.is_static(d):
        raise OpError(f"{op} needs a fixed number of {what} but its input {x} has {d}",
                      code="E0302", input=i)
    return d


def with_values(params: OpParams, **update) -> OpParams:
    """A copy with some fields set, trusted (they come from shape inference, not the user):
    model_construct skips validation and the copy machinery of model_copy, which a
    10,000-layer spec feels."""
    return type(params).model_construct(params.model_fields_set | update.keys(), **{**params.__dict__, **update})


def fill(op: str, params: OpParams, field: str, actual: Dim, what: str, whose: str = "its input"):
    """Fill the inferred input-size `field` from the input, or check the value the user gave."""
    given = getattr(params, field)
    if given is None:
        return with_values(params, **{field: actual})
    if given != actual:
        raise OpError(f"{op} got {field} {dims.fmt(given)} but {whose} has {dims.fmt(actual)} {what}",
                      code="E0301", arg=field)
    return params


def check(cond: bool, message: str, arg: str | None = None, code: str = "E0307") -> None:
    """Raise a bad-parameter error (E0307 by default) unless `cond`."""
    if not cond:
        raise OpError(message, code=code, arg=arg)


def norm_dim(op: str, dim: int, rank: int, arg: str = "dim") -> int:
    """A dim index in [-rank, rank) as a non-negative index."""
    if not -rank <= dim < rank:
        raise OpError(f"{op} got {arg} {dim} but its input has {rank} dims", code="E0307", arg=arg)
    return dim % rank


def tup(op: str, name: str, value, n: int) -> tuple:
    """An int-or-tuple parameter (kernel_size=3) as an n-tuple: (3, 3)."""
    if isinstance(value, (int, float)) or value is None:
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise OpError(f"{op} got {name} {list(value)} but needs {n} value{'s' * (n > 1)}",
                      code="E0307", arg=name)
    return value


# --- size arithmetic -----------------------------------------------------------------------

def window_out(size: Dim, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> Dim:
    """Output size of a convolution or pooling window along one dim (torch's formula)."""
    span = dims.sub(dims.add(size, 2 * p), d * (k - 1) + 1)  # size + 2p - d(k-1) - 1
    if not ceil_mode:
        return dims.add(dims.floordiv(span, s), 1)
    out = dims.add(dims.floordiv(dims.add(span, s - 1), s), 1)
    # torch: the last window must start inside the input or the left padding. It always does when
    # p + s <= d(k-1) + 1; otherwise whether it does depends on the size, which must then be known.
    if dims.is_static(size):
        return out - 1 if (out - 1) * s >= size + p else out
    if p + s > d * (k - 1) + 1:
        raise OpError(f"ceil_mode = true with kernel {k}, stride {s} and padding {p} needs a fixed input size, "
                      f"not {size}: torch's rule for the last window depends on its value",
                      code="E0302", arg="ceil_mode")
    return out


def transpose_out(size: Dim, k: int, s: int, p: int, d: int, out_pad: int) -> Dim:
    """Output size of a transposed convolution along one dim."""
    return dims.add(dims.mul(dims.sub(size, 1), s), d * (k - 1) - 2 * p + out_pad + 1)


def check_positive(op: str, x: TensorType, out: tuple[Dim, ...], what: str) -> None:
    """Raise E0302 if a static output size came out below 1 (the input is too small)."""
    if any(dims.is_static(d) and d < 1 for d in out):
        raise OpError(f"{op} input {x} is too small for {what}: the output would be {fmt_shape(out)}",
                      code="E0302", input=0)


def broadcast(op: str, a: tuple[Dim, ...], b: tuple[Dim, ...], ta=None, tb=None) -> tuple[Dim, ...]:
    """numpy broadcasting of two shapes; symbolic sizes broadcast only with 1 or themselves."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for i, (x, y) in enumerate(zip(a, b)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            what = f"{ta} and {tb}" if ta is not None else f"{fmt_shape(a)} and {fmt_shape(b)}"
            raise OpError(f"{op} cannot broadcast {what}: dim {i - n} is {x} vs {y}", code="E0302")
    return tuple(out)


def _kind(dtype: str) -> int:
    """torch's dtype categories, in promotion order: bool < integer < floating point."""
    return 2 if dtype in FLOAT_DTYPES else 1 if dtype in INT_DTYPES else 0


def promote(*dtypes: str) -> str:
    """The result dtype of an elementwise op on tensors of these dtypes (torch's promotion)."""
    top = max(_kind(t) for t in dtypes)
    ts = sorted({t for t in dtypes if _kind(t) == top}, key=lambda t: DTYPE_BYTES[t])
    if len(ts) == 1:
        return ts[0]
    if set(ts) == {"float16", "bfloat16"}:
        return "float32"
    if set(ts) == {"int8", "uint8"}:
        return "int16"
    return ts[-1]


def promote_tensors(*types: TensorType) -> str:
    """The result dtype of an elementwise op on these tensors. As in torch, a 0-d tensor (a Sum over
    every dim) counts like a Python number: it can raise the category (int to float), not the size
    within one, so float16[N] + float32[] is float16."""
    sized, scalars = [t.dtype for t in types if t.rank], [t.dtype for t in types if not t.rank]
    if not sized or not scalars:
        return promote(*sized, *scalars)
    a, b = promote(*sized), promote(*scalars)
    return promote(a, b) if _kind(b) > _kind(a) else a


def expect_same_dtype(op: str, inputs: tuple[TensorType, ...]) -> None:
    """Raise E0306 unless all inputs share one dtype (ops that do not promote: matmul, attention)."""
    for i, t in enumerate(inputs[1:], 1):
        if t.dtype != inputs[0].dtype:
            raise OpError(f"{op} needs {'both' if len(inputs) == 2 else 'all'} inputs of one dtype, got "
                          f"{inputs[0].dtype} and {t.dtype}", code="E0306", input=i)
