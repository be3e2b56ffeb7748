"""Syntax tree -> canonical .dlspec text (used by messages, YAML conversion and `fmt`)."""
from __future__ import annotations

from . import ast as A

# binding strength, loosest first; a child looser than its parent gets parentheses
_PREC = {A.Cond: 0, A.BoolOp: 1, A.Compare: 3, A.Pipe: 4}
_OP_PREC = {"+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6}


def precedence(e) -> float:
    """How tightly `e` binds (higher: tighter); a looser operand gets parentheses."""
    if isinstance(e, A.BoolOp):
        return 1 if e.op == "or" else 2
    if isinstance(e, A.Unary):
        return 2.5 if e.op == "not" else 7
    if isinstance(e, A.BinOp):
        return _OP_PREC[e.rest[0][0]]
    return _PREC.get(type(e), 9)


def needs_parens(e, parent: float, strict: bool = False) -> bool:
    """Whether `e` needs parentheses as an operand of something binding at `parent` (also used by `specc fmt`)."""
    p = precedence(e)
    return p < parent or (strict and p == parent)


def _wrap(e, parent: float, strict: bool = False) -> str:
    text = expr(e)
    return f"({text})" if needs_parens(e, parent, strict) else text


_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"})  # the escapes dlspec strings read


def literal(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if isinstance(value, float):
        text = repr(value)
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return str(value)


def expr(e) -> str:
    if isinstance(e, A.Literal):
        return literal(e.value)
    if isinstance(e, A.Name):
        return e.id
    if isinstance(e, A.ListExpr):
        return "[" + ", ".join(expr(x) for x in e.items) + "]"
    if isinstance(e, A.BinOp):
        p = precedence(e)
        out = _wrap(e.first, p)
        for op, operand in e.rest:
            out += f" {op} {_wrap(operand, p, strict=True)}"
        return out
    if isinstance(e, A.Unary):
        if e.op == "not":
            return "not " + _wrap(e.operand, 2.5)
        return e.op + _wrap(e.operand, 7)
    if isinstance(e, A.Compare):
        return f"{_wrap(e.left, 4)} {e.op} {_wrap(e.right, 4)}"
    if isinstance(e, A.BoolOp):
        p = precedence(e)
        return f" {e.op} ".join(_wrap(x, p, strict=True) for x in e.operands)
    if isinstance(e, A.Cond):
        return f"{_wrap(e.then, 1)} if {_wrap(e.test, 1)} else {expr(e.orelse)}"
    if isinstance(e, A.Call):
        prefix = f"{e.layer_name}: " if e.layer_name else ""
        return prefix + call(e.func, e.args)
    if isinstance(e, A.TensorTypeExpr):
        return (e.dtype or "") + "[" + ", ".join(expr(d) for d in e.dims) + "]"
    if isinstance(e, A.Pipe):
        return " |> ".join([_wrap(e.source, 5)] + [stage(s) for s in e.stages])
    raise TypeError(f"cannot print {type(e).__name__}")


def call(func: str, args) -> str:
    return f"{func}(" + ", ".join(arg(a) for a in args) + ")"


def arg(a: A.Arg) -> str:
    return f"{a.name} = {expr(a.value)}" if a.name else expr(a.value)


def stage(s) -> str:
    if isinstance(s, A.LayerRef):
        return s.name
    if isinstance(s, A.LayerCall):
        return call(s.call.func, s.call.args)
    if isinstance(s, A.LayerList):
        return "[" + ", ".join(stage(x) for x in s.items) + "]"
    if isinstance(s, A.Repeat):
        var = f" as {s.var}" if s.var else ""
        return f"repeat {_wrap(s.count, 9)}{var} {{ " + " |> ".join(stage(x) for x in s.stages) + " }"
    if isinstance(s, A.Named):
        return f"{s.name}: {stage(s.layer)}"
    raise TypeError(f"cannot print {type(s).__name__}")


def stmt(s, indent: str = "") -> str:
    """One statement; `if` statements span several lines, indented by two spaces a level."""
    if isinstance(s, A.Input):
        return f"{indent}input {s.name}: {expr(s.type)}"
    if isinstance(s, A.Output):
        return f"{indent}output " + ", ".join(s.names)
    if isinstance(s, A.Assign):
        note = f": {expr(s.annotation)}" if s.annotation is not None else ""
        return f"{indent}{', '.join(s.targets)}{note} = {expr(s.value)}"
    if isinstance(s, A.Return):
        return f"{indent}return " + ", ".join(expr(v) for v in s.values)
    if isinstance(s, A.Tie):
        return f"{indent}tie {s.target} = {s.source}"
    if isinstance(s, A.If):
        out = f"{indent}if {expr(s.test)} {{\n" + body(s.body, indent + "  ") + f"\n{indent}}}"
        if len(s.orelse) == 1 and isinstance(s.orelse[0], A.If):
            out += " else " + stmt(s.orelse[0], indent).lstrip()
        elif s.orelse:
            out += " else {\n" + body(s.orelse, indent + "  ") + f"\n{indent}}}"
        return out
    raise TypeError(f"cannot print {type(s).__name__}")


def body(stmts, indent: str) -> str:
    return "\n".join(stmt(s, indent) for s in stmts)
