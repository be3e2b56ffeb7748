"""Parse tree -> syntax tree (specc.frontend.ast) -> plain document + source map.

The document is the same shape as the YAML form: {"spec", "imports", "constants", "models",
"blocks", "train", "export"}. Model and block bodies hold ast statements; config sections
hold plain values. The source map gives a span for every document path, so schema errors
point into the file.
"""
from __future__ import annotations

import math

from lark import Token, Tree

from . import ast as A, unparse
from ..errors import Diagnostic, Failed, Note
from ..ir.evaluate import MAX_INT
from ..source import SourceSpan

SourceMap = dict[tuple, SourceSpan]
MAX_DIGITS = len(str(MAX_INT))  # longer literals are refused before Python converts them


class ToAst:
    """Builds ast nodes bottom-up: one method per grammar rule, called with (meta, children)."""

    def __init__(self, file: str, line_offset: int = 0):
        self.file, self.dl = file, line_offset

    def visit(self, tree: Tree):
        """Post-order walk (a plain loop over children: cheaper than lark.Transformer's dispatch)."""
        children = [self.visit(c) if type(c) is Tree else c for c in tree.children]
        return getattr(self, tree.data)(tree.meta, children)

    def _span(self, meta) -> SourceSpan:
        return SourceSpan(self.file, meta.line + self.dl, meta.column, meta.end_line + self.dl, meta.end_column)

    def _tok(self, tok: Token) -> SourceSpan:
        return SourceSpan(self.file, tok.line + self.dl, tok.column, tok.end_line + self.dl, tok.end_column)

    # ---- literals and names ----
    def int_lit(self, meta, c):
        digits = c[0].replace("_", "")
        if len(digits) > MAX_DIGITS or int(digits) > MAX_INT:
            raise Failed(Diagnostic("E0602", "this integer is too large: specc's integers fit in 64 bits "
                                    "(at most 2**63 - 1)", self._span(meta), label="out of range"))
        return A.Literal(int(digits), self._span(meta))

    def float_lit(self, meta, c):
        value = float(c[0].replace("_", ""))
        if math.isinf(value):
            raise Failed(Diagnostic("E0602", "this number is too large for a 64-bit float", self._span(meta),
                                    label="out of range"))
        return A.Literal(value, self._span(meta))

    def str_lit(self, meta, c):
        return A.Literal(_unescape(c[0]), self._span(meta))

    def true_lit(self, meta, c):
        return A.Literal(True, self._span(meta))

    def false_lit(self, meta, c):
        return A.Literal(False, self._span(meta))

    def none_lit(self, meta, c):
        return A.Literal(None, self._span(meta))

    def name(self, meta, c):
        return A.Name(str(c[0]), self._span(meta))

    def list_lit(self, meta, c):
        return A.ListExpr(tuple(x for x in c if x is not None), self._span(meta))

    # ---- operators ----
    def _chain(self, meta, c):
        return A.BinOp(c[0], tuple((str(c[i]), c[i + 1]) for i in range(1, len(c), 2)), self._span(meta))

    sum = product = _chain

    def unary(self, meta, c):
        return A.Unary(str(c[0]), c[1], self._span(meta))

    def not_(self, meta, c):
        return A.Unary("not", c[0], self._span(meta))

    def compare(self, meta, c):
        return A.Compare(str(c[1]), c[0], c[2], self._span(meta))

    def and_op(self, meta, c):
        return A.BoolOp("and", tuple(c), self._span(meta))

    def or_op(self, meta, c):
        return A.BoolOp("or", tuple(c), self._span(meta))

    def cond(self, meta, c):
        return A.Cond(c[0], c[1], c[2], self._span(meta))

    # ---- calls, types, pipelines ----
    def kwarg(self, meta, c):
        return A.Arg(str(c[0]), c[1], self._span(meta))

    def call(self, meta, c):
        args = tuple(a if isinstance(a, A.Arg) else A.Arg(None, a, a.span) for a in c[1:] if a is not None)
        return A.Call(str(c[0]), args, self._span(meta), self._tok(c[0]))

    def named_call(self, meta, c):
        call = c[1]
        return A.Call(call.func, call.args, self._span(meta), call.func_span, str(c[0]), self._tok(c[0]))

    def shape(self, meta, c):
        return A.TensorTypeExpr(None, tuple(x for x in c if x is not None), self._span(meta))

    def tensor_type(self, meta, c):
        return A.TensorTypeExpr(str(c[0]), c[1].dims, self._span(meta))

    def annotation(self, meta, c):
        return c[0]

    def pipe(self, meta, c):
        return A.Pipe(c[0], tuple(_stage(s) for s in c[2::2]), self._span(meta))

    def layer_ref(self, meta, c):
        return A.LayerRef(str(c[0]), self._span(meta))

    def named_stage(self, meta, c):
        layer = c[1]
        if isinstance(layer, A.Call):
            layer = A.LayerCall(layer, layer.span)
        return A.Named(str(c[0]), layer, self._span(meta), self._tok(c[0]))

    def layer_list(self, meta, c):
        return A.LayerList(tuple(_stage(x) for x in c if x is not None), self._span(meta))

    def repeat(self, meta, c):
        count, var, *stages = c
        stages = [_stage(s) for s in stages if s is not None and not isinstance(s, Token)]
        return A.Repeat(count, str(var) if var is not None else None, tuple(stages), self._span(meta))

    # ---- statements ----
    def input_decl(self, meta, c):
        return A.Input(str(c[0]), c[1], self._span(meta))

    def output_stmt(self, meta, c):
        return A.Output(tuple(map(str, c)), self._span(meta), tuple(self._tok(t) for t in c))

    def assign(self, meta, c):
        return A.Assign(tuple(map(str, c[:-1])), c[-1], self._span(meta))

    def annotated(self, meta, c):
        return A.Assign((str(c[0]),), c[2], self._span(meta), c[1])

    def return_stmt(self, meta, c):
        return A.Return(tuple(c), self._span(meta))

    def body(self, meta, c):
        return tuple(x for x in c if x is not None)

    def if_stmt(self, meta, c):
        test, body, orelse = c
        if isinstance(orelse, A.If):
            orelse = (orelse,)
        return A.If(test, body, orelse or (), self._span(meta))

    def dotted(self, meta, c):
        return ".".join(map(str, c)), self._span(meta)

    def tie_stmt(self, meta, c):
        (target, tspan), (source, sspan) = c
        return A.Tie(target, source, self._span(meta), tspan, sspan)

    def line(self, meta, c):
        return c[0]

    type_line = expr_line = line

    # ---- top level ----
    def param(self, meta, c):
        return A.Param(str(c[0]), c[1], self._span(meta))

    def param_list(self, meta, c):
        return tuple(x for x in c if x is not None)

    def spec_header(self, meta, c):
        return A.SpecVersion(int(c[0]), self._span(meta))

    def import_stmt(self, meta, c):
        return A.Import(_unescape(c[0]), self._span(meta))

    def const_def(self, meta, c):
        return A.Constant(str(c[0]), c[1], self._span(meta))

    def model_def(self, meta, c):
        name, params, body = c
        return A.ModelDef(str(name), params or (), body, self._span(meta), self._tok(name))

    def block_def(self, meta, c):
        name, params, *rest = c
        body = rest[-1]
        inputs = tuple(str(t) for t in rest[:-1] if t is not None)
        return A.BlockDef(str(name), params, inputs, body, self._span(meta), self._tok(name))

    def kv(self, meta, c):
        return A.Setting(str(c[0]), c[1], self._span(meta), self._tok(c[0]))

    def entries(self, meta, c):
        return tuple(x for x in c if x is not None)

    def section(self, meta, c):
        name, kind, entries = c
        return A.Section(str(name), str(kind) if kind is not None else None, entries, self._span(meta),
                         self._tok(name), self._tok(kind) if kind is not None else None)

    def start(self, meta, c):
        return list(c)


