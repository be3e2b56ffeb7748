"""Spec -> IR graph: resolve imports, expand blocks/repeats/lists, evaluate constants, name
layers, and infer every value's type through the op registry's shape rules.

Errors are collected, not raised: a statement that fails binds its targets to `POISON`, and
anything computed from a poisoned value is poisoned silently, so one mistake gives one message.
"""
from __future__ import annotations

import contextlib
import keyword
import math
import os
from collections import ChainMap
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from ..errors import Diagnostic, Failed, Note, SpecError, did_you_mean
from ..frontend import ast as A, unparse
from ..source import SPEC_SUFFIXES, SourceSpan
from . import dims as D
from .evaluate import MAX_INT, EvalError, binary, compare, in_range, is_dim, negate, truth, type_name
from .graph import BlockUse, Graph, Layer, Node, Tie, Value, weight_dtype
from .ops import OPS, OpError
from .types import DTYPES, FLOAT_DTYPES, TensorType

MAX_REPEAT = 100_000
MAX_NODES = 100_000  # layers; the 10,000-layer benchmark spec checks in about half a second
MAX_BLOCK_DEPTH = 64
MAX_PARAMS = 10**12  # refused before anything is allocated; `--max-params` lowers it
# Attributes every nn.Module has, and those the compiled model (an fx.GraphModule) adds: a layer of
# the same name could not be installed. The test suite checks these lists against torch's.
MODULE_ATTRIBUTES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
    dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half
    ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad
    _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl _forward_hooks
    _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks _forward_pre_hooks_with_kwargs
    _get_backward_hooks _get_backward_pre_hooks _get_name _is_full_backward_hook _load_from_state_dict
    _load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules
    _named_members _non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
    _register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict _slow_forward _state_dict_hooks
    _state_dict_pre_hooks _version _wrapped_call_impl
""".split())
GRAPH_MODULE_ATTRIBUTES = frozenset("""
    add_submodule code delete_all_unused_submodules delete_submodule graph meta print_readable recompile
    shape_env to_folder
    _boxed_call _code _create_node_hooks _deepcopy_hooks _deepcopy_init _erase_node_hooks _graph _lineno_map
    _prologue_start _recompile_submodules _register_create_node_hook _register_deepcopy_hook
    _register_erase_node_hook _register_replace_node_hook _replace_hooks _set_replace_hook _tracer_cls
    _tracer_extras _unregister_create_node_hook _unregister_deepcopy_hook _unregister_erase_node_hook
    _unregister_replace_node_hook _wrapped_call
""".split())
# Names the Python that specc generates uses at module level (`specc emit --python` writes the model
# as a class beside them): a model of the same name would shadow one.
EMITTED_NAMES = frozenset("""
    torch nn operator _install _Parameter
    super setattr getattr isinstance len range slice tuple list dict int float bool str object type print
