"""The syntax tree of a .dlspec file: frozen dataclasses, each with the span it came from.

Expressions are evaluated by `specc.ir.evaluate`; statements run in `specc.ir.build`.
Pipelines and operator chains are kept flat (n-ary) so a 10,000-stage pipeline is a list,
not a 10,000-deep tree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..source import SourceSpan


# ---- expressions ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Literal:
    value: object  # int | float | str | bool | None
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class BinOp:
    """first (op operand)*: `a + b - c` is BinOp(a, (("+", b), ("-", c)))."""

    first: Expr
    rest: tuple[tuple[str, Expr], ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" | "+" | "not"
    operand: Expr
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Expr, ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Cond:
    then: Expr
    test: Expr
    orelse: Expr
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Arg:
    name: str | None
    value: Expr
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Call:
    """`Op(args)`; `layer_name` is set for `name: Op(args)`."""

    func: str
    args: tuple[Arg, ...]
    span: SourceSpan
    func_span: SourceSpan
    layer_name: str | None = None
    name_span: SourceSpan | None = None


@dataclass(frozen=True, slots=True)
class TensorTypeExpr:
    """`float32[N, 3, 224, 224]`, or a bare shape `[N, 10]` (dtype None) in an annotation."""

    dtype: str | None
    dims: tuple[Expr, ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Pipe:
    source: Expr
    stages: tuple[Stage, ...]
    span: SourceSpan


Expr = Union[Literal, Name, ListExpr, BinOp, Unary, Compare, BoolOp, Cond, Call, TensorTypeExpr, Pipe]


# ---- pipeline stages -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LayerRef:
    """A bare name in a pipeline: an op with default args, a block, or an existing layer."""

    name: str
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class LayerCall:
    call: Call
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class LayerList:
    """`[A, B]`: children named .0, .1 like nn.Sequential."""

    items: tuple[Stage, ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Repeat:
    """`repeat n as i { stages }`: children named .0 ... .n-1."""

    count: Expr
    var: str | None
    stages: tuple[Stage, ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Named:
    name: str
    layer: Stage
    span: SourceSpan
    name_span: SourceSpan


Stage = Union[LayerRef, LayerCall, LayerList, Repeat, Named]


# ---- statements ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Input:
    name: str
    type: TensorTypeExpr
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Output:
    names: tuple[str, ...]
    span: SourceSpan
    name_spans: tuple[SourceSpan, ...] = ()


@dataclass(frozen=True, slots=True)
class Assign:
    targets: tuple[str, ...]
    value: Expr
    span: SourceSpan
    annotation: TensorTypeExpr | None = None


@dataclass(frozen=True, slots=True)
class Return:
    values: tuple[Expr, ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class If:
    test: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Tie:
    """`tie head.weight = wte.weight`: the first parameter becomes the second."""

    target: str
    source: str
    span: SourceSpan
    target_span: SourceSpan
    source_span: SourceSpan


Stmt = Union[Input, Output, Assign, Return, If, Tie]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: Expr | None
    span: SourceSpan


# ---- top-level items -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SpecVersion:
    """`spec 1`: the language version the file is written in."""

    version: int
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Import:
    path: str
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Constant:
    name: str
    value: Expr
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class ModelDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: SourceSpan
    name_span: SourceSpan


@dataclass(frozen=True, slots=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    body: tuple[Stmt, ...]
    span: SourceSpan
    name_span: SourceSpan


@dataclass(frozen=True, slots=True)
class Setting:
    """`name = value` in a config section."""

    name: str
    value: Expr
    span: SourceSpan
    name_span: SourceSpan


@dataclass(frozen=True, slots=True)
class Section:
    """`name Kind { entries }`: a config section such as `train` or `optimizer AdamW`."""

    name: str
    kind: str | None
    entries: tuple[Setting | Section, ...]
    span: SourceSpan
    name_span: SourceSpan
    kind_span: SourceSpan | None = None


Item = Union[SpecVersion, Import, Constant, ModelDef, BlockDef, Section]