def _stage(x):
    return A.LayerCall(x, x.span) if isinstance(x, A.Call) else x


def _unescape(tok: str) -> str:
    body = tok[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], body[i:i + 2]))  # an unknown escape stays as written
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def to_ast(tree: Tree, file: str, line_offset: int = 0):
    try:
        return ToAst(file, line_offset).visit(tree)
    except RecursionError:
        deepest = _deepest(tree).meta
        raise Failed(Diagnostic("E0107", "the file is nested too deeply to read",
                                SourceSpan.point(file, deepest.line + line_offset, deepest.column), label="too deep",
                                help="split deep expressions into named steps")) from None


def _deepest(tree: Tree) -> Tree:
    """The most deeply nested node that has a position, found with a loop (recursing is what failed)."""
    deepest, most = tree, -1
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > most and not node.meta.empty:
            deepest, most = node, depth
        stack.extend((child, depth + 1) for child in node.children if type(child) is Tree)
    return deepest


# ---- document ----------------------------------------------------------------------
class DocumentBuilder:
    """Top-level items -> the plain document. Collects duplicate-definition errors."""

    def __init__(self, file: str):
        self.file = file
        self.doc: dict = {"spec": 1, "imports": [], "constants": {}, "models": {}, "blocks": {}}
        self.source_map: SourceMap = {}
        self.diagnostics: list[Diagnostic] = []

    def build(self, items: list[A.Item]) -> tuple[dict, SourceMap, list[Diagnostic]]:
        for item in items:
            if isinstance(item, A.SpecVersion):
                self._spec(item)
            elif isinstance(item, A.Import):
                self.source_map[("imports", len(self.doc["imports"]))] = item.span
                self.doc["imports"].append(item.path)
            elif isinstance(item, A.Constant):
                self._define("constants", item.name, item.value, item.span)
            elif isinstance(item, A.ModelDef):
                self._model(item)
            elif isinstance(item, A.BlockDef):
                self._block(item)
            else:
                self._section(item)
        return self.doc, self.source_map, self.diagnostics

    def _spec(self, item: A.SpecVersion):
        if ("spec",) in self.source_map:
            self._twice("the `spec` header appears twice", item.span, self.source_map[("spec",)])
            return
        self.doc["spec"] = item.version
        self.source_map[("spec",)] = item.span

    def _define(self, section: str, name: str, value, name_span: SourceSpan):
        if name in self.doc[section]:
            self._twice(f"`{name}` is defined twice", name_span, self.source_map[(section, name)],
                        label="second definition")
            return
        self.doc[section][name] = value
        self.source_map[(section, name)] = name_span

    def _twice(self, message: str, span: SourceSpan, first: SourceSpan | None, label: str = "second one") -> None:
        self.diagnostics.append(Diagnostic("E0208", message, span, label=label,
                                           notes=(Note(f"first at {first}"),) if first else ()))

    def _unique_params(self, params) -> None:
        seen = {}
        for p in params:
            if p.name in seen:
                self._twice(f"parameter `{p.name}` is declared twice", p.span, seen[p.name])
            seen.setdefault(p.name, p.span)

    def _model(self, model: A.ModelDef):
        name = model.name
        inputs, outputs, stmts = {}, [], []
        self._unique_params(model.params)
        for stmt in model.body:
            if isinstance(stmt, A.Input):
                if stmt.name in inputs:
                    self._twice(f"input `{stmt.name}` is declared twice", stmt.span,
                                self.source_map[("models", name, "inputs", stmt.name)])
                    continue
                inputs[stmt.name] = stmt.type
                self.source_map[("models", name, "inputs", stmt.name)] = stmt.span
            elif isinstance(stmt, A.Output):
                outputs.extend(stmt.names)
                for i, s in enumerate(stmt.name_spans):
                    self.source_map[("models", name, "outputs", len(outputs) - len(stmt.names) + i)] = s
            else:
                stmts.append(stmt)
        plain = {"params": {p.name: p.default for p in model.params}, "inputs": inputs, "body": stmts,
                 "outputs": outputs}
        self._define("models", name, plain, model.name_span)
        self.source_map[("models", name, "span")] = model.span
        for p in model.params:
            self.source_map[("models", name, "params", p.name)] = p.span

    def _block(self, block: A.BlockDef):
        name, inputs = block.name, block.inputs
        self._unique_params(block.params)
        for i, input_name in enumerate(inputs):
            if input_name in inputs[:i]:
                self._twice(f"block {name} takes `{input_name}` twice", block.name_span, None, label="in this block")
        plain = {"params": {p.name: p.default for p in block.params}, "inputs": list(inputs),
                 "body": list(block.body)}
        self._define("blocks", name, plain, block.name_span)
        self.source_map[("blocks", name, "span")] = block.span
        for p in block.params:
            self.source_map[("blocks", name, "params", p.name)] = p.span

    def _section(self, section: A.Section):
        name = section.name
        if name in self.doc:
            self.diagnostics.append(Diagnostic("E0208", f"section `{name}` appears twice", section.name_span,
                                               label="second one"))
            return
        self.doc[name] = self._entries((name,), section)
        self.source_map[(name,)] = section.name_span

    def _entries(self, path: tuple, section: A.Section) -> dict:
        out: dict = {} if section.kind is None else {"kind": section.kind}
        if section.kind_span is not None:  # an unknown kind is told there
            self.source_map[path + ("kind",)] = section.kind_span
        for entry in section.entries:
            key = entry.name
            if isinstance(entry, A.Setting):
                if key in out:
                    self.diagnostics.append(Diagnostic("E0207", f"`{key}` is set twice", entry.name_span,
                                                       label="second setting"))
                    continue
                self.source_map[path + (key,)] = entry.span
                out[key] = self._config_value(entry.value, path + (key,))
            elif key in out:  # a repeated section is a list: several `loss` entries
                first = out[key]
                if not isinstance(first, list):
                    out[key] = [first]
                    self._relist(path + (key,))
                index = len(out[key])
                self.source_map[path + (key, index)] = entry.name_span
                out[key].append(self._entries(path + (key, index), entry))
            else:
                self.source_map[path + (key,)] = entry.name_span
                out[key] = self._entries(path + (key,), entry)
        return out

    def _relist(self, path: tuple) -> None:
        """Move source-map entries under `path` to `path + (0,)` when a section becomes a list."""
        n = len(path)
        for key in [k for k in self.source_map if k[:n] == path]:
            self.source_map[path + (0,) + key[n:]] = self.source_map.pop(key)

    def _config_value(self, expr, path: tuple):
        """Config values are literals: numbers, strings, booleans, names, lists, tensor types."""
        if isinstance(expr, A.Literal):
            return expr.value
        if isinstance(expr, A.Name):
            return expr.id
        if isinstance(expr, A.ListExpr):
            return [self._config_value(x, path + (i,)) for i, x in enumerate(expr.items)]
        if isinstance(expr, A.Unary) and expr.op in "+-" and isinstance(expr.operand, A.Literal) \
                and isinstance(expr.operand.value, (int, float)) and not isinstance(expr.operand.value, bool):
            return -expr.operand.value if expr.op == "-" else expr.operand.value
        if isinstance(expr, A.TensorTypeExpr):
            return unparse.expr(expr)
        self.diagnostics.append(Diagnostic("E0206", "settings take literal values", expr.span,
                                           label="not a literal",
                                           help="write a number, string, true/false, a name or a list"))
        return None
