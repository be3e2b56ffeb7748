"""What the IR builder's stages share: the values of a build (tensors, POISON), the naming scope of a
body, and walkers over a body's statements and expressions."""
from __future__ import annotations

import contextlib
from collections import ChainMap
from dataclasses import dataclass, field

from ..frontend import ast as A, unparse
from .graph import Layer, Node, Tie, Value
from .types import TensorType


class _Poison:
    """The value of anything that failed; using it reports nothing more."""

    def __repr__(self):
        return "POISON"


POISON = _Poison()


@dataclass(frozen=True, slots=True)
class Tensor:
    """A dataflow value during the build."""

    id: str
    type: TensorType


class AllUnknown(dict):
    """A body's values where every name is bound, to POISON: in an `if` branch a build skips, a name may
    hold anything (a constant that the branch's test guards, a name an earlier skipped branch binds)."""

    def __contains__(self, name) -> bool:
        return True

    def __missing__(self, name):
        return POISON

    def get(self, name, default=None):
        return self[name]


class StmtError(Exception):
    """Abandons the current statement; the diagnostic is already recorded."""


@dataclass(slots=True)
class ModelState:
    """What the build of one model has made so far (a new one for each model of a file)."""

    nodes: list[Node] = field(default_factory=list)
    values: dict[str, Value] = field(default_factory=dict)  # by id
    layers: dict[str, Layer] = field(default_factory=dict)  # by path
    ties: list[Tie] = field(default_factory=list)
    symbols: set[str] = field(default_factory=set)  # the symbolic sizes its types name (`N`, `T`)
    used_ids: set[str] = field(default_factory=set)  # node and value ids
    expansions: int = 0  # blocks expanded
    copies: int = 1  # how many times the enclosing repeats run what is being expanded now
    weight_dtype: str = "float32"  # the dtype of its weights (its inputs' floating-point one)
    branches_checked: set[int] = field(default_factory=set)  # the skipped `if` branches checked (by id)

    def fresh_id(self, base: str) -> str:
        """`base`, or `base_1`, `base_2`, ... where it is taken: node and value ids share one namespace
        (a multi-output op's values are `<node>_0`, `<node>_1`, which a layer `<node>_0` must not take)."""
        fresh, n = base, 1
        while fresh in self.used_ids:
            fresh = f"{base}_{n}"
            n += 1
        self.used_ids.add(fresh)
        return fresh


@dataclass
class Scope:
    prefix: str  # module path prefix: "" or "layer1.0."
    values: dict  # constants and tensors by name
    # local layer name -> full path (for reuse); a list's or repeat's scope sees the enclosing one's too
    layers: ChainMap = field(default_factory=ChainMap)
    reserved: set = field(default_factory=set)  # explicit layer names in this body (auto names avoid them)
    counters: dict = field(default_factory=dict)
    notes: tuple = ()  # Note chain of block expansions, innermost first
    block: str | None = None
    depth: int = 0
    returned: tuple | None = None

    def group(self, prefix: str) -> Scope:
        """The scope of a list's or repeat's layers: named under `prefix`, seeing this scope's values
        (shared, not copied) and layer names."""
        return Scope(prefix, self.values, self.layers.new_child(), notes=self.notes, block=self.block,
                     depth=self.depth)


def explicit_names(stmts) -> set[str]:
    """Layer names written out in a body (`conv1: Conv2d(...)`), including inside `if` branches."""
    found: set[str] = set()

    def stage(s):
        if isinstance(s, A.Named):
            found.add(s.name)
            if not isinstance(s.layer, (A.LayerList, A.Repeat)):
                stage(s.layer)
        elif isinstance(s, A.LayerList):
            for item in s.items:
                stage(item)
        elif isinstance(s, A.LayerCall):  # `x |> Linear(features(h |> fc: Linear(3)))`
            expr(s.call)

    def expr(e):
        if isinstance(e, A.Call) and e.layer_name:
            found.add(e.layer_name)
        if isinstance(e, A.Pipe):
            for s in e.stages:
                stage(s)
        for x in subexpressions(e):
            expr(x)

    for st in stmts:
        if isinstance(st, A.Assign):
            expr(st.value)
        elif isinstance(st, A.Return):
            for v in st.values:
                expr(v)
        elif isinstance(st, A.If):
            found |= explicit_names(st.body) | explicit_names(st.orelse)
    return found


def returns_in(stmt) -> list:
    """The `return` statements a statement is or holds (in either branch of an `if`)."""
    if isinstance(stmt, A.Return):
        return [stmt]
    if isinstance(stmt, A.If):
        return [r for s in (*stmt.body, *stmt.orelse) for r in returns_in(s)]
    return []


def targets_of(stmt) -> tuple:
    """The names a statement binds: those of both branches of an `if` (when its test fails, neither runs)."""
    if isinstance(stmt, A.If):
        return tuple(t for s in (*stmt.body, *stmt.orelse) for t in targets_of(s))
    return getattr(stmt, "targets", ())


def subexpressions(e) -> tuple:
    if isinstance(e, A.BinOp):
        return (e.first, *(x for _, x in e.rest))
    if isinstance(e, A.Unary):
        return (e.operand,)
    if isinstance(e, A.Compare):
        return (e.left, e.right)
    if isinstance(e, A.BoolOp):
        return e.operands
    if isinstance(e, A.ListExpr):
        return e.items
    if isinstance(e, A.Cond):
        return (e.test, e.then, e.orelse)
    if isinstance(e, A.Call):
        return tuple(a.value for a in e.args)
    if isinstance(e, A.Pipe):
        return (e.source,)
    return ()


@contextlib.contextmanager
def repeat_index(values: dict, var: str | None):
    """Undo what the body binds to a repeat's index `var`: the index belongs to the repeat, and after it
    (or after an error in it) the name means what it meant before."""
    had, before = var in values, values.get(var)
    try:
        yield
    finally:
        if var:
            values.pop(var, None)
            if had:
                values[var] = before


def as_list(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def show(v) -> str:
    """A value as a diagnostic shows it."""
    if isinstance(v, Tensor):
        return f"a tensor {v.type}"
    return unparse.literal(v) if isinstance(v, (int, float, str, bool, tuple, type(None))) else str(v)