""".split())
BUILTINS = ("channels", "dim", "rank", "features", "min", "max", "int", "float", "len", "sqrt")


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


class StmtError(Exception):
    """Abandons the current statement; the diagnostic is already recorded."""


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

    def child(self, prefix: str, values: dict, notes: tuple, block: str | None) -> Scope:
        return Scope(prefix, values, notes=notes, block=block, depth=self.depth + 1)


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
        for x in _subexpressions(e):
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


# `init = kind(args)` on a layer: each kind and the arguments it takes (the torch backend applies them).
INIT_KINDS = {
    "normal": ("mean", "std"), "trunc_normal": ("mean", "std", "a", "b"),
    "xavier": ("gain",), "xavier_uniform": ("gain",), "xavier_normal": ("gain",),
    "kaiming": ("mode", "nonlinearity"), "kaiming_normal": ("mode", "nonlinearity"), "kaiming_uniform": ("a", "mode"),
    "zeros": (), "ones": (), "constant": ("value",),
}
INIT_NONLINEARITIES = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def _unusable_file_name(path: str) -> str | None:
    """Why no file can have this name (the system refuses it before looking), or None."""
    if "\0" in path:
        return "a file name cannot hold a NUL character"
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        return "it has characters no file name on this system can hold"
    return None


def _not_a_spec_file(target: str) -> tuple[str, str] | None:
    """(why, label) when `target` cannot be imported: no spec file there, or one the system cannot look at."""
    path = Path(target)
    try:
        if path.is_file():
            return None if target.lower().endswith(SPEC_SUFFIXES) else \
                (f"{target} is not a spec file ({', '.join(SPEC_SUFFIXES)})", "not a spec file")
        if path.is_dir():
            return f"{target} is a folder", "not a spec file"
        if path.exists():
            return f"{target} is not a regular file", "not a spec file"
    except OSError as err:  # a name too long, a folder that cannot be entered
        return f"{target}: {err.strerror}", "cannot be read"
    return f"no such file {target}", "file not found"


class Library:
    """Blocks and constants visible to a spec: its own and those of its imports (transitively)."""

    def __init__(self):
        self.blocks: dict[str, tuple] = {}  # name -> (BlockDef, Spec)
        self.constants: dict[str, tuple] = {}  # name -> (expr, Spec)


class Builder:
    def __init__(self, spec, *, max_params: int = MAX_PARAMS, import_stack: tuple = (), imported: dict | None = None):
        self.spec = spec
        # resolved path -> the Builder of a file already imported in this build: a file imported by
        # several others is read and checked once (two imports of the next file at each level of a
        # chain would otherwise double the work at every level)
        self.imported = {} if imported is None else imported
        self.max_params = max_params
        self.diagnostics: list[Diagnostic] = []
        self.import_stack = import_stack + (str(Path(spec.path).resolve()),)
        self.library = Library()
        self._const_cache: dict[str, object] = {}
        self._const_busy: set[str] = set()
        self._copies = 1  # how many times the enclosing repeats run what is being expanded now
        self._expanded: set[str] = set()  # blocks whose body a model ran (the others: check_unused_blocks)
        self.import_failed = False  # then an unknown name may be the failed import's: its error is the one told
        self._import(spec)

    # ---- diagnostics ----
    def error(self, code: str, message: str, span: SourceSpan | None, scope: Scope | None = None, *,
              label: str = "", help: str | None = None, notes: tuple = ()) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, label=label, help=help,
                                           notes=tuple(notes) + (scope.notes if scope else ())))

    def fail(self, *args, **kwargs):
        self.error(*args, **kwargs)
        raise StmtError()

    # ---- imports ----
    def _import(self, spec) -> None:
        here: set[str] = set()  # the files this one has imported already: a repeated import adds nothing
        for i, rel in enumerate(spec.imports):
            span = spec.span("imports", i)
            unusable = _unusable_file_name(rel)
            if unusable:
                self.error("E0501", f"cannot import {unparse.literal(rel)}: {unusable}", span, label="not a file name")
                self.import_failed = True
                continue
            target = _display_path(spec.folder / rel)
            key = str(Path(target).resolve())
            if key in here:
                continue
            here.add(key)
            if key in self.import_stack:
                chain = " -> ".join(Path(p).name for p in self.import_stack[self.import_stack.index(key):]) \
                    + f" -> {Path(target).name}"
                self.error("E0502", f"import cycle: {chain}", span, label="this import closes the cycle")
                self.import_failed = True
                continue
            problem = _not_a_spec_file(target)
            if problem:  # nothing else is read (a line of /etc/passwd would show in the syntax error)
                why, label = problem
                self.error("E0501", f"cannot import \"{rel}\": {why}", span, label=label,
                           help="imports are relative to the importing file")
                self.import_failed = True
                continue
            sub = self.imported.get(key)
            if sub is None:
                try:
                    imported = _load_import(target)
                except SpecError as err:
                    self.diagnostics += _imported_at(err.diagnostics, span)
                    self.import_failed = True
                    continue
                sub = self.imported[key] = Builder(imported, import_stack=self.import_stack, imported=self.imported)
                self.diagnostics += _imported_at(sub.diagnostics, span)
            self.import_failed |= sub.import_failed
            for kind, names, theirs in (("block", self.library.blocks, sub.library.blocks),
                                        ("constant", self.library.constants, sub.library.constants)):
                for name, entry in theirs.items():
                    self._define(kind, names, name, entry, span)
        for kind, names, section, defined in (("block", self.library.blocks, "blocks", spec.blocks),
                                              ("constant", self.library.constants, "constants", spec.constants)):
            for name, definition in defined.items():
                self._define(kind, names, name, (definition, spec), spec.span(section, name))

    def _define(self, kind: str, names: dict, name: str, entry: tuple, span: SourceSpan | None) -> None:
        """Add a block or constant to the library; the same name from two files is an error (a file
        imported twice, or by two of the imports, brings the same definitions and is no clash)."""
        first = names.get(name)
        if first is not None and Path(first[1].path).resolve() != Path(entry[1].path).resolve():
            self.error("E0208", f"{kind} `{name}` is defined both in {_display_path(Path(first[1].path))} "
                       f"and in {_display_path(Path(entry[1].path))}", span, label="second definition",
                       help=f"rename one of them: specc has one namespace for the {kind}s of a file and its imports")
            return
        names[name] = entry

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
            value = self._try_static(expr, Scope("", {}))  # an error is reported once; every use gets POISON
        finally:
            self._const_busy.discard(name)
        self._const_cache[name] = value
        return value

    def static(self, expr, scope: Scope):
        """Evaluate an expression that must not involve tensors."""
        return self._refuse_tensors(self.eval(expr, scope), expr, scope)

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
        model = self.spec.models[name]
        self.nodes: list[Node] = []
        self.values: dict[str, Value] = {}
        self.layers: dict[str, Layer] = {}
        self.ties: list[Tie] = []
        self.symbols: set[str] = set()
        self.used_ids: set[str] = set()  # node and value ids
        self._expansions = 0  # blocks expanded in this model (check builds every model of a file)
        errors_before = len(self.diagnostics)
        scope = Scope("", {}, reserved=explicit_names(model.body))
        if name in EMITTED_NAMES:
            self.error("E0412", f"`{name}` cannot name a model: the Python generated for it (`specc emit --python`) "
                       f"uses `{name}` already", self.spec.span("models", name, "span"), label="reserved",
                       help=f"call it `{name.strip('_').capitalize()}Model`, for example")
        for pname in params or {}:
            if pname not in model.params:
                self.error("E0404", f"model {name} has no parameter `{pname}`", self.spec.span("models", name, "span"),
                           help=did_you_mean(pname, model.params) or
                           f"its parameters: {', '.join(model.params) or 'none'}")
        for pname, default in model.params.items():
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
                scope.values[pname] = self._try_static(default, scope)
        inputs = []
        for iname, texpr in model.inputs.items():
            if iname == "self" or iname in EMITTED_NAMES or keyword.iskeyword(iname):
                self.error("E0412", f"`{iname}` cannot name an input: the generated `forward` takes its inputs "
                           f"as Python arguments{f' and uses `{iname}` itself' if iname in EMITTED_NAMES else ''}",
                           self.spec.span("models", name, "inputs", iname),
                           label="reserved", help=f"call it `{iname}_` or `{iname}_input`")
            ttype = self._tensor_type(texpr, scope, least=1)
            if ttype is None:
                scope.values[iname] = POISON
                continue
            vid = self._fresh_id(iname)
            self.values[vid] = Value(vid, ttype, texpr.span)
            scope.values[iname] = Tensor(vid, ttype)
            inputs.append(vid)
        self.weight_dtype = weight_dtype(self.values[vid].type.dtype for vid in inputs)
        self.run_body(model.body, scope)
        outputs, output_names = [], []
        for i, oname in enumerate(model.outputs):
            value = scope.values.get(oname)
            span = self.spec.span("models", name, "outputs", i)
            if oname in model.outputs[:i]:
                self.error("E0208", f"output `{oname}` is listed twice", span, label="listed again here")
            elif value is None:
                self.error("E0401", f"output `{oname}` is not defined", span, label="undefined",
                           help=did_you_mean(oname, [k for k, v in scope.values.items() if isinstance(v, Tensor)]))
            elif isinstance(value, Tensor):
                outputs.append(value.id)
                output_names.append(oname)
            elif value is not POISON:
                self.error("E0405", f"output `{oname}` is {type_name(value)}, not a tensor", span)
        self._check_ties(complete=len(self.diagnostics) == errors_before)
        graph = Graph(name, tuple(inputs), tuple(outputs), self.values, tuple(self.nodes), self.layers,
                      tuple(self.ties), tuple(sorted(self.symbols)), self.spec.span("models", name, "span"),
                      tuple(output_names), self._sizes(model, scope))
        self._check_size(graph, name)
        return graph

    def _sizes(self, model, scope: Scope) -> dict[str, int]:
        """The whole numbers the spec may name outside the model's body (the train section's target
        types): the model's parameters and the constants it sees. A constant with an error is left out
        quietly here; `check` evaluates every constant of the file and reports it."""
        reported = len(self.diagnostics)
        values = {name: self.constant(name) for name in self.library.constants}
        del self.diagnostics[reported:]
        values.update((name, scope.values.get(name)) for name in model.params)
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
        for layer in self.layers.values():
            for pname, shape in OPS[layer.op].param_shapes(layer.params).items():
                shapes[f"{layer.path}.{pname}"] = tuple(shape)
        sources: dict[str, str] = {}  # target -> source, for the ties that are sound one by one
        sound = []
        for tie in self.ties:
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
        self.ties = [replace(tie, source=self._tie_owner(tie, sources)) for tie in sound]

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
                for target in _targets(stmt):
                    scope.values[target] = POISON
                returns = _returns(stmt)
                if returns:  # a failed `return`, or an `if` that may have returned: the block's result is poison
                    scope.returned = (POISON,) * len(returns[0].values)

    def run_stmt(self, stmt, scope: Scope) -> None:
        if isinstance(stmt, A.Assign):
            value = self.eval(stmt.value, scope)
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
        elif isinstance(stmt, A.Return):
            if scope.block is None:
                self.fail("E0409", "`return` is for blocks; a model names its results with `output`", stmt.span, scope)
            scope.returned = tuple(self.eval(v, scope) for v in stmt.values)
        elif isinstance(stmt, A.If):
            test = self.static(stmt.test, scope)
            if test is POISON:
                raise StmtError()
            try:
                branch = truth(test, "an `if` condition")
            except EvalError as err:
                self.fail("E0405", err.message, stmt.test.span, scope)
            self._check_branch_not_taken(stmt.orelse if branch else stmt.body, scope)
            self.run_body(stmt.body if branch else stmt.orelse, scope)
        elif isinstance(stmt, A.Tie):
            self.ties.append(Tie(scope.prefix + stmt.target, scope.prefix + stmt.source, stmt.span))
        elif isinstance(stmt, A.Input):
            self.fail("E0409", "`input` declares a model's inputs; a block receives them in its `(…)` list"
                      if scope.block else "`input` goes at the top level of the model, not inside `if`",
                      stmt.span, scope)
        elif isinstance(stmt, A.Output):
            self.fail("E0409", "`output` belongs in a model; a block gives its results with `return`",
                      stmt.span, scope)

    def _check_branch_not_taken(self, stmts, scope: Scope) -> None:
        """Check the `if` branch this build skips as a block no model uses is checked, every value
        unknown: a misspelt op there fails `check` whatever the parameters. What it names stays out
        of the model (its layer names, automatic names and symbols)."""
        if not stmts:
            return
        unknown = Scope(scope.prefix, dict.fromkeys(scope.values, POISON), scope.layers.new_child(),
                        scope.reserved, dict(scope.counters), scope.notes, scope.block, scope.depth)
        tensors = {name for name, v in scope.values.items() if isinstance(v, Tensor) or v is POISON}
        symbols = set(self.symbols)
        try:
            self._generic_body(stmts, unknown, tensors)
        finally:
            self.symbols = symbols

    def _check_annotation(self, stmt: A.Assign, value, scope: Scope) -> None:
        if value is POISON:
            return
        if not isinstance(value, Tensor):
            self.fail("E0405", f"a shape annotation needs a tensor, but `{stmt.targets[0]}` is {type_name(value)}",
                      stmt.span, scope)
        expected = self._tensor_type(stmt.annotation, scope, default_dtype=value.type.dtype)
        if expected is None:
            raise StmtError()
        if expected.shape != value.type.shape or expected.dtype != value.type.dtype:
            self.fail("E0304", f"shape assertion failed: `{stmt.targets[0]}` is {value.type}, "
                      f"not {expected}", stmt.annotation.span, scope, label=f"actual: {value.type}")

    def _tensor_type(self, texpr: A.TensorTypeExpr, scope: Scope, default_dtype: str = "float32", least: int = 0):
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
    def _try_static(self, expr, scope):
        try:
            return self.static(expr, scope)
        except StmtError:
            return POISON

    def eval(self, e, scope: Scope, symbols: bool = False):
        try:
            return self._eval(e, scope, symbols)
        except EvalError as err:
            self.fail("E0405", err.message, e.span, scope, help=err.help)

    def _eval(self, e, scope: Scope, symbols: bool):
        if isinstance(e, A.Literal):
            return e.value
        if isinstance(e, A.Name):
            return self.lookup(e, scope, symbols)
        if isinstance(e, A.Pipe):
            return self.eval_pipe(e, scope)
        if isinstance(e, A.Call):
            return self.eval_call(e, scope)
        if isinstance(e, A.BinOp):
            acc = self.eval(e.first, scope, symbols)
            for op, operand in e.rest:
                rhs = self.eval(operand, scope, symbols)
                acc = self.arith(op, acc, rhs, e, scope)
            return acc
        if isinstance(e, A.ListExpr):
            return tuple(self.eval(x, scope, symbols) for x in e.items)
        if isinstance(e, A.Unary):
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
        if isinstance(e, A.Compare):
            a, b = self.eval(e.left, scope), self.eval(e.right, scope)
            if a is POISON or b is POISON:
                return POISON
            if isinstance(a, Tensor) or isinstance(b, Tensor):
                self.fail("E0405", "comparisons work on constants and sizes, not tensors", e.span, scope,
                          help="use channels(x) or dim(x, i) to compare sizes")
            return compare(e.op, a, b)
        if isinstance(e, A.BoolOp):
            for operand in e.operands:
                v = self.eval(operand, scope)
                if v is POISON:
                    return POISON
                if truth(v, f"an operand of `{e.op}`") == (e.op == "or"):
                    return e.op == "or"
            return e.op == "and"
        if isinstance(e, A.Cond):
            test = self.eval(e.test, scope)
            if test is POISON:
                return POISON
            return self.eval(e.then if truth(test, "a condition") else e.orelse, scope, symbols)
        if isinstance(e, A.TensorTypeExpr):
            self.fail("E0405", "a tensor type is not a value here", e.span, scope,
                      help="types belong in `input` declarations and shape annotations")
        raise EvalError(f"cannot evaluate {type(e).__name__}")

    def lookup(self, e: A.Name, scope: Scope, symbols: bool):
        if e.id in scope.values:
            return scope.values[e.id]
        if e.id in self.library.constants:
            return self.constant(e.id)
        if symbols:
            self.symbols.add(e.id)
            return D.Sym.var(e.id)
        if e.id in OPS or e.id in self.library.blocks:
            self.fail("E0405", f"`{e.id}` is a layer, not a value", e.span, scope,
                      help=f"apply it: `x |> {e.id}` or `{e.id}(x)`")
        if e.id in scope.layers:
            self.fail("E0405", f"`{e.id}` names a layer, not a value", e.span, scope,
                      help=f"apply it again with `x |> {e.id}` to share its weights")
        if self.import_failed:
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
            if not _is_number(other):
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
        f = call.func
        by_name = next((a for a in call.args if a.name is not None), None)
        if by_name is not None:
            self.fail("E0404", f"{f}() takes no argument by name", by_name.span, scope)
        args = [self.eval(a.value, scope) for a in call.args]
        if any(a is POISON for a in args):
            return POISON
        try:
            if f in ("channels", "dim", "rank", "features"):
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
            if f in ("min", "max"):
                values = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
                if not values or not all(_is_number(v) for v in values):
                    raise EvalError(f"{f}() takes numbers, or one list of them",
                                    help="a symbolic size has no value to compare" if any(
                                        isinstance(v, D.Sym) for v in values) else None)
                return (min if f == "min" else max)(values)
            if len(args) != 1:
                raise EvalError(f"{f}() takes one argument, got {len(args)}")
            if f == "int":
                return in_range(int(args[0]))
            if f == "float":
                return in_range(float(args[0]))
            if f == "len":
                if not isinstance(args[0], (tuple, str)):
                    raise EvalError(f"len() takes a list or a string, got {type_name(args[0])}")
                return len(args[0])
            if f == "sqrt":  # GPT-2's scaled init: std = 0.02 / sqrt(2 * layers)
                if not _is_number(args[0]):
                    raise EvalError("sqrt() takes a number")
                if args[0] < 0:
                    raise EvalError(f"sqrt() of a negative number ({args[0]})")
                return math.sqrt(args[0])
        except (TypeError, ValueError, OverflowError) as err:
            raise EvalError(f"{f}(): {err}") from None
        raise EvalError(f"unknown function {f}")

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

    def _sub_scope(self, scope: Scope, name: str | None, name_span, what: str) -> Scope:
        """A naming scope for a list or repeat: `name.0`, `name.1`, ... (values stay shared)."""
        path = self._layer_path(name, name_span, what, scope)
        return Scope(path + ".", scope.values, scope.layers.new_child(), notes=scope.notes, block=scope.block,
                     depth=scope.depth)

    def apply_sequence(self, items, inputs, scope, name, name_span):
        if name is None:  # an unnamed list only groups; its layers are named in the enclosing scope
            value = inputs
            for item in items:
                value = self.apply_stage(item, _as_list(value), scope, None, None)
            return value
        sub = self._sub_scope(scope, name, name_span, "list")
        value = inputs
        for i, item in enumerate(items):
            if isinstance(item, A.Named):
                value = self.apply_stage(item, _as_list(value), sub, None, None)
            else:
                value = self.apply_stage(item, _as_list(value), sub, str(i), None)
        return value

    def apply_repeat(self, rep: A.Repeat, inputs, scope, name, name_span):
        count = self.static(rep.count, scope)
        if count is POISON:
            raise StmtError()
        if not is_dim(count) or not isinstance(count, int) or not 0 <= count <= MAX_REPEAT:
            self.fail("E0602" if isinstance(count, int) and not isinstance(count, bool) else "E0405",
                      f"repeat needs a count from 0 to {MAX_REPEAT:,}, got "
                      f"{count if is_dim(count) else type_name(count)}", rep.count.span, scope)
        if count * self._copies > MAX_NODES:  # refused before expanding: nested repeats multiply
            self.fail("E0602", f"these nested repeats make {count * self._copies:,} copies of their body; "
                      f"a model may have at most {MAX_NODES:,} layers", rep.count.span, scope)
        sub = self._sub_scope(scope, name, name_span, "repeat")
        self._copies *= max(count, 1)
        try:
            return self._expand_repeat(rep, count, inputs, scope, sub)
        finally:
            self._copies //= max(count, 1)

    def _expand_repeat(self, rep: A.Repeat, count: int, inputs, scope: Scope, sub: Scope):
        value = inputs[0] if len(inputs) == 1 else tuple(inputs)  # `repeat 0` passes its input through
        with _index_of_repeat(scope.values, rep.var):
            for i in range(count):
                if rep.var:
                    scope.values[rep.var] = i
                if len(rep.stages) == 1 and not isinstance(rep.stages[0], A.Named):
                    value = self.apply_stage(rep.stages[0], _as_list(value), sub, str(i), None)
                else:
                    inner = Scope(f"{sub.prefix}{i}.", scope.values, scope.layers.new_child(), notes=scope.notes,
                                  block=scope.block, depth=scope.depth)
                    for j, st in enumerate(rep.stages):
                        value = self.apply_stage(st, _as_list(value), inner,
                                                 None if isinstance(st, A.Named) else str(j), None)
        return value

    # ---- layers ----
    def _layer_path(self, name: str | None, name_span, op: str, scope: Scope) -> str:
        if name is not None:
            self._check_layer_name(name, name_span, scope)
            local = scope.layers.maps[0]  # a list or repeat may reuse an enclosing layer's name for its own
            if name in local or (scope.prefix + name) in self.layers:
                first = self.layers.get(local.get(name, scope.prefix + name))
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

    def _check_layer_name(self, name: str, span, scope: Scope) -> None:
        """A name the generated module can hold: not a keyword, nor an attribute torch's modules have
        (the compiled model's own ones matter at the top level only)."""
        if keyword.iskeyword(name):
            why = "it is a Python keyword"
        elif name.startswith("__") or name in MODULE_ATTRIBUTES or (
                not scope.prefix and name in GRAPH_MODULE_ATTRIBUTES):
            why = "PyTorch's modules use that name themselves"
        elif not scope.prefix and name == "self":  # its output would be the generated forward's `self`
            why = "the generated `forward` calls the model `self`"
        else:
            return
        self.fail("E0412", f"`{name}` cannot name a layer: {why}", span, scope, label="reserved",
                  help=f"call it `{name.strip('_') or 'layer'}_`, for example")

    def apply_layer(self, func: str, call: A.Call, inputs: list, scope: Scope, name, name_span):
        if func in self.library.blocks:
            return self.expand_block(func, call, inputs, scope, name, name_span)
        op = OPS.get(func)
        if op is None:
            if func in scope.layers and not call.args:
                if name_span is not None:  # `other: fc` (the index names of lists and repeats have no span)
                    self.fail("E0403", f"`{func}` is a layer applied again: it keeps its name", name_span, scope,
                              label="a second name", help=f"drop `{name}:` to share its weights, or call an op "
                              f"for a new layer: `{name}: {self.layers[scope.layers[func]].op}(...)`"
                              if scope.layers[func] in self.layers else f"drop `{name}:`")
                return self.reuse_layer(scope.layers[func], call, inputs, scope)
            self._not_an_op(func, call, scope)
        tensors, input_spans, positional = self.split_positional(call, inputs, scope)
        kwargs, arg_spans, init = self.op_arguments(op, call, positional, scope)
        if any(t is POISON for t in tensors):
            return POISON
        path = self._layer_path(name, name_span, func, scope)
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

    def _not_an_op(self, func: str, call: A.Call, scope: Scope):
        """Fail for a call of `func`, which is no block or op (nor a layer applied again without arguments)."""
        if func in scope.layers:
            self.fail("E0407", f"`{func}` is a layer, not an op: it takes no arguments", call.span, scope,
                      label="arguments given", help=f"to share its weights: `x |> {func}`; for a new layer, "
                      f"call its op under a new name, e.g. `{func}2: {self.layers[scope.layers[func]].op}(...)`"
                      if scope.layers[func] in self.layers else f"to share its weights: `x |> {func}`")
        if func in BUILTINS:
            self.fail("E0405", f"{func}() is a function, not a layer", call.func_span, scope)
        if self.import_failed:
            raise StmtError()  # the import that failed may define it
        candidates = list(OPS) + list(self.library.blocks) + list(scope.layers)
        self.fail("E0402", f"unknown op or block `{func}`", call.func_span, scope, label="not defined",
                  help=did_you_mean(func, candidates))

    def op_arguments(self, op, call: A.Call, positional: list, scope: Scope):
        """Map the call's arguments onto the op's parameters (positional as torch, or without the input size):
        `positional` as (argument, value), the keyword ones from the call."""
        keywords = [a for a in call.args if a.name is not None]
        required = [f for f in op.positional if f not in op.inferred and op.params.model_fields[f].is_required()]
        order = list(op.positional)
        if not (len(positional) > len(required) and order and order[0] in op.inferred):
            order = [f for f in order if f not in op.inferred]
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
        v = a.value
        if isinstance(v, A.Call):
            kind, kind_span, args = v.func, v.func_span, v.args
        else:
            kind, kind_span, args = (v.id if isinstance(v, A.Name) else self.static(v, scope)), v.span, ()
        if kind not in INIT_KINDS:
            self.fail("E0405", f"unknown init `{kind}`" if isinstance(kind, str) else
                      "init takes a name such as normal, xavier or kaiming", kind_span, scope, label="not an init",
                      help=(did_you_mean(kind, INIT_KINDS) if isinstance(kind, str) else None)
                      or f"one of: {', '.join(INIT_KINDS)}")
        init = {"kind": kind}
        for x in args:
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
            if x.name == "mode":
                ok, want = value in ("fan_in", "fan_out"), '"fan_in" or "fan_out"'
            elif x.name == "nonlinearity":
                ok, want = value in INIT_NONLINEARITIES, f"one of {', '.join(INIT_NONLINEARITIES)}"
            elif x.name in ("std", "gain"):
                ok, want = _is_number(value) and value > 0, "a positive number"
            else:
                ok, want = _is_number(value), "a number"
            if not ok:
                self.fail("E0405", f"init {kind} argument `{x.name}` must be {want}", x.value.span, scope,
                          label=f"got {_show(value)}")
            init[x.name] = value
        if "a" in init and "b" in init and not init["a"] < init["b"]:
            self.fail("E0405", f"init {kind} needs a < b (the cut-off points), got a = {init['a']}, b = {init['b']}",
                      v.span, scope)
        return init

    def apply_op(self, func: str, call, tensors: list, kwargs: dict, scope: Scope, path: str | None,
                 arg_spans: dict | None = None, init: dict | None = None, input_spans: list = ()):
        op = OPS[func]
        arg_spans = arg_spans or {}
        try:
            params = op.params(**kwargs)
        except ValidationError as err:
            reported = set()
            for e in _telling_errors_first(err.errors(include_url=False), arg_spans):
                field_name = e["loc"][0] if e["loc"] else None
                if field_name in reported:  # a union gives one error per member: report the telling one
                    continue
                reported.add(field_name)
                span = arg_spans.get(field_name, call.span)
                if e["type"] == "missing":
                    self.error("E0406", f"{func} needs `{field_name}`", call.span, scope, label="missing argument",
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
                               label=f"got {_show(value)}", help="write a whole number without a point; `/` gives a "
                               "float, `//` a whole number (or use int(...))" if whole else None)
            raise StmtError()
        lo, hi = op.inputs
        if not (lo <= len(tensors) and (hi is None or len(tensors) <= hi)):
            want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            self.fail("E0408", f"{func} takes {want} tensor input{'s' if hi != 1 else ''}, got {len(tensors)}",
                      call.span, scope)
        if path is None:
            path = self._layer_path(None, None, func, scope)
        return self._infer(op, params, tensors, call, scope, path, arg_spans, init, layer_exists=False,
                           input_spans=input_spans)

    def reuse_layer(self, path: str, where, inputs: list, scope: Scope):
        """Apply an existing layer again: the same parameters (shared weights)."""
        layer = self.layers.get(path)
        if layer is None and any(other.startswith(path + ".") for other in self.layers):
            self.fail("E0405", f"`{path}` names a group of layers (a list, repeat or block); "
                      "only a single layer can be applied again",
                      where.span, scope, help="apply its layers again one by one to share their weights, "
                      "or use the block again for new weights")
        if layer is None:
            self.fail("E0401", f"layer `{path}` is not defined yet", where.span, scope)
        if any(t is POISON for t in inputs):
            return POISON
        return self._infer(OPS[layer.op], layer.params, inputs, where, scope, path, {}, None, layer_exists=True)

    def _infer(self, op, params, tensors, call, scope, path, arg_spans, init, layer_exists, input_spans=()):
        """The op's outputs for these inputs, added to the graph; `input_spans`: where each input is written
        as an argument (None, or no entry, where it is piped in)."""
        def input_span(index: int):
            return input_spans[index] if index < len(input_spans) else None

        types = tuple(t.type for t in tensors)
        try:
            result = op.infer(params, types)
        except OpError as err:
            span = arg_spans.get(err.arg) if err.arg else None
            if span is None and err.input is not None:
                span = input_span(err.input)
            help_ = err.help
            if err.code == "E0301" and err.arg in op.inferred and not layer_exists and isinstance(call, A.Call):
                fixed = tuple(a for a in call.args if a.span != arg_spans.get(err.arg))
                help_ = f"drop the input size; specc infers it: {unparse.call(call.func, fixed)}"
            label = err.label or (f"input is {D.fmt_shape(types[0].shape)}" if types and err.code == "E0301" else "")
            self.fail(err.code, err.message, span or getattr(call, "span", None), scope, label=label, help=help_)
        self._check_input_dtypes(op, result.params, tensors, [input_span(i) for i in range(len(tensors))],
                                 call, scope)
        if init:
            self._check_init_fits(op, result.params, init, arg_spans.get("init"), scope)
        if len(self.nodes) >= MAX_NODES:
            self.fail("E0602", f"the model expands to more than {MAX_NODES:,} layers", call.span, scope)
        if not layer_exists:
            self.layers[path] = Layer(path, op.name, result.params, call.span, init, scope.block)
        node_id = self._fresh_id(path.replace(".", "_"))
        outs = []
        if op.outputs_weight:
            result = replace(result, outputs=tuple(TensorType(self.weight_dtype, t.shape) for t in result.outputs))
        for t in result.outputs:
            fixed = [d for d in t.shape if isinstance(d, int)]
            if any(d > MAX_INT for d in fixed) or math.prod(fixed) > MAX_INT:  # no tensor can have so many elements
                self.fail("E0602", f"{op.name} would make {t}: more elements than int64 can count",
                          getattr(call, "span", None), scope)
        for i, t in enumerate(result.outputs):
            vid = node_id if len(result.outputs) == 1 else self._fresh_id(f"{node_id}_{i}")
            self.values[vid] = Value(vid, t, call.span)
            outs.append(Tensor(vid, t))
        try:
            macs = op.macs(result.params, types, result.outputs)
        except Exception:  # noqa: BLE001 - MACs are informational
            macs = 0
        self.nodes.append(Node(node_id, path, tuple(t.id for t in tensors), tuple(o.id for o in outs),
                               call.span, scope.notes, macs))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _check_input_dtypes(self, op, params, tensors, spans, call, scope: Scope) -> None:
        """A layer with weights computes in their dtype, the model's one (its inputs' floating-point dtype,
        or float32 where they differ): torch refuses a floating-point input of another dtype, except that
        its norms take half-precision inputs to float32 weights (and give half-precision outputs)."""
        if not op.param_shapes(params):
            return
        for i, t in enumerate(tensors):
            half_to_norm = op.category == "norm" and self.weight_dtype == "float32" and \
                t.type.dtype in ("float16", "bfloat16")
            if t.type.dtype in FLOAT_DTYPES and t.type.dtype != self.weight_dtype and not half_to_norm:
                self.fail("E0306", f"{op.name} has {self.weight_dtype} weights, the model's dtype, but its input "
                          f"is {t.type.dtype}", spans[i] or getattr(call, "span", None), scope,
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

    def _fresh_id(self, base: str) -> str:
        """`base`, or `base_1`, `base_2`, ... where it is taken: node and value ids share one namespace
        (a multi-output op's values are `<node>_0`, `<node>_1`, which a layer `<node>_0` must not take)."""
        fresh, n = base, 1
        while fresh in self.used_ids:
            fresh = f"{base}_{n}"
            n += 1
        self.used_ids.add(fresh)
        return fresh

    # ---- blocks ----
    def expand_block(self, func: str, call: A.Call, inputs: list, scope: Scope, name, name_span):
        block, home = self.library.blocks[func]
        if scope.depth >= MAX_BLOCK_DEPTH:
            self.fail("E0603", f"blocks nested more than {MAX_BLOCK_DEPTH} deep (does `{func}` use itself?)",
                      call.span, scope)
        self._expansions += 1
        if self._expansions > MAX_NODES:  # a block using itself twice doubles at every level, layers or not
            if self._expansions == MAX_NODES + 1:  # said once; the expansions still pending fail quietly
                self.error("E0602", f"the model expands blocks more than {MAX_NODES:,} times "
                           f"(does `{func}` use itself?)", call.span, scope)
            raise StmtError()
        tensors, _, positional = self.split_positional(call, inputs, scope)
        values = self.block_arguments(func, block, call, positional, scope)
        if len(tensors) != len(block.inputs):
            self.fail("E0408", f"block {func} takes {len(block.inputs)} tensor input"
                      f"{'s' if len(block.inputs) != 1 else ''} ({', '.join(block.inputs)}), got {len(tensors)}",
                      call.span, scope)
        if any(t is POISON for t in tensors) or any(v is POISON for v in values.values()):
            return POISON
        path = self._layer_path(name, name_span, func, scope)
        notes = (BlockUse(f"in block {func}, used", call.span, func),) + scope.notes
        inner = scope.child(path + ".", values, notes, func)
        inner.reserved = explicit_names(block.body)
        for pname, default in block.params.items():
            if pname in values:
                continue
            if default is None:
                self.fail("E0406", f"block {func} needs a value for `{pname}`", call.span, scope,
                          help=f"pass it: {func}({pname} = ...)")
            inner.values[pname] = self._try_static(default, inner)
        for iname, t in zip(block.inputs, tensors):
            inner.values[iname] = t
        self._expanded.add(func)
        self.run_body(block.body, inner)
        if inner.returned is None:
            self.fail("E0410", f"block {func} has no `return`", home.span("blocks", func), scope)
        result = inner.returned
        if any(r is POISON for r in result):
            return POISON
        return result[0] if len(result) == 1 else result

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

    # ---- blocks no model uses ----
    def check_unused_blocks(self) -> None:
        """Check the file's own blocks that no model expanded, as far as that is possible without their
        input shapes (like a C++ template before it is instantiated): the ops and blocks they call, those
        calls' argument names and counts, the names they read, their constant expressions. Each check is
        the normal expansion's own, with tensors and parameters standing for unknown values (POISON),
        so the errors are those a use of the block would report, where it would report them (a layer
        name used twice is left to the use: `if` branches and repeats may each name their own)."""
        self.layers, self.symbols = {}, set()  # no model's layers: they would show in `_not_an_op`'s help
        for name, block in self.spec.blocks.items():
            if name in self._expanded or self.library.blocks[name][0] is not block:
                continue  # checked where a model uses it, or an import's block of the same name (E0208)
            scope = Scope(f"{name}.", dict.fromkeys([*block.params, *block.inputs], POISON),  # inside, as a use is
                          reserved=explicit_names(block.body), block=name)
            for default in block.params.values():
                if default is not None:
                    self._try_static(default, scope)
            self._generic_body(block.body, scope, set(block.inputs))

    def _generic_body(self, stmts, scope: Scope, tensors: set) -> None:
        """`tensors`: the names that may hold tensors where the block is used (its inputs, what layers give)."""
        for stmt in stmts:
            try:
                if isinstance(stmt, A.Assign):
                    self._generic_expr(stmt.value, scope, tensors)
                    if stmt.annotation is not None:
                        self._tensor_type(stmt.annotation, scope)
                elif isinstance(stmt, A.Return):
                    for value in stmt.values:
                        self._generic_expr(value, scope, tensors)
                elif isinstance(stmt, A.If):  # the test is unknown: both branches may run
                    self._generic_expr(stmt.test, scope, tensors)
                    self._generic_body(stmt.body, scope, tensors)
                    self._generic_body(stmt.orelse, scope, tensors)
                elif isinstance(stmt, (A.Input, A.Output)):
                    self.run_stmt(stmt, scope)
            except StmtError:
                pass
            if isinstance(stmt, A.Assign):
                scope.values.update(dict.fromkeys(stmt.targets, POISON))
                if len(stmt.targets) > 1 or _may_be_tensor(stmt.value, tensors):
                    tensors.update(stmt.targets)
                else:
                    tensors.difference_update(stmt.targets)

    def _generic_expr(self, e, scope: Scope, tensors: set) -> None:
        if isinstance(e, A.Pipe):
            self._generic_expr(e.source, scope, tensors)
            for stage in e.stages:
                self._generic_stage(stage, scope, tensors, None, None)
        elif _is_layer_call(e):
            self._generic_layer(e.func, e, scope, tensors, e.layer_name, e.name_span)
        elif any(_applies_layers(x) for x in _subexpressions(e)):  # `ReLU(h) + x`: its parts one by one
            for x in _subexpressions(e):
                self._generic_expr(x, scope, tensors)
        else:
            self.eval(e, scope)  # looks names up and computes what is constant; the rest is POISON

    def _generic_stage(self, stage, scope: Scope, tensors: set, name: str | None, name_span) -> None:
        if isinstance(stage, A.Named):
            self._generic_stage(stage.layer, scope, tensors, stage.name, stage.name_span)
        elif isinstance(stage, A.LayerRef):
            if name is not None or stage.name not in scope.layers:
                call = A.Call(stage.name, (), stage.span, stage.span)
                self._generic_layer(stage.name, call, scope, tensors, name, name_span)
        elif isinstance(stage, A.LayerCall):
            self._generic_layer(stage.call.func, stage.call, scope, tensors, name, name_span)
        else:
            if name is not None:
                self._check_layer_name(name, name_span, scope)
            var = stage.var if isinstance(stage, A.Repeat) else None
            with _index_of_repeat(scope.values, var):
                if isinstance(stage, A.Repeat):
                    self.eval(stage.count, scope)
                    if var:
                        scope.values[var] = POISON
                for item in stage.items if isinstance(stage, A.LayerList) else stage.stages:
                    self._generic_stage(item, scope, tensors, None, None)
            if name is not None:
                scope.layers[name] = scope.prefix + name

    def _generic_layer(self, func: str, call: A.Call, scope: Scope, tensors: set, name: str | None,
                       name_span) -> None:
        """`apply_layer` and `expand_block` up to where they need the input shapes."""
        if name is not None:  # known even if the call fails: applying it again is then no second error
            scope.layers[name] = scope.prefix + name
            self._check_layer_name(name, name_span, scope)
        if func not in self.library.blocks and func not in OPS:
            if func in scope.layers and not call.args:
                return  # the layer applied again
            self._not_an_op(func, call, scope)
        if name is None:
            self._layer_path(None, None, func, scope)  # its automatic name, which may be applied again
        positional = [a for a in call.args if a.name is None]
        while positional and _may_be_tensor(positional[0].value, tensors):  # the tensor inputs lead
            self._generic_expr(positional.pop(0).value, scope, tensors)
        if func in self.library.blocks:
            self.block_arguments(func, self.library.blocks[func][0], call,
                                 [(a, self.static(a.value, scope)) for a in positional], scope)
        else:
            reported = len(self.diagnostics)
            try:
                self.op_arguments(OPS[func], call, [(a, self.static(a.value, scope)) for a in positional], scope)
            except StmtError:
                if len(self.diagnostics) > reported:
                    raise
                # else: an argument is unknown here; the op validates its values where the block is used


@contextlib.contextmanager
def _index_of_repeat(values: dict, var: str | None):
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


def _returns(stmt) -> list:
    """The `return` statements a statement is or holds (in either branch of an `if`)."""
    if isinstance(stmt, A.Return):
        return [stmt]
    if isinstance(stmt, A.If):
        return [r for s in (*stmt.body, *stmt.orelse) for r in _returns(s)]
    return []


def _targets(stmt) -> tuple:
    """The names a statement binds: those of both branches of an `if` (when its test fails, neither runs)."""
    if isinstance(stmt, A.If):
        return tuple(t for s in (*stmt.body, *stmt.orelse) for t in _targets(s))
    return getattr(stmt, "targets", ())


def _subexpressions(e) -> tuple:
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


def _is_layer_call(e) -> bool:
    return isinstance(e, A.Call) and (e.func not in BUILTINS or e.layer_name is not None)


def _applies_layers(e) -> bool:
    return isinstance(e, A.Pipe) or _is_layer_call(e) or any(_applies_layers(x) for x in _subexpressions(e))


def _may_be_tensor(e, tensors: set) -> bool:
    """Whether `e` may be a tensor where its block is used (a call's leading tensor arguments are its
    inputs, not its parameters). Unsure means yes: an argument taken for an input is checked less."""
    if isinstance(e, A.Name):
        return e.id in tensors
    if isinstance(e, (A.BinOp, A.Unary, A.Cond)):
        return any(_may_be_tensor(x, tensors) for x in _subexpressions(e))
    return isinstance(e, A.Pipe) or _is_layer_call(e)


_IMPORTED: dict[tuple, object] = {}


def _telling_errors_first(errors: list, arg_spans: dict) -> list:
    """Pydantic's errors in the order of the arguments in the source, and for one argument those
    about its range before those about its type: for `stride = 0` against `int > 0 or a tuple of
    them`, "greater than 0" is the telling one."""
    def key(e):
        span = arg_spans.get(e["loc"][0] if e["loc"] else None)
        return (span.line, span.col) if span else (0, 0), e["type"].endswith("_type")
    return sorted(errors, key=key)


def _imported_at(diagnostics: list[Diagnostic], span: SourceSpan | None) -> list[Diagnostic]:
    """An imported file's diagnostics, each noting where the file is imported."""
    return [replace(d, notes=d.notes + (Note("the file is imported", span),)) for d in diagnostics]


def _load_import(path: str):
    """An imported file's Spec, parsed once per process while the file is unchanged (like Python's
    module cache: a block library such as std/resnet.dlspec is imported by many specs)."""
    from ..frontend.load import load_file

    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _IMPORTED:
        _IMPORTED[key] = load_file(path)  # a SpecError is not cached: the file is read again next time
    return _IMPORTED[key]


def _display_path(path: Path) -> str:
    """A path as diagnostics show it: relative to the working directory when inside it."""
    text = os.path.normpath(str(path))
    rel = os.path.relpath(os.path.abspath(text))
    return rel if not rel.startswith("..") else os.path.abspath(text)


def _from_python(value):
    """A parameter value given from Python (`specc.compile(..., params=...)`) as the evaluator's own:
    a list as a tuple, as `[2, 2]` in a spec is (else `sizes == [2, 2]` would be false)."""
    if isinstance(value, (list, tuple)):
        return tuple(_from_python(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return in_range(value)
    raise EvalError(f"expected a number, string, boolean, none or list, got {type(value).__name__}")


def _as_list(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v) -> str:
    if isinstance(v, Tensor):
        return f"a tensor {v.type}"
    return unparse.literal(v) if isinstance(v, (int, float, str, bool, tuple, type(None))) else str(v)


def build(spec, model: str | None = None, *, params: dict | None = None, max_params: int = MAX_PARAMS):
    """Build one model's IR. Returns (graph or None, diagnostics)."""
    builder = Builder(spec, max_params=max_params)
    if not spec.models:
        return None, builder.diagnostics
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
        builder.check_unused_blocks()
    except RecursionError:  # nested too deeply to walk: what a model uses was told by its build
        pass
    return graphs, builder.diagnostics
