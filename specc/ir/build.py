"""Spec -> IR graph: expand blocks/repeats/lists, evaluate constants, name layers, and infer every
value's type through the op registry's shape rules. (Imports are resolved by `imports`; the blocks
no model uses are checked by `unused_blocks`.)

Errors are collected, not raised: a statement that fails binds its targets to `POISON`, and
anything computed from a poisoned value is poisoned silently, so one mistake gives one message.
"""
from __future__ import annotations

import keyword
import math
from dataclasses import replace

from pydantic import ValidationError

from ..errors import Diagnostic, Failed, Note, did_you_mean
from ..frontend import ast as A, unparse
from ..source import SourceSpan
from . import dims as D
from .builtins import BUILTINS, call_builtin
from .evaluate import MAX_INT, EvalError, binary, compare, in_range, is_dim, negate, truth, type_name
from .graph import BlockUse, Graph, Layer, Node, Tie, Value, weight_dtype
from .imports import load_library
from .ops import OPS, OpError
from .reserved import EMITTED_NAMES, layer_name_problem
from .reserved import GRAPH_MODULE_ATTRIBUTES, MODULE_ATTRIBUTES  # noqa: F401 - imported from here by the tests
from .scope import (POISON, AllUnknown, ModelState, Scope, StmtError, Tensor, as_list, explicit_names, is_number, repeat_index,
                    returns_in, show, targets_of)
from .types import DTYPES, FLOAT_DTYPES, TensorType
from .unused_blocks import check_body, check_unused_blocks

MAX_REPEAT = 100_000
MAX_NODES = 100_000  # layers; the 10,000-layer benchmark spec checks in about half a second
MAX_BLOCK_DEPTH = 64
MAX_PARAMS = 10**12  # refused before anything is allocated; `--max-params` lowers it

# `init = kind(args)` on a layer: each kind and the arguments it takes (the torch backend applies them).
INIT_KINDS = {
    "normal": ("mean", "std"), "trunc_normal": ("mean", "std", "a", "b"),
    "xavier": ("gain",), "xavier_uniform": ("gain",), "xavier_normal": ("gain",),
    "kaiming": ("mode", "nonlinearity"), "kaiming_normal": ("mode", "nonlinearity"), "kaiming_uniform": ("a", "mode"),
    "zeros": (), "ones": (), "constant": ("value",),
}
INIT_NONLINEARITIES = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


