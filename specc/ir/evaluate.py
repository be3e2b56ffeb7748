"""Our own evaluator for constant expressions (never Python's eval).

Values are int, float, bool, str, None, tuples, and symbolic dims (`Sym`). Arithmetic
mixes ints and symbols through specc.ir.dims, so `2 * width` and `T * C` both work.
"""
from __future__ import annotations

import math

from . import dims as D

NUMBER = (int, float)
MAX_INT = 2**63 - 1  # int64: no size or setting needs more, and Python's ints grow without bound


class EvalError(Exception):
    def __init__(self, message: str, help: str | None = None):
        super().__init__(message)
        self.message, self.help = message, help


def is_dim(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, D.Sym)


def type_name(v) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, tuple):
        return "a list"
    if isinstance(v, D.Sym):
        return "a symbolic size"
    if v is None:
        return "none"
    return "a tensor"


def in_range(v):
    """v, if it is a number specc computes with: within int64, and finite."""
    if isinstance(v, bool):
        return v
    coefficients = [c for _, c in v.terms] if isinstance(v, D.Sym) else [v] if isinstance(v, int) else []
    if any(abs(c) > MAX_INT for c in coefficients):
        raise EvalError("the result is out of range: specc's integers fit in 64 bits (at most 2**63 - 1)")
    if isinstance(v, float) and not math.isfinite(v):
        raise EvalError("the result is not a finite number", help="a value this large is probably a typo")
    return v


def binary(op: str, a, b):
    """a op b, within the range `in_range` allows."""
    return in_range(_binary(op, a, b))


MAX_SEQUENCE = 100_000  # the longest string or list an expression may build


def _binary(op: str, a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        raise EvalError(f"cannot apply `{op}` to {type_name(a)} and {type_name(b)}")
    if op == "+" and isinstance(a, (str, tuple)) and type(a) is type(b):
        if len(a) + len(b) > MAX_SEQUENCE:  # doubling one 40 times would ask for terabytes
            raise EvalError(f"the result would be {type_name(a)} of {len(a) + len(b):,} "
                            f"{'characters' if isinstance(a, str) else 'items'}; at most {MAX_SEQUENCE:,}")
        return a + b
    if is_dim(a) and is_dim(b):
        if op in ("+", "-", "*"):
            try:
                return {"+": D.add, "-": D.sub, "*": D.mul}[op](a, b)
            except ValueError as err:  # too many terms
                raise EvalError(str(err)) from None
        if op in ("//", "/", "%") and b == 0:
            raise EvalError("division by zero")
        if op == "//":
            return D.floordiv(a, b)
        if op == "%" and isinstance(a, int) and isinstance(b, int):
            return a % b
        if op == "/":
            if isinstance(a, int) and isinstance(b, int):
                return a / b
            try:
                return D.exact_div(a, b)
            except ValueError as err:
                raise EvalError(str(err)) from None
    if isinstance(a, NUMBER) and isinstance(b, NUMBER):
        if op in ("/", "//", "%") and b == 0:
            raise EvalError("division by zero")
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if op == "/" else 0,
                "//": a // b if op == "//" else 0, "%": a % b if op == "%" else 0}[op]
    raise EvalError(f"cannot apply `{op}` to {type_name(a)} and {type_name(b)}")


def compare(op: str, a, b) -> bool:
    if op in ("==", "!="):
        if is_dim(a) and is_dim(b) and (isinstance(a, D.Sym) or isinstance(b, D.Sym)) and a != b:
            # `N == 4` may hold for one batch and not the next; equal forms (`H//2` twice) are equal
            raise EvalError(f"cannot tell whether {a} {op} {b}: the size is known only at run time")
        return (a == b) == (op == "==")
    if isinstance(a, NUMBER) and isinstance(b, NUMBER) and not isinstance(a, bool) and not isinstance(b, bool):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    symbolic = isinstance(a, D.Sym) or isinstance(b, D.Sym)
    raise EvalError(f"cannot compare {type_name(a)} and {type_name(b)} with `{op}`",
                    help="a symbolic size is known only at run time: a comparison holds only between equal "
                         "forms (`H // 2 == H // 2`)" if symbolic else None)


def truth(v, what: str = "a condition") -> bool:
    if isinstance(v, bool):
        return v
    raise EvalError(f"{what} must be true or false, got {type_name(v)}")


def negate(v):
    if is_dim(v):
        return D.neg(v)
    if isinstance(v, float):
        return -v
    raise EvalError(f"cannot negate {type_name(v)}")
