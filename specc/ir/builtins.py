"""The functions a spec can call in an expression: sizes of tensors (`channels(x)`), min/max, conversions."""
from __future__ import annotations

import math

from . import dims as D
from .evaluate import EvalError, in_range, type_name
from .scope import Tensor, is_number

SIZE_BUILTINS = ("channels", "dim", "rank", "features")


def _size(f: str, args: list):
    """channels(x), dim(x, i), rank(x), features(x): sizes of a tensor's type."""
    want = 2 if f == "dim" else 1
    if len(args) != want or not isinstance(args[0], Tensor):
        raise EvalError(f"{f}() takes a tensor" + (" and an index" if f == "dim" else ""))
    shape = args[0].type.shape
    if f == "rank":
        return len(shape)
    index = {"channels": 1, "features": -1}.get(f, args[-1])
    if isinstance(index, bool) or not isinstance(index, int) or not -len(shape) <= index < len(shape):
        raise EvalError(f"{f}(): the tensor is {args[0].type}, it has no dim {index}")
    return shape[index]


def _min_max(f: str, args: list):
    values = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
    if not values or not all(is_number(v) for v in values):
        raise EvalError(f"{f}() takes numbers, or one list of them",
                        help="a symbolic size has no value to compare" if any(
                            isinstance(v, D.Sym) for v in values) else None)
    return (min if f == "min" else max)(values)


def _length(v):
    if not isinstance(v, (tuple, str)):
        raise EvalError(f"len() takes a list or a string, got {type_name(v)}")
    return len(v)


def _sqrt(v):  # GPT-2's scaled init: std = 0.02 / sqrt(2 * layers)
    if not is_number(v):
        raise EvalError("sqrt() takes a number")
    if v < 0:
        raise EvalError(f"sqrt() of a negative number ({v})")
    return math.sqrt(v)


_ONE_ARGUMENT = {
    "int": lambda v: in_range(int(v)),
    "float": lambda v: in_range(float(v)),
    "len": _length,
    "sqrt": _sqrt,
}
BUILTINS = (*SIZE_BUILTINS, "min", "max", *_ONE_ARGUMENT)


def call_builtin(f: str, args: list):
    """`f(*args)` for one of BUILTINS, its arguments evaluated (none POISON); raises EvalError."""
    try:
        if f in SIZE_BUILTINS:
            return _size(f, args)
        if f in ("min", "max"):
            return _min_max(f, args)
        if len(args) != 1:
            raise EvalError(f"{f}() takes one argument, got {len(args)}")
        return _ONE_ARGUMENT[f](args[0])
    except (TypeError, ValueError, OverflowError) as err:
        raise EvalError(f"{f}(): {err}") from None