class Builder:
    """Builds the models of one spec file into IR graphs, one at a time (`build_model`), collecting the
    diagnostics of the file, its imports and each model."""

    def __init__(self, spec, *, max_params: int = MAX_PARAMS):
        self.spec = spec
        self.max_params = max_params
        self.library, self.diagnostics = load_library(spec)
        self._const_cache: dict[str, object] = {}
        self._const_busy: set[str] = set()
        self.expanded_blocks: set[str] = set()  # blocks whose body a model ran (the others: check_unused_blocks)
        self.model = ModelState()  # of the model being built

    # ---- diagnostics ----
    def error(self, code: str, message: str, span: SourceSpan | None, scope: Scope | None = None, *,
              label: str = "", help: str | None = None, notes: tuple = ()) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, label=label, help=help,
                                           notes=tuple(notes) + (scope.notes if scope else ())))

    def fail(self, *args, **kwargs):
        self.error(*args, **kwargs)
        raise StmtError()

    # ---- constants ----
    def check_constants(self) -> None:
        """Evaluate the file's own constants, used or not: `check` reports every error of a file."""
        for name in self.spec.constants:
            self.constant(name)

    def constant(self, name: str):
        if name in self._const_cache:
            return self._const_cache[name]
        expr, _ = self.library.constants[name]
        if name in self._const_busy:
            raise EvalError(f"constant `{name}` is defined in terms of itself")
        self._const_busy.add(name)
        try:
            value = self.try_static(expr, Scope("", {}))  # an error is reported once; every use gets POISON
        finally:
            self._const_busy.discard(name)
        self._const_cache[name] = value
        return value

    def static(self, expr, scope: Scope):
        """Evaluate an expression that must not involve tensors."""
        return self._refuse_tensors(self.eval(expr, scope), expr, scope)

    def try_static(self, expr, scope: Scope):
        """`static`, with POISON for a value that has an error (reported)."""
        try:
            return self.static(expr, scope)
        except StmtError:
            return POISON

    def _refuse_tensors(self, value, expr, scope: Scope):
        """`value` (of `expr`), refused if it is or holds a tensor."""
        if isinstance(value, Tensor):
            self.fail("E0405", "expected a constant here, not a tensor", expr.span, scope)
        if isinstance(value, tuple) and any(isinstance(v, Tensor) for v in value):
            self.fail("E0405", "expected a constant here, not a list of tensors", expr.span, scope,
                      help="pass tensors as inputs, one by one: `Concat(a, b, dim = 1)`")
        return value

    # ---- the model ----
    def build_model_within_limits(self, name: str, params: dict | None = None) -> Graph | None:
        """build_model, with Python's recursion limit told as a located error: each limit alone (block
        nesting, expression depth) is checked, but blocks nested deep around a deep expression add up."""
        try:
            return self.build_model(name, params)
        except RecursionError:
            self.error("E0603", f"model {name} nests blocks and expressions too deeply to build",
                       self.spec.span("models", name, "span"), help="nest fewer blocks, or split long expressions")
            return None

    def build_model(self, name: str, params: dict | None = None) -> Graph | None:
        model_def = self.spec.models[name]
        self.model = ModelState()
        errors_before = len(self.diagnostics)
        scope = Scope("", {}, reserved=explicit_names(model_def.body))
        self._check_model_name(name)
        self._bind_model_params(name, model_def, params, scope)
        inputs = self._declare_inputs(name, model_def, scope)
        self.model.weight_dtype = weight_dtype(self.model.values[vid].type.dtype for vid in inputs)
        self.run_body(model_def.body, scope)
        outputs, output_names = self._collect_outputs(name, model_def, scope)
        self._check_ties(complete=len(self.diagnostics) == errors_before)
        model = self.model
        graph = Graph(name, tuple(inputs), tuple(outputs), model.values, tuple(model.nodes), model.layers,
                      tuple(model.ties), tuple(sorted(model.symbols)), self.spec.span("models", name, "span"),
                      tuple(output_names), self._sizes(model_def, scope))
        self._check_size(graph, name)
        return graph

    def _check_model_name(self, name: str) -> None:
        if name in EMITTED_NAMES:
            self.error("E0412", f"`{name}` cannot name a model: the Python generated for it (`specc emit --python`) "
                       f"uses `{name}` already", self.spec.span("models", name, "span"), label="reserved",
                       help=f"call it `{name.strip('_').capitalize()}Model`, for example")

    def _bind_model_params(self, name: str, model_def, params: dict | None, scope: Scope) -> None:
        """Bind the model's parameters in `scope`: those given from Python (`params`), else their defaults."""
        for pname in params or {}:
            if pname not in model_def.params:
                self.error("E0404", f"model {name} has no parameter `{pname}`", self.spec.span("models", name, "span"),
                           help=did_you_mean(pname, model_def.params) or
                           f"its parameters: {', '.join(model_def.params) or 'none'}")
        for pname, default in model_def.params.items():
            if params and pname in params:
                try:
                    scope.values[pname] = _from_python(params[pname])
                except EvalError as err:
                    self.error("E0405", f"model {name} parameter `{pname}`: {err.message}",
                               self.spec.span("models", name, "params", pname), label="given from Python")
                    scope.values[pname] = POISON
            elif default is None:
                self.error("E0406", f"model {name} needs a value for parameter `{pname}`",
                           self.spec.span("models", name, "params", pname))
                scope.values[pname] = POISON
            else:
                scope.values[pname] = self.try_static(default, scope)

    def _declare_inputs(self, name: str, model_def, scope: Scope) -> list[str]:
        """Bind the model's inputs in `scope` as tensors of their declared types; their value ids."""
        inputs = []
        for iname, texpr in model_def.inputs.items():
            if iname == "self" or iname in EMITTED_NAMES or keyword.iskeyword(iname):
                self.error("E0412", f"`{iname}` cannot name an input: the generated `forward` takes its inputs "
                           f"as Python arguments{f' and uses `{iname}` itself' if iname in EMITTED_NAMES else ''}",
                           self.spec.span("models", name, "inputs", iname),
                           label="reserved", help=f"call it `{iname}_` or `{iname}_input`")
            ttype = self.tensor_type(texpr, scope, least=1)
            if ttype is None:
                scope.values[iname] = POISON
                continue
            vid = self.model.fresh_id(iname)
            self.model.values[vid] = Value(vid, ttype, texpr.span)
            scope.values[iname] = Tensor(vid, ttype)
            inputs.append(vid)
        return inputs

    def _collect_outputs(self, name: str, model_def, scope: Scope) -> tuple[list[str], list[str]]:
        """The value ids of the tensors the model's `output` names, and those names."""
        outputs, output_names = [], []
        for i, oname in enumerate(model_def.outputs):
            value = scope.values.get(oname)
            span = self.spec.span("models", name, "outputs", i)
            if oname in model_def.outputs[:i]:
                self.error("E0208", f"output `{oname}` is listed twice", span, label="listed again here")
            elif value is None:
                self.error("E0401", f"output `{oname}` is not defined", span, label="undefined",
                           help=did_you_mean(oname, [k for k, v in scope.values.items() if isinstance(v, Tensor)]))
            elif isinstance(value, Tensor):
                outputs.append(value.id)
                output_names.append(oname)
            elif value is not POISON:
                self.error("E0405", f"output `{oname}` is {type_name(value)}, not a tensor", span)
        return outputs, output_names

    def _sizes(self, model_def, scope: Scope) -> dict[str, int]:
        """The whole numbers the spec may name outside the model's body (the train section's target
        types): the model's parameters and the constants it sees. A constant with an error is left out
        quietly here; `check` evaluates every constant of the file and reports it."""
        reported = len(self.diagnostics)
        values = {name: self.constant(name) for name in self.library.constants}
        del self.diagnostics[reported:]
        values.update((name, scope.values.get(name)) for name in model_def.params)
        return {name: v for name, v in values.items() if isinstance(v, int) and not isinstance(v, bool)}

    def _check_size(self, graph: Graph, name: str) -> None:
        count = graph.param_count
        if count > self.max_params:
            biggest = max(graph.layers, key=graph.layer_param_count)
            notes = (Note(f"the largest layer is `{biggest}` ({graph.layer_param_count(biggest):,} parameters), "
                          "defined", graph.layers[biggest].span),)
            self.error("E0601", f"model {name} has {count:,} parameters, more than the limit of {self.max_params:,}",
                       self.spec.span("models", name), label="too large", notes=notes,
                       help="nothing was allocated; shrink the model or raise the limit with --max-params")

    def _check_ties(self, complete: bool) -> None:
        """`complete`: the model has no other error, so a parameter a tie names that no layer has is
        an error (after one, the layer may be missing for that error's sake)."""
        shapes = {}
        for layer in self.model.layers.values():
            for pname, shape in OPS[layer.op].param_shapes(layer.params).items():
                shapes[f"{layer.path}.{pname}"] = tuple(shape)
        sources: dict[str, str] = {}  # target -> source, for the ties that are sound one by one
        sound = []
        for tie in self.model.ties:
            missing = next((key for key in (tie.target, tie.source) if key not in shapes), None)
            if missing is not None:
                if complete:
                    self.error("E0401", f"`tie`: no parameter `{missing}`", tie.span,
                               help=did_you_mean(missing, shapes))
            elif tie.target == tie.source:
                self.error("E0308", f"cannot tie `{tie.target}` to itself", tie.span)
            elif tie.target in sources:
                self.error("E0308", f"`{tie.target}` is tied twice", tie.span, label="second tie")
            elif shapes[tie.target] != shapes[tie.source]:
                self.error("E0308", f"cannot tie `{tie.target}` {list(shapes[tie.target])} to `{tie.source}` "
                           f"{list(shapes[tie.source])}: the shapes differ", tie.span)
            else:
                sources[tie.target] = tie.source
                sound.append(tie)
        self.model.ties = [replace(tie, source=self._tie_owner(tie, sources)) for tie in sound]

    def _tie_owner(self, tie: Tie, sources: dict) -> str:
        """The parameter at the end of a chain of ties (`c = b`, `b = a`: a), whatever their order."""
        chain = [tie.target, tie.source]
        while chain[-1] in sources:
            if chain[-1] in chain[:-1]:
                cycle = chain[chain.index(chain[-1]):]
                if tie.target == min(cycle):  # said once, by the tie of the cycle's first parameter
                    self.error("E0308", f"these ties form a cycle: {' -> '.join(cycle)}", tie.span,
                               help="tie each to the parameter that owns the weights")
                break
            chain.append(sources[chain[-1]])
        return chain[-1]

    # ---- statements ----
    def run_body(self, stmts, scope: Scope) -> None:
        for i, stmt in enumerate(stmts):
            if scope.returned is not None:
                # after an `if` whose branch returned, the statements are reachable: the other branch runs them
                if i and isinstance(stmts[i - 1], A.Return):
                    self.error("E0409", "unreachable statement after `return`", stmt.span, scope)
                break
            try:
                self.run_stmt(stmt, scope)
            except StmtError:
                for target in targets_of(stmt):
                    scope.values[target] = POISON
                returns = returns_in(stmt)
                if returns:  # a failed `return`, or an `if` that may have returned: the block's result is poison
                    scope.returned = (POISON,) * len(returns[0].values)

    def run_stmt(self, stmt, scope: Scope) -> None:
        if isinstance(stmt, A.Assign):
            self._assign(stmt, self.eval(stmt.value, scope), scope)
        elif isinstance(stmt, A.Return):
            if scope.block is None:
                self.fail("E0409", "`return` is for blocks; a model names its results with `output`", stmt.span, scope)
            scope.returned = tuple(self.eval(v, scope) for v in stmt.values)
        elif isinstance(stmt, A.If):
            branch = self._branch_taken(stmt, scope)
            self._check_branch_not_taken(stmt.orelse if branch else stmt.body, scope)
            self.run_body(stmt.body if branch else stmt.orelse, scope)
        elif isinstance(stmt, A.Tie):
            self.model.ties.append(Tie(scope.prefix + stmt.target, scope.prefix + stmt.source, stmt.span))
        elif isinstance(stmt, A.Input):
            self.fail("E0409", "`input` declares a model's inputs; a block receives them in its `(…)` list"
                      if scope.block else "`input` goes at the top level of the model, not inside `if`",
                      stmt.span, scope)
        elif isinstance(stmt, A.Output):
            self.fail("E0409", "`output` belongs in a model; a block gives its results with `return`"
                      if scope.block else "`output` goes at the top level of the model, not inside `if`",
                      stmt.span, scope)

    def _assign(self, stmt: A.Assign, value, scope: Scope) -> None:
        """Bind the assignment's targets to `value` (several targets: to the items of a list)."""
        if len(stmt.targets) > 1:
            if value is POISON:
                raise StmtError()
            if not isinstance(value, tuple) or len(value) != len(stmt.targets):
                n = len(value) if isinstance(value, tuple) else 1
                self.fail("E0410", f"{len(stmt.targets)} names on the left but the right side gives {n} "
                          f"value{'s' if n != 1 else ''}", stmt.span, scope)
            scope.values.update(zip(stmt.targets, value))
        else:
            if stmt.annotation is not None:
                self._check_annotation(stmt, value, scope)
            scope.values[stmt.targets[0]] = value

    def _branch_taken(self, stmt: A.If, scope: Scope) -> bool:
        test = self.static(stmt.test, scope)
        if test is POISON:
            raise StmtError()
        try:
            return truth(test, "an `if` condition")
        except EvalError as err:
            self.fail("E0405", err.message, stmt.test.span, scope)

    def _check_branch_not_taken(self, stmts, scope: Scope) -> None:
        """Check the `if` branch this build skips as a block no model uses is checked, every value
        unknown: a misspelt op there fails `check` whatever the parameters. What it names stays out
        of the model (its layer names, automatic names and symbols)."""
        if not stmts or id(stmts) in self.model.branches_checked:  # the same whatever the values: once
            return
        self.model.branches_checked.add(id(stmts))
        unknown = Scope(scope.prefix, AllUnknown(), scope.layers.new_child(),
                        scope.reserved, dict(scope.counters), scope.notes, scope.block, scope.depth)
        tensors = {name for name, v in scope.values.items() if isinstance(v, Tensor) or v is POISON}
        symbols = set(self.model.symbols)
        try:
            check_body(self, stmts, unknown, tensors)
        finally:
            self.model.symbols = symbols

    def _check_annotation(self, stmt: A.Assign, value, scope: Scope) -> None:
        if value is POISON:
            return
        if not isinstance(value, Tensor):
            self.fail("E0405", f"a shape annotation needs a tensor, but `{stmt.targets[0]}` is {type_name(value)}",
                      stmt.span, scope)
        expected = self.tensor_type(stmt.annotation, scope, default_dtype=value.type.dtype)
        if expected is None:
            raise StmtError()
        if expected.shape != value.type.shape or expected.dtype != value.type.dtype:
            self.fail("E0304", f"shape assertion failed: `{stmt.targets[0]}` is {value.type}, "
                      f"not {expected}", stmt.annotation.span, scope, label=f"actual: {value.type}")

    def tensor_type(self, texpr: A.TensorTypeExpr, scope: Scope, default_dtype: str = "float32", least: int = 0):
        """The type an annotation states; `least`: the smallest size a dim may have (an input's: 1, as no
        layer has weights for an empty dim)."""
        dtype = texpr.dtype or default_dtype
        if dtype not in DTYPES:
            self.error("E0405", f"unknown dtype `{dtype}`", texpr.span, scope, help=did_you_mean(dtype, DTYPES))
            return None
        shape = []
        for d in texpr.dims:
            try:
                v = self.eval(d, scope, symbols=True)
            except StmtError:
                return None
            if v is POISON:
                return None
            if not is_dim(v) or (isinstance(v, int) and v < least):
                got = f"{v}" if is_dim(v) else type_name(v)
                self.error("E0405", f"a dimension must be a size ({least} or more) or a symbol, got {got}", d.span,
                           scope, help="an input's sizes are 1 or more" if v == 0 and least == 1 else None)
                return None
            shape.append(v)
        return TensorType(dtype, tuple(shape))

    # ---- expressions ----
    def eval(self, e, scope: Scope, symbols: bool = False):
        """The value of an expression; `symbols`: a name that is not defined is a symbolic size (in a
        type's dims). An EvalError becomes an error at `e`."""
        try:
            if isinstance(e, A.Literal):
                return e.value
            if isinstance(e, A.Name):
                return self.lookup(e, scope, symbols)
            if isinstance(e, A.Pipe):
                return self.eval_pipe(e, scope)
            if isinstance(e, A.Call):
                return self.eval_call(e, scope)
            if isinstance(e, A.BinOp):
                return self._eval_binop(e, scope, symbols)
            if isinstance(e, A.ListExpr):
                return tuple(self.eval(x, scope, symbols) for x in e.items)
            if isinstance(e, A.Unary):
                return self._eval_unary(e, scope, symbols)
            if isinstance(e, A.Compare):
                return self._eval_compare(e, scope)
            if isinstance(e, A.BoolOp):
                return self._eval_boolop(e, scope)
            if isinstance(e, A.Cond):
                test = self.eval(e.test, scope)
                if test is POISON:
                    return POISON
                return self.eval(e.then if truth(test, "a condition") else e.orelse, scope, symbols)
            if isinstance(e, A.TensorTypeExpr):
                self.fail("E0405", "a tensor type is not a value here", e.span, scope,
                          help="types belong in `input` declarations and shape annotations")
            raise EvalError(f"cannot evaluate {type(e).__name__}")
        except EvalError as err:
            self.fail("E0405", err.message, e.span, scope, help=err.help)

    def _eval_binop(self, e: A.BinOp, scope: Scope, symbols: bool):
        acc = self.eval(e.first, scope, symbols)
        for op, operand in e.rest:
            rhs = self.eval(operand, scope, symbols)
            acc = self.arith(op, acc, rhs, e, scope)
        return acc

    def _eval_unary(self, e: A.Unary, scope: Scope, symbols: bool):
        v = self.eval(e.operand, scope, symbols)
        if v is POISON:
            return POISON
        if e.op == "not":
            return not truth(v, "the operand of `not`")
        if e.op == "+":
            return v
        if isinstance(v, Tensor):
            return self.apply_op("Mul", e, [v], {"other": -1}, scope, None)  # -ids stays int64, as in torch
        return negate(v)

    def _eval_compare(self, e: A.Compare, scope: Scope):
        a, b = self.eval(e.left, scope), self.eval(e.right, scope)
        if a is POISON or b is POISON:
            return POISON
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            self.fail("E0405", "comparisons work on constants and sizes, not tensors", e.span, scope,
                      help="use channels(x) or dim(x, i) to compare sizes")
        return compare(e.op, a, b)

    def _eval_boolop(self, e: A.BoolOp, scope: Scope):
        for operand in e.operands:
            v = self.eval(operand, scope)
            if v is POISON:
                return POISON
            if truth(v, f"an operand of `{e.op}`") == (e.op == "or"):
                return e.op == "or"
        return e.op == "and"

    def lookup(self, e: A.Name, scope: Scope, symbols: bool):
        if e.id in scope.values:
            return scope.values[e.id]
        if e.id in self.library.constants:
            return self.constant(e.id)
        if symbols:
            self.model.symbols.add(e.id)
            return D.Sym.var(e.id)
        if e.id in OPS or e.id in self.library.blocks:
            self.fail("E0405", f"`{e.id}` is a layer, not a value", e.span, scope,
                      help=f"apply it: `x |> {e.id}` or `{e.id}(x)`")
        if e.id in scope.layers:
            self.fail("E0405", f"`{e.id}` names a layer, not a value", e.span, scope,
                      help=f"apply it again with `x |> {e.id}` to share its weights")
        if self.library.import_failed:
            raise StmtError()  # the import that failed may define it
        known = list(scope.values) + list(self.library.constants)
        self.fail("E0401", f"`{e.id}` is not defined", e.span, scope, label="undefined",
                  help=did_you_mean(e.id, known))

    def arith(self, op: str, a, b, e, scope: Scope):
        if a is POISON or b is POISON:
            return POISON
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            name = {"+": "Add", "-": "Sub", "*": "Mul", "/": "Div"}.get(op)
            if name is None:
                self.fail("E0405", f"`{op}` does not apply to tensors", e.span, scope)
            if isinstance(a, Tensor) and isinstance(b, Tensor):
                return self.apply_op(name, e, [a, b], {}, scope, None)
            tensor, other = (a, b) if isinstance(a, Tensor) else (b, a)
            if not is_number(other):
                self.fail("E0405", f"cannot apply `{op}` to a tensor and {type_name(other)}", e.span, scope)
            if isinstance(b, Tensor) and op in ("-", "/"):
                self.fail("E0405", f"write the tensor first: `x {op} {other}`", e.span, scope)
            return self.apply_op(name, e, [tensor], {"other": other}, scope, None)
        return binary(op, a, b)

    # ---- calls and builtins ----
    def eval_call(self, call: A.Call, scope: Scope):
        if call.func in BUILTINS and call.layer_name is None:
            return self.builtin(call, scope)
        return self.apply_layer(call.func, call, [], scope, call.layer_name, call.name_span)

    def builtin(self, call: A.Call, scope: Scope):
        by_name = next((a for a in call.args if a.name is not None), None)
        if by_name is not None:
            self.fail("E0404", f"{call.func}() takes no argument by name", by_name.span, scope)
        args = [self.eval(a.value, scope) for a in call.args]
        if any(a is POISON for a in args):
            return POISON
        return call_builtin(call.func, args)

    # ---- pipelines ----
    def eval_pipe(self, e: A.Pipe, scope: Scope):
        value = self.eval(e.source, scope)
        for stage in e.stages:
            if value is POISON:
                return POISON
            inputs = list(value) if isinstance(value, tuple) else [value]
            for i, v in enumerate(inputs):
                if v is POISON:
                    return POISON
                if not isinstance(v, Tensor):
                    self.fail("E0405", f"only tensors can be piped into a layer, but this is {type_name(v)}",
                              e.source.span if i == 0 else e.span, scope)
            value = self.apply_stage(stage, inputs, scope, None, None)
        return value

    def apply_stage(self, stage, inputs: list, scope: Scope, name: str | None, name_span):
        if isinstance(stage, A.Named):
            return self.apply_stage(stage.layer, inputs, scope, stage.name, stage.name_span)
        if isinstance(stage, A.LayerRef):
            if name is None and stage.name in scope.layers:
                return self.reuse_layer(scope.layers[stage.name], stage, inputs, scope)
            call = A.Call(stage.name, (), stage.span, stage.span)
            return self.apply_layer(stage.name, call, inputs, scope, name, name_span)
        if isinstance(stage, A.LayerCall):
            return self.apply_layer(stage.call.func, stage.call, inputs, scope, name, name_span)
        if isinstance(stage, A.LayerList):
            return self.apply_sequence(stage.items, inputs, scope, name, name_span)
        if isinstance(stage, A.Repeat):
            return self.apply_repeat(stage, inputs, scope, name, name_span)
        raise TypeError(stage)

    def _group_scope(self, scope: Scope, name: str | None, name_span, what: str) -> Scope:
        """A naming scope for a list or repeat: `name.0`, `name.1`, ... (values stay shared)."""
        return scope.group(self.layer_path(name, name_span, what, scope) + ".")

    def apply_sequence(self, items, inputs, scope, name, name_span):
        """The stages of a list in turn. A named list names its layers `name.0`, `name.1`, ... (or as
        written, `name.conv`); an unnamed one only groups: they are named in the enclosing scope."""
        sub = scope if name is None else self._group_scope(scope, name, name_span, "list")
        value = inputs
        for i, item in enumerate(items):
            index_name = None if name is None or isinstance(item, A.Named) else str(i)
            value = self.apply_stage(item, as_list(value), sub, index_name, None)
        return value

    def apply_repeat(self, rep: A.Repeat, inputs, scope, name, name_span):
        count = self.static(rep.count, scope)
        if count is POISON:
            raise StmtError()
        if not is_dim(count) or not isinstance(count, int) or not 0 <= count <= MAX_REPEAT:
            self.fail("E0602" if isinstance(count, int) and not isinstance(count, bool) else "E0405",
                      f"repeat needs a count from 0 to {MAX_REPEAT:,}, got "
                      f"{count if is_dim(count) else type_name(count)}", rep.count.span, scope)
        copies = count * self.model.copies
        if copies > MAX_NODES:  # refused before expanding: nested repeats multiply
            self.fail("E0602", f"these nested repeats make {copies:,} copies of their body; "
                      f"a model may have at most {MAX_NODES:,} layers", rep.count.span, scope)
        sub = self._group_scope(scope, name, name_span, "repeat")
        self.model.copies *= max(count, 1)
        try:
            return self._expand_repeat(rep, count, inputs, scope, sub)
        finally:
            self.model.copies //= max(count, 1)

    def _expand_repeat(self, rep: A.Repeat, count: int, inputs, scope: Scope, sub: Scope):
        value = inputs[0] if len(inputs) == 1 else tuple(inputs)  # `repeat 0` passes its input through
        with repeat_index(scope.values, rep.var):
            for i in range(count):
                if rep.var:
                    scope.values[rep.var] = i
                if len(rep.stages) == 1 and not isinstance(rep.stages[0], A.Named):
                    value = self.apply_stage(rep.stages[0], as_list(value), sub, str(i), None)
                else:  # several stages (or a named one): copy i is a group of its own, `name.i.j`
                    inner = sub.group(f"{sub.prefix}{i}.")
                    for j, st in enumerate(rep.stages):
                        value = self.apply_stage(st, as_list(value), inner,
                                                 None if isinstance(st, A.Named) else str(j), None)
        return value

    # ---- layers ----
    def layer_path(self, name: str | None, name_span, op: str, scope: Scope) -> str:
        """The path of a new layer (or group of layers): `name` under the scope's prefix, or an automatic
        name from `op` (`linear_0`) that no explicit name of the body takes."""
        if name is not None:
            self.check_layer_name(name, name_span, scope)
            local = scope.layers.maps[0]  # a list or repeat may reuse an enclosing layer's name for its own
            if name in local or (scope.prefix + name) in self.model.layers:
                first = self.model.layers.get(local.get(name, scope.prefix + name))
                self.fail("E0403", f"layer name `{name}` is used twice", name_span, scope,
                          label="second layer with this name",
                          notes=(Note("first used", first.span),) if first else (),
                          help=f"to share its weights, apply it again without arguments: `x |> {name}`")
            scope.layers[name] = scope.prefix + name
            return scope.prefix + name
        base = op.lower()
        n = scope.counters.get(base, 0)
        while f"{base}_{n}" in scope.reserved or f"{base}_{n}" in scope.layers:
            n += 1
        scope.counters[base] = n + 1
        local = f"{base}_{n}"
        scope.layers[local] = scope.prefix + local
        return scope.prefix + local

    def check_layer_name(self, name: str, span, scope: Scope) -> None:
        """A name the generated module can hold."""
        why = layer_name_problem(name, top_level=not scope.prefix)
        if why is not None:
            self.fail("E0412", f"`{name}` cannot name a layer: {why}", span, scope, label="reserved",
                      help=f"call it `{name.strip('_') or 'layer'}_`, for example")

    def _op_of_layer(self, name: str, scope: Scope) -> str | None:
        """The op of the layer `name` names in `scope`; None where it names a group (a list, repeat or block)."""
        layer = self.model.layers.get(scope.layers[name])
        return None if layer is None else layer.op

    def apply_layer(self, func: str, call: A.Call, inputs: list, scope: Scope, name, name_span):
        if func in self.library.blocks:
            return self.expand_block(func, call, inputs, scope, name, name_span)
        op = OPS.get(func)
        if op is None:
            if func in scope.layers and not call.args:
                if name_span is not None:  # `other: fc` (the index names of lists and repeats have no span)
                    op_name = self._op_of_layer(func, scope)
                    self.fail("E0403", f"`{func}` is a layer applied again: it keeps its name", name_span, scope,
                              label="a second name", help=f"drop `{name}:` to share its weights, or call an op "
                              f"for a new layer: `{name}: {op_name}(...)`" if op_name else f"drop `{name}:`")
                return self.reuse_layer(scope.layers[func], call, inputs, scope)
            self.fail_not_an_op(func, call, scope)
        tensors, input_spans, positional = self.split_positional(call, inputs, scope)
        kwargs, arg_spans, init = self.op_arguments(op, call, positional, scope)
        if any(t is POISON for t in tensors):
            return POISON
        path = self.layer_path(name, name_span, func, scope)
        return self.apply_op(func, call, tensors, kwargs, scope, path, arg_spans, init, input_spans)

    def split_positional(self, call: A.Call, inputs: list, scope: Scope):
        """The call's tensor inputs: `inputs` (piped in), then its leading positional arguments that are
        tensors (`Concat(a, b, dim = 1)`); their spans (None where piped); and its other positional
        arguments as (argument, value). Each is evaluated once: a layer written in one is made once."""
        tensors, spans, rest = list(inputs), [None] * len(inputs), []
        for a in call.args:
            if a.name is not None:
                continue
            value = self.eval(a.value, scope)
            if not rest and (isinstance(value, Tensor) or value is POISON):
                tensors.append(value)
                spans.append(a.span)
            else:
                rest.append((a, self._refuse_tensors(value, a.value, scope)))
        return tensors, spans, rest

    def fail_not_an_op(self, func: str, call: A.Call, scope: Scope):
        """Fail for a call of `func`, which is no block or op (nor a layer applied again without arguments)."""
        if func in scope.layers:
            op_name = self._op_of_layer(func, scope)
            self.fail("E0407", f"`{func}` is a layer, not an op: it takes no arguments", call.span, scope,
                      label="arguments given", help=f"to share its weights: `x |> {func}`; for a new layer, "
                      f"call its op under a new name, e.g. `{func}2: {op_name}(...)`"
                      if op_name else f"to share its weights: `x |> {func}`")
        if func in BUILTINS:
            self.fail("E0405", f"{func}() is a function, not a layer", call.func_span, scope)
        if self.library.import_failed:
            raise StmtError()  # the import that failed may define it
        candidates = list(OPS) + list(self.library.blocks) + list(scope.layers)
        self.fail("E0402", f"unknown op or block `{func}`", call.func_span, scope, label="not defined",
                  help=did_you_mean(func, candidates))

    def op_arguments(self, op, call: A.Call, positional: list, scope: Scope):
        """Map the call's arguments onto the op's parameters (positional as torch, or without the input size):
        `positional` as (argument, value), the keyword ones from the call."""
        keywords = [a for a in call.args if a.name is not None]
        order = _positional_fields(op, len(positional))
        if len(positional) > len(order):
            extra, _ = positional[len(order)]
            by_name = [f for f in op.params.model_fields if f not in order and f not in op.inferred]
            self.fail("E0407", f"{op.name} takes at most {len(order)} positional argument"
                      f"{'s' if len(order) != 1 else ''} ({', '.join(order) or 'none'})", extra.span, scope,
                      label="one too many", help=f"pass the others by name, e.g. `{by_name[0]} = ...`" if by_name
                      else f"e.g. {op.example}" if op.example else None)
        kwargs, spans, init = {}, {}, None
        for field_name, (a, value) in zip(order, positional):
            kwargs[field_name], spans[field_name] = value, a.span
        for a in keywords:
            if a.name == "init":
                init, spans["init"] = self._init_arg(a, scope), a.span
                continue
            if a.name in kwargs:
                self.fail("E0404", f"{op.name} got `{a.name}` twice", a.span, scope)
            if a.name not in op.params.model_fields:
                self.fail("E0404", f"{op.name} has no argument `{a.name}`", a.span, scope, label="unknown argument",
                          help=did_you_mean(a.name, op.params.model_fields) or
                          f"its arguments: {', '.join(op.params.model_fields) or 'none'}")
            kwargs[a.name], spans[a.name] = self.static(a.value, scope), a.span
        if any(v is POISON for v in kwargs.values()):
            raise StmtError()
        return kwargs, spans, init

    def _init_arg(self, a: A.Arg, scope: Scope) -> dict:
        """`init = kaiming`, `init = "kaiming"` or `init = normal(std = 0.02)`, checked against INIT_KINDS."""
        kind, args = self._init_kind(a.value, scope)
        init = {"kind": kind}
        for x in args:
            init[x.name] = self._init_setting(kind, x, init, scope)
        if "a" in init and "b" in init and not init["a"] < init["b"]:
            self.fail("E0405", f"init {kind} needs a < b (the cut-off points), got a = {init['a']}, b = {init['b']}",
                      a.value.span, scope)
        return init

    def _init_kind(self, v, scope: Scope) -> tuple[str, tuple]:
        """The kind an init argument names, and the arguments it gives that kind."""
        if isinstance(v, A.Call):
            kind, kind_span, args = v.func, v.func_span, v.args
        else:
            kind, kind_span, args = (v.id if isinstance(v, A.Name) else self.static(v, scope)), v.span, ()
        if kind not in INIT_KINDS:
            self.fail("E0405", f"unknown init `{kind}`" if isinstance(kind, str) else
                      "init takes a name such as normal, xavier or kaiming", kind_span, scope, label="not an init",
                      help=(did_you_mean(kind, INIT_KINDS) if isinstance(kind, str) else None)
                      or f"one of: {', '.join(INIT_KINDS)}")
        return kind, args

    def _init_setting(self, kind: str, x: A.Arg, init: dict, scope: Scope):
        """The value of one argument of an init kind (`std = 0.02`); `init`: those given before it."""
        allowed = INIT_KINDS[kind]
        if x.name not in allowed:
            self.fail("E0404", f"init {kind} has no argument `{x.name}`" if x.name else
                      f"init {kind} takes its arguments by name", x.span, scope,
                      help=f"its arguments: {', '.join(allowed) or 'none'}")
        if x.name in init:
            self.fail("E0404", f"init {kind} got `{x.name}` twice", x.span, scope)
        value = self.static(x.value, scope)
        if value is POISON:
            raise StmtError()
        want = _init_value_wanted(x.name, value)
        if want is not None:
            self.fail("E0405", f"init {kind} argument `{x.name}` must be {want}", x.value.span, scope,
                      label=f"got {show(value)}")
        return value

    def apply_op(self, func: str, site, tensors: list, kwargs: dict, scope: Scope, path: str | None,
                 arg_spans: dict | None = None, init: dict | None = None, input_spans: list = ()):
        """Apply the op `func` to `tensors`, as a new layer at `path` (None: an automatic name). `site`: the
        expression that applies it (a call, or an operator such as `a + b`)."""
        op = OPS[func]
        arg_spans = arg_spans or {}
        try:
            params = op.params(**kwargs)
        except ValidationError as err:
            self._report_param_errors(func, err, kwargs, arg_spans, site, scope)
            raise StmtError()
        lo, hi = op.inputs
        if not (lo <= len(tensors) and (hi is None or len(tensors) <= hi)):
            want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            self.fail("E0408", f"{func} takes {want} tensor input{'s' if hi != 1 else ''}, got {len(tensors)}",
                      site.span, scope)
        if path is None:
            path = self.layer_path(None, None, func, scope)
        return self._infer(op, params, tensors, site, scope, path, arg_spans, init, layer_exists=False,
                           input_spans=input_spans)

    def _report_param_errors(self, func: str, err: ValidationError, kwargs: dict, arg_spans: dict, site,
                             scope: Scope) -> None:
        """The op's parameters refused its arguments: one error per argument, at the argument."""
        op = OPS[func]
        reported = set()
        for e in _telling_errors_first(err.errors(include_url=False), arg_spans):
            field_name = e["loc"][0] if e["loc"] else None
            if field_name in reported:  # a union gives one error per member: report the telling one
                continue
            reported.add(field_name)
            span = arg_spans.get(field_name, site.span)
            if e["type"] == "missing":
                self.error("E0406", f"{func} needs `{field_name}`", site.span, scope, label="missing argument",
                           help=f"e.g. {op.example}" if op.example else None)
            elif isinstance(kwargs.get(field_name), D.Sym):
                self.error("E0405", f"{func} argument `{field_name}` must be a fixed number, but "
                           f"{kwargs[field_name]} is a symbolic size", span, scope, label="known only at run time",
                           help="layers need fixed sizes to make their weights")
            else:
                msg = e["msg"].removeprefix("Value error, ")
                value = kwargs.get(field_name)
                whole = isinstance(value, float) and value.is_integer() and e["type"] == "int_type"
                self.error("E0405", f"{func} argument `{field_name}`: {msg[0].lower() + msg[1:]}", span, scope,
                           label=f"got {show(value)}", help="write a whole number without a point; `/` gives a "
                           "float, `//` a whole number (or use int(...))" if whole else None)

    def reuse_layer(self, path: str, site, inputs: list, scope: Scope):
        """Apply an existing layer again: the same parameters (shared weights)."""
        layer = self.model.layers.get(path)
        if layer is None and any(other.startswith(path + ".") for other in self.model.layers):
            self.fail("E0405", f"`{path}` names a group of layers (a list, repeat or block); "
                      "only a single layer can be applied again",
                      site.span, scope, help="apply its layers again one by one to share their weights, "
                      "or use the block again for new weights")
        if layer is None:
            self.fail("E0401", f"layer `{path}` is not defined yet", site.span, scope)
        if any(t is POISON for t in inputs):
            return POISON
        return self._infer(OPS[layer.op], layer.params, inputs, site, scope, path, {}, None, layer_exists=True)

    def _infer(self, op, params, tensors, site, scope, path, arg_spans, init, layer_exists, input_spans=()):
        """The op's outputs for these inputs, added to the graph; `input_spans`: where each input is written
        as an argument (None, or no entry, where it is piped in)."""
        spans = [input_spans[i] if i < len(input_spans) else None for i in range(len(tensors))]
        types = tuple(t.type for t in tensors)
        try:
            result = op.infer(params, types)
        except OpError as err:
            self._fail_op_error(err, op, types, spans, site, scope, arg_spans, layer_exists)
        self._check_input_dtypes(op, result.params, tensors, spans, site, scope)
        if init:
            self._check_init_fits(op, result.params, init, arg_spans.get("init"), scope)
        if len(self.model.nodes) >= MAX_NODES:
            self.fail("E0602", f"the model expands to more than {MAX_NODES:,} layers", site.span, scope)
        if not layer_exists:
            self.model.layers[path] = Layer(path, op.name, result.params, site.span, init, scope.block)
        node_id = self.model.fresh_id(path.replace(".", "_"))
        if op.outputs_weight:
            result = replace(result, outputs=tuple(TensorType(self.model.weight_dtype, t.shape)
                                                   for t in result.outputs))
        self._check_output_sizes(op, result.outputs, site, scope)
        return self._add_node(op, result, node_id, path, tensors, types, site, scope)

    def _fail_op_error(self, err: OpError, op, types: tuple, input_spans: list, site, scope: Scope, arg_spans: dict,
                       layer_exists: bool):
        """Fail with the op's shape rule's error, at the argument or input it is about."""
        span = arg_spans.get(err.arg) if err.arg else None
        if span is None and err.input is not None:
            span = input_spans[err.input] if err.input < len(input_spans) else None
        help_ = err.help
        if err.code == "E0301" and err.arg in op.inferred and not layer_exists and isinstance(site, A.Call):
            fixed = tuple(a for a in site.args if a.span != arg_spans.get(err.arg))
            help_ = f"drop the input size; specc infers it: {unparse.call(site.func, fixed)}"
        label = err.label or (f"input is {D.fmt_shape(types[0].shape)}" if types and err.code == "E0301" else "")
        self.fail(err.code, err.message, span or site.span, scope, label=label, help=help_)

    def _check_output_sizes(self, op, outputs: tuple, site, scope: Scope) -> None:
        for t in outputs:
            fixed = [d for d in t.shape if isinstance(d, int)]
            if any(d > MAX_INT for d in fixed) or math.prod(fixed) > MAX_INT:  # no tensor can have so many elements
                self.fail("E0602", f"{op.name} would make {t}: more elements than int64 can count", site.span, scope)

    def _add_node(self, op, result, node_id: str, path: str, tensors: list, types: tuple, site, scope: Scope):
        """Add the node that applies the layer at `path`, and its output values; those values as tensors."""
        outs = []
        for i, t in enumerate(result.outputs):
            vid = node_id if len(result.outputs) == 1 else self.model.fresh_id(f"{node_id}_{i}")
            self.model.values[vid] = Value(vid, t, site.span)
            outs.append(Tensor(vid, t))
        try:
            macs = op.macs(result.params, types, result.outputs)
        except Exception:  # noqa: BLE001 - MACs are informational
            macs = 0
        self.model.nodes.append(Node(node_id, path, tuple(t.id for t in tensors), tuple(o.id for o in outs),
                                     site.span, scope.notes, macs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _check_input_dtypes(self, op, params, tensors, spans, site, scope: Scope) -> None:
        """A layer with weights computes in their dtype, the model's one (its inputs' floating-point dtype,
        or float32 where they differ): torch refuses a floating-point input of another dtype, except that
        its norms take half-precision inputs to float32 weights (and give half-precision outputs)."""
        if not op.param_shapes(params):
            return
        model_dtype = self.model.weight_dtype
        for i, t in enumerate(tensors):
            half_to_norm = op.category == "norm" and model_dtype == "float32" and \
                t.type.dtype in ("float16", "bfloat16")
            if t.type.dtype in FLOAT_DTYPES and t.type.dtype != model_dtype and not half_to_norm:
                self.fail("E0306", f"{op.name} has {model_dtype} weights, the model's dtype, but its input "
                          f"is {t.type.dtype}", spans[i] or site.span, scope,
                          label=f"input is {t.type.dtype}", help="a model's weights take its inputs' floating-point "
                          "dtype when they agree on one (float32 otherwise): declare them in one dtype")

    def _check_init_fits(self, op, params, init: dict, span, scope: Scope) -> None:
        """The layer has a weight for init to set, and xavier/kaiming get one with fan-in and fan-out."""
        weight = op.param_shapes(params).get("weight")
        if weight is None:
            self.fail("E0405", f"{op.name} has no `weight` for init to set", span, scope,
                      label="nothing to initialise", help="init applies to layers with a weight (Linear, Conv2d, ...)")
        if init["kind"].startswith(("xavier", "kaiming")) and len(weight) < 2:
            self.fail("E0405", f"init {init['kind']} needs a weight of 2 or more dims (fan-in and fan-out), "
                      f"but {op.name}'s is {list(weight)}", span, scope,
                      help="use normal, trunc_normal, zeros, ones or constant here")

    # ---- blocks ----
    def expand_block(self, func: str, call: A.Call, inputs: list, scope: Scope, name, name_span):
        block, home = self.library.blocks[func]
        self._check_expansion_limits(func, call, scope)
        tensors, _, positional = self.split_positional(call, inputs, scope)
        values = self.block_arguments(func, block, call, positional, scope)
        if len(tensors) != len(block.inputs):
            self.fail("E0408", f"block {func} takes {len(block.inputs)} tensor input"
                      f"{'s' if len(block.inputs) != 1 else ''} ({', '.join(block.inputs)}), got {len(tensors)}",
                      call.span, scope)
        if any(t is POISON for t in tensors) or any(v is POISON for v in values.values()):
            return POISON
        path = self.layer_path(name, name_span, func, scope)
        inner = self._block_scope(func, block, call, path, values, tensors, scope)
        self.expanded_blocks.add(func)
        self.run_body(block.body, inner)
        if inner.returned is None:
            self.fail("E0410", f"block {func} has no `return`", home.span("blocks", func), scope)
        result = inner.returned
        if any(r is POISON for r in result):
            return POISON
        return result[0] if len(result) == 1 else result

    def _check_expansion_limits(self, func: str, call: A.Call, scope: Scope) -> None:
        if scope.depth >= MAX_BLOCK_DEPTH:
            self.fail("E0603", f"blocks nested more than {MAX_BLOCK_DEPTH} deep (does `{func}` use itself?)",
                      call.span, scope)
        self.model.expansions += 1
        if self.model.expansions > MAX_NODES:  # a block using itself twice doubles at every level, layers or not
            if self.model.expansions == MAX_NODES + 1:  # said once; the expansions still pending fail quietly
                self.error("E0602", f"the model expands blocks more than {MAX_NODES:,} times "
                           f"(does `{func}` use itself?)", call.span, scope)
            raise StmtError()

    def _block_scope(self, func: str, block, call: A.Call, path: str, values: dict, tensors: list,
                     scope: Scope) -> Scope:
        """The scope a block's body runs in: its parameters (`values`, the call's; the defaults for the
        others) and its inputs bound, its layers named under `path`."""
        notes = (BlockUse(f"in block {func}, used", call.span, func),) + scope.notes
        inner = Scope(path + ".", values, reserved=explicit_names(block.body), notes=notes, block=func,
                      depth=scope.depth + 1)
        for pname, default in block.params.items():
            if pname in values:
                continue
            if default is None:
                self.fail("E0406", f"block {func} needs a value for `{pname}`", call.span, scope,
                          help=f"pass it: {func}({pname} = ...)")
            inner.values[pname] = self.try_static(default, inner)
        for iname, t in zip(block.inputs, tensors):
            inner.values[iname] = t
        return inner

    def block_arguments(self, func: str, block, call: A.Call, positional: list, scope: Scope) -> dict:
        """The block parameters a call gives: `positional` (its arguments after the tensor inputs, as
        (argument, value)) and its keyword arguments, by parameter name."""
        pnames = list(block.params)
        if len(positional) > len(pnames):
            self.fail("E0407", f"block {func} takes {len(pnames)} parameter{'s' if len(pnames) != 1 else ''} "
                      f"({', '.join(pnames) or 'none'})", positional[len(pnames)][0].span, scope)
        values = {pname: value for pname, (_, value) in zip(pnames, positional)}
        for a in call.args:
            if a.name is None:
                continue
            if a.name not in block.params:
                self.fail("E0404", f"block {func} has no parameter `{a.name}`", a.span, scope,
                          label="unknown parameter", help=did_you_mean(a.name, pnames))
            if a.name in values:
                self.fail("E0404", f"block {func} got `{a.name}` twice", a.span, scope)
            values[a.name] = self.static(a.value, scope)
        return values


def _positional_fields(op, given: int) -> list[str]:
    """The parameters an op's `given` positional arguments fill, in torch's order: the input size that
    specc infers (Linear's `in_features`) is among them only where one more is given than the others need."""
    required = [f for f in op.positional if f not in op.inferred and op.params.model_fields[f].is_required()]
    order = list(op.positional)
    if given > len(required) and order and order[0] in op.inferred:
        return order
    return [f for f in order if f not in op.inferred]


def _init_value_wanted(name: str, value) -> str | None:
    """What the init argument `name` must be, where `value` is not that; else None."""
    if name == "mode":
        ok, want = value in ("fan_in", "fan_out"), '"fan_in" or "fan_out"'
    elif name == "nonlinearity":
        ok, want = value in INIT_NONLINEARITIES, f"one of {', '.join(INIT_NONLINEARITIES)}"
    elif name in ("std", "gain"):
        ok, want = is_number(value) and value > 0, "a positive number"
    else:
        ok, want = is_number(value), "a number"
    return None if ok else want


def _telling_errors_first(errors: list, arg_spans: dict) -> list:
    """Pydantic's errors in the order of the arguments in the source, and for one argument those
    about its range before those about its type: for `stride = 0` against `int > 0 or a tuple of
    them`, "greater than 0" is the telling one."""
    def key(e):
        span = arg_spans.get(e["loc"][0] if e["loc"] else None)
        return (span.line, span.col) if span else (0, 0), e["type"].endswith("_type")
    return sorted(errors, key=key)


def _from_python(value):
    """A parameter value given from Python (`specc.compile(..., params=...)`) as the evaluator's own:
    a list as a tuple, as `[2, 2]` in a spec is (else `sizes == [2, 2]` would be false)."""
    if isinstance(value, (list, tuple)):
        return tuple(_from_python(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return in_range(value)
    raise EvalError(f"expected a number, string, boolean, none or list, got {type(value).__name__}")


def build(spec, model: str | None = None, *, params: dict | None = None, max_params: int = MAX_PARAMS):
    """Build one model's IR. Returns (graph or None, diagnostics)."""
    builder = Builder(spec, max_params=max_params)
    if not spec.models:
        return None, builder.diagnostics
    # an E0411 below is raised alone, without the imports' diagnostics: they are told once a model is picked
    first = next(iter(spec.models))
    if model is None:
        if len(spec.models) > 1:
            raise Failed(Diagnostic("E0411", f"{spec.path} defines {len(spec.models)} models "
                                    f"({', '.join(spec.models)}); say which one",
                                    spec.span("models", list(spec.models)[1], "span"), label="a second model",
                                    help=f"--model {first} on the command line, model=\"{first}\" in Python"))
        model = first
    if model not in spec.models:
        raise Failed(Diagnostic("E0411", f"{spec.path} has no model `{model}`", spec.span("models", first, "span"),
                                label="its first model", help=did_you_mean(model, spec.models) or
                                f"its models: {', '.join(spec.models)}"))
    graph = builder.build_model_within_limits(model, params)
    return graph, builder.diagnostics


def build_all(spec, *, max_params: int = MAX_PARAMS):
    """Build every model of a spec (for `check`). Returns (graphs, diagnostics)."""
    builder = Builder(spec, max_params=max_params)
    builder.check_constants()
    graphs = {}
    for name in spec.models:
        graphs[name] = builder.build_model_within_limits(name)
    try:
        check_unused_blocks(builder)
    except RecursionError:  # nested too deeply to walk: what a model uses was told by its build
        pass
    return graphs, builder.diagnostics
